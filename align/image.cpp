#include "align/image.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include <opencv2/imgproc.hpp>

namespace starganv2::align {

int channels(PixelFormat format) {
  return format == PixelFormat::kBGR || format == PixelFormat::kRGB ? 3 : 4;
}

const char* to_string(PixelFormat format) {
  switch (format) {
    case PixelFormat::kBGR: return "BGR";
    case PixelFormat::kRGB: return "RGB";
    case PixelFormat::kBGRx: return "BGRx";
    case PixelFormat::kRGBx: return "RGBx";
    case PixelFormat::kxRGB: return "xRGB";
    case PixelFormat::kxBGR: return "xBGR";
  }
  return "?";
}

ChannelIndex channel_index(PixelFormat format) {
  switch (format) {
    case PixelFormat::kBGR:
    case PixelFormat::kBGRx: return {2, 1, 0};
    case PixelFormat::kRGB:
    case PixelFormat::kRGBx: return {0, 1, 2};
    case PixelFormat::kxRGB: return {1, 2, 3};
    case PixelFormat::kxBGR: return {3, 2, 1};
  }
  return {0, 1, 2};
}

void check_frame(const cv::Mat& frame, PixelFormat format, const char* what) {
  if (frame.empty()) return;
  const std::string name = what;
  if (frame.dims != 2)
    throw AlignError(name + ": expected a 2-D image, got " + std::to_string(frame.dims) + " dimensions");
  if (frame.depth() != CV_8U)
    throw AlignError(name + ": expected 8-bit pixels, got OpenCV depth " + std::to_string(frame.depth()));
  if (frame.channels() != channels(format))
    throw AlignError(name + ": has " + std::to_string(frame.channels()) + " channel(s) but pixel format " +
                     to_string(format) + " needs " + std::to_string(channels(format)) +
                     (frame.channels() == 1 ? " (greyscale frames are not supported)" : ""));
  if (frame.cols > kMaxFrameSide || frame.rows > kMaxFrameSide)
    throw AlignError(name + ": " + std::to_string(frame.cols) + "x" + std::to_string(frame.rows) +
                     " is larger than the supported " + std::to_string(kMaxFrameSide) + " px per side");
}

cv::Mat to_gray(const cv::Mat& frame, PixelFormat format) {
  cv::Mat gray;
  switch (format) {
    case PixelFormat::kBGR: cv::cvtColor(frame, gray, cv::COLOR_BGR2GRAY); return gray;
    case PixelFormat::kRGB: cv::cvtColor(frame, gray, cv::COLOR_RGB2GRAY); return gray;
    case PixelFormat::kBGRx: cv::cvtColor(frame, gray, cv::COLOR_BGRA2GRAY); return gray;
    case PixelFormat::kRGBx: cv::cvtColor(frame, gray, cv::COLOR_RGBA2GRAY); return gray;
    case PixelFormat::kxRGB:
    case PixelFormat::kxBGR: break;
  }
  // No cvtColor code reads alpha-first pixels. Reordering first keeps the result bit-identical to
  // the other formats (cvtColor's fixed-point weights), so a face fits the same in every format.
  cv::cvtColor(to_three_channels(frame, format, PixelFormat::kBGR), gray, cv::COLOR_BGR2GRAY);
  return gray;
}

cv::Mat to_three_channels(const cv::Mat& src, PixelFormat from, PixelFormat to) {
  const ChannelIndex s = channel_index(from);
  const ChannelIndex d = channel_index(to);
  if (channels(from) == 3 && s.r == d.r && s.g == d.g && s.b == d.b) return src;
  cv::Mat dst(src.size(), CV_8UC3);
  const int pairs[] = {s.r, d.r, s.g, d.g, s.b, d.b};
  cv::mixChannels(&src, 1, &dst, 1, pairs, 3);
  return dst;
}

cv::Matx23d invert_affine(const cv::Matx23d& M) {
  cv::Matx23d inv;
  cv::invertAffineTransform(M, inv);
  return inv;
}

cv::Matx23d compose(const cv::Matx23d& a, const cv::Matx23d& b) {
  cv::Matx23d r;
  for (int i = 0; i < 2; ++i) {
    for (int j = 0; j < 2; ++j) r(i, j) = a(i, 0) * b(0, j) + a(i, 1) * b(1, j);
    r(i, 2) = a(i, 0) * b(0, 2) + a(i, 1) * b(1, 2) + a(i, 2);
  }
  return r;
}

namespace {

// Inclusive pixel range of one axis of src that the output reads, widened so that mirrored
// samples past an edge still come from pixels inside the range.
bool footprint(double lo, double hi, int n, int border, int& first, int& last) {
  if (border == cv::BORDER_REFLECT_101 || border == cv::BORDER_REFLECT) {
    const double a = hi > n - 1 ? std::min(lo, 2.0 * (n - 1) - hi) : lo;
    const double b = lo < 0 ? std::max(hi, -lo) : hi;
    lo = a;
    hi = b;
  } else if (border == cv::BORDER_CONSTANT || border == cv::BORDER_TRANSPARENT) {
    if (hi < 0 || lo > n - 1) return false;
  }
  first = static_cast<int>(std::clamp(std::floor(lo), 0.0, n - 1.0));
  last = static_cast<int>(std::clamp(std::ceil(hi), 0.0, n - 1.0));
  return true;
}

// The part of a src-sized image that warping by M into dsize reads (with the margin bilinear
// sampling and area averaging need, and the mirrored ranges past an edge). False when none of
// it is read (a constant border outside). `scale` is output px per source px.
bool source_region(cv::Size src, const cv::Matx23d& M, cv::Size dsize, int border, cv::Rect& roi, double& scale) {
  if (src.empty() || dsize.width <= 0 || dsize.height <= 0) throw AlignError("warp_affine: empty source or output size");
  const double det = M(0, 0) * M(1, 1) - M(0, 1) * M(1, 0);
  if (!std::isfinite(det) || std::abs(det) < 1e-12) throw AlignError("warp_affine: singular transform");
  scale = std::sqrt(std::abs(det));

  const cv::Matx23d inv = invert_affine(M);
  double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
  for (const cv::Point2d c : {cv::Point2d(-0.5, -0.5), cv::Point2d(dsize.width - 0.5, -0.5),
                              cv::Point2d(-0.5, dsize.height - 0.5),
                              cv::Point2d(dsize.width - 0.5, dsize.height - 0.5)}) {
    const cv::Point2d p = apply(inv, c);
    x0 = std::min(x0, p.x), x1 = std::max(x1, p.x);
    y0 = std::min(y0, p.y), y1 = std::max(y1, p.y);
  }
  if (!std::isfinite(x0 + x1 + y0 + y1)) throw AlignError("warp_affine: transform is not finite");
  const double margin = 2.0 + (scale < 1.0 ? 1.0 / scale : 0.0);
  int ix0, ix1, iy0, iy1;
  if (!footprint(x0 - margin, x1 + margin, src.width, border, ix0, ix1) ||
      !footprint(y0 - margin, y1 + margin, src.height, border, iy0, iy1))
    return false;
  roi = cv::Rect(ix0, iy0, ix1 - ix0 + 1, iy1 - iy0 + 1);
  return true;
}

// The side of the blocks warp_affine averages before a warp that shrinks by `scale` (output px per
// source px): 1 (none) from 0.8 up.
int area_block(double scale) { return scale < 0.8 ? static_cast<int>(std::ceil(0.8 / scale)) : 1; }

// What a warp by M into dsize reads of a src-sized image, as whole k x k blocks: `blocks` (sides
// multiples of k) is averaged down by k before the bilinear warp, and `to_src` maps a pixel of
// the averaged image to src pixels. False when nothing of src is read (a constant border).
//
// Below a scale of 0.8 bilinear sampling starts to skip source pixels, so they are averaged
// first, over whole blocks, k chosen so that the warp left to do shrinks by 0.8 at most: whole
// blocks read each pixel once, where a fractional area resize costs three to four times as much
// (the landmark fit and the crops of a large face in a 1080p frame run this on every frame). The
// blocks tile the region from its corner; when k does not divide it, the region grows by less than
// k pixels (or loses them past the frame's edge).
bool plan_warp(cv::Size src, const cv::Matx23d& M, cv::Size dsize, int border, cv::Rect& blocks, int& k,
               cv::Matx23d& to_src) {
  cv::Rect region;
  double scale = 1;
  if (!source_region(src, M, dsize, border, region, scale)) return false;
  k = std::min({area_block(scale), region.width, region.height});
  const auto fit_blocks = [k](int start, int length, int limit, int& out_start, int& out_length) {
    out_length = (length + k - 1) / k * k;
    out_start = start;
    if (out_start + out_length > limit) out_start = std::max(0, limit - out_length);
    if (out_start + out_length > limit) out_length = (limit - out_start) / k * k;
  };
  fit_blocks(region.x, region.width, src.width, blocks.x, blocks.width);
  fit_blocks(region.y, region.height, src.height, blocks.y, blocks.height);
  // Block u covers source pixels k*u .. k*u + k - 1: its centre is k*u + (k - 1) / 2.
  to_src = cv::Matx23d(k, 0, blocks.x + 0.5 * (k - 1), 0, k, blocks.y + 0.5 * (k - 1));
  return true;
}

// acc[i] (= or +=) the sum of rows[0..M)[i]: up to four rows added in one pass over the row of
// sums, which halves the time of adding them one by one (each pass loads and stores every sum).
template <int M, typename Sum>
void add_rows(const uchar* const* rows, int n, bool first, Sum* acc) {
  const uchar* r0 = rows[0];
  const uchar* r1 = M > 1 ? rows[1] : nullptr;
  const uchar* r2 = M > 2 ? rows[2] : nullptr;
  const uchar* r3 = M > 3 ? rows[3] : nullptr;
  const auto sum = [&](int i) {
    Sum t = r0[i];
    if constexpr (M > 1) t += r1[i];
    if constexpr (M > 2) t += r2[i];
    if constexpr (M > 3) t += r3[i];
    return t;
  };
  if (first)
    for (int i = 0; i < n; ++i) acc[i] = sum(i);
  else
    for (int i = 0; i < n; ++i) acc[i] += sum(i);
}

// The sums of src's k x k blocks, per channel, as a 16-bit image while k * k * 255 fits (k <= 16),
// else 32-bit. Two steps that each read memory in order: k rows are added byte by byte into one
// row of sums (up to four rows per pass, in plain loops the compiler turns into vector additions),
// then k neighbouring pixels of that row. For 3 and 4 channels a pixel's 16-bit sums sit in one
// 64-bit word and are added together (no lane can carry into the next: each stays
// <= k * k * 255 < 2^16). OpenCV's integer INTER_AREA instead adds every block pixel by pixel for
// k > 2, several times slower.
template <typename Sum, int CN>
cv::Mat block_sums(const cv::Mat& src, int k) {
  const int out_w = src.cols / k, out_h = src.rows / k;
  const int n = src.cols * CN;
  cv::Mat sums(out_h, out_w, CV_MAKETYPE(cv::DataType<Sum>::depth, CN));
  std::vector<Sum> row(static_cast<std::size_t>(n) + 4);  // + 4: the last pixel's 64-bit read
  constexpr bool kWords = (CN == 3 || CN == 4) && std::is_same_v<Sum, std::uint16_t> &&
                          std::endian::native == std::endian::little;
  for (int v = 0; v < out_h; ++v) {
    Sum* acc = row.data();
    for (int r = 0; r < k;) {
      const int m = std::min(4, k - r);
      const uchar* rows[4] = {};
      for (int j = 0; j < m; ++j) rows[j] = src.ptr<uchar>(v * k + r + j);
      const bool first = r == 0;
      switch (m) {
        case 1: add_rows<1>(rows, n, first, acc); break;
        case 2: add_rows<2>(rows, n, first, acc); break;
        case 3: add_rows<3>(rows, n, first, acc); break;
        default: add_rows<4>(rows, n, first, acc); break;
      }
      r += m;
    }
    Sum* out = sums.ptr<Sum>(v);
    for (int u = 0; u < out_w; ++u, out += CN) {
      const Sum* a = acc + static_cast<std::ptrdiff_t>(u) * k * CN;
      if constexpr (kWords) {
        std::uint64_t t = 0;
        for (int j = 0; j < k; ++j) {
          std::uint64_t w;
          std::memcpy(&w, a + CN * j, sizeof w);
          t += w;  // for 3 channels the 4th lane collects the next pixel's first channel: dropped
        }
        std::memcpy(out, &t, CN * sizeof(Sum));
      } else {
        for (int c = 0; c < CN; ++c) {
          Sum total = 0;
          for (int j = 0; j < k; ++j) total += a[j * CN + c];
          out[c] = total;
        }
      }
    }
  }
  return sums;
}

template <typename Sum>
cv::Mat block_sums(const cv::Mat& src, int k) {
  switch (src.channels()) {
    case 1: return block_sums<Sum, 1>(src, k);
    case 2: return block_sums<Sum, 2>(src, k);
    case 3: return block_sums<Sum, 3>(src, k);
    case 4: return block_sums<Sum, 4>(src, k);
  }
  throw AlignError("block_mean: 1 to 4 channels, got " + std::to_string(src.channels()));
}

}  // namespace

void block_mean(const cv::Mat& src, int k, cv::Mat& dst) {
  if (src.depth() != CV_8U || src.dims != 2) throw AlignError("block_mean: needs an 8-bit image");
  if (k < 1 || k > src.cols || k > src.rows) throw AlignError("block_mean: block side out of range");
  const cv::Rect tiled(0, 0, src.cols / k * k, src.rows / k * k);
  // OpenCV's own halving is vectorised and faster than the general path here.
  if (k <= 2) return cv::resize(src(tiled), dst, {tiled.width / k, tiled.height / k}, 0, 0, cv::INTER_AREA);
  const cv::Mat sums = k <= 16 ? block_sums<std::uint16_t>(src, k) : block_sums<std::int32_t>(src, k);
  sums.convertTo(dst, CV_8U, 1.0 / (k * k));  // rounded, vectorised
}

cv::Mat block_mean_gray(const cv::Mat& frame, PixelFormat format, int k) {
  check_frame(frame, format);
  cv::Mat means;
  block_mean(frame, k, means);
  return to_gray(means, format);
}

void warp_affine(const cv::Mat& src, cv::Mat& dst, const cv::Matx23d& M, cv::Size dsize, int border,
                 const cv::Scalar& border_value) {
  cv::Rect blocks;
  int k = 1;
  cv::Matx23d to_src;
  if (!plan_warp(src.size(), M, dsize, border, blocks, k, to_src)) {
    if (border == cv::BORDER_TRANSPARENT) return;  // nothing of src lands in dst
    dst.create(dsize, src.type());
    dst.setTo(border_value);
    return;
  }
  cv::Mat input;
  if (k > 1) block_mean(src(blocks), k, input);
  else input = src(blocks);
  cv::warpAffine(input, dst, compose(M, to_src), dsize, cv::INTER_LINEAR, border, border_value);
}

cv::Mat warp_gray(const cv::Mat& frame, PixelFormat format, const cv::Matx23d& M, cv::Size dsize, int border) {
  if (border == cv::BORDER_CONSTANT || border == cv::BORDER_TRANSPARENT)
    throw AlignError("warp_gray: needs a border mode that repeats the frame");
  cv::Rect blocks;
  int k = 1;
  cv::Matx23d to_src;
  plan_warp(frame.size(), M, dsize, border, blocks, k, to_src);
  // Grey straight from the frame's blocks: one pass over the region, no full-size grey copy.
  const cv::Mat input = k > 1 ? block_mean_gray(frame(blocks), format, k) : to_gray(frame(blocks), format);
  cv::Mat out;
  cv::warpAffine(input, out, compose(M, to_src), dsize, cv::INTER_LINEAR, border);
  return out;
}

}  // namespace starganv2::align
