// What the element and starganv2-translate draw into a frame once its faces are translated: the
// merged result, or one of the inspection views (the crops the model saw and made, the blend
// mask), and the whole-frame mode's resizing. Image maths only: no model, no GStreamer.
#pragma once

#include <optional>
#include <span>
#include <vector>

#include <opencv2/core.hpp>

#include "align/compositor.h"
#include "align/image.h"
#include "align/landmarks.h"

namespace starganv2::align {

enum class View {
  kMerged,      // the translated faces blended into the frame
  kAligned,     // the aligned crops, in a row from the top-left corner (crops are drawn enlarged by
                //   a whole factor to about a quarter of the frame's height, nearest neighbour)
  kTranslated,  // merged, with the translated crops in a row from the top-left corner
  kMask,        // the blend weights as grey (white = translated)
  kSideBySide,  // merged, with each face's aligned and translated crop next to each other
};

// One face of a frame: the crop the model saw, what it made of it, and where it goes back.
struct TranslatedFace {
  cv::Mat aligned;     // crop_size x crop_size CV_8UC3, RGB
  cv::Mat translated;  // same size, RGB
  cv::Matx23d inverse; // crop pixel -> frame pixel
  std::optional<Landmarks> shape;  // AlignedFace::shape: the blend region follows it (none: the template's)
};

// Draws `view` of `faces` into `frame` (format `format`, any stride, in place). `compositor`
// blends the translated faces; `mask_compositor` (colour matching off) draws the mask view.
// `strength` (0..1) blends the translated faces with the original ones (Compositor::composite);
// the mask view shows the weights it gives, the crop rows are drawn as they are.
// Only the face regions and, for the crop views, the top-left corner are written, except in the
// mask view, which replaces the whole frame. Throws AlignError for a bad frame or crop.
void render_view(cv::Mat& frame, PixelFormat format, View view, std::span<const TranslatedFace> faces,
                 const Compositor& compositor, const Compositor& mask_compositor, double strength = 1.0);

// Copies an RGB image (CV_8UC3) into `dst` (a region of a frame in `format`, same size), colour
// channels only: alpha/padding bytes of 4-byte formats are kept.
void put_rgb(const cv::Mat& rgb, cv::Mat dst, PixelFormat format);

// Whole-frame mode: the frame resized to size x size in `crop_format` (area-averaged), and the
// translated square stretched back over the whole frame, blended with it by `strength` (0..1;
// 0 leaves the frame untouched). Throws AlignError for a strength outside [0, 1].
cv::Mat frame_to_square(const cv::Mat& frame, PixelFormat format, int size, PixelFormat crop_format);
void square_to_frame(const cv::Mat& translated, cv::Mat& frame, PixelFormat format, double strength = 1.0);

// A crop's pixels, tightly packed (what a still-image caller gets).
std::vector<uint8_t> packed_pixels(const cv::Mat& image);

}  // namespace starganv2::align
