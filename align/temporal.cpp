#include "align/temporal.h"

#include <algorithm>
#include <cmath>
#include <string>

#include <opencv2/imgproc.hpp>

#include "align/image.h"

namespace starganv2::align {

namespace {

void check_crop(const cv::Mat& m, const char* what) {
  if (m.empty() || m.type() != CV_8UC3 || m.rows != m.cols)
    throw AlignError(std::string("temporal: ") + what + " must be a square, non-empty 8-bit 3-channel crop");
}

// The flow is computed on the crops brought to 64 px whatever the model's size, at that full
// resolution (DIS's "finest scale" 0): what the stabiliser needs is the face's motion, which is
// smooth over the crop. Measured on Megamind.avi, 90 frames, temporal 0.85: a 32x32 field
// (finest scale 1) leaves more flicker (ratio 1.199 vs 1.166); DIS's variational refinement or
// its slower presets change nothing (1.164-1.165) and cost 2-4 times more; flow on the full
// 256 px crop costs ten times more.
constexpr int kFlowSize = 64;
constexpr int kFlowFinestScale = 0;

}  // namespace

TemporalStabiliser::TemporalStabiliser(TemporalOptions options) : options_(options) {
  if (!(options.strength >= 0 && options.strength < 1))
    throw AlignError("temporal: strength must be in [0, 1)");
  if (!(options.change_levels > 0)) throw AlignError("temporal: change_levels must be > 0");
  if (options.flow_patch_stride < 1 || options.flow_patch_stride > 8)
    throw AlignError("temporal: flow_patch_stride must be in [1, 8] (the flow's patches are 8 px)");
  // The ultrafast preset: the crops are small and the faces in them move little between frames
  // (the alignment already follows the face), so one patch iteration per scale is enough.
  dis_ = cv::DISOpticalFlow::create(cv::DISOpticalFlow::PRESET_ULTRAFAST);
  dis_->setFinestScale(kFlowFinestScale);
  dis_->setPatchStride(options.flow_patch_stride);
}

TemporalStabiliser::~TemporalStabiliser() = default;
TemporalStabiliser::TemporalStabiliser(TemporalStabiliser&&) noexcept = default;
TemporalStabiliser& TemporalStabiliser::operator=(TemporalStabiliser&&) noexcept = default;

cv::Mat TemporalStabiliser::stabilise(int id, const cv::Mat& aligned, const cv::Mat& translated, uint64_t style_key) {
  check_crop(aligned, "the aligned crop");
  check_crop(translated, "the translated crop");
  if (aligned.size() != translated.size()) throw AlignError("temporal: aligned and translated crops differ in size");
  if (!enabled()) return translated;

  const cv::Size size = aligned.size();
  cv::Mat gray, gray_f;
  cv::cvtColor(aligned, gray, cv::COLOR_BGR2GRAY);  // the channel order changes the weights, not the motion
  gray.convertTo(gray_f, CV_32F);
  cv::Mat out;
  translated.convertTo(out, CV_32FC3);

  auto it = history_.find(id);
  if (it != history_.end() && it->second.gray.size() == size && it->second.style_key == style_key) {
    History& h = it->second;
    // Where each pixel of this crop was in the last one.
    cv::Mat flow;
    if (size.width == kFlowSize) {
      dis_->calc(gray, h.gray, flow);
    } else {
      cv::Mat small, last_small, small_flow;
      cv::resize(gray, small, {kFlowSize, kFlowSize}, 0, 0, cv::INTER_AREA);
      cv::resize(h.gray, last_small, {kFlowSize, kFlowSize}, 0, 0, cv::INTER_AREA);
      dis_->calc(small, last_small, small_flow);
      cv::resize(small_flow, flow, size, 0, 0, cv::INTER_LINEAR);
      flow *= static_cast<double>(size.width) / kFlowSize;
    }
    cv::Mat map(size, CV_32FC2);
    cv::Mat inside(size, CV_8U);
    const float last = static_cast<float>(size.width - 1);
    for (int y = 0; y < size.height; ++y) {
      const auto* f = flow.ptr<cv::Vec2f>(y);
      auto* m = map.ptr<cv::Vec2f>(y);
      auto* in = inside.ptr<uint8_t>(y);
      for (int x = 0; x < size.width; ++x) {
        m[x] = {static_cast<float>(x) + f[x][0], static_cast<float>(y) + f[x][1]};
        in[x] = m[x][0] >= 0 && m[x][1] >= 0 && m[x][0] <= last && m[x][1] <= last;
      }
    }
    cv::Mat warped_gray, warped_out;
    cv::remap(h.gray_f, warped_gray, map, cv::noArray(), cv::INTER_LINEAR, cv::BORDER_REPLICATE);
    cv::remap(h.output, warped_out, map, cv::noArray(), cv::INTER_LINEAR, cv::BORDER_REPLICATE);
    // The input's change after the motion is taken out, over 3x3 pixels so that single noisy
    // pixels neither open nor close the gate.
    cv::Mat change;
    cv::absdiff(gray_f, warped_gray, change);
    cv::blur(change, change, cv::Size(3, 3), cv::Point(-1, -1), cv::BORDER_REPLICATE);

    const float strength = static_cast<float>(options_.strength);
    const float inv_levels = static_cast<float>(1.0 / options_.change_levels);
    for (int y = 0; y < size.height; ++y) {
      const auto* r = change.ptr<float>(y);
      const auto* in = inside.ptr<uint8_t>(y);
      const auto* w_out = warped_out.ptr<cv::Vec3f>(y);
      auto* o = out.ptr<cv::Vec3f>(y);
      for (int x = 0; x < size.width; ++x) {
        if (!in[x]) continue;
        const float w = strength * std::max(0.0f, 1.0f - r[x] * inv_levels);
        if (w > 0) o[x] += w * (w_out[x] - o[x]);
      }
    }
  }

  History& h = history_[id];
  h.gray = gray;
  h.gray_f = gray_f;
  h.output = out;
  h.style_key = style_key;
  cv::Mat shown;
  out.convertTo(shown, CV_8UC3);  // rounds to nearest
  return shown;
}

void TemporalStabiliser::end_frame(std::span<const int> seen) {
  std::erase_if(history_, [&](const auto& entry) { return std::ranges::find(seen, entry.first) == seen.end(); });
}

void TemporalStabiliser::reset() { history_.clear(); }

}  // namespace starganv2::align
