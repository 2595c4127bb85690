#include "align/tracker.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <utility>

namespace starganv2::align {

namespace {

// Weight of the new sample in an exponential smoother with this cutoff at this sample spacing.
double alpha(double cutoff_hz, double dt) {
  const double tau = 1.0 / (2.0 * std::numbers::pi * cutoff_hz);
  return 1.0 / (1.0 + tau / dt);
}

double rest_cutoff(double strength) {
  const double s = std::clamp(strength, 0.0, 1.0);
  return std::exp(std::log(8.0) + s * (std::log(0.2) - std::log(8.0)));
}

}  // namespace

OneEuroFilter::OneEuroFilter(double min_cutoff_hz, double beta, double d_cutoff_hz)
    : min_cutoff_(min_cutoff_hz), beta_(beta), d_cutoff_(d_cutoff_hz) {
  if (!(min_cutoff_hz > 0) || !(d_cutoff_hz > 0) || !(beta >= 0))
    throw AlignError("OneEuroFilter: cutoffs must be > 0 and beta >= 0");
}

double OneEuroFilter::filter(double x, double t, double speed_unit) {
  if (!initialised_) {
    initialised_ = true;
    x_ = x, dx_ = 0, t_ = t;
    samples_ = 1;
    return x;
  }
  // A repeated or backwards timestamp is treated as one frame at 30 fps rather than dividing by 0.
  const double dt = t > t_ ? t - t_ : 1.0 / 30.0;
  t_ = t;
  const double dx = (x - x_) / dt;
  // The second sample gives the first speed estimate outright: starting from 0 would make a face
  // that is already moving when it is first seen lag for several frames.
  dx_ = samples_ == 1 ? dx : dx_ + alpha(d_cutoff_, dt) * (dx - dx_);
  ++samples_;
  const double cutoff = min_cutoff_ + beta_ * std::abs(dx_) / speed_unit;
  x_ += alpha(cutoff, dt) * (x - x_);
  return x_;
}

PoseSmoother::PoseSmoother(const SmoothingOptions& options)
    : enabled_(options.strength > 0),
      x_(rest_cutoff(options.strength), options.beta, options.d_cutoff),
      y_(rest_cutoff(options.strength), options.beta, options.d_cutoff),
      log_side_(rest_cutoff(options.strength), options.beta, options.d_cutoff),
      angle_(rest_cutoff(options.strength), options.beta, options.d_cutoff) {}

void PoseSmoother::reset() {
  x_.reset(), y_.reset(), log_side_.reset(), angle_.reset();
  has_last_ = false;
}

CropPose PoseSmoother::filter(const CropPose& raw, double t) {
  if (!enabled_) return raw;
  // Unwrap so that a face turning through +-180 degrees does not spin the filter the long way.
  double angle = raw.angle_rad;
  if (has_last_) {
    angle = last_angle_ + std::remainder(raw.angle_rad - last_angle_, 2 * std::numbers::pi);
    const double jump = cv::norm(raw.center - last_raw_.center) / raw.side;
    if (jump > 0.5 || std::abs(std::log(raw.side / last_raw_.side)) > 0.4) reset();
  }
  has_last_ = true;
  last_raw_ = raw;
  last_angle_ = angle;
  CropPose out;
  out.center.x = x_.filter(raw.center.x, t, raw.side);
  out.center.y = y_.filter(raw.center.y, t, raw.side);
  out.side = std::exp(log_side_.filter(std::log(raw.side), t));
  out.angle_rad = angle_.filter(angle, t);
  return out;
}

namespace {

template <std::size_t... I>
std::array<OneEuroFilter, sizeof...(I)> make_filters(const SmoothingOptions& o, std::index_sequence<I...>) {
  return {((void)I, OneEuroFilter(rest_cutoff(o.strength), o.beta, o.d_cutoff))...};
}

}  // namespace

ShapeSmoother::ShapeSmoother(const SmoothingOptions& options)
    : enabled_(options.strength > 0),
      filters_(make_filters(options, std::make_index_sequence<2 * kNumLandmarks>())) {}

void ShapeSmoother::reset() {
  for (OneEuroFilter& f : filters_) f.reset();
  has_last_ = false;
}

Landmarks ShapeSmoother::filter(const Landmarks& raw, double t) {
  if (!enabled_) return raw;
  if (has_last_) {
    double jump = 0;
    for (int i = 0; i < kNumLandmarks; ++i) jump += cv::norm(raw[i] - last_raw_[i]);
    if (jump / kNumLandmarks > 0.25) reset();
  }
  has_last_ = true;
  last_raw_ = raw;
  Landmarks out;
  for (int i = 0; i < kNumLandmarks; ++i)
    out[i] = {filters_[2 * i].filter(raw[i].x, t), filters_[2 * i + 1].filter(raw[i].y, t)};
  return out;
}

}  // namespace starganv2::align
