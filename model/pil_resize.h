// The image preprocessing of the official evaluation (clovaai/stargan-v2 core/data_loader.py
// get_eval_loader): torchvision's Resize on PIL images, which is Pillow's bilinear resampling
// (an antialiasing triangle filter scaled by the reduction factor, 8-bit fixed-point weights, a
// horizontal pass rounded to 8 bits, then a vertical pass), ToTensor and Normalize. Reproduced
// here bit for bit on uint8 tensors, so that FID sees the same pixels as the official loader;
// OpenCV's resize filters differ (INTER_LINEAR does not antialias, INTER_AREA is a box filter).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace starganv2 {

// image: (H,W,C) uint8 CPU, C in 1..4 -> (out_h,out_w,C) uint8, as Pillow's
// Image.resize((out_w, out_h), Image.BILINEAR) computes it (a copy when the size is unchanged).
// Requires out_h, out_w >= 1; throws std::invalid_argument otherwise or for another layout.
at::Tensor pil_resize_bilinear(const at::Tensor& image, int64_t out_h, int64_t out_w);

// The official eval loader's tensor of one RGB image ((H,W,3) uint8): Resize([img_size, img_size]),
// then with imagenet_normalize Resize([299, 299]) and Normalize(ImageNet mean, std) — the FID
// input —, else Normalize(0.5, 0.5) to [-1,1] — the generator's input. Returns (3,h,w) float32.
at::Tensor eval_loader_tensor(const at::Tensor& image, int64_t img_size, bool imagenet_normalize);

// The official utils.save_image's pixels of a generator output: (x + 1) / 2 clamped to [0,1],
// then * 255 + 0.5 clamped to [0,255] and truncated to uint8. x: (N,3,H,W) float -> (N,H,W,3)
// uint8 CPU (what the official writes as PNG and reads back for FID).
at::Tensor saved_image_pixels(const at::Tensor& x);

}  // namespace starganv2
