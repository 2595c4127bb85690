#include "align/compositor.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <vector>

#include <opencv2/core/hal/intrin.hpp>
#include <opencv2/imgproc.hpp>

namespace starganv2::align {

namespace {

// The face region on the template, in crop pixels: the jaw line (points 0-16) closed by the
// eyebrows (17-26) lifted by 0.8 of the brow-to-nose-base height, which reaches about the
// hairline, so the translated forehead comes along with the face.
std::vector<cv::Point> face_polygon(int crop_size, double margin) {
  const auto& t = canonical_template();
  const auto mean_y = [&](int first, int last) {
    double y = 0;
    for (int i = first; i <= last; ++i) y += t[i].y;
    return y / (last - first + 1);
  };
  const double lift = 0.8 * (mean_y(31, 35) - mean_y(17, 26));
  std::vector<cv::Point2f> points;
  for (int i = 0; i <= 16; ++i) points.emplace_back(t[i].x, t[i].y);
  for (int i = 17; i <= 26; ++i) points.emplace_back(t[i].x, t[i].y - lift);
  std::vector<cv::Point2f> hull;
  cv::convexHull(points, hull);
  // Grow or shrink about the centroid by `margin` crop widths.
  cv::Point2f c(0, 0);
  for (const auto& p : hull) c += p;
  c *= 1.0f / hull.size();
  std::vector<cv::Point> out;
  for (const auto& p : hull) {
    const cv::Point2f d = p - c;
    const float len = std::max(1e-6f, std::hypot(d.x, d.y));
    const cv::Point2f q = p + d * static_cast<float>(margin / len);
    out.emplace_back(cvRound(q.x * crop_size - 0.5), cvRound(q.y * crop_size - 0.5));
  }
  return out;
}

// The full-strength blend of crop value c over frame value f with mask a (0..255), in integers:
// (255 - a) f + a c, divided by 255 and rounded. The float blend f + a/255 (c - f) rounds to the
// same byte in every case: the exact value is a multiple of 1/255, never within float error of a
// half. a = 0 gives f and a = 255 gives c exactly.
inline uchar blend_pixel(uchar f, uchar c, uchar a) {
  const unsigned x = (255u - a) * f + static_cast<unsigned>(a) * c + 128u;
  return static_cast<uchar>((x + (x >> 8)) >> 8);  // x / 255 rounded, for x < 2^16
}

#if CV_SIMD128
cv::v_uint16x8 blend_half(const cv::v_uint16x8& f, const cv::v_uint16x8& c, const cv::v_uint16x8& a) {
  const cv::v_uint16x8 x = cv::v_mul_wrap(cv::v_setall_u16(255) - a, f) + cv::v_mul_wrap(a, c) + cv::v_setall_u16(128);
  return (x + (x >> 8)) >> 8;  // no sum exceeds 65407: the adds never saturate
}

cv::v_uint8x16 blend_16(const cv::v_uint8x16& f, const cv::v_uint8x16& c, const cv::v_uint8x16& a) {
  cv::v_uint16x8 f0, f1, c0, c1, a0, a1;
  cv::v_expand(f, f0, f1);
  cv::v_expand(c, c0, c1);
  cv::v_expand(a, a0, a1);
  return cv::v_pack(blend_half(f0, c0, a0), blend_half(f1, c1, a1));
}

// 16 pixels of `fn` channels: colour channel fi[k] of the frame takes crop channel ci[k] of `c`
// (4 channels, the 4th the warped mask). Only blocks the mask covers entirely are done here, so
// that no pixel outside the mask is ever written; the rest go pixel by pixel.
template <int FN>
bool blend_block(uchar* f, const uchar* c, const std::array<int, 3>& fi, const std::array<int, 3>& ci) {
  cv::v_uint8x16 w[4], p[4];
  cv::v_load_deinterleave(c, w[0], w[1], w[2], w[3]);
  if (cv::v_check_any(w[3] == cv::v_setzero_u8())) return false;
  if constexpr (FN == 4) cv::v_load_deinterleave(f, p[0], p[1], p[2], p[3]);
  else cv::v_load_deinterleave(f, p[0], p[1], p[2]);
  for (int k = 0; k < 3; ++k) p[fi[k]] = blend_16(p[fi[k]], w[ci[k]], w[3]);
  if constexpr (FN == 4) cv::v_store_interleave(f, p[0], p[1], p[2], p[3]);
  else cv::v_store_interleave(f, p[0], p[1], p[2]);
  return true;
}
#endif

// One row of the full-strength blend: `width` frame pixels of `fn` channels at `f`, the warped
// crop and mask at `c`. Pixels where the mask is 0 are not written.
void blend_row(uchar* f, int fn, const uchar* c, int width, const std::array<int, 3>& fi,
               const std::array<int, 3>& ci) {
  int x = 0;
#if CV_SIMD128
  for (; x + 16 <= width; x += 16) {
    const uchar* cb = c + 4 * x;
    uchar* fb = f + fn * x;
    // Outside the mask, as most of a row's ends are: nothing to do.
    if (cv::v_check_all(cv::v_load(cb) == cv::v_setzero_u8()) &&
        cv::v_check_all(cv::v_load(cb + 16) == cv::v_setzero_u8()) &&
        cv::v_check_all(cv::v_load(cb + 32) == cv::v_setzero_u8()) &&
        cv::v_check_all(cv::v_load(cb + 48) == cv::v_setzero_u8()))
      continue;
    if (fn == 4 ? blend_block<4>(fb, cb, fi, ci) : blend_block<3>(fb, cb, fi, ci)) continue;
    for (int i = 0; i < 16; ++i) {
      const uchar a = cb[4 * i + 3];
      if (a == 0) continue;
      for (int k = 0; k < 3; ++k) fb[fn * i + fi[k]] = blend_pixel(fb[fn * i + fi[k]], cb[4 * i + ci[k]], a);
    }
  }
#endif
  for (; x < width; ++x) {
    const uchar* cp = c + 4 * x;
    const uchar a = cp[3];
    if (a == 0) continue;
    for (int k = 0; k < 3; ++k) f[fn * x + fi[k]] = blend_pixel(f[fn * x + fi[k]], cp[ci[k]], a);
  }
}

}  // namespace

Compositor::Compositor(int crop_size, PixelFormat crop_format, CompositorOptions options)
    : crop_size_(crop_size), crop_format_(crop_format), options_(options) {
  if (crop_size < 8 || crop_size > 4096) throw AlignError("Compositor: crop size must be 8..4096");
  if (crop_format != PixelFormat::kRGB && crop_format != PixelFormat::kBGR)
    throw AlignError("Compositor: crop format must be RGB or BGR");
  if (!(options.feather >= 0 && options.feather <= 0.5)) throw AlignError("CompositorOptions: feather must be in [0, 0.5]");
  if (!(std::abs(options.margin) <= 0.25)) throw AlignError("CompositorOptions: margin must be in [-0.25, 0.25]");

  cv::Mat inside = cv::Mat::zeros(crop_size, crop_size, CV_8U);
  const std::vector<cv::Point> polygon = face_polygon(crop_size, options.margin);
  cv::fillConvexPoly(inside, polygon, cv::Scalar(255), cv::LINE_8);
  // The crop border stays outside, so the region never ends in a hard edge at the crop's side.
  cv::rectangle(inside, {0, 0, crop_size, crop_size}, cv::Scalar(0), 1);
  cv::Mat distance;
  cv::distanceTransform(inside, distance, cv::DIST_L2, cv::DIST_MASK_PRECISE);
  // Smoothstep over the feather width: no kink where the ramp meets the flat inside.
  const float width = static_cast<float>(std::max(1.0, options.feather * crop_size));
  mask_.create(crop_size, crop_size, CV_32F);
  for (int y = 0; y < crop_size; ++y) {
    const float* d = distance.ptr<float>(y);
    float* m = mask_.ptr<float>(y);
    for (int x = 0; x < crop_size; ++x) {
      const float u = std::min(1.0f, d[x] / width);
      m[x] = u * u * (3.0f - 2.0f * u);
    }
  }
  mask_bounds_ = cv::boundingRect(inside);
  mask_.convertTo(mask8_, CV_8U, 255.0);
}

void Compositor::composite(cv::Mat& frame, PixelFormat format, std::span<const Face> faces,
                           double strength) const {
  for (const Face& f : faces) composite(frame, format, f.crop, f.inverse, strength);
}

void Compositor::composite(cv::Mat& frame, PixelFormat format, const cv::Mat& crop,
                           const cv::Matx23d& inverse, double strength) const {
  check_frame(frame, format);
  if (!(strength >= 0.0 && strength <= 1.0))
    throw AlignError("Compositor: strength must be in [0, 1], got " + std::to_string(strength));
  if (frame.empty()) throw AlignError("Compositor: empty frame");
  if (crop.type() != CV_8UC3 || crop.rows != crop_size_ || crop.cols != crop_size_)
    throw AlignError("Compositor: the crop must be " + std::to_string(crop_size_) + "x" + std::to_string(crop_size_) +
                     " 8-bit 3-channel, got " + std::to_string(crop.cols) + "x" + std::to_string(crop.rows) +
                     " with " + std::to_string(crop.channels()) + " channel(s)");
  for (int i = 0; i < 6; ++i)
    if (!std::isfinite(inverse.val[i])) throw AlignError("Compositor: transform is not finite");
  // Strength 0 writes nothing, so the frame stays bit-exact (as where the mask is 0).
  if (mask_bounds_.area() == 0 || strength == 0.0) return;

  // Frame region the mask can reach.
  double x0 = 1e300, y0 = 1e300, x1 = -1e300, y1 = -1e300;
  const cv::Rect& b = mask_bounds_;
  for (const cv::Point2d c : {cv::Point2d(b.x - 1, b.y - 1), cv::Point2d(b.x + b.width, b.y - 1),
                              cv::Point2d(b.x - 1, b.y + b.height), cv::Point2d(b.x + b.width, b.y + b.height)}) {
    const cv::Point2d p = apply(inverse, c);
    x0 = std::min(x0, p.x), x1 = std::max(x1, p.x), y0 = std::min(y0, p.y), y1 = std::max(y1, p.y);
  }
  const auto clamp_to = [](double v, int hi) { return static_cast<int>(std::clamp(v, 0.0, static_cast<double>(hi))); };
  const int rx0 = clamp_to(std::floor(x0) - 1, frame.cols), rx1 = clamp_to(std::ceil(x1) + 2, frame.cols);
  const int ry0 = clamp_to(std::floor(y0) - 1, frame.rows), ry1 = clamp_to(std::ceil(y1) + 2, frame.rows);
  if (rx1 <= rx0 || ry1 <= ry0) return;
  const cv::Rect roi(rx0, ry0, rx1 - rx0, ry1 - ry0);

  cv::Matx23d to_roi = inverse;
  to_roi(0, 2) -= roi.x;
  to_roi(1, 2) -= roi.y;
  // The crop and its mask (as a fourth channel, in 1/255 steps) are warped together: one pass of
  // coordinate arithmetic instead of two, the larger part of this function's cost for a large
  // face. The mask is 0 along the crop's border, so repeating the border keeps it 0 outside.
  cv::Mat crop_and_mask, warped;
  const cv::Mat parts[] = {crop, mask8_};
  cv::merge(parts, 2, crop_and_mask);
  warp_affine(crop_and_mask, warped, to_roi, roi.size(), cv::BORDER_REPLICATE);
  const ChannelIndex fc = channel_index(format);
  const ChannelIndex cc = channel_index(crop_format_);
  const std::array<int, 3> fi = {fc.r, fc.g, fc.b}, ci = {cc.r, cc.g, cc.b};
  const int fn = frame.channels();

  // Per channel: out = gain * crop + offset (identity unless colour matching).
  std::array<float, 3> gain = {1, 1, 1}, offset = {0, 0, 0};
  if (options_.color_match) {
    std::array<double, 3> sf{}, sc{}, sff{}, scc{};
    double sw = 0;
    for (int y = 0; y < roi.height; ++y) {
      const uchar* f = frame.ptr<uchar>(roi.y + y) + roi.x * fn;
      const uchar* c = warped.ptr<uchar>(y);
      for (int x = 0; x < roi.width; ++x) {
        const double a = c[x * 4 + 3] * (1.0 / 255);
        if (a <= 0) continue;
        sw += a;
        for (int k = 0; k < 3; ++k) {
          const double fv = f[x * fn + fi[k]], cv_ = c[x * 4 + ci[k]];
          sf[k] += a * fv, sff[k] += a * fv * fv;
          sc[k] += a * cv_, scc[k] += a * cv_ * cv_;
        }
      }
    }
    if (sw > 1) {
      for (int k = 0; k < 3; ++k) {
        const double mf = sf[k] / sw, mc = sc[k] / sw;
        const double df = std::sqrt(std::max(0.0, sff[k] / sw - mf * mf));
        const double dc = std::sqrt(std::max(0.0, scc[k] / sw - mc * mc));
        // Bounded so that a flat crop cannot be stretched into noise.
        gain[k] = static_cast<float>(std::clamp(dc > 1e-3 ? df / dc : 1.0, 0.5, 2.0));
        offset[k] = static_cast<float>(mf - gain[k] * mc);
      }
    }
  }

  // At full strength without colour matching (the usual case) the blend is done in integers,
  // 16 pixels at a time: equal to the float blend below in every case.
  if (!options_.color_match && strength == 1.0) {
    for (int y = 0; y < roi.height; ++y)
      blend_row(frame.ptr<uchar>(roi.y + y) + roi.x * fn, fn, warped.ptr<uchar>(y), roi.width, fi, ci);
    return;
  }
  const float scale = static_cast<float>(strength) * (1.0f / 255);
  for (int y = 0; y < roi.height; ++y) {
    uchar* f = frame.ptr<uchar>(roi.y + y) + roi.x * fn;
    const uchar* c = warped.ptr<uchar>(y);
    for (int x = 0; x < roi.width; ++x, c += 4) {
      const uchar a = c[3];
      if (a == 0) continue;  // outside the mask: not even rewritten
      const float w = a * scale;
      for (int k = 0; k < 3; ++k) {
        uchar& dst = f[x * fn + fi[k]];
        const float src = gain[k] * c[ci[k]] + offset[k];
        dst = cv::saturate_cast<uchar>(dst + w * (src - dst));
      }
    }
  }
}

}  // namespace starganv2::align
