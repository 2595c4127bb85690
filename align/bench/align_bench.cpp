// starganv2-align-bench: median time per frame of the align pipeline on synthetic video (a real
// face moving over a background), at 640x480 and 1920x1080, detecting every frame and every 5th,
// with a baseline measured in the same run.
//
//   starganv2-align-bench [--frames N] [--face IMAGE] [--model FILE] [--threads N]
//
// align     FaceAligner::process: detection (on its frames), landmarks, smoothing, the crop.
// composite Compositor::composite of one 256 crop back into the frame, through the face's own
//           mask (AlignedFace::shape, what the element does) and, in the same run, through the
//           canonical template's precomputed mask (before issue 26); "mask" is the difference:
//           what drawing the face's own mask costs.
// temporal TemporalStabiliser::stabilise of one face (align/temporal.h, the element's `temporal`)
//           on the aligned crops of the moving face at 64 px (the demo model) and 256 px (the
//           official models), the "translation" being the crop with its colours inverted; beside
//           the composite of the same crop (same run) for scale.
// Baselines: dlib's own example pipeline (HOG at full resolution + 68 landmarks, no alignment),
// and a composite that warps the crop and mask over the whole frame and blends every pixel.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <numbers>
#include <random>
#include <string>
#include <vector>

#include <dlib/image_processing/frontal_face_detector.h>
#include <dlib/image_processing/shape_predictor.h>
#include <dlib/opencv/cv_image.h>
#include <opencv2/core/utility.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "align/compositor.h"
#include "align/face_aligner.h"
#include "align/temporal.h"

using namespace starganv2::align;
using Clock = std::chrono::steady_clock;

namespace {

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

double median(std::vector<double> v) {
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

// `n` frames of `face` (its face box about a quarter of the frame height) drifting and turning
// slowly over a smooth random background, with sensor-like noise.
std::vector<cv::Mat> make_frames(const cv::Mat& face, const FaceBox& box, cv::Size size, int n) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> level(40, 215);
  cv::Mat coarse(6, 8, CV_8UC3), background;
  for (auto it = coarse.begin<cv::Vec3b>(); it != coarse.end<cv::Vec3b>(); ++it)
    *it = cv::Vec3b(level(rng), level(rng), level(rng));
  cv::resize(coarse, background, size, 0, 0, cv::INTER_CUBIC);
  const double scale = 0.25 * size.height / box.size;
  std::vector<cv::Mat> frames;
  cv::Mat noise(size, CV_16SC3);
  for (int i = 0; i < n; ++i) {
    const double t = i / 30.0, w = 2 * std::numbers::pi * t;
    const cv::Point2d centre(size.width * (0.5 + 0.08 * std::sin(w / 4)), size.height * (0.5 + 0.05 * std::sin(w / 3)));
    cv::Matx23d M = cv::getRotationMatrix2D(box.center, 6 * std::sin(w / 5), scale);
    M(0, 2) += centre.x - box.center.x;
    M(1, 2) += centre.y - box.center.y;
    cv::Mat frame = background.clone();
    cv::warpAffine(face, frame, M, size, cv::INTER_LINEAR, cv::BORDER_TRANSPARENT);
    cv::randn(noise, cv::Scalar::all(0), cv::Scalar::all(4));
    cv::Mat noisy;
    cv::add(frame, noise, noisy, cv::noArray(), CV_8UC3);
    frames.push_back(noisy);
  }
  return frames;
}

}  // namespace

