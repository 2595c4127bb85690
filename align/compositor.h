// Putting translated crops back: each crop is warped into the frame with its inverse transform and
// blended through a feathered mask of the face region. Pixels the mask does not reach are not
// written at all, so they stay bit-exact.
#pragma once

#include <optional>
#include <span>

#include <opencv2/core.hpp>

#include "align/alignment.h"
#include "align/image.h"
#include "align/landmarks.h"

namespace starganv2::align {

struct CompositorOptions {
  // Width of the soft edge, in crop widths: it scales with the face, so the seam looks the same at
  // every distance from the camera. 0.08 is 20 px on a 256 crop.
  double feather = 0.08;
  // Grows (> 0) or shrinks (< 0) the face region, in crop widths.
  double margin = 0.0;
  // Match the mean and spread of each colour channel of the translated face to the face it
  // replaces (under the mask) before blending. Hides a colour cast of the generator.
  bool color_match = false;
};

class Compositor {
 public:
  // Throws AlignError for bad options or a crop format other than kRGB/kBGR.
  explicit Compositor(int crop_size = kDefaultCropSize, PixelFormat crop_format = PixelFormat::kRGB,
                      CompositorOptions options = {});

  // The face region in crop pixels, CV_32FC1 in [0, 1]: the jaw line closed over the forehead
  // (the eyebrows lifted by 0.8 of the brow-to-nose-base height; convex hull), grown by `margin`,
  // 1 inside, falling to 0 across `feather` inside its edge, 0 on the crop border.
  // mask() is the region of the canonical template, what a face gets without a shape of its own;
  // mask(shape) that of a face whose landmarks are at `shape` in the crop, in unit crop
  // coordinates (AlignedFace::shape). Throws AlignError for a shape that is not finite.
  const cv::Mat& mask() const { return mask_; }
  cv::Mat mask(const Landmarks& shape) const;
  int crop_size() const { return crop_size_; }

  // Blends `crop` (crop_size x crop_size CV_8UC3 in crop_format) into `frame` (format `format`, any
  // stride, written in place) at `inverse` (crop pixel -> frame pixel, AlignedFace::inverse).
  // Only colour channels under the warped mask change; alpha/padding bytes keep their values (the
  // vectorised blend stores those of pixels under the mask back unchanged).
  // `strength` in [0, 1] scales the mask: the result is the original face blended with the
  // translated one (1 = the translated face, 0 = nothing written at all).
  // `shape` (unit crop coordinates, see mask(shape)) makes the blend region that face's own;
  // without it, the template's.
  // Throws AlignError for a bad frame, crop or shape or a strength outside [0, 1]; a crop entirely
  // outside the frame changes nothing. const, and safe to call from several threads on
  // different frames.
  void composite(cv::Mat& frame, PixelFormat format, const cv::Mat& crop, const cv::Matx23d& inverse,
                 double strength = 1.0, const Landmarks* shape = nullptr) const;

  struct Face {
    cv::Mat crop;
    cv::Matx23d inverse;
    std::optional<Landmarks> shape;  // the face's landmarks in the crop (unit); none: the template's
  };
  // Several faces, blended one after another in the given order.
  void composite(cv::Mat& frame, PixelFormat format, std::span<const Face> faces, double strength = 1.0) const;

 private:
  int crop_size_;
  PixelFormat crop_format_;
  CompositorOptions options_;
  cv::Mat mask_;
  cv::Mat mask8_;         // mask_ in 1/255 steps, what composite() blends with
  cv::Rect mask_bounds_;  // where mask_ > 0
};

}  // namespace starganv2::align
