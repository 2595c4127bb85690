// starganv2-align-template: recomputes align/canonical_template.cpp, the canonical 68-point
// template, from a set of already aligned face images (the CelebA-HQ samples in
// ../shared/data/celeba_hq). Each image is detected at full resolution (largest face) and its
// landmarks, divided by the image size, are averaged (and corrected for the shrinking bias of
// least-squares fitting, see below). Two rounds: first dlib's plain fit in the
// detector's box gives a provisional template; then the landmarks are fitted the way the
// aligner fits them (fit_landmarks with 9 samples, boxes predicted from the provisional
// template), so that aligning these images reproduces their framing without bias. The result
// does not depend on the template compiled in. The detector box is expressed in each face's own
// template frame and averaged too. Writes the C++ source to stdout.
//
//   starganv2-align-template [--model FILE] DIR... > align/canonical_template.cpp

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include <opencv2/imgcodecs.hpp>

#include "align/alignment.h"
#include "align/detector.h"
#include "align/face_aligner.h"
#include "align/landmarks.h"

namespace fs = std::filesystem;
using namespace starganv2::align;

int main(int argc, char** argv) try {
  std::string model_path = kDefaultShapeModel;
  std::vector<fs::path> dirs;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--model" && i + 1 < argc) {
      model_path = argv[++i];
    } else if (arg == "-h" || arg == "--help") {
      std::cout << "usage: starganv2-align-template [--model FILE] DIR... > align/canonical_template.cpp\n";
      return 0;
    } else {
      dirs.emplace_back(arg);
    }
  }
  if (dirs.empty()) {
    std::cerr << "starganv2-align-template: give at least one directory of aligned face images\n";
    return 2;
  }
  std::vector<fs::path> files;
  for (const fs::path& d : dirs) {
    if (!fs::is_directory(d)) {
      std::cerr << "starganv2-align-template: " << d << " is not a directory\n";
      return 2;
    }
    for (const auto& e : fs::recursive_directory_iterator(d)) {
      std::string ext = e.path().extension().string();
      std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
      if (e.is_regular_file() && (ext == ".jpg" || ext == ".jpeg" || ext == ".png")) files.push_back(e.path());
    }
  }
  std::sort(files.begin(), files.end());

  const auto model = ShapeModel::load(model_path);
  DetectorOptions options;
  options.max_width = 0;  // full resolution finds every CelebA-HQ face
  Detector detector(options);

  struct Sample {
    cv::Mat image;
    FaceBox box;
  };
  std::vector<Sample> samples;
  for (const fs::path& f : files) {
    cv::Mat image = cv::imread(f.string(), cv::IMREAD_COLOR);
    if (image.empty()) {
      std::cerr << "skipped " << f << ": not an image\n";
      continue;
    }
    const std::vector<FaceBox> faces = detector.detect(image, PixelFormat::kBGR);
    if (faces.empty()) {
      std::cerr << "skipped " << f << ": no face found\n";
      continue;
    }
    samples.push_back({std::move(image), faces[0]});
  }
  if (samples.size() < 2) {
    std::cerr << "starganv2-align-template: fewer than two faces found\n";
    return 1;
  }
  const double n = static_cast<double>(samples.size());

  // Mean of landmarks / image size, and the detector box in each face's own template frame.
  std::array<cv::Point2d, kNumLandmarks> mean{};
  TemplateBox box{{0, 0}, 0};
  double residual = 0;
  const auto average = [&](const std::vector<Landmarks>& shapes) {
    std::vector<Landmarks> unit(shapes.size());
    mean.fill({0, 0});
    for (std::size_t k = 0; k < shapes.size(); ++k)
      for (int i = 0; i < kNumLandmarks; ++i) {
        const cv::Mat& im = samples[k].image;
        unit[k][i] = {(shapes[k][i].x + 0.5) / im.cols, (shapes[k][i].y + 0.5) / im.rows};
        mean[i] += unit[k][i] / n;
      }
    // Fitting a face to the mean by least squares shrinks it a little (its shape deviations count
    // against the scale: about 1.4 % here), so aligning these very images with the plain mean
    // would frame them 1.4 % wider than CelebA-HQ does. Undo the mean fitted transform, so that
    // on average they align to exactly their own framing. (One step is exact: least-squares
    // fits commute with a similarity of the target.)
    cv::Matx23d bias = cv::Matx23d::zeros();
    for (std::size_t k = 0; k < shapes.size(); ++k) bias += fit_similarity(unit[k], mean, landmark_weights()) * (1.0 / n);
    const cv::Matx23d unbias = invert_affine(bias);
    for (cv::Point2d& p : mean) p = apply(unbias, p);

    box = {{0, 0}, 0};
    residual = 0;
    for (std::size_t k = 0; k < shapes.size(); ++k) {
      const cv::Mat& im = samples[k].image;
      const FaceBox& b = samples[k].box;
      const cv::Matx23d T = fit_similarity(unit[k], mean, landmark_weights());
      box.center += apply(T, {(b.center.x + 0.5) / im.cols, (b.center.y + 0.5) / im.rows}) / n;
      box.size += b.size / im.cols * std::hypot(T(0, 0), T(1, 0)) / n;
      double r = 0;
      for (int i = 0; i < kNumLandmarks; ++i) r += cv::norm(apply(T, unit[k][i]) - mean[i]);
      residual += r / kNumLandmarks / n;
    }
  };

  std::vector<Landmarks> shapes;
  for (const Sample& s : samples) shapes.push_back(model->fit(s.image, PixelFormat::kBGR, s.box));
  average(shapes);
  const std::array<cv::Point2d, kNumLandmarks> provisional = mean;
  const TemplateBox provisional_box = box;
  shapes.clear();
  for (const Sample& s : samples)
    shapes.push_back(fit_landmarks(*model, s.image, PixelFormat::kBGR, s.box, 9, [&](const Landmarks& l) {
      return box_from_landmarks(l, provisional, provisional_box);
    }));
  average(shapes);

  std::printf(
      "// Generated by starganv2-align-template (align/tools/make_template.cpp); do not edit by hand.\n"
      "//\n"
      "// The canonical 68-point template for the CelebA-HQ framing: the mean position of dlib's 68\n"
      "// landmarks (shape_predictor_68_face_landmarks.dat, fitted as the aligner fits them, starting\n"
      "// from the box of dlib's HOG detector run at full resolution) over %d aligned CelebA-HQ images\n"
      "// (1024x1024, ../shared/data/celeba_hq), each divided by the image size, so (0,0) is the crop's\n"
      "// top-left corner and (1,1) its bottom-right. An individual face lies on average %.4f crop\n"
      "// widths from this mean after a similarity fit: that is face shape, not alignment error. The\n"
      "// detector box is the mean HOG box in each face's own template frame. The images themselves are\n"
      "// not part of the repository.\n"
      "// Recompute: starganv2-align-template ../shared/data/celeba_hq > align/canonical_template.cpp\n\n"
      "#include \"align/alignment.h\"\n\n"
      "namespace starganv2::align {\n\n"
      "namespace {\n\n"
      "constexpr double kTemplate[kNumLandmarks][2] = {\n",
      static_cast<int>(samples.size()), residual);
  for (int i = 0; i < kNumLandmarks; ++i)
    std::printf("%s{%.6f, %.6f},%s", i % 4 == 0 ? "    " : " ", mean[i].x, mean[i].y,
                i % 4 == 3 || i == kNumLandmarks - 1 ? "\n" : "");
  std::printf(
      "};\n\n"
      "}  // namespace\n\n"
      "const std::array<cv::Point2d, kNumLandmarks>& canonical_template() {\n"
      "  static const std::array<cv::Point2d, kNumLandmarks> points = [] {\n"
      "    std::array<cv::Point2d, kNumLandmarks> p;\n"
      "    for (int i = 0; i < kNumLandmarks; ++i) p[i] = {kTemplate[i][0], kTemplate[i][1]};\n"
      "    return p;\n"
      "  }();\n"
      "  return points;\n"
      "}\n\n"
      "const TemplateBox& canonical_detector_box() {\n"
      "  static const TemplateBox box{{%.6f, %.6f}, %.6f};\n"
      "  return box;\n"
      "}\n\n"
      "}  // namespace starganv2::align\n",
      box.center.x, box.center.y, box.size);
  std::cerr << "template from " << samples.size() << " of " << files.size() << " images; mean residual "
            << residual << " crop widths\n";
  return 0;
} catch (const std::exception& e) {
  std::cerr << "starganv2-align-template: " << e.what() << "\n";
  return 1;
}