int main(int argc, char** argv) try {
  int num_frames = 60, threads = 1;
  std::string face_path = "/usr/lib/python3/dist-packages/skimage/data/astronaut.png";
  std::string model_path = kDefaultShapeModel;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--frames" && i + 1 < argc) num_frames = std::max(5, std::atoi(argv[++i]));
    else if (a == "--face" && i + 1 < argc) face_path = argv[++i];
    else if (a == "--model" && i + 1 < argc) model_path = argv[++i];
    else if (a == "--threads" && i + 1 < argc) threads = std::max(1, std::atoi(argv[++i]));
    else {
      std::printf("usage: starganv2-align-bench [--frames N] [--face IMAGE] [--model FILE] [--threads N]\n");
      return a == "-h" || a == "--help" ? 0 : 2;
    }
  }
  // One streaming thread is what the element gives each stream; OpenCV would otherwise spread
  // resizes and warps over every core.
  cv::setNumThreads(threads);

  const cv::Mat face = cv::imread(face_path, cv::IMREAD_COLOR);
  if (face.empty()) {
    std::fprintf(stderr, "starganv2-align-bench: cannot read %s (python3-skimage has astronaut.png)\n", face_path.c_str());
    return 1;
  }
  const auto model = ShapeModel::load(model_path);
  DetectorOptions full;
  full.max_width = 0;
  const std::vector<FaceBox> boxes = Detector(full).detect(face, PixelFormat::kBGR);
  if (boxes.empty()) {
    std::fprintf(stderr, "starganv2-align-bench: no face in %s\n", face_path.c_str());
    return 1;
  }
  dlib::shape_predictor predictor;
  dlib::deserialize(model_path) >> predictor;
  dlib::frontal_face_detector hog = dlib::get_frontal_face_detector();

  std::printf("starganv2-align-bench: %d frames per row, %d OpenCV thread(s), face from %s\n", num_frames, threads,
              face_path.c_str());
  std::printf("%-10s %-9s %10s %12s %12s %8s %6s | %14s %12s\n", "frame", "detect", "align ms", "composite ms",
              "template ms", "mask ms", "found", "dlib-plain ms", "full-frame ms");
  std::vector<cv::Mat> crops;  // the moving face's aligned crops (640x480, 1 in 5), for `temporal`
  for (const cv::Size size : {cv::Size(640, 480), cv::Size(1920, 1080)}) {
    const std::vector<cv::Mat> frames = make_frames(face, boxes[0], size, num_frames);

    // Baselines, once per size.
    std::vector<double> plain, naive;
    const Compositor compositor;
    for (int i = 0; i < std::min(num_frames, 15); ++i) {
      const auto t0 = Clock::now();
      cv::Mat gray;
      cv::cvtColor(frames[i], gray, cv::COLOR_BGR2GRAY);
      const dlib::cv_image<unsigned char> img(gray);
      for (const dlib::rectangle& r : hog(img)) predictor(img, r);
      plain.push_back(ms_since(t0));
    }
    for (int detect_interval : {1, 5}) {
      AlignerOptions options;
      options.detect_interval = detect_interval;
      FaceAligner aligner(model, options);
      std::vector<double> align_ms, composite_ms, template_ms;
      int found = 0;
      for (const cv::Mat& f : frames) {
        const auto t0 = Clock::now();
        const std::vector<AlignedFace> faces = aligner.process(f, PixelFormat::kBGR);
        align_ms.push_back(ms_since(t0));
        if (faces.empty()) continue;
        ++found;
        if (size.width == 640 && detect_interval == 5) crops.push_back(faces[0].crop);
        cv::Mat out = f.clone(), out_template = f.clone();
        // Taking turns at going first, so that neither is always the one with warm caches.
        for (int k = 0; k < 2; ++k) {
          const bool own = (k == 0) == (found % 2 == 0);
          const auto t1 = Clock::now();
          if (own) compositor.composite(out, PixelFormat::kBGR, faces[0].crop, faces[0].inverse, 1.0, &faces[0].shape);
          else compositor.composite(out_template, PixelFormat::kBGR, faces[0].crop, faces[0].inverse);
          (own ? composite_ms : template_ms).push_back(ms_since(t1));
        }
        if (detect_interval == 1 && naive.size() < 15) {
          // Baseline: the whole frame warped and blended.
          const auto t2 = Clock::now();
          cv::Mat warped, alpha, blended;
          cv::Mat crop_bgr;
          cv::cvtColor(faces[0].crop, crop_bgr, cv::COLOR_RGB2BGR);
          cv::warpAffine(crop_bgr, warped, faces[0].inverse, size, cv::INTER_LINEAR, cv::BORDER_REPLICATE);
          cv::warpAffine(compositor.mask(), alpha, faces[0].inverse, size, cv::INTER_LINEAR, cv::BORDER_CONSTANT);
          cv::Mat a3, f32, w32;
          cv::merge(std::vector<cv::Mat>(3, alpha), a3);
          f.convertTo(f32, CV_32FC3);
          warped.convertTo(w32, CV_32FC3);
          cv::Mat mixed = f32 + a3.mul(w32 - f32);
          mixed.convertTo(blended, CV_8UC3);
          naive.push_back(ms_since(t2));
        }
      }
      const std::string frame_name = std::to_string(size.width) + "x" + std::to_string(size.height);
      const std::string every = detect_interval == 1 ? "every" : "1 in " + std::to_string(detect_interval);
      std::printf("%-10s %-9s %10.1f %12.2f %12.2f %8.3f %3d/%-2d | %14.1f %12.2f\n", frame_name.c_str(),
                  every.c_str(), median(align_ms), median(composite_ms), median(template_ms),
                  median(composite_ms) - median(template_ms), found, num_frames, median(plain), median(naive));
    }
  }
  // Temporal stabilisation of one face, per crop size.
  std::printf("\n%-6s %14s %14s\n", "crop", "temporal ms", "composite ms");
  for (const int crop_size : {64, 256}) {
    TemporalStabiliser stabiliser({.strength = 0.7});
    const Compositor compositor(crop_size);
    std::vector<double> temporal_ms, composite_ms;
    cv::Mat canvas(480, 640, CV_8UC3, cv::Scalar::all(80));
    for (size_t i = 0; i < crops.size(); ++i) {
      cv::Mat crop;
      cv::resize(crops[i], crop, {crop_size, crop_size}, 0, 0, cv::INTER_AREA);
      const cv::Mat translated = cv::Scalar::all(255) - crop;
      const auto t0 = Clock::now();
      const cv::Mat shown = stabiliser.stabilise(0, crop, translated);
      if (i > 0) temporal_ms.push_back(ms_since(t0));
      const double s = 200.0 / crop_size;
      const cv::Matx23d inverse(s, 0, 200, 0, s, 120);
      const auto t1 = Clock::now();
      compositor.composite(canvas, PixelFormat::kBGR, shown, inverse);
      composite_ms.push_back(ms_since(t1));
    }
    std::printf("%-6d %14.3f %14.3f\n", crop_size, median(temporal_ms), median(composite_ms));
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "starganv2-align-bench: %s\n", e.what());
  return 1;
}
