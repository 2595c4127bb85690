// Frames, pixel formats and the antialiased, mirror-padding warp (align/image.h).
#include <gtest/gtest.h>

#include <random>

#include <opencv2/imgproc.hpp>

#include "align/image.h"
#include "helpers.h"

namespace starganv2::align::test {
namespace {

constexpr PixelFormat kAllFormats[] = {PixelFormat::kBGR,  PixelFormat::kRGB,  PixelFormat::kBGRx,
                                       PixelFormat::kRGBx, PixelFormat::kxRGB, PixelFormat::kxBGR};

// `bgr` repacked as `format`, with junk in the padding byte.
cv::Mat repack(const cv::Mat& bgr, PixelFormat format) {
  cv::Mat out(bgr.size(), CV_8UC(channels(format)), cv::Scalar::all(77));
  const ChannelIndex c = channel_index(format);
  const int pairs[] = {2, c.r, 1, c.g, 0, c.b};
  cv::mixChannels(&bgr, 1, &out, 1, pairs, 3);
  return out;
}

cv::Mat random_image(cv::Size size, unsigned seed) {
  cv::Mat m(size, CV_8UC3);
  cv::theRNG().state = seed;
  cv::randu(m, cv::Scalar::all(0), cv::Scalar::all(256));
  return m;
}

TEST(Image, EveryFormatGivesTheSameGreyAndColours) {
  const cv::Mat bgr = random_image({37, 23}, 1);
  cv::Mat reference;
  cv::cvtColor(bgr, reference, cv::COLOR_BGR2GRAY);
  for (PixelFormat f : kAllFormats) {
    const cv::Mat packed = repack(bgr, f);
    EXPECT_EQ(cv::norm(to_gray(packed, f), reference, cv::NORM_INF), 0) << to_string(f);
    EXPECT_EQ(cv::norm(to_three_channels(packed, f, PixelFormat::kBGR), bgr, cv::NORM_INF), 0) << to_string(f);
    cv::Mat rgb;
    cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
    EXPECT_EQ(cv::norm(to_three_channels(packed, f, PixelFormat::kRGB), rgb, cv::NORM_INF), 0) << to_string(f);
  }
}

TEST(Image, FramesThatCannotBeReadAreClearErrors_n) {
  const auto message = [](const cv::Mat& m, PixelFormat f) -> std::string {
    try {
      check_frame(m, f);
    } catch (const AlignError& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(message(cv::Mat(10, 10, CV_8UC1), PixelFormat::kBGR).find("greyscale"), std::string::npos);
  EXPECT_NE(message(cv::Mat(10, 10, CV_16UC3), PixelFormat::kBGR).find("8-bit"), std::string::npos);
  EXPECT_NE(message(cv::Mat(10, 10, CV_8UC3), PixelFormat::kBGRx).find("needs 4"), std::string::npos);
  EXPECT_NE(message(cv::Mat(10, 10, CV_8UC4), PixelFormat::kRGB).find("needs 3"), std::string::npos);
  EXPECT_NE(message(cv::Mat(2, kMaxFrameSide + 1, CV_8UC3), PixelFormat::kBGR).find("larger than"), std::string::npos);
  EXPECT_EQ(message(cv::Mat(), PixelFormat::kBGR), "");
  EXPECT_EQ(message(cv::Mat(1, 1, CV_8UC4), PixelFormat::kxRGB), "");
}

TEST(Image, WarpMatchesOpenCVWhereNoAntialiasingIsNeeded) {
  const cv::Mat src = random_image({300, 200}, 2);
  cv::Mat ours, reference;
  const cv::Matx23d shift(1, 0, -40, 0, 1, 25);
  warp_affine(src, ours, shift, {120, 90}, cv::BORDER_REFLECT_101);
  cv::warpAffine(src, reference, shift, {120, 90}, cv::INTER_LINEAR, cv::BORDER_REFLECT_101);
  EXPECT_EQ(cv::norm(ours, reference, cv::NORM_INF), 0);
  // Only the region the output reads is touched, with shifted coordinates: the fixed-point
  // sampling positions may differ by 1/32 px, i.e. one grey level.
  const cv::Matx23d turn = similarity({150, 100}, {60, 45}, 17.0, 1.3);
  warp_affine(src, ours, turn, {120, 90}, cv::BORDER_REFLECT_101);
  cv::warpAffine(src, reference, turn, {120, 90}, cv::INTER_LINEAR, cv::BORDER_REFLECT_101);
  EXPECT_LE(cv::norm(ours, reference, cv::NORM_INF), 2);
}

TEST(Image, ShrinkingWarpDoesNotAlias) {
  // A one-pixel checkerboard is mid-grey seen from afar; plain bilinear sampling at 1/4 picks
  // single squares and shows black and white.
  cv::Mat board(256, 256, CV_8UC1);
  for (int y = 0; y < 256; ++y)
    for (int x = 0; x < 256; ++x) board.at<uchar>(y, x) = (x + y) % 2 ? 255 : 0;
  const cv::Matx23d quarter = similarity({127.5, 127.5}, {31.5, 31.5}, 3.0, 0.25);
  cv::Mat ours, plain;
  warp_affine(board, ours, quarter, {64, 64}, cv::BORDER_REFLECT_101);
  cv::warpAffine(board, plain, quarter, {64, 64}, cv::INTER_LINEAR, cv::BORDER_REFLECT_101);
  cv::Scalar mean, stddev, plain_mean, plain_stddev;
  cv::meanStdDev(ours, mean, stddev);
  cv::meanStdDev(plain, plain_mean, plain_stddev);
  EXPECT_NEAR(mean[0], 127.5, 3);
  EXPECT_LT(stddev[0], 8);
  EXPECT_GT(plain_stddev[0], 40);  // what the pre-averaging prevents
}

TEST(Image, BlockMeansAreOpenCVsAreaMeansForEveryBlockSideAndChannelCount) {
  // cv::resize's integer INTER_AREA is the reference; the block sums are exact and only the final
  // rounding may differ (one level). k = 2 is OpenCV's own path; 3..16 use 16-bit sums, above 16
  // 32-bit ones; 3 and 4 channels add whole pixels as 64-bit words.
  for (int cn = 1; cn <= 4; ++cn) {
    for (int k : {1, 2, 3, 5, 16, 17, 40}) {
      cv::Mat src(5 * k + k / 2, 7 * k + 1, CV_8UC(cn));  // sides that k does not divide
      cv::theRNG().state = 100 + cn * 50 + k;
      cv::randu(src, cv::Scalar::all(0), cv::Scalar::all(256));
      src(cv::Rect(0, 0, k, k)).setTo(cv::Scalar::all(255));  // the largest sums: no overflow
      cv::Mat ours, reference;
      block_mean(src, k, ours);
      const cv::Size blocks(src.cols / k, src.rows / k);
      cv::resize(src(cv::Rect(0, 0, blocks.width * k, blocks.height * k)), reference, blocks, 0, 0, cv::INTER_AREA);
      ASSERT_EQ(ours.size(), reference.size()) << cn << " channels, k " << k;
      ASSERT_EQ(ours.type(), src.type());
      EXPECT_LE(cv::norm(ours, reference, cv::NORM_INF), 1) << cn << " channels, k " << k;
      for (int c = 0; c < cn; ++c) EXPECT_EQ(ours.ptr<uchar>(0)[c], 255) << cn << " channels, k " << k;
    }
  }
  cv::Mat out;
  EXPECT_THROW(block_mean(cv::Mat(4, 4, CV_8UC1), 5, out), AlignError);
  EXPECT_THROW(block_mean(cv::Mat(4, 4, CV_8UC1), 0, out), AlignError);
  EXPECT_THROW(block_mean(cv::Mat(4, 4, CV_16UC1), 2, out), AlignError);
}

TEST(Image, GreyOfBlockMeansIsTheMeanOfGreyInEveryFormat) {
  const cv::Mat bgr = random_image({92, 61}, 5);
  cv::Mat grey, reference;
  cv::cvtColor(bgr(cv::Rect(0, 0, 90, 60)), grey, cv::COLOR_BGR2GRAY);
  cv::resize(grey, reference, {30, 20}, 0, 0, cv::INTER_AREA);
  for (PixelFormat f : kAllFormats) {
    const cv::Mat ours = block_mean_gray(repack(bgr, f), f, 3);
    ASSERT_EQ(ours.size(), reference.size()) << to_string(f);
    EXPECT_LE(cv::norm(ours, reference, cv::NORM_INF), 1) << to_string(f);
  }
}

TEST(Image, WarpPastTheEdgeMirrors) {
  const cv::Mat src = random_image({64, 48}, 3);
  cv::Mat padded;
  cv::copyMakeBorder(src, padded, 20, 20, 20, 20, cv::BORDER_REFLECT_101);
  cv::Mat ours;
  // The output starts 20 px above and left of the frame and ends 20 px past it.
  warp_affine(src, ours, cv::Matx23d(1, 0, 20, 0, 1, 20), padded.size(), cv::BORDER_REFLECT_101);
  EXPECT_EQ(cv::norm(ours, padded, cv::NORM_INF), 0);
  // Entirely outside, far away: still filled from the frame, never black.
  warp_affine(src, ours, cv::Matx23d(1, 0, -500, 0, 1, 300), {30, 30}, cv::BORDER_REFLECT_101);
  EXPECT_GT(cv::mean(ours)[0], 20);
}

TEST(Image, AffineHelpers) {
  const cv::Matx23d M = similarity({10, 20}, {-5, 7}, 33.0, 1.7);
  const cv::Matx23d I = compose(M, invert_affine(M));
  EXPECT_LT(cv::norm(I - cv::Matx23d(1, 0, 0, 0, 1, 0)), 1e-12);
  const cv::Point2d p = apply(M, {3, 4});
  const cv::Point2d q = apply(invert_affine(M), p);
  EXPECT_NEAR(q.x, 3, 1e-12);
  EXPECT_NEAR(q.y, 4, 1e-12);
  cv::Mat out;
  EXPECT_THROW(warp_affine(cv::Mat(4, 4, CV_8UC1), out, cv::Matx23d(0, 0, 0, 0, 0, 0), {4, 4}, cv::BORDER_CONSTANT),
               AlignError);
}

}  // namespace
}  // namespace starganv2::align::test
