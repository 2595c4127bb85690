// The flicker measure (align/flicker.h) on synthetic clips whose answer is known: a textured
// scene drifting by a sub-pixel step per frame, and outputs that follow it exactly, follow it
// with a colour change carried along the motion, or add noise of their own every frame.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include <opencv2/imgproc.hpp>

#include "align/flicker.h"
#include "align/image.h"
#include "helpers.h"

namespace starganv2::align::test {
namespace {

constexpr int kWidth = 160, kHeight = 120, kFrames = 6;
constexpr double kStepX = 1.3, kStepY = 0.6;  // drift per frame, pixels

// A smooth random colour texture, larger than the frames so that they can drift across it.
// Float: colour changes are added before the frames are cut and rounded.
cv::Mat texture(uint64_t seed) { return smooth_texture({kWidth + 60, kHeight + 60}, seed, 2.5, 40, 215); }

// Frame t: the texture moved by t steps (bilinear), rounded to 8 bits.
cv::Mat frame_of(const cv::Mat& tex, int t) {
  const cv::Matx23d M(1, 0, -10 - t * kStepX, 0, 1, -10 - t * kStepY);
  cv::Mat f, out;
  cv::warpAffine(tex, f, M, {kWidth, kHeight}, cv::INTER_LINEAR, cv::BORDER_REFLECT_101);
  f.convertTo(out, CV_8UC3);
  return out;
}

// A soft disc in texture coordinates (1 inside, Gaussian edge): a "face" that moves with the scene.
cv::Mat disc_alpha() {
  cv::Mat a = cv::Mat::zeros(kHeight + 60, kWidth + 60, CV_32FC1);
  cv::circle(a, {90, 75}, 28, cv::Scalar(1), cv::FILLED, cv::LINE_AA);
  cv::GaussianBlur(a, a, {0, 0}, 3);
  return a;
}

std::vector<cv::Mat> clip(const cv::Mat& tex) {
  std::vector<cv::Mat> frames;
  for (int t = 0; t < kFrames; ++t) frames.push_back(frame_of(tex, t));
  return frames;
}

FlickerSummary measure(const std::vector<cv::Mat>& in, const std::vector<cv::Mat>& out, FlickerOptions o = {}) {
  FlickerMeter meter(o);
  for (size_t t = 0; t < in.size(); ++t) {
    const auto pair = meter.add(in[t], out[t]);
    EXPECT_EQ(pair.has_value(), t > 0);
  }
  return meter.summary();
}

TEST(Flicker, OutputEqualToInputGivesExactlyOne) {
  const std::vector<cv::Mat> in = clip(texture(1));
  // Over every pixel: the same numbers on both sides, so exactly 1, with an input that did move.
  const FlickerSummary all = measure(in, in, {.region = FlickerOptions::Region::kAll});
  EXPECT_EQ(all.measured, kFrames - 1);
  EXPECT_GT(all.input_error, 0);
  EXPECT_EQ(all.ratio, 1.0);
  for (const FlickerPair& p : all.pairs) EXPECT_EQ(p.ratio(), 1.0);
  // Over the changed pixels: there are none; the output is the input, so 1 by definition.
  const FlickerSummary changed = measure(in, in);
  EXPECT_TRUE(changed.unchanged);
  EXPECT_EQ(changed.measured, 0);
  EXPECT_EQ(changed.ratio, 1.0);
}

TEST(Flicker, TheFlowFollowsTheMotion) {
  // The warp must undo the drift: the input's warping error is far below its plain
  // frame-to-frame difference (which a zero or wrong flow would give).
  const std::vector<cv::Mat> in = clip(texture(2));
  const FlickerSummary s = measure(in, in, {.region = FlickerOptions::Region::kAll});
  double plain = 0;
  for (int t = 0; t + 1 < kFrames; ++t) {
    cv::Mat a, b, d;
    in[t].convertTo(a, CV_32FC3, 1 / 255.0);
    in[t + 1].convertTo(b, CV_32FC3, 1 / 255.0);
    cv::Mat diff = a - b;
    const cv::Scalar m = cv::mean(diff.mul(diff));
    plain += (m[0] + m[1] + m[2]) / 3;
  }
  plain /= kFrames - 1;
  EXPECT_LT(s.input_error, 0.1 * plain) << "warped " << s.input_error << ", unwarped " << plain;
  // Nearly every pixel passes the occlusion check on a pure drift (the border it leaves does not).
  for (const FlickerPair& p : s.pairs) EXPECT_GT(p.pixels, 0.85 * kWidth * kHeight);
}

TEST(Flicker, ChannelSwapGivesOne) {
  // A fixed colour map that keeps every difference (blue and red swapped): the output changes
  // everywhere and moves exactly as the input does.
  const std::vector<cv::Mat> in = clip(texture(3));
  std::vector<cv::Mat> out;
  for (const cv::Mat& f : in) {
    cv::Mat o;
    cv::cvtColor(f, o, cv::COLOR_BGR2RGB);
    out.push_back(o);
  }
  const FlickerSummary s = measure(in, out);
  EXPECT_EQ(s.measured, kFrames - 1);
  EXPECT_FALSE(s.unchanged);
  EXPECT_NEAR(s.ratio, 1.0, 1e-9);
}

TEST(Flicker, ColourChangeCarriedAlongTheMotionGivesAboutOne) {
  // The "face" (a soft disc) recoloured in texture coordinates, so that the change moves with
  // the scene: only rounding and the disc's soft edge differ from the input's own error.
  const cv::Mat tex = texture(4);
  cv::Mat recoloured = tex.clone();
  const cv::Mat alpha = disc_alpha();
  for (int y = 0; y < tex.rows; ++y)
    for (int x = 0; x < tex.cols; ++x) recoloured.at<cv::Vec3f>(y, x) += alpha.at<float>(y, x) * cv::Vec3f(30, -25, 15);
  std::vector<cv::Mat> in = clip(tex), out;
  for (int t = 0; t < kFrames; ++t) out.push_back(frame_of(recoloured, t));
  const FlickerSummary s = measure(in, out);
  EXPECT_EQ(s.measured, kFrames - 1);
  // The changed region is the disc (about pi 31^2 px with its edge), not the frame.
  for (const FlickerPair& p : s.pairs) {
    EXPECT_GT(p.pixels, 2000);
    EXPECT_LT(p.pixels, 6000);
  }
  EXPECT_NEAR(s.ratio, 1.0, 0.1);
}

TEST(Flicker, NoiseOfItsOwnEveryFrameGivesAHighRatio) {
  // The same disc, noised independently in every frame: flicker the input does not have.
  const cv::Mat tex = texture(5);
  const cv::Mat alpha = disc_alpha();
  cv::RNG rng(7);
  std::vector<cv::Mat> in = clip(tex), out;
  for (int t = 0; t < kFrames; ++t) {
    const cv::Matx23d M(1, 0, -10 - t * kStepX, 0, 1, -10 - t * kStepY);
    cv::Mat a;
    cv::warpAffine(alpha, a, M, {kWidth, kHeight}, cv::INTER_LINEAR);
    cv::Mat noise(kHeight, kWidth, CV_32FC3), f, o;
    rng.fill(noise, cv::RNG::NORMAL, 0, 8);
    in[t].convertTo(f, CV_32FC3);
    cv::Mat a3;
    cv::merge(std::vector<cv::Mat>{a, a, a}, a3);
    f += noise.mul(a3);
    f.convertTo(o, CV_8UC3);
    out.push_back(o);
  }
  const FlickerSummary s = measure(in, out);
  EXPECT_EQ(s.measured, kFrames - 1);
  EXPECT_GT(s.ratio, 3.0);
  for (const FlickerPair& p : s.pairs) EXPECT_GT(p.ratio(), 2.0) << "pair " << p.frame;
}

TEST(Flicker, Deterministic) {
  const cv::Mat tex = texture(6);
  std::vector<cv::Mat> in = clip(tex), out;
  for (const cv::Mat& f : in) out.push_back(f + cv::Scalar(3, 0, 0));
  const FlickerSummary a = measure(in, out), b = measure(in, out);
  ASSERT_EQ(a.pairs.size(), b.pairs.size());
  for (size_t i = 0; i < a.pairs.size(); ++i) {
    EXPECT_EQ(a.pairs[i].pixels, b.pairs[i].pixels);
    EXPECT_EQ(a.pairs[i].input_error, b.pairs[i].input_error);
    EXPECT_EQ(a.pairs[i].output_error, b.pairs[i].output_error);
  }
}

TEST(Flicker, BadFrames_n) {
  const cv::Mat f(kHeight, kWidth, CV_8UC3, cv::Scalar::all(100));
  const cv::Mat small(kHeight / 2, kWidth, CV_8UC3, cv::Scalar::all(100));
  const cv::Mat gray(kHeight, kWidth, CV_8UC1, cv::Scalar::all(100));
  EXPECT_THROW(warping_error(f, f, f, small), AlignError);
  EXPECT_THROW(warping_error(f, f, gray, f), AlignError);
  EXPECT_THROW(warping_error(cv::Mat(), f, f, f), AlignError);
  FlickerMeter meter;
  meter.add(f, f);
  EXPECT_THROW(meter.add(small, small), AlignError);  // the video changed size
  EXPECT_THROW(FlickerMeter({.dilate_px = -1}), AlignError);
}

}  // namespace
}  // namespace starganv2::align::test
