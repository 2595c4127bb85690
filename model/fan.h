// FAN: the 98-landmark face alignment network (hourglass with CoordConv) that StarGAN v2 uses
// for the generator's face masks (official core/wing.py FAN, get_heatmap, get_landmark).
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include "masks.h"

namespace starganv2 {

class FANImpl : public torch::nn::Module {
 public:
  static constexpr int64_t kNumLandmarks = 98;

  FANImpl();

  // x01: (N,3,256,256) in [0,1] -> raw heatmaps (N,99,64,64); channel 98 is the boundary map.
  torch::Tensor forward(const torch::Tensor& x01);

  // x: (N,3,H,W) in [-1,1] -> the 98 raw heatmaps (N,98,64,64) (official b_preprocess=False).
  torch::Tensor get_heatmap_raw(const torch::Tensor& x);
  // x: (N,3,H,W) in [-1,1] -> coarse and fine masks (N,1,256,256) with the official
  // preprocessing (truncate, normalise, per-part shifts and powers, sums, clamp).
  Masks get_heatmap(const torch::Tensor& x);
  // x: (N,3,H,W) in [-1,1] -> landmarks (N,98,2) as (x,y) in the pixels of a 256 input
  // scaled by H/64 (official get_landmark).
  torch::Tensor get_landmark(const torch::Tensor& x);

 private:
  struct Parts;  // conv1 (CoordConvTh), bn1, conv2..conv4, m0, top_m_0, conv_last0, bn_end0, l0
  std::shared_ptr<Parts> parts_;
};
TORCH_MODULE(FAN);

// The masks G gets for x, computed in float32 whatever G runs in: the preprocessing thresholds
// heatmaps at 0.1, min-max normalises them with eps 1e-6 and raises parts to powers up to 4,
// which in fp16 (10-bit mantissa, 6e-5 smallest normal) loses faint responses and rounds the
// normalisation, and the official masks are float32. Requires fan's weights in float32;
// x (N,3,H,W) in [-1,1] of any float dtype (converted to float32 first, a no-op when it is).
// Ensures coarse and fine masks (N,1,256,256) of dtype `out`, on x's device.
Masks fan_masks(FANImpl& fan, const torch::Tensor& x, torch::ScalarType out);

}  // namespace starganv2
