#include "pil_resize.h"

#include <ATen/ATen.h>

#include <cmath>
#include <stdexcept>
#include <vector>

namespace starganv2 {

namespace {

// Pillow's Resample.c, 8 bits per channel: weights in fixed point with 22 fractional bits.
constexpr int kPrecisionBits = 32 - 8 - 2;

double bilinear_filter(double x) {
  if (x < 0.0) x = -x;
  if (x < 1.0) return 1.0 - x;
  return 0.0;
}

struct Coeffs {
  int ksize = 0;
  std::vector<int> bounds;  // per output pixel: first input index, count
  std::vector<int32_t> kk;  // per output pixel: ksize fixed-point weights
};

// precompute_coeffs + normalize_coeffs_8bpc for the bilinear filter (support 1) over the whole
// input (box 0..in_size).
Coeffs precompute(int in_size, int out_size) {
  const double scale = static_cast<double>(in_size) / out_size;
  const double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = 1.0 * filterscale;
  Coeffs c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.bounds.resize(2 * static_cast<size_t>(out_size));
  c.kk.assign(static_cast<size_t>(out_size) * c.ksize, 0);
  std::vector<double> k(c.ksize);
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      k[x] = bilinear_filter((x + xmin - center + 0.5) * ss);
      ww += k[x];
    }
    for (int x = 0; x < c.ksize; ++x) {
      const double w = x < xmax ? (ww != 0.0 ? k[x] / ww : k[x]) : 0.0;
      c.kk[static_cast<size_t>(xx) * c.ksize + x] =
          static_cast<int32_t>(w < 0 ? -0.5 + w * (1 << kPrecisionBits) : 0.5 + w * (1 << kPrecisionBits));
    }
    c.bounds[2 * xx] = xmin;
    c.bounds[2 * xx + 1] = xmax;
  }
  return c;
}

uint8_t clip8(int64_t in) {
  if (in >= (int64_t{1} << kPrecisionBits) << 8) return 255;
  if (in <= 0) return 0;
  return static_cast<uint8_t>(in >> kPrecisionBits);
}

// One pass along `axis` (1: columns of each row, horizontal; 0: rows, vertical) of an (H,W,C) image.
at::Tensor resample(const at::Tensor& in, int axis, int out_size) {
  const int h = static_cast<int>(in.size(0)), w = static_cast<int>(in.size(1)), ch = static_cast<int>(in.size(2));
  const Coeffs c = precompute(axis == 1 ? w : h, out_size);
  const int oh = axis == 1 ? h : out_size, ow = axis == 1 ? out_size : w;
  at::Tensor out = at::empty({oh, ow, ch}, at::kByte);
  const uint8_t* src = in.data_ptr<uint8_t>();
  uint8_t* dst = out.data_ptr<uint8_t>();
  // One thread: an image is small work (256 -> 299 px is ~1 ms), and an OpenMP region per pass
  // costs more than it saves when the loader runs beside the networks.
  for (int64_t y = 0; y < oh; ++y)
    for (int x = 0; x < ow; ++x) {
      const int o = axis == 1 ? x : static_cast<int>(y);
      const int first = c.bounds[2 * o], count = c.bounds[2 * o + 1];
      const int32_t* k = &c.kk[static_cast<size_t>(o) * c.ksize];
      for (int ci = 0; ci < ch; ++ci) {
        int64_t ss = int64_t{1} << (kPrecisionBits - 1);
        for (int i = 0; i < count; ++i) {
          const int64_t sy = axis == 1 ? y : first + i, sx = axis == 1 ? first + i : x;
          ss += static_cast<int64_t>(src[(sy * w + sx) * ch + ci]) * k[i];
        }
        dst[(y * ow + x) * ch + ci] = clip8(ss);
      }
    }
  return out;
}

}  // namespace

at::Tensor pil_resize_bilinear(const at::Tensor& image, int64_t out_h, int64_t out_w) {
  if (image.dim() != 3 || image.scalar_type() != at::kByte || image.size(2) < 1 || image.size(2) > 4 ||
      image.size(0) < 1 || image.size(1) < 1)
    throw std::invalid_argument("pil_resize_bilinear: expected an (H,W,C) uint8 image with 1 to 4 channels");
  if (out_h < 1 || out_w < 1 || out_h > (1 << 20) || out_w > (1 << 20))
    throw std::invalid_argument("pil_resize_bilinear: output size must be 1 to 2^20 pixels a side");
  at::Tensor x = image.to(at::kCPU).contiguous();
  if (out_h == x.size(0) && out_w == x.size(1)) return x.clone();
  // Pillow resizes horizontally first, then vertically, each pass only when that size changes;
  // the intermediate is rounded to 8 bits (ImagingResampleInner).
  if (out_w != x.size(1)) x = resample(x, 1, static_cast<int>(out_w));
  if (out_h != x.size(0)) x = resample(x, 0, static_cast<int>(out_h));
  return x;
}

at::Tensor eval_loader_tensor(const at::Tensor& image, int64_t img_size, bool imagenet_normalize) {
  if (image.dim() != 3 || image.size(2) != 3)
    throw std::invalid_argument("eval_loader_tensor: expected an (H,W,3) RGB image");
  at::Tensor x = pil_resize_bilinear(image, img_size, img_size);
  if (imagenet_normalize) x = pil_resize_bilinear(x, 299, 299);
  // ToTensor: uint8 -> float / 255; Normalize: (x - mean) / std with float32 constants.
  at::Tensor t = x.permute({2, 0, 1}).to(at::kFloat).div(255);
  at::Tensor mean, std;
  if (imagenet_normalize) {
    mean = at::tensor({0.485f, 0.456f, 0.406f});
    std = at::tensor({0.229f, 0.224f, 0.225f});
  } else {
    mean = at::tensor({0.5f, 0.5f, 0.5f});
    std = at::tensor({0.5f, 0.5f, 0.5f});
  }
  return t.sub(mean.view({3, 1, 1})).div(std.view({3, 1, 1})).contiguous();
}

at::Tensor saved_image_pixels(const at::Tensor& x) {
  at::Tensor d = ((x.to(at::kFloat) + 1) / 2).clamp(0, 1);
  return d.mul(255).add(0.5).clamp(0, 255).permute({0, 2, 3, 1}).to(at::kCPU, at::kByte).contiguous();
}

}  // namespace starganv2
