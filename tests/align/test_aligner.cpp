// The still-image and per-frame entry points (align/face_aligner.h): crop geometry, pixel
// formats, strides, several faces, bad input.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <numbers>
#include <random>
#include <vector>

#include <opencv2/imgproc.hpp>

#include "align/face_aligner.h"
#include "helpers.h"

namespace starganv2::align::test {
namespace {

cv::Mat repack(const cv::Mat& bgr, PixelFormat format) {
  cv::Mat out(bgr.size(), CV_8UC(channels(format)), cv::Scalar::all(201));
  const ChannelIndex c = channel_index(format);
  const int pairs[] = {2, c.r, 1, c.g, 0, c.b};
  cv::mixChannels(&bgr, 1, &out, 1, pairs, 3);
  return out;
}

// A copy of `m` whose rows are `pad` bytes longer than needed (an odd stride when pad is odd).
cv::Mat with_stride(const cv::Mat& m, int pad, std::vector<uchar>& storage) {
  const std::size_t step = m.cols * m.elemSize() + pad;
  storage.assign(step * m.rows + 16, 0xAB);
  cv::Mat out(m.rows, m.cols, m.type(), storage.data() + 1, step);  // odd address as well
  m.copyTo(out);
  return out;
}

TEST(Aligner, CropPutsTheFaceOnTheTemplate) {
  const cv::Mat image = load_bgr(kAstronaut);
  FaceAligner aligner(shape_model());
  const std::vector<AlignedFace> faces = aligner.align(image, PixelFormat::kBGR);
  ASSERT_EQ(faces.size(), 1u);
  const AlignedFace& face = faces[0];
  ASSERT_EQ(face.crop.size(), cv::Size(256, 256));
  ASSERT_EQ(face.crop.type(), CV_8UC3);
  EXPECT_LT(cv::norm(compose(face.forward, face.inverse) - cv::Matx23d(1, 0, 0, 0, 1, 0)), 1e-9);
  // Fitted again inside the crop itself, the face sits where the template says: within 1 % of
  // the crop in position, 2 % in scale, 1.5 degrees in angle.
  const TemplateBox& unit = canonical_detector_box();
  const FaceBox in_crop{unit.center * 256 - cv::Point2d(0.5, 0.5), unit.size * 256, 0, 0};
  const Landmarks lm = shape_model()->fit(face.crop, PixelFormat::kRGB, in_crop);
  const CropPose pose = pose_from_forward(fit_to_template(lm, 256), 256);
  EXPECT_LT(cv::norm(pose.center - cv::Point2d(127.5, 127.5)), 2.56);
  EXPECT_NEAR(pose.side, 256, 256 * 0.02);
  EXPECT_LT(std::abs(pose.angle_rad) * 180 / std::numbers::pi, 1.5);
  // The colour order is as asked: RGB crop vs BGR frame.
  cv::Mat bgr_crop;
  cv::cvtColor(face.crop, bgr_crop, cv::COLOR_RGB2BGR);
  AlignerOptions bgr;
  bgr.crop_format = PixelFormat::kBGR;
  EXPECT_EQ(cv::norm(FaceAligner(shape_model(), bgr).align(image, PixelFormat::kBGR)[0].crop, bgr_crop, cv::NORM_INF), 0);
}

TEST(Aligner, CropsPastTheFrameEdgeAreMirrored) {
  // A face close to the top-left corner: its crop reaches well past two edges of the frame.
  std::mt19937 rng(10);
  const cv::Mat frame =
      place(astronaut_head(), random_background({480, 360}, rng), similarity(kHeadFaceCentre, {70, 60}, 0, 1.2));
  FaceAligner aligner(shape_model());
  const std::vector<AlignedFace> faces = aligner.align(frame, PixelFormat::kBGR);
  ASSERT_EQ(faces.size(), 1u);
  const cv::Point2d corner = apply(faces[0].inverse, {0, 0});
  ASSERT_LT(corner.x, -20);  // the crop's corner lies outside the frame
  ASSERT_LT(corner.y, -20);
  cv::Mat grey;
  cv::cvtColor(faces[0].crop, grey, cv::COLOR_RGB2GRAY);
  // No black wedge: every pixel comes from the frame (whose darkest pixels are far from 0).
  double darkest_frame, darkest_crop;
  cv::Mat frame_grey;
  cv::cvtColor(frame, frame_grey, cv::COLOR_BGR2GRAY);
  cv::minMaxLoc(frame_grey, &darkest_frame);
  cv::minMaxLoc(grey, &darkest_crop);
  EXPECT_GE(darkest_crop, darkest_frame);
  // And it is the mirror image: the row just above the frame's top edge equals the one below it.
  const cv::Matx23d& fwd = faces[0].forward;
  const cv::Point2d above = apply(fwd, {100, -10}), below = apply(fwd, {100, 10});
  const cv::Vec3b a = faces[0].crop.at<cv::Vec3b>(cvRound(above.y), cvRound(above.x));
  const cv::Vec3b b = faces[0].crop.at<cv::Vec3b>(cvRound(below.y), cvRound(below.x));
  EXPECT_LE(cv::norm(cv::Vec3d(a) - cv::Vec3d(b)), 40);
}

TEST(Aligner, AnyCropSizeFramesTheFaceAlike) {
  const cv::Mat image = load_bgr(kAstronaut);
  std::vector<cv::Mat> crops;
  for (int size : {128, 256, 512}) {
    AlignerOptions options;
    options.crop_size = size;
    const std::vector<AlignedFace> faces = FaceAligner(shape_model(), options).align(image, PixelFormat::kBGR);
    ASSERT_EQ(faces.size(), 1u);
    ASSERT_EQ(faces[0].crop.size(), cv::Size(size, size));
    cv::Mat at_256;
    cv::resize(faces[0].crop, at_256, {256, 256}, 0, 0, size > 256 ? cv::INTER_AREA : cv::INTER_LINEAR);
    crops.push_back(at_256);
  }
  // The same framing at every size: rescaled to 256 they differ only by resampling.
  cv::Mat diff;
  cv::absdiff(crops[2], crops[1], diff);
  EXPECT_LT(cv::mean(diff)[0], 1.0);
  cv::absdiff(crops[0], crops[1], diff);
  EXPECT_LT(cv::mean(diff)[0], 5.0);  // 128 px upsampled is blurrier
}

TEST(Aligner, EveryPixelFormatAndStrideGivesTheSameCrop) {
  const cv::Mat image = load_bgr(kAstronaut);
  AlignerOptions options;
  options.still_fit_samples = 1;  // identical inputs must give identical outputs; keep it quick
  FaceAligner aligner(shape_model(), options);
  const std::vector<AlignedFace> reference = aligner.align(image, PixelFormat::kBGR);
  ASSERT_EQ(reference.size(), 1u);
  for (PixelFormat f : {PixelFormat::kBGR, PixelFormat::kRGB, PixelFormat::kBGRx, PixelFormat::kRGBx,
                        PixelFormat::kxRGB, PixelFormat::kxBGR}) {
    for (int pad : {0, 1, 7}) {
      std::vector<uchar> storage;
      const cv::Mat frame = with_stride(repack(image, f), pad, storage);
      const std::vector<AlignedFace> faces = aligner.align(frame, f);
      ASSERT_EQ(faces.size(), 1u) << to_string(f) << " pad " << pad;
      EXPECT_EQ(cv::norm(faces[0].crop, reference[0].crop, cv::NORM_INF), 0) << to_string(f) << " pad " << pad;
      EXPECT_LT(mean_distance(faces[0].landmarks, reference[0].landmarks), 1e-9);
    }
  }
}

TEST(Aligner, SeveralFacesInOneFrame) {
  const cv::Mat head = astronaut_head();
  std::mt19937 rng(8);
  cv::Mat frame = random_background({1280, 720}, rng);
  const cv::Point2d centres[] = {{220, 330}, {640, 380}, {1060, 330}};
  const double scales[] = {1.3, 1.5, 1.4};
  for (int i = 0; i < 3; ++i) frame = place(head, frame, similarity(kHeadFaceCentre, centres[i], 8.0 * (i - 1), scales[i]));
  AlignerOptions options;
  options.detector.max_width = 0;  // faces this small need the full-resolution detector
  FaceAligner aligner(shape_model(), options);
  const std::vector<AlignedFace> faces = aligner.process(frame, PixelFormat::kBGR);
  ASSERT_EQ(faces.size(), 3u);
  std::vector<int> ids;
  for (const AlignedFace& f : faces) {
    ids.push_back(f.id);
    EXPECT_TRUE(f.detected);
    EXPECT_LT(template_residual(f.landmarks), 0.05);
  }
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(std::unique(ids.begin(), ids.end()), ids.end()) << "ids must differ";
  EXPECT_GT(faces[0].box.size, faces[2].box.size);  // largest first
}

TEST(Aligner, BadInputGivesAClearErrorOrNothing_n) {
  FaceAligner aligner(shape_model());
  EXPECT_TRUE(aligner.process(cv::Mat(), PixelFormat::kBGR).empty());
  EXPECT_TRUE(aligner.align(cv::Mat(), PixelFormat::kBGR).empty());
  EXPECT_TRUE(aligner.process(cv::Mat(1, 1, CV_8UC3, cv::Scalar::all(9)), PixelFormat::kBGR).empty());
  EXPECT_TRUE(aligner.align(cv::Mat(1, 1, CV_8UC4), PixelFormat::kxRGB).empty());
  EXPECT_TRUE(aligner.process(cv::Mat(3000, 12, CV_8UC3, cv::Scalar::all(50)), PixelFormat::kBGR).empty());
  EXPECT_THROW(aligner.process(cv::Mat(64, 64, CV_8UC1), PixelFormat::kBGR), AlignError);
  EXPECT_THROW(aligner.process(cv::Mat(64, 64, CV_16UC3), PixelFormat::kBGR), AlignError);
  EXPECT_THROW(aligner.process(cv::Mat(64, 64, CV_8UC4), PixelFormat::kRGB), AlignError);
  EXPECT_THROW(aligner.process(cv::Mat(64, 64, CV_32FC3), PixelFormat::kRGB), AlignError);
  EXPECT_THROW(aligner.align(cv::Mat(2, kMaxFrameSide + 1, CV_8UC3), PixelFormat::kBGR), AlignError);
  EXPECT_THROW(shape_model()->fit(load_bgr(kAstronaut), PixelFormat::kBGR, FaceBox{{10, 10}, 0, 0, 0}), AlignError);
  EXPECT_THROW(shape_model()->fit(cv::Mat(), PixelFormat::kBGR, FaceBox{{10, 10}, 50, 0, 0}), AlignError);
  EXPECT_THROW(FaceAligner(nullptr), AlignError);
  AlignerOptions bad;
  bad.detect_interval = 0;
  EXPECT_THROW(FaceAligner(shape_model(), bad), AlignError);
  bad = {};
  bad.crop_format = PixelFormat::kBGRx;
  EXPECT_THROW(FaceAligner(shape_model(), bad), AlignError);

  // An 8K frame without a face: nothing, in bounded time (detection runs on a 640 px copy).
  std::mt19937 rng(9);
  const cv::Mat huge = random_background({7680, 4320}, rng);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(aligner.process(huge, PixelFormat::kBGR).empty());
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("8K frame without a face: %.0f ms\n", 1000 * seconds);
  // A frame that changes size mid-stream (renegotiated caps) just restarts tracking.
  EXPECT_EQ(aligner.process(load_bgr(kAstronaut), PixelFormat::kBGR).size(), 1u);
}

}  // namespace
}  // namespace starganv2::align::test
