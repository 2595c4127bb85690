#include "align/compositor.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include <opencv2/core/hal/intrin.hpp>
#include <opencv2/imgproc.hpp>

namespace starganv2::align {

namespace {

// The face region of a face whose landmarks sit at `shape` in the crop (unit coordinates): the
// jaw line (points 0-16) closed by the eyebrows (17-26) lifted by 0.8 of the brow-to-nose-base
// height, which reaches about the hairline, so the translated forehead comes along with the face;
// its convex hull, grown or shrunk about its centroid by `margin` crop widths. In crop pixels
// (pixel centres at integers). Lifted straight up the crop, which the alignment has turned upright
// with the face.
std::vector<cv::Point2f> face_polygon(const Landmarks& shape, int crop_size, double margin) {
  for (const cv::Point2d& p : shape)
    if (!std::isfinite(p.x) || !std::isfinite(p.y)) throw AlignError("Compositor: the face shape is not finite");
  const auto mean_y = [&](int first, int last) {
    double y = 0;
    for (int i = first; i <= last; ++i) y += shape[i].y;
    return y / (last - first + 1);
  };
  const double lift = 0.8 * (mean_y(31, 35) - mean_y(17, 26));
  std::vector<cv::Point2f> points;
  for (int i = 0; i <= 16; ++i) points.emplace_back(shape[i].x, shape[i].y);
  for (int i = 17; i <= 26; ++i) points.emplace_back(shape[i].x, shape[i].y - lift);
  std::vector<cv::Point2f> hull;
  cv::convexHull(points, hull);
  cv::Point2f c(0, 0);
  for (const auto& p : hull) c += p;
  c *= 1.0f / hull.size();
  std::vector<cv::Point2f> out;
  for (const auto& p : hull) {
    const cv::Point2f d = p - c;
    const float len = std::max(1e-6f, std::hypot(d.x, d.y));
    const cv::Point2f q = p + d * static_cast<float>(margin / len);
    out.emplace_back(q.x * crop_size - 0.5f, q.y * crop_size - 0.5f);
  }
  return out;
}

// A convex region as the half-planes that bound it: a x + b y + c >= 0 inside each, with (a, b) a
// unit vector, so that a x + b y + c is the distance to that edge's line. Inside a convex polygon
// the distance to its boundary is the least of these, so the feathered mask is a few
// multiply-adds per pixel (no rasterising and distance transform per face).
struct Region {
  std::vector<cv::Vec3f> edges;
  cv::Rect bounds;  // the pixels that can be inside, within the crop's border
};

// Distances are taken from half a pixel outside the polygon's edge, as if measured from the
// centres of the first pixels outside it, as a distance transform of the filled polygon does.
constexpr float kEdgeOffset = 0.5f;

Region face_region(const std::vector<cv::Point2f>& polygon, int crop_size) {
  Region r;
  if (polygon.size() < 3 || std::abs(cv::contourArea(polygon)) < 1.0) return r;
  cv::Point2f c(0, 0);
  for (const auto& p : polygon) c += p;
  c *= 1.0f / polygon.size();
  for (std::size_t i = 0; i < polygon.size(); ++i) {
    const cv::Point2f p = polygon[i], q = polygon[(i + 1) % polygon.size()];
    const float len = std::hypot(q.x - p.x, q.y - p.y);
    if (len < 1e-6f) continue;
    cv::Point2f n(-(q.y - p.y) / len, (q.x - p.x) / len);
    if (n.dot(c - p) < 0) n = -n;  // the inward normal, whatever the hull's orientation
    r.edges.emplace_back(n.x, n.y, -n.dot(p) + kEdgeOffset);
  }
  const cv::Rect box = cv::boundingRect(polygon);  // integer box around the float points
  r.bounds = cv::Rect(box.x - 1, box.y - 1, box.width + 2, box.height + 2) &
             cv::Rect(1, 1, std::max(0, crop_size - 2), std::max(0, crop_size - 2));
  return r;
}

// The feathered region into `out` (crop_size x crop_size, zero, CV_32F or CV_8U): the distance to
// the edge (or to the crop's border, where the region stays 0 so that it never ends in a hard edge
// at the crop's side) through a smoothstep over the feather width: no kink where the ramp meets
// the flat inside. CV_8U gets the same values in 1/255 steps, rounded as convertTo rounds.
template <typename T>
void draw_region(const Region& r, int crop_size, double feather, cv::Mat& out) {
  if (r.bounds.empty()) return;
  const float inv_width = 1.0f / static_cast<float>(std::max(1.0, feather * crop_size));
  const float last = static_cast<float>(crop_size - 1);
  const int x0 = r.bounds.x, w = r.bounds.width;
  std::vector<float> xs(w), d(w);
  for (int i = 0; i < w; ++i) xs[i] = static_cast<float>(x0 + i);
  for (int y = r.bounds.y; y < r.bounds.y + r.bounds.height; ++y) {
    const float fy = static_cast<float>(y);
    const float dy = std::min(fy, last - fy);
    for (int i = 0; i < w; ++i) d[i] = std::min(dy, std::min(xs[i], last - xs[i]));
    for (const cv::Vec3f& e : r.edges) {
      const float a = e[0], c = e[1] * fy + e[2];
      for (int i = 0; i < w; ++i) d[i] = std::min(d[i], a * xs[i] + c);
    }
    T* row = out.ptr<T>(y) + x0;
    for (int i = 0; i < w; ++i) {
      const float u = std::clamp(d[i] * inv_width, 0.0f, 1.0f);
      const float m = u * u * (3.0f - 2.0f * u);
      if constexpr (std::is_same_v<T, float>) row[i] = m;
      else row[i] = cv::saturate_cast<uchar>(m * 255.0f);
    }
  }
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

  const Region region = face_region(face_polygon(canonical_template(), crop_size, options.margin), crop_size);
  mask_ = cv::Mat::zeros(crop_size, crop_size, CV_32F);
  mask8_ = cv::Mat::zeros(crop_size, crop_size, CV_8U);
  draw_region<float>(region, crop_size, options.feather, mask_);
  draw_region<uchar>(region, crop_size, options.feather, mask8_);
  mask_bounds_ = region.bounds;
}

cv::Mat Compositor::mask(const Landmarks& shape) const {
  cv::Mat m = cv::Mat::zeros(crop_size_, crop_size_, CV_32F);
  draw_region<float>(face_region(face_polygon(shape, crop_size_, options_.margin), crop_size_), crop_size_,
                     options_.feather, m);
  return m;
}

void Compositor::composite(cv::Mat& frame, PixelFormat format, std::span<const Face> faces,
                           double strength) const {
  for (const Face& f : faces) composite(frame, format, f.crop, f.inverse, strength, f.shape ? &*f.shape : nullptr);
}

void Compositor::composite(cv::Mat& frame, PixelFormat format, const cv::Mat& crop,
                           const cv::Matx23d& inverse, double strength, const Landmarks* shape) const {
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
  // The face's own region, or the template's. (A new buffer for the face's: assigning zeros to a
  // header that shares mask8_'s would write into the template's mask.)
  cv::Mat own;
  cv::Rect b = mask_bounds_;
  if (shape) {
    const Region region = face_region(face_polygon(*shape, crop_size_, options_.margin), crop_size_);
    own.create(crop_size_, crop_size_, CV_8U);
    own.setTo(0);
    draw_region<uchar>(region, crop_size_, options_.feather, own);
    b = region.bounds;
  }
  const cv::Mat& mask8 = shape ? own : mask8_;
  // Strength 0 writes nothing, so the frame stays bit-exact (as where the mask is 0).
  if (b.area() == 0 || strength == 0.0) return;

  // Frame region the mask can reach.
  double x0 = 1e300, y0 = 1e300, x1 = -1e300, y1 = -1e300;
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
  const cv::Mat parts[] = {crop, mask8};
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
