#include "align/flicker.h"

#include <cmath>
#include <limits>
#include <string>

#include <opencv2/imgproc.hpp>
#include <opencv2/video/tracking.hpp>

#include "align/image.h"

namespace starganv2::align {

namespace {

void check_pair_frame(const cv::Mat& m, cv::Size size, const char* what) {
  if (m.empty() || m.type() != CV_8UC3)
    throw AlignError(std::string("flicker: ") + what + " must be a non-empty 8-bit 3-channel (BGR) image");
  if (m.size() != size)
    throw AlignError(std::string("flicker: ") + what + " is " + std::to_string(m.cols) + "x" + std::to_string(m.rows) +
                     ", the first input frame " + std::to_string(size.width) + "x" + std::to_string(size.height));
}

// Dense flow from a to b (grey 8-bit) with DIS at its medium preset: the quality Lai et al.'s
// FlowNet2 is replaced by, at a few tens of milliseconds per 720x528 pair on one core.
cv::Mat dis_flow(const cv::Mat& a, const cv::Mat& b) {
  cv::Ptr<cv::DISOpticalFlow> dis = cv::DISOpticalFlow::create(cv::DISOpticalFlow::PRESET_MEDIUM);
  cv::Mat flow;
  dis->calc(a, b, flow);
  return flow;
}

// The frame as floats in [0, 1].
cv::Mat unit_float(const cv::Mat& bgr) {
  cv::Mat f;
  bgr.convertTo(f, CV_32FC3, 1.0 / 255.0);
  return f;
}

// 255 where any channel of a and b differs.
cv::Mat differs(const cv::Mat& a, const cv::Mat& b) {
  cv::Mat diff, out;
  cv::absdiff(a, b, diff);
  cv::transform(diff, out, cv::Matx13f(1, 1, 1));  // channel sum into one channel
  return out > 0;
}

}  // namespace

double FlickerPair::ratio() const {
  if (pixels <= 0 || !(input_error > 0)) return std::numeric_limits<double>::quiet_NaN();
  return output_error / input_error;
}

FlickerPair warping_error(const cv::Mat& input_t, const cv::Mat& input_t1, const cv::Mat& output_t,
                          const cv::Mat& output_t1, const FlickerOptions& options) {
  if (options.dilate_px < 0) throw AlignError("flicker: dilate_px must be >= 0");
  check_pair_frame(input_t, input_t.size(), "input frame t");
  const cv::Size size = input_t.size();
  check_pair_frame(input_t1, size, "input frame t+1");
  check_pair_frame(output_t, size, "output frame t");
  check_pair_frame(output_t1, size, "output frame t+1");

  cv::Mat gray_t, gray_t1;
  cv::cvtColor(input_t, gray_t, cv::COLOR_BGR2GRAY);
  cv::cvtColor(input_t1, gray_t1, cv::COLOR_BGR2GRAY);
  const cv::Mat forward = dis_flow(gray_t, gray_t1);   // t -> t+1, at frame t's pixels
  const cv::Mat backward = dis_flow(gray_t1, gray_t);  // t+1 -> t, at frame t+1's pixels

  // Where each pixel of frame t is in frame t+1.
  cv::Mat map(size, CV_32FC2);
  for (int y = 0; y < size.height; ++y) {
    const auto* f = forward.ptr<cv::Vec2f>(y);
    auto* m = map.ptr<cv::Vec2f>(y);
    for (int x = 0; x < size.width; ++x) m[x] = {static_cast<float>(x) + f[x][0], static_cast<float>(y) + f[x][1]};
  }
  cv::Mat backward_at;  // the backward flow where each pixel of t lands
  cv::remap(backward, backward_at, map, cv::noArray(), cv::INTER_LINEAR, cv::BORDER_REPLICATE);

  // Counted pixels: the round trip t -> t+1 -> t comes back (Ruder et al.'s check, as Lai et al.
  // use it), and the flow stays inside frame t+1.
  cv::Mat counted(size, CV_8UC1);
  const float max_x = static_cast<float>(size.width - 1), max_y = static_cast<float>(size.height - 1);
  for (int y = 0; y < size.height; ++y) {
    const auto* f = forward.ptr<cv::Vec2f>(y);
    const auto* b = backward_at.ptr<cv::Vec2f>(y);
    const auto* m = map.ptr<cv::Vec2f>(y);
    auto* c = counted.ptr<uchar>(y);
    for (int x = 0; x < size.width; ++x) {
      const float sx = f[x][0] + b[x][0], sy = f[x][1] + b[x][1];
      const float ff = f[x][0] * f[x][0] + f[x][1] * f[x][1], bb = b[x][0] * b[x][0] + b[x][1] * b[x][1];
      const bool consistent = sx * sx + sy * sy <= 0.01f * (ff + bb) + 0.5f;
      const bool inside = m[x][0] >= 0 && m[x][0] <= max_x && m[x][1] >= 0 && m[x][1] <= max_y;
      c[x] = consistent && inside ? 255 : 0;
    }
  }

  FlickerPair pair;
  if (options.region == FlickerOptions::Region::kChanged) {
    const cv::Mat changed_t1 = differs(output_t1, input_t1);
    cv::Mat changed_t1_at;  // the pixels changed in t+1, carried onto t by the same flow
    cv::remap(changed_t1, changed_t1_at, map, cv::noArray(), cv::INTER_NEAREST,
              cv::BORDER_CONSTANT, cv::Scalar(0));
    cv::Mat changed = differs(output_t, input_t) | changed_t1_at;
    pair.changed = cv::countNonZero(changed) > 0 || cv::countNonZero(changed_t1) > 0;
    if (options.dilate_px > 0) {
      const int k = 2 * options.dilate_px + 1;
      cv::dilate(changed, changed, cv::getStructuringElement(cv::MORPH_RECT, {k, k}));
    }
    counted &= changed;
  }

  pair.pixels = cv::countNonZero(counted);
  if (pair.pixels == 0) return pair;

  // Both videos' frame t+1 warped onto t with the one flow of the input, bilinear as Lai et al.
  const cv::Mat in_t = unit_float(input_t), out_t = unit_float(output_t);
  cv::Mat in_w, out_w;
  cv::remap(unit_float(input_t1), in_w, map, cv::noArray(), cv::INTER_LINEAR, cv::BORDER_REPLICATE);
  cv::remap(unit_float(output_t1), out_w, map, cv::noArray(), cv::INTER_LINEAR, cv::BORDER_REPLICATE);
  // Sums in double, pixel by pixel in a fixed order: the same frames give the same bits.
  double in_sum = 0, out_sum = 0;
  for (int y = 0; y < size.height; ++y) {
    const auto* c = counted.ptr<uchar>(y);
    const auto* a = in_t.ptr<cv::Vec3f>(y);
    const auto* aw = in_w.ptr<cv::Vec3f>(y);
    const auto* o = out_t.ptr<cv::Vec3f>(y);
    const auto* ow = out_w.ptr<cv::Vec3f>(y);
    for (int x = 0; x < size.width; ++x) {
      if (!c[x]) continue;
      for (int k = 0; k < 3; ++k) {
        const double di = static_cast<double>(a[x][k]) - aw[x][k];
        const double d_o = static_cast<double>(o[x][k]) - ow[x][k];
        in_sum += di * di;
        out_sum += d_o * d_o;
      }
    }
  }
  const double n = 3.0 * static_cast<double>(pair.pixels);
  pair.input_error = in_sum / n;
  pair.output_error = out_sum / n;
  return pair;
}

FlickerMeter::FlickerMeter(FlickerOptions options) : options_(options) {
  if (options_.dilate_px < 0) throw AlignError("flicker: dilate_px must be >= 0");
}

std::optional<FlickerPair> FlickerMeter::add(const cv::Mat& input, const cv::Mat& output) {
  const cv::Size size = last_input_.empty() ? input.size() : last_input_.size();
  check_pair_frame(input, size, "input frame");
  check_pair_frame(output, size, "output frame");
  std::optional<FlickerPair> pair;
  if (!last_input_.empty()) {
    pair = warping_error(last_input_, input, last_output_, output, options_);
    pair->frame = frames_ - 1;
    pairs_.push_back(*pair);
  }
  last_input_ = input.clone();
  last_output_ = output.clone();
  ++frames_;
  return pair;
}

FlickerSummary FlickerMeter::summary() const {
  FlickerSummary s;
  s.pairs = pairs_;
  for (const FlickerPair& p : pairs_) {
    if (p.pixels <= 0) continue;
    ++s.measured;
    s.input_error += p.input_error;
    s.output_error += p.output_error;
  }
  if (s.measured > 0) {
    s.input_error /= s.measured;
    s.output_error /= s.measured;
  }
  bool any_changed = false;
  for (const FlickerPair& p : pairs_) any_changed = any_changed || p.changed;
  s.unchanged = !pairs_.empty() && !any_changed;
  if (s.unchanged) s.ratio = 1.0;
  else if (s.input_error > 0) s.ratio = s.output_error / s.input_error;
  else s.ratio = std::numeric_limits<double>::quiet_NaN();
  return s;
}

}  // namespace starganv2::align
