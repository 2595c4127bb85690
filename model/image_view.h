// Non-owning views of 8-bit interleaved images, so that callers holding mapped video frames or
// OpenCV matrices can hand pixels to model/ without model/ depending on either.
#pragma once

#include <cstdint>

namespace starganv2 {

// RGBx/BGRx: 4 bytes per pixel whose 4th byte (alpha or padding) is ignored on input and left
// untouched on output.
enum class PixelFormat { kRGB, kBGR, kRGBx, kBGRx };

constexpr int bytes_per_pixel(PixelFormat f) {
  return (f == PixelFormat::kRGB || f == PixelFormat::kBGR) ? 3 : 4;
}
constexpr bool is_bgr(PixelFormat f) { return f == PixelFormat::kBGR || f == PixelFormat::kBGRx; }

struct ImageView {
  const uint8_t* data = nullptr;
  int64_t width = 0;
  int64_t height = 0;
  int64_t row_stride = 0;  // bytes from one row to the next; >= width * bytes_per_pixel
  PixelFormat format = PixelFormat::kRGB;
};

struct MutableImageView {
  uint8_t* data = nullptr;
  int64_t width = 0;
  int64_t height = 0;
  int64_t row_stride = 0;
  PixelFormat format = PixelFormat::kRGB;
  operator ImageView() const { return {data, width, height, row_stride, format}; }
};

}  // namespace starganv2
