// 68 facial landmarks (the iBUG 300-W layout) from dlib's shape predictor.
#pragma once

#include <array>
#include <memory>
#include <string>

#include <opencv2/core.hpp>

#include "align/detector.h"
#include "align/image.h"

namespace starganv2::align {

inline constexpr int kNumLandmarks = 68;
using Landmarks = std::array<cv::Point2d, kNumLandmarks>;

// Debian's libdlib-data installs the model here.
inline constexpr const char* kDefaultShapeModel = "/usr/share/dlib/shape_predictor_68_face_landmarks.dat";

// What a fit looked at: the grey patch the predictor read (before the slight blur it gets) and the
// map from frame pixels to patch pixels. The detector's check of a fit is cut from it
// (Detector::verify_patch) instead of from the frame again.
struct FitPatch {
  cv::Mat gray;  // CV_8UC1
  cv::Matx23d from_frame;
};

// A loaded shape predictor. Loading takes about a second, so load once and share: fit() is const
// and safe to call from several threads at a time.
class ShapeModel {
 public:
  // Throws AlignError naming `path` when the file is missing or unreadable, is not a dlib shape
  // predictor, is truncated or inconsistent (every tree index is checked, so a damaged file
  // cannot make fit() read out of bounds), or predicts other than 68 points.
  static std::shared_ptr<const ShapeModel> load(const std::string& path = kDefaultShapeModel);

  ~ShapeModel();
  ShapeModel(const ShapeModel&) = delete;
  ShapeModel& operator=(const ShapeModel&) = delete;

  // Landmarks, in frame pixels, of the face inside `box` (a detector box or one predicted from
  // earlier landmarks; a rotated box is fitted upright). The face region is resampled so that
  // the box is 200 px wide, which makes cost and precision independent of the face size.
  // Throws AlignError for a bad frame, an empty frame or a degenerate box. `patch`, when given,
  // receives what the fit read.
  Landmarks fit(const cv::Mat& frame, PixelFormat format, const FaceBox& box, FitPatch* patch = nullptr) const;

  // The predictor itself on a grey image: the points, in whole pixels as dlib gives them, of the
  // face in `box`; exactly what dlib::shape_predictor computes from the same file.
  std::array<cv::Point, kNumLandmarks> predict(const cv::Mat& gray, const cv::Rect& box) const;

  const std::string& path() const { return path_; }

 private:
  ShapeModel();
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string path_;
};

}  // namespace starganv2::align
