// Frames as they arrive from a video pipeline: 8-bit packed pixels in one of several byte orders,
// any row stride. Checks, grey conversion and an antialiased similarity warp shared by the
// detector, the landmark fitter, the aligner and the compositor.
#pragma once

#include <stdexcept>

#include <opencv2/core.hpp>

namespace starganv2::align {

// Bad input (frame, model file, option) with a message that names what is wrong.
class AlignError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Byte order of one pixel. 'x' is alpha or padding: read past, never written.
enum class PixelFormat { kBGR, kRGB, kBGRx, kRGBx, kxRGB, kxBGR };

// Largest frame side accepted. OpenCV's remap works in 16-bit fixed point, and no video is wider.
inline constexpr int kMaxFrameSide = 16384;

int channels(PixelFormat format);
const char* to_string(PixelFormat format);

// Positions of red, green and blue inside one pixel of `format`.
struct ChannelIndex {
  int r, g, b;
};
ChannelIndex channel_index(PixelFormat format);

// Requires nothing. Throws AlignError naming `what` unless frame is CV_8U with channels(format)
// channels and at most kMaxFrameSide on each side. An empty frame passes (callers return nothing).
void check_frame(const cv::Mat& frame, PixelFormat format, const char* what = "frame");

// Luma (BT.601 weights) of an 8-bit frame of any PixelFormat, as CV_8UC1.
cv::Mat to_gray(const cv::Mat& frame, PixelFormat format);

// Reorders the colour channels of `src` (format `from`) into a new 3-channel image in `to`
// (kBGR or kRGB); alpha/padding is dropped. Returns src itself when nothing needs to move.
cv::Mat to_three_channels(const cv::Mat& src, PixelFormat from, PixelFormat to);

// dst = src warped by the affine map M (src pixel -> dst pixel, pixel centres at integers), like
// cv::warpAffine with INTER_LINEAR, except that (a) only the part of src the output reads is
// touched, so cost follows the output size, and (b) a map that shrinks the image first
// area-averages that part, so a 1024-px face warped into a 256-px crop does not alias.
// Samples outside src follow `border` (cv::BORDER_REFLECT_101 for mirror padding, or
// cv::BORDER_CONSTANT with `border_value`).
void warp_affine(const cv::Mat& src, cv::Mat& dst, const cv::Matx23d& M, cv::Size dsize,
                 int border, const cv::Scalar& border_value = {});

// Grey of warp_affine(frame, M, dsize, border), cheaper: only the frame region the warp reads is
// converted, and one channel is warped instead of three or four. Where the warp shrinks, the
// luma is taken of the block means (block_mean_gray) rather than the means of luma: the same up
// to one grey level. `border` must repeat the frame (reflect or replicate).
cv::Mat warp_gray(const cv::Mat& frame, PixelFormat format, const cv::Matx23d& M, cv::Size dsize, int border);

// The rounded means of the k x k blocks that tile src from its top-left corner, per channel: the
// (cols / k) x (rows / k) image that cv::resize's integer INTER_AREA gives, up to rounding (one
// level), and several times faster for k > 2. src is 8-bit with 1 to 4 channels; k >= 1.
void block_mean(const cv::Mat& src, int k, cv::Mat& dst);

// to_gray(block_mean(frame, k)): the grey image is made at the reduced size, so no full-size
// grey copy is made.
cv::Mat block_mean_gray(const cv::Mat& frame, PixelFormat format, int k);

// The inverse of an invertible 2x3 affine map.
cv::Matx23d invert_affine(const cv::Matx23d& M);

// Applies M to p.
inline cv::Point2d apply(const cv::Matx23d& M, cv::Point2d p) {
  return {M(0, 0) * p.x + M(0, 1) * p.y + M(0, 2), M(1, 0) * p.x + M(1, 1) * p.y + M(1, 2)};
}

// a ∘ b: first b, then a.
cv::Matx23d compose(const cv::Matx23d& a, const cv::Matx23d& b);

}  // namespace starganv2::align
