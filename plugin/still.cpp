// The still-image API of Processor (starganv2-translate): faces are found the thorough way once
// per image, then translated with as many styles as the caller asks for. The stream's state
// (tracks, the last translated faces) is not touched.
#include <opencv2/core.hpp>

#include <cmath>
#include <string>

#include "processor_impl.h"

namespace starganv2::plugin {

using Kind = ProcessorError::Kind;

int Processor::Impl::find_still(cv::Mat& image, align::PixelFormat format, Mode mode) {
  still_mode = mode;
  still_size = image.size();
  still_faces.clear();
  still_small.release();
  if (image.empty()) return 0;
  if (mode == Mode::kFrame) {
    still_small = align::frame_to_square(image, format, img_size(), kCropFormat);
    return 1;
  }
  still_faces = select_faces(aligner->align(image, format));
  return static_cast<int>(still_faces.size());
}

FrameReport Processor::Impl::render_still(cv::Mat& out, align::PixelFormat format, View view,
                                          std::vector<StillFace>* still) {
  if (still) still->clear();
  if (out.size() != still_size)
    throw ProcessorError(Kind::kSettings,
                         "render_still: the output is " + std::to_string(out.cols) + "x" +
                             std::to_string(out.rows) + ", the image given to find_still " +
                             std::to_string(still_size.width) + "x" +
                             std::to_string(still_size.height));
  FrameReport report;
  wait_engine_idle();
  if (still_mode == Mode::kFrame) {
    if (still_small.empty()) return report;
    const cv::Mat translated = translate({still_small}).front();
    align::square_to_frame(translated, out, format);
    report.changed = true;
    if (still) {
      FaceBox whole;
      whole.width = out.cols;
      whole.height = out.rows;
      *still = {StillFace{whole, align::packed_pixels(still_small), align::packed_pixels(translated)}};
    }
    return report;
  }
  if (still_faces.empty()) return report;
  std::vector<cv::Mat> crops;
  for (const auto& f : still_faces) crops.push_back(f.crop);
  const std::vector<cv::Mat> translated = translate(crops);
  std::vector<align::TranslatedFace> faces;
  for (size_t i = 0; i < still_faces.size(); ++i) {
    const align::AlignedFace& f = still_faces[i];
    faces.push_back({f.crop, translated[i], f.inverse, f.shape});
    report.faces.push_back(face_box(f));
    if (still)
      still->push_back({report.faces.back(), align::packed_pixels(f.crop), align::packed_pixels(translated[i])});
  }
  align::render_view(out, format, to_align_view(view), faces, *compositor, *mask_compositor);
  report.changed = true;
  return report;
}

// ---- Processor: still images ------------------------------------------------------------------

int Processor::find_still(const FrameView& image, Mode mode) {
  cv::Mat mat = wrap(image);
  try {
    return impl_->find_still(mat, to_align_format(image.layout), mode);
  } catch (const align::AlignError& e) {
    throw ProcessorError(Kind::kFailed, e.what());
  }
}

FrameReport Processor::render_still(const FrameView& out, View view, std::vector<StillFace>* faces) {
  cv::Mat mat = wrap(out);
  try {
    return impl_->render_still(mat, to_align_format(out.layout), view, faces);
  } catch (const align::AlignError& e) {
    throw ProcessorError(Kind::kFailed, e.what());
  } catch (const std::invalid_argument& e) {
    throw ProcessorError(Kind::kFailed, e.what());
  }
}

}  // namespace starganv2::plugin
