// Alignment to the CelebA-HQ framing: a similarity transform from a face's 68 landmarks onto a
// canonical template, and the crop it cuts.
#pragma once

#include <array>
#include <span>

#include <opencv2/core.hpp>

#include "align/detector.h"
#include "align/image.h"
#include "align/landmarks.h"

namespace starganv2::align {

// Crop side the generator was trained on.
inline constexpr int kDefaultCropSize = 256;

// The canonical 68-point template in unit coordinates: (0,0) is the top-left corner of the crop,
// (1,1) the bottom-right, so pixel i of an N-px crop has its centre at (i + 0.5) / N. It is the
// mean dlib landmark position over the aligned CelebA-HQ images (canonical_template.cpp says how
// it was made; starganv2-align-template recomputes it).
const std::array<cv::Point2d, kNumLandmarks>& canonical_template();

// Where dlib's HOG detector puts its box on a face that sits on the template, in the same unit
// coordinates (mean over the same images). Used to predict a detector-like box from landmarks.
struct TemplateBox {
  cv::Point2d center;
  double size;
};
const TemplateBox& canonical_detector_box();

// Least-squares similarity (rotation, uniform scale, translation; no reflection) taking `from`
// onto `to`, optionally weighting each pair (weights >= 0, as many as points). Requires equal
// sizes >= 2 with `from` not all one point; throws AlignError otherwise.
cv::Matx23d fit_similarity(std::span<const cv::Point2d> from, std::span<const cv::Point2d> to,
                           std::span<const double> weights = {});

// Weights of the 68 landmarks in every fit to the template: 1/2 for the jaw line (0-16) and the
// eyebrows (17-26), 1 for the rest. Those are the least well-defined points of dlib's fits (a
// contour with no corner; brows under hair), and halving them makes two views of one face align
// more alike (fewer round-trip outliers).
std::span<const double> landmark_weights();

// Frame pixels -> crop pixels for a crop_size x crop_size crop in which `landmarks` fit the
// template as closely as a similarity allows (weighted by landmark_weights()).
cv::Matx23d fit_to_template(const Landmarks& landmarks, int crop_size = kDefaultCropSize);

// The box dlib's detector would draw around a face with these landmarks, rotated with the face.
FaceBox box_from_landmarks(const Landmarks& landmarks);
// The same from another template and box (both in unit coordinates); the template tool uses it.
FaceBox box_from_landmarks(const Landmarks& landmarks, std::span<const cv::Point2d> unit_template,
                           const TemplateBox& unit_box);

// `landmarks` (frame pixels) where `forward` (frame px -> crop px) puts them in a crop_size crop,
// in the template's unit coordinates: the face's own shape in the crop.
Landmarks to_unit_crop(const Landmarks& landmarks, const cv::Matx23d& forward, int crop_size);

// Mean distance, in crop widths, between the landmarks mapped by fit_to_template and the template:
// about 0.02 for real faces (individual face shape), much more when the fit has gone astray.
double template_residual(const Landmarks& landmarks);

// The crop_size x crop_size crop that `forward` (frame px -> crop px) cuts from the frame, with
// mirror padding where it reaches past the frame edge, in crop_format (kRGB or kBGR).
cv::Mat warp_crop(const cv::Mat& frame, PixelFormat format, const cv::Matx23d& forward, int crop_size,
                  PixelFormat crop_format);

// Similarity parameters of a frame -> crop transform: the crop's centre in the frame, its side
// in frame pixels and its rotation (the face's angle, FaceBox sense). Smoothing works on these.
struct CropPose {
  cv::Point2d center;
  double side = 0;
  double angle_rad = 0;
};
CropPose pose_from_forward(const cv::Matx23d& forward, int crop_size);
cv::Matx23d forward_from_pose(const CropPose& pose, int crop_size);

}  // namespace starganv2::align
