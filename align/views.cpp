#include "align/views.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>

#include <string>

namespace starganv2::align {

namespace {

// Draws the crops in a row from the frame's top-left corner (as far as they fit), each enlarged by
// a whole factor (nearest neighbour: every pixel the model saw or made stays a visible square) to
// about a quarter of the frame's height, so that a 64 px model's crops can be seen in a 720p frame.
void draw_crops(cv::Mat& frame, PixelFormat format, const std::vector<const cv::Mat*>& crops) {
  int x = 0;
  for (const cv::Mat* crop : crops) {
    const int factor = std::max(1, frame.rows / 4 / std::max(1, crop->rows));
    cv::Mat shown = *crop;
    if (factor > 1) cv::resize(*crop, shown, {}, factor, factor, cv::INTER_NEAREST);
    const cv::Rect r = cv::Rect(x, 0, shown.cols, shown.rows) & cv::Rect(0, 0, frame.cols, frame.rows);
    if (r.empty()) break;
    put_rgb(shown(cv::Rect(0, 0, r.width, r.height)), frame(r), format);
    x += shown.cols;
  }
}
}  // namespace

void put_rgb(const cv::Mat& rgb, cv::Mat dst, PixelFormat format) {
  const ChannelIndex c = channel_index(format);
  const int from_to[] = {0, c.r, 1, c.g, 2, c.b};
  cv::mixChannels(&rgb, 1, &dst, 1, from_to, 3);
}

void render_view(cv::Mat& frame, PixelFormat format, View view, std::span<const TranslatedFace> faces,
                 const Compositor& compositor, const Compositor& mask_compositor, double strength) {
  if (faces.empty()) return;
  std::vector<Compositor::Face> blend;
  for (const TranslatedFace& f : faces) blend.push_back({f.translated, f.inverse, f.shape});
  std::vector<const cv::Mat*> row;
  switch (view) {
    case View::kMerged:
      compositor.composite(frame, format, blend, strength);
      break;
    case View::kAligned:
      for (const TranslatedFace& f : faces) row.push_back(&f.aligned);
      draw_crops(frame, format, row);
      break;
    case View::kTranslated:
      compositor.composite(frame, format, blend, strength);
      for (const TranslatedFace& f : faces) row.push_back(&f.translated);
      draw_crops(frame, format, row);
      break;
    case View::kSideBySide:
      compositor.composite(frame, format, blend, strength);
      for (const TranslatedFace& f : faces) {
        row.push_back(&f.aligned);
        row.push_back(&f.translated);
      }
      draw_crops(frame, format, row);
      break;
    case View::kMask: {
      // The blend weights, drawn by blending white crops into a black frame. An inspection view:
      // the only one that writes the whole frame.
      const int size = mask_compositor.crop_size();
      cv::Mat black = cv::Mat::zeros(frame.rows, frame.cols, CV_8UC3);
      const cv::Mat white(size, size, CV_8UC3, cv::Scalar::all(255));
      std::vector<Compositor::Face> whites;
      for (const TranslatedFace& f : faces) whites.push_back({white, f.inverse, f.shape});
      mask_compositor.composite(black, PixelFormat::kRGB, whites, strength);
      put_rgb(black, frame, format);
      break;
    }
  }
}

cv::Mat frame_to_square(const cv::Mat& frame, PixelFormat format, int size, PixelFormat crop_format) {
  const cv::Mat three = to_three_channels(frame, format, crop_format);
  cv::Mat small;
  cv::resize(three, small, cv::Size(size, size), 0, 0, cv::INTER_AREA);
  return small;
}

void square_to_frame(const cv::Mat& translated, cv::Mat& frame, PixelFormat format, double strength) {
  if (!(strength >= 0.0 && strength <= 1.0))
    throw AlignError("square_to_frame: strength must be in [0, 1], got " + std::to_string(strength));
  if (strength == 0.0) return;
  cv::Mat full;
  cv::resize(translated, full, frame.size(), 0, 0, cv::INTER_LINEAR);
  if (strength < 1.0) {
    // The original in the crop's channel order (RGB), so the blend is channel by channel.
    cv::Mat original(frame.size(), CV_8UC3);
    const ChannelIndex c = channel_index(format);
    const int from_to[] = {c.r, 0, c.g, 1, c.b, 2};
    cv::mixChannels(&frame, 1, &original, 1, from_to, 3);
    cv::addWeighted(full, strength, original, 1.0 - strength, 0.0, full);
  }
  put_rgb(full, frame, format);
}

std::vector<uint8_t> packed_pixels(const cv::Mat& image) {
  const cv::Mat c = image.isContinuous() ? image : image.clone();
  return std::vector<uint8_t>(c.data, c.data + c.total() * c.elemSize());
}

}  // namespace starganv2::align
