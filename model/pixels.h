// uint8 crops <-> the networks' float images, with the official arithmetic (ToTensor +
// Normalize(0.5, 0.5) on the way in, save_image's denormalise-and-round on the way out), shared by
// the translation step and the style encoder's reference path so the two cannot drift apart.
#pragma once

#include <ATen/ATen.h>

namespace starganv2 {

// u8: (N,H,W,3) uint8 interleaved, RGB or BGR, any device. Returns float32 (N,3,H,W) in [-1,1],
// RGB: a permuted view, i.e. channels-last strided (callers choose the layout they need).
inline at::Tensor u8_to_float(const at::Tensor& u8_nhwc, bool bgr) {
  const at::Tensor x = bgr ? u8_nhwc.flip({3}) : u8_nhwc;
  return x.permute({0, 3, 1, 2}).to(at::kFloat).div(255.0).sub(0.5).div(0.5);
}

// y: (N,3,H,W) float of any dtype -> (N,H,W,3) uint8 contiguous in the requested channel order:
// clamp((y+1)/2, 0, 1) * 255 + 0.5, truncated, computed in float32.
inline at::Tensor float_to_u8(const at::Tensor& y, bool bgr) {
  at::Tensor u = y.to(at::kFloat).add(1.0).div(2.0).clamp(0.0, 1.0).mul(255.0).add(0.5).to(at::kByte);
  u = u.permute({0, 2, 3, 1});
  if (bgr) u = u.flip({3});
  return u.contiguous();
}

}  // namespace starganv2
