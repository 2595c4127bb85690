// Temporal stabilisation of translated faces: each face's translated crop is pulled towards its
// previous output, carried along the face's own motion, wherever the input face did not change.
//
// StarGAN v2 translates every frame on its own, so small changes of the input crop (landmark
// noise the smoothing leaves, compression noise, lighting) come out as larger changes of the
// output: flicker. Smoothing the alignment cannot remove that, as it is the generator's answer to
// a slightly different picture. What can: the output of frame t-1 already shows this face in this
// style. Warped onto frame t along the motion of the *input* crops (dense optical flow between
// the aligned crops, OpenCV's DIS), it is what frame t should look like where nothing but motion
// happened. Each output pixel is then
//
//     S_t = T_t + w (warp(S_{t-1}) - T_t),   w = strength · max(0, 1 - r / change_levels)
//
// with T_t the per-frame translation and r the input's own change at that pixel after the same
// warp (|A_t - warp(A_{t-1})| in grey levels, A = the aligned input crop). Where the input face
// changed (a mouth opening, an eye closing, a turn that uncovers the far cheek, an occlusion, a
// cut to another face), r is large and w falls to 0: the output there is the per-frame one, so
// changes are shown at once instead of being smeared (no ghosting, no lag). Where the input only
// moved, the output moves with it and the generator's frame-to-frame noise is averaged over about
// (1 + w) / (1 - w) frames.
//
// Why this and not the alternatives (measured with the warping-error ratio of align/flicker.h on
// Megamind.avi, see README "Steady faces"): blending with the previous output *without* motion
// compensation (a plain running average) ghosts as soon as the face moves; smoothing the
// landmarks harder (the element's `smoothing`) delays the framing and leaves the generator's
// noise alone. The photometric test r stands in for Ruder et al.'s forward-backward flow check:
// a pixel whose flow is wrong (occluded, disoccluded) shows up as a large input change after the
// warp, and one flow per face instead of two halves the cost.
//
// What it cannot remove: a translation that moves *differently* from the face, frame after frame
// (a model whose output keeps a pattern fixed to the crop while the face moves through the crop,
// as the demo model's upsampling grid does while the smoothed framing lags a moving face). That
// change is systematic, not noise: any blend with the past follows it with a lag rather than
// averaging it away. Measured on the synthetic clip of `starganv2-eval temporal --synthetic`
// (demo model, 7 December 2026): the pipeline alone (the aligned crop put back instead of a
// translation) scores 0.67, stabilised 0.58; the demo model 1.24, stabilised 0.77, and 0.73 /
// 0.59 when the framing does not lag (smoothing 0). (Before weak detections waited for a second
// look, a badge on the suit flashed as a translated face for single frames and the model scored
// 2.94 / 2.51: each flash was a new face, which starts without a history and is rightly shown as
// it is.)
#pragma once

#include <cstdint>
#include <map>
#include <span>

#include <opencv2/core.hpp>
#include <opencv2/video/tracking.hpp>

namespace starganv2::align {

struct TemporalOptions {
  // The most weight the carried previous output gets (w above), in [0, 1); 0 = off: the output
  // is the per-frame translation, bit for bit.
  double strength = 0.0;
  // The input change, in grey levels (0-255) after the motion is taken out, at which the previous
  // output stops counting. Below it the weight falls linearly from `strength`. Compression noise
  // is a few levels; a mouth opening or a cut is tens.
  double change_levels = 16.0;
  // The step between DIS's patches at the flow's finest scale, in pixels (1-8; the patches are
  // 8 px): what the flow costs. kFileFlowPatchStride (4, DIS's ultrafast default) where the output
  // should flicker least; kLiveFlowPatchStride (8, patches side by side) where a frame budget
  // counts. Measured on Megamind.avi, demo model, temporal 0.7 (`starganv2-eval temporal`): stride
  // 4 gives a flicker ratio of 1.176 for 0.87 ms per face, 6 gives 1.192 for 0.57 ms, 8 gives 1.212
  // for 0.44 ms (off: 1.481), so 8 still removes more than half of the flicker added.
  int flow_patch_stride = kFileFlowPatchStride;
  static constexpr int kFileFlowPatchStride = 4;
  static constexpr int kLiveFlowPatchStride = 8;
};

class TemporalStabiliser {
 public:
  // Throws AlignError for options outside their ranges.
  explicit TemporalStabiliser(TemporalOptions options = {});
  ~TemporalStabiliser();
  TemporalStabiliser(TemporalStabiliser&&) noexcept;
  TemporalStabiliser& operator=(TemporalStabiliser&&) noexcept;

  const TemporalOptions& options() const { return options_; }
  bool enabled() const { return options_.strength > 0; }

  // Face `id` of the current frame: `aligned` is its aligned input crop, `translated` the
  // per-frame translation of it (both CV_8UC3 of one size, any channel order, the same every
  // frame). Returns the crop to show (a new CV_8UC3 image; `translated` itself when off or when
  // the face has no usable history). The history restarts (the output is `translated`) when the
  // face is new, its crop size changed, or `style_key` differs from its last one: a new style is
  // shown at once, not blended in. Throws AlignError for bad crops. Deterministic: the same calls
  // give the same bytes.
  cv::Mat stabilise(int id, const cv::Mat& aligned, const cv::Mat& translated, uint64_t style_key = 0);
  // Ends a frame: forgets every face whose id is not in `seen` (a face that left, or a lost
  // track: when it comes back it starts afresh).
  void end_frame(std::span<const int> seen);
  // Forgets every face (a seek, a flush, a new stream).
  void reset();
  int faces() const { return static_cast<int>(history_.size()); }

 private:
  struct History {
    cv::Mat gray;    // the aligned input crop, grey: what the flow is computed on
    cv::Mat gray_f;  // the same in float: what is warped to measure the input's change
    cv::Mat output;  // what was shown, CV_32FC3 (kept in float so that the recursion does not
                     // pile up rounding)
    uint64_t style_key = 0;
  };
  TemporalOptions options_;
  cv::Ptr<cv::DISOpticalFlow> dis_;
  std::map<int, History> history_;
};

}  // namespace starganv2::align
