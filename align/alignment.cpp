#include "align/alignment.h"

#include <cmath>
#include <numbers>
#include <string>

namespace starganv2::align {

cv::Matx23d fit_similarity(std::span<const cv::Point2d> from, std::span<const cv::Point2d> to,
                           std::span<const double> weights) {
  if (from.size() != to.size() || from.size() < 2)
    throw AlignError("fit_similarity: needs two equally long point lists of at least 2 points");
  if (!weights.empty() && weights.size() != from.size())
    throw AlignError("fit_similarity: needs one weight per point");
  const auto w = [&](std::size_t i) { return weights.empty() ? 1.0 : weights[i]; };
  double n = 0;
  cv::Point2d mf(0, 0), mt(0, 0);
  for (std::size_t i = 0; i < from.size(); ++i) mf += w(i) * from[i], mt += w(i) * to[i], n += w(i);
  if (!(n > 0)) throw AlignError("fit_similarity: weights must be >= 0 and not all 0");
  mf /= n, mt /= n;
  // Closed form of min sum w |[a -b; b a] p + t - q|^2 over a, b, t (Umeyama in 2-D, where a
  // rotation-plus-scale is one complex number, so no reflection can appear).
  double sxx = 0, a = 0, b = 0;
  for (std::size_t i = 0; i < from.size(); ++i) {
    const cv::Point2d p = from[i] - mf, q = to[i] - mt;
    sxx += w(i) * p.dot(p);
    a += w(i) * (p.x * q.x + p.y * q.y);
    b += w(i) * (p.x * q.y - p.y * q.x);
  }
  if (!(sxx > 1e-12) || !std::isfinite(sxx + a + b))
    throw AlignError("fit_similarity: the points are all in one place or not finite");
  a /= sxx, b /= sxx;
  return {a, -b, mt.x - (a * mf.x - b * mf.y), b, a, mt.y - (b * mf.x + a * mf.y)};
}

std::span<const double> landmark_weights() {
  static const std::array<double, kNumLandmarks> weights = [] {
    std::array<double, kNumLandmarks> w;
    w.fill(1.0);
    for (int i = 0; i <= 26; ++i) w[i] = 0.5;
    return w;
  }();
  return weights;
}

cv::Matx23d fit_to_template(const Landmarks& landmarks, int crop_size) {
  if (crop_size < 1) throw AlignError("fit_to_template: crop size must be >= 1");
  std::array<cv::Point2d, kNumLandmarks> target;
  const auto& unit = canonical_template();
  for (int i = 0; i < kNumLandmarks; ++i) target[i] = unit[i] * crop_size - cv::Point2d(0.5, 0.5);
  return fit_similarity(landmarks, target, landmark_weights());
}

FaceBox box_from_landmarks(const Landmarks& landmarks) {
  return box_from_landmarks(landmarks, canonical_template(), canonical_detector_box());
}

FaceBox box_from_landmarks(const Landmarks& landmarks, std::span<const cv::Point2d> unit_template,
                           const TemplateBox& unit) {
  const cv::Matx23d T = fit_similarity(landmarks, unit_template, landmark_weights());  // frame -> unit
  FaceBox box;
  box.center = apply(invert_affine(T), unit.center);
  box.size = unit.size / std::hypot(T(0, 0), T(1, 0));
  box.angle_deg = std::atan2(T(1, 0), T(0, 0)) * 180.0 / std::numbers::pi;
  return box;
}

Landmarks to_unit_crop(const Landmarks& landmarks, const cv::Matx23d& forward, int crop_size) {
  Landmarks unit;
  for (int i = 0; i < kNumLandmarks; ++i) unit[i] = (apply(forward, landmarks[i]) + cv::Point2d(0.5, 0.5)) / crop_size;
  return unit;
}

double template_residual(const Landmarks& landmarks) {
  const auto& unit = canonical_template();
  const cv::Matx23d T = fit_similarity(landmarks, unit, landmark_weights());
  double sum = 0;
  for (int i = 0; i < kNumLandmarks; ++i) sum += cv::norm(apply(T, landmarks[i]) - unit[i]);
  return sum / kNumLandmarks;
}

cv::Mat warp_crop(const cv::Mat& frame, PixelFormat format, const cv::Matx23d& forward, int crop_size,
                  PixelFormat crop_format) {
  check_frame(frame, format);
  if (frame.empty()) throw AlignError("warp_crop: empty frame");
  if (crop_size < 1 || crop_size > 4096) throw AlignError("warp_crop: crop size must be 1..4096");
  if (crop_format != PixelFormat::kRGB && crop_format != PixelFormat::kBGR)
    throw AlignError(std::string("warp_crop: crops are RGB or BGR, not ") + to_string(crop_format));
  cv::Mat crop;
  // Mirror padding, as the official aligner does: a face near the frame edge gets a plausible
  // continuation instead of a black wedge the generator never saw in training.
  warp_affine(frame, crop, forward, {crop_size, crop_size}, cv::BORDER_REFLECT_101);
  return to_three_channels(crop, format, crop_format);
}

CropPose pose_from_forward(const cv::Matx23d& forward, int crop_size) {
  const double k = std::hypot(forward(0, 0), forward(1, 0));
  const double c = 0.5 * (crop_size - 1);
  return {apply(invert_affine(forward), {c, c}), crop_size / k, std::atan2(forward(1, 0), forward(0, 0))};
}

cv::Matx23d forward_from_pose(const CropPose& pose, int crop_size) {
  const double k = crop_size / pose.side;
  const double a = k * std::cos(pose.angle_rad), b = k * std::sin(pose.angle_rad);
  const double c = 0.5 * (crop_size - 1);
  return {a, -b, c - (a * pose.center.x - b * pose.center.y), b, a, c - (b * pose.center.x + a * pose.center.y)};
}

}  // namespace starganv2::align
