// The seams figure (align/face_metrics.h: how much a generator's nearest-neighbour upsampling shows)
// on pictures whose answer is known: a smooth texture (no grid), the same texture brought down and
// back up by nearest neighbour (StarGAN v2's decoder upsampling) with a convolution's light blur on
// top, at 2x and 4x, and the grid moved off the generator's phase.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <vector>

#include <opencv2/imgproc.hpp>

#include "align/face_metrics.h"
#include "align/image.h"
#include "helpers.h"

namespace starganv2::align::test {
namespace {

constexpr int kSize = 64;  // the demo model's crops

cv::Mat photo_like(uint64_t seed) {
  cv::Mat out;
  smooth_texture({kSize, kSize}, seed, 1.5, 30, 225).convertTo(out, CV_8UC3);
  return out;
}

// Down by `factor` (area), up again by nearest neighbour as the decoder's upsamplings do, then a
// 3x3 blur: what a convolution that has not learnt to hide the seams leaves.
cv::Mat upsampled(const cv::Mat& image, int factor) {
  cv::Mat small, big, out;
  cv::resize(image, small, {kSize / factor, kSize / factor}, 0, 0, cv::INTER_AREA);
  cv::resize(small, big, {kSize, kSize}, 0, 0, cv::INTER_NEAREST);
  cv::GaussianBlur(big, out, {3, 3}, 0.6, 0.6, cv::BORDER_REFLECT_101);
  return out;
}

TEST(Seams, APictureWithoutAGridGivesAboutOne) {
  for (uint64_t seed : {1, 2, 3}) {
    const double s = upsampling_seams(photo_like(seed));
    EXPECT_GT(s, 0.9) << seed;
    EXPECT_LT(s, 1.1) << seed;
  }
  // A flat crop: no steps anywhere, nothing shows.
  EXPECT_EQ(upsampling_seams(cv::Mat(kSize, kSize, CV_8UC3, cv::Scalar(90, 120, 150))), 1.0);
}

TEST(Seams, NearestNeighbourUpsamplingShowsAtEveryLevel) {
  const cv::Mat photo = photo_like(4);
  const double none = upsampling_seams(photo);
  // Without the blur, 2x2 cells are flat inside: every step is a seam.
  cv::Mat small, bare;
  cv::resize(photo, small, {kSize / 2, kSize / 2}, 0, 0, cv::INTER_AREA);
  cv::resize(small, bare, {kSize, kSize}, 0, 0, cv::INTER_NEAREST);
  EXPECT_TRUE(std::isinf(upsampling_seams(bare)));
  // Blurred, 2x (the last upsampling) and 4x (a 16x16 bottleneck at 64 px): well above a photo.
  const double two = upsampling_seams(upsampled(photo, 2)), four = upsampling_seams(upsampled(photo, 4));
  std::printf("seams: photo %.3f, 2x nearest + blur %.3f, 4x %.3f\n", none, two, four);
  EXPECT_GT(two, 1.5 * none);
  EXPECT_GT(four, 1.5 * none);
  // The figure is the generator's own grid: moved by a pixel, the seams fall inside the cells it
  // measures and the figure drops below a photo's.
  cv::Mat shifted;
  const cv::Matx23d M(1, 0, 1, 0, 1, 1);
  cv::warpAffine(upsampled(photo, 2), shifted, M, {kSize, kSize}, cv::INTER_NEAREST, cv::BORDER_REFLECT_101);
  EXPECT_LT(upsampling_seams(shifted), none);
}

TEST(Seams, GreyRgbAndRgbaAgreeAndTinyCropsAreRefused) {
  const cv::Mat rgb = upsampled(photo_like(5), 2);
  cv::Mat grey, rgba;
  cv::cvtColor(rgb, grey, cv::COLOR_RGB2GRAY);
  cv::cvtColor(rgb, rgba, cv::COLOR_RGB2RGBA);
  EXPECT_DOUBLE_EQ(upsampling_seams(rgb), upsampling_seams(grey));
  EXPECT_DOUBLE_EQ(upsampling_seams(rgb), upsampling_seams(rgba));
  EXPECT_THROW(upsampling_seams(cv::Mat(3, 8, CV_8UC3, cv::Scalar::all(0))), AlignError);
}

TEST(Seams, TallyAveragesTheCropsCounted) {
  FaceTally t;
  EXPECT_TRUE(std::isnan(t.seams()));
  const cv::Mat a = photo_like(6), b = upsampled(photo_like(7), 2);
  const double sa = t.add_seams(a), sb = t.add_seams(b);
  EXPECT_EQ(sa, upsampling_seams(a));
  EXPECT_EQ(sb, upsampling_seams(b));
  EXPECT_DOUBLE_EQ(t.seams(), (sa + sb) / 2);
}

}  // namespace
}  // namespace starganv2::align::test
