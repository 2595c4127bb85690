// Detection (align/detector.h) and landmarks (align/landmarks.h) on public-domain images.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <unistd.h>
#include <string>

#include <dlib/image_processing/shape_predictor.h>
#include <dlib/opencv/cv_image.h>
#include <dlib/serialize.h>
#include <opencv2/imgproc.hpp>

#include "align/alignment.h"
#include "align/detector.h"
#include "align/landmarks.h"
#include "helpers.h"

namespace fs = std::filesystem;

namespace starganv2::align::test {
namespace {

// A scratch file that removes itself.
struct TempFile {
  fs::path path;
  explicit TempFile(const std::string& name)
      : path(fs::temp_directory_path() / ("starganv2-align-" + std::to_string(::getpid()) + "-" + name)) {}
  ~TempFile() { fs::remove(path); }
};

std::string load_error(const std::string& path) {
  try {
    ShapeModel::load(path);
  } catch (const AlignError& e) {
    return e.what();
  }
  return "";
}

TEST(ShapeModel, MissingFileIsAClearError_n) {
  const std::string message = load_error("/nonexistent/shape_predictor.dat");
  EXPECT_NE(message.find("/nonexistent/shape_predictor.dat"), std::string::npos) << message;
  EXPECT_NE(message.find("cannot open"), std::string::npos) << message;
}

TEST(ShapeModel, CorruptFilesAreClearErrors_n) {
  ASSERT_TRUE(fs::exists(kDefaultShapeModel)) << "install libdlib-data";
  TempFile empty("empty.dat"), text("text.dat"), truncated("truncated.dat"), noise("noise.dat");
  std::ofstream(empty.path).close();
  std::ofstream(text.path) << "this is not a dlib model\n";
  {
    // The first 3 MB of the real model: a valid header followed by a cut-off forest.
    std::ifstream in(kDefaultShapeModel, std::ios::binary);
    std::string head(3 << 20, '\0');
    in.read(head.data(), static_cast<std::streamsize>(head.size()));
    std::ofstream(truncated.path, std::ios::binary).write(head.data(), static_cast<std::streamsize>(head.size()));
  }
  {
    std::mt19937 rng(5);
    std::string bytes(1 << 16, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    std::ofstream(noise.path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  for (const TempFile* f : {&empty, &text, &truncated, &noise}) {
    const std::string message = load_error(f->path.string());
    EXPECT_NE(message.find(f->path.string()), std::string::npos) << "no error naming the file: " << message;
  }
}

TEST(ShapeModel, PredictsExactlyWhatDlibPredicts) {
  // ShapeModel evaluates the cascades from its own packed copy (for speed); dlib's predictor,
  // loaded by dlib from the same file, is the reference. Every point must be the same, on a
  // face and on boxes around, off and beside it (a wrong split, leaf or feature encoding moves
  // points on most of them).
  dlib::shape_predictor reference;
  dlib::deserialize(kDefaultShapeModel) >> reference;
  cv::Mat gray;
  cv::cvtColor(load_bgr(kAstronaut), gray, cv::COLOR_BGR2GRAY);
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> pos(-40, 400), side(30, 260);
  int compared = 0, moved = 0;
  std::array<cv::Point, kNumLandmarks> first{};
  for (int trial = 0; trial < 60; ++trial) {
    const cv::Rect box = trial == 0 ? cv::Rect(170, 60, 110, 110) : cv::Rect(pos(rng), pos(rng), side(rng), side(rng));
    const auto ours = shape_model()->predict(gray, box);
    const dlib::full_object_detection theirs = reference(
        dlib::cv_image<unsigned char>(gray), dlib::rectangle(box.x, box.y, box.x + box.width - 1, box.y + box.height - 1));
    ASSERT_EQ(theirs.num_parts(), static_cast<unsigned long>(kNumLandmarks));
    for (int i = 0; i < kNumLandmarks; ++i) {
      ASSERT_EQ(ours[i].x, theirs.part(i).x()) << "box " << box << " point " << i;
      ASSERT_EQ(ours[i].y, theirs.part(i).y()) << "box " << box << " point " << i;
    }
    if (trial == 0) first = ours;
    else if (ours != first) ++moved;
    ++compared;
  }
  EXPECT_EQ(compared, 60);
  EXPECT_GT(moved, 50);  // the boxes did lead to different shapes
}

TEST(Detector, FindsTheAstronaut) {
  const cv::Mat image = load_bgr(kAstronaut);
  Detector detector;
  const std::vector<FaceBox> faces = detector.detect(image, PixelFormat::kBGR);
  ASSERT_EQ(faces.size(), 1u);
  const FaceBox& box = faces[0];
  EXPECT_GT(box.score, 0);
  EXPECT_GT(box.size, 60);
  EXPECT_LT(box.size, 200);
  // Her landmarks: a face shape, with the eyes in the upper half of the box.
  const Landmarks lm = shape_model()->fit(image, PixelFormat::kBGR, box);
  EXPECT_LT(template_residual(lm), 0.05);
  for (int i = 36; i <= 47; ++i) {
    EXPECT_NEAR(lm[i].x, box.center.x, 0.5 * box.size) << i;
    EXPECT_LT(lm[i].y, box.center.y) << i;
    EXPECT_GT(lm[i].y, box.center.y - 0.5 * box.size) << i;
  }
}

TEST(Detector, FindsSmallFacesWithTheFinerRetry) {
  // Messi's face is ~40 px wide in a 548 px photo: below HOG's 80 px window.
  const cv::Mat image = load_bgr(kMessi);
  Detector detector;
  EXPECT_TRUE(detector.detect_pass(image, PixelFormat::kBGR, 0).empty());
  const std::vector<FaceBox> faces = detector.detect(image, PixelFormat::kBGR);
  ASSERT_FALSE(faces.empty());
  EXPECT_GT(faces[0].size, 25);
  EXPECT_LT(faces[0].size, 60);
  EXPECT_LT(template_residual(shape_model()->fit(image, PixelFormat::kBGR, faces[0])), 0.06);
}

TEST(Detector, NoFaceWhereThereIsNone) {
  Detector detector;
  for (const char* path : {kCoffee, kFruits}) EXPECT_TRUE(detector.detect(load_bgr(path), PixelFormat::kBGR).empty()) << path;
  std::mt19937 rng(3);
  EXPECT_TRUE(detector.detect(random_background({800, 600}, rng), PixelFormat::kBGR).empty());
  EXPECT_TRUE(detector.detect(cv::Mat(480, 640, CV_8UC3, cv::Scalar(90, 120, 200)), PixelFormat::kBGR).empty());
}

TEST(Detector, FindsTurnedFacesWithTheRotatedRetries) {
  const cv::Mat image = load_bgr(kAstronaut);
  std::mt19937 rng(4);
  const cv::Mat background = random_background({800, 600}, rng);
  Detector detector;
  // (HOG finds this face up to ~40 degrees; her own head is tilted by -3 degrees.)
  for (double angle : {50.0, -50.0}) {
    const cv::Mat frame = place(image, background, similarity({256, 256}, {400, 300}, angle, 1.2));
    EXPECT_TRUE(detector.detect_pass(frame, PixelFormat::kBGR, 0).empty()) << "too little turned to need a retry";
    const std::vector<FaceBox> faces = detector.detect(frame, PixelFormat::kBGR);
    ASSERT_EQ(faces.size(), 1u) << angle;
    EXPECT_GT(faces[0].angle_deg * angle, 0) << "found in the pass turned the right way";
    EXPECT_LT(cv::norm(faces[0].center - apply(similarity({256, 256}, {400, 300}, angle, 1.2), {222, 126})),
              0.3 * faces[0].size);
    // Fitted from the detector's box (half-way turned) and again from the box that implies.
    FaceBox box = faces[0];
    for (int pass = 0; pass < 4; ++pass) box = box_from_landmarks(shape_model()->fit(frame, PixelFormat::kBGR, box));
    EXPECT_NEAR(box.angle_deg, angle - 3, 4);
  }
}

TEST(Detector, MaxFacesAndMinimumSize) {
  const cv::Mat head = astronaut_head();
  std::mt19937 rng(6);
  cv::Mat frame = random_background({1280, 720}, rng);
  frame = place(head, frame, similarity(kHeadFaceCentre, {250, 360}, 0, 1.0));
  frame = place(head, frame, similarity(kHeadFaceCentre, {640, 360}, 0, 1.3));
  frame = place(head, frame, similarity(kHeadFaceCentre, {1030, 360}, 0, 1.6));
  DetectorOptions options;
  options.max_width = 0;
  Detector all(options);
  const std::vector<FaceBox> faces = all.detect(frame, PixelFormat::kBGR);
  ASSERT_EQ(faces.size(), 3u);
  EXPECT_GT(faces[0].size, faces[1].size);
  EXPECT_GT(faces[1].size, faces[2].size);
  EXPECT_NEAR(faces[0].center.x, 1030, 60);
  options.max_faces = 2;
  EXPECT_EQ(Detector(options).detect(frame, PixelFormat::kBGR).size(), 2u);
  options.max_faces = 8;
  options.min_face_size = 0.5 * (faces[0].size + faces[1].size);
  options.retry_angles_deg.clear();
  options.retry_max_width = 0;
  EXPECT_EQ(Detector(options).detect(frame, PixelFormat::kBGR).size(), 1u);
}

}  // namespace
}  // namespace starganv2::align::test
