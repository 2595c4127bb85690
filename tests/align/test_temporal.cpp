// Temporal stabilisation (align/temporal.h) on synthetic crops whose right answer is known: a
// textured "face" drifting by a sub-pixel step per frame, and a "generator" that follows it but
// adds noise of its own every frame (flicker). Stabilised, the output must flicker less (by the
// warping-error ratio of align/flicker.h), show what changed in the input at once (no ghosting),
// show a new style at once, and be exact: off = the translation itself, the same bytes every run.
#include <gtest/gtest.h>

#include <vector>

#include <opencv2/imgproc.hpp>

#include "align/flicker.h"
#include "align/image.h"
#include "align/temporal.h"
#include "helpers.h"

namespace starganv2::align::test {
namespace {

constexpr int kCrop = 64, kFrames = 12;
constexpr double kStepX = 0.7, kStepY = 0.4;  // drift per frame, crop pixels

// A textured "face", larger than the crop so that the crop can drift across it.
cv::Mat texture() { return smooth_texture({kCrop + 40, kCrop + 40}, 11, 2.0, 50, 205); }

// Crop t: the texture moved by t steps, as an aligned crop of a drifting face is.
cv::Mat crop_at(const cv::Mat& tex, int t) {
  const cv::Matx23d m(1, 0, -10 - t * kStepX, 0, 1, -10 - t * kStepY);
  cv::Mat f, out;
  cv::warpAffine(tex, f, m, {kCrop, kCrop}, cv::INTER_LINEAR, cv::BORDER_REFLECT_101);
  f.convertTo(out, CV_8UC3);
  return out;
}

// What a flickering generator makes of a crop: its colours inverted (a "style"), plus noise of
// its own that is new every frame.
cv::Mat translate(const cv::Mat& crop, int t, double noise_sigma = 10) {
  cv::Mat styled = cv::Scalar::all(255) - crop;
  cv::Mat noise(crop.size(), CV_16SC3), out;
  cv::RNG rng(100 + t);
  rng.fill(noise, cv::RNG::NORMAL, 0, noise_sigma);
  styled.convertTo(out, CV_16SC3);
  out += noise;
  out.convertTo(out, CV_8UC3);
  return out;
}

double mean_abs(const cv::Mat& a, const cv::Mat& b) {
  cv::Mat d;
  cv::absdiff(a, b, d);
  const cv::Scalar s = cv::mean(d);
  return (s[0] + s[1] + s[2]) / 3;
}

bool same_bytes(const cv::Mat& a, const cv::Mat& b) {
  return a.size() == b.size() && a.type() == b.type() && cv::countNonZero(a.reshape(1) != b.reshape(1)) == 0;
}

TEST(Temporal, OffReturnsTheTranslationItself) {
  TemporalStabiliser off;
  EXPECT_FALSE(off.enabled());
  const cv::Mat tex = texture();
  for (int t = 0; t < 3; ++t) {
    const cv::Mat crop = crop_at(tex, t), translated = translate(crop, t);
    const cv::Mat shown = off.stabilise(0, crop, translated);
    EXPECT_EQ(shown.data, translated.data);  // not even copied
  }
  EXPECT_EQ(off.faces(), 0);
}

TEST(Temporal, FirstFrameOfAFaceIsItsTranslation) {
  TemporalStabiliser s({.strength = 0.8});
  const cv::Mat tex = texture();
  const cv::Mat crop = crop_at(tex, 0), translated = translate(crop, 0);
  EXPECT_TRUE(same_bytes(s.stabilise(3, crop, translated), translated));
  EXPECT_EQ(s.faces(), 1);
}

// The measure and the stabiliser on a clip whose answer is known: the flickering generator's
// output scores far above 1; stabilised, the flicker it adds (ratio - 1) falls by more than half
// and the output stays near the noiseless translation, which moves with the input.
// Both flows: the files' (patch stride 4) and the live streams' cheaper one (8).
class TemporalFlow : public ::testing::TestWithParam<int> {};

TEST_P(TemporalFlow, StabilisationLowersTheFlickerOfANoisyGenerator) {
  const cv::Mat tex = texture();
  TemporalStabiliser s({.strength = 0.8, .flow_patch_stride = GetParam()});
  FlickerOptions all;
  all.region = FlickerOptions::Region::kAll;
  FlickerMeter raw(all), stable(all), clean(all);
  double error_raw = 0, error_stable = 0;
  for (int t = 0; t < kFrames; ++t) {
    const cv::Mat crop = crop_at(tex, t);
    const cv::Mat noiseless = translate(crop, t, 0), translated = translate(crop, t);
    const cv::Mat shown = s.stabilise(1, crop, translated);
    s.end_frame(std::vector<int>{1});
    raw.add(crop, translated);
    stable.add(crop, shown);
    clean.add(crop, noiseless);
    if (t >= kFrames / 2) {
      error_raw += mean_abs(translated, noiseless);
      error_stable += mean_abs(shown, noiseless);
    }
  }
  const double r_raw = raw.summary().ratio, r_stable = stable.summary().ratio, r_clean = clean.summary().ratio;
  EXPECT_LT(r_clean, 1.5) << "the noiseless translation moves with the input";
  EXPECT_GT(r_raw, 3.0) << "the noisy generator flickers";
  EXPECT_LT(r_stable - 1, 0.5 * (r_raw - 1)) << "raw " << r_raw << ", stabilised " << r_stable;
  EXPECT_LT(error_stable, 0.6 * error_raw) << "closer to the noiseless translation than the raw output";
}

INSTANTIATE_TEST_SUITE_P(Strides, TemporalFlow,
                         ::testing::Values(TemporalOptions::kFileFlowPatchStride, TemporalOptions::kLiveFlowPatchStride));

// The stride is used: the live flow's output is not the file flow's.
TEST(Temporal, TheLiveFlowIsAnotherFlow) {
  const cv::Mat tex = texture();
  TemporalStabiliser file({.strength = 0.8}),
      live({.strength = 0.8, .flow_patch_stride = TemporalOptions::kLiveFlowPatchStride});
  bool differ = false;
  for (int t = 0; t < 4; ++t) {
    const cv::Mat crop = crop_at(tex, t), translated = translate(crop, t);
    differ |= !same_bytes(file.stabilise(0, crop, translated), live.stabilise(0, crop, translated));
  }
  EXPECT_TRUE(differ);
}

// Where the input changes (a bright patch appears: a mouth opening, an occlusion), the output is
// the new translation there, not the carried one; elsewhere it is still stabilised.
TEST(Temporal, WhereTheInputChangesTheNewTranslationShows) {
  const cv::Mat tex = texture();
  TemporalStabiliser s({.strength = 0.9});
  const cv::Rect patch(20, 24, 16, 12);
  cv::Mat shown, translated;
  for (int t = 0; t < 6; ++t) {
    cv::Mat crop = crop_at(tex, t);
    if (t == 5) crop(patch).setTo(cv::Scalar(250, 250, 250));
    translated = translate(crop, t);
    shown = s.stabilise(1, crop, translated);
  }
  const cv::Rect inner(patch.x + 2, patch.y + 2, patch.width - 4, patch.height - 4);
  EXPECT_LT(mean_abs(shown(inner), translated(inner)), 0.5) << "the change shows at once";
  const cv::Rect away(44, 4, 16, 12);
  EXPECT_GT(mean_abs(shown(away), translated(away)), 2.0) << "elsewhere the output is still stabilised";
}

TEST(Temporal, ANewStyleShowsAtOnce) {
  const cv::Mat tex = texture();
  TemporalStabiliser s({.strength = 0.9});
  for (int t = 0; t < 4; ++t) s.stabilise(1, crop_at(tex, t), translate(crop_at(tex, t), t), /*style_key=*/5);
  const cv::Mat crop = crop_at(tex, 4), translated = translate(crop, 4);
  EXPECT_TRUE(same_bytes(s.stabilise(1, crop, translated, /*style_key=*/6), translated));
  // The same key again: stabilised from there on.
  const cv::Mat next = crop_at(tex, 5), next_translated = translate(next, 5);
  EXPECT_FALSE(same_bytes(s.stabilise(1, next, next_translated, 6), next_translated));
}

TEST(Temporal, AFaceThatLeftStartsAfreshAndFacesAreKeptApart) {
  const cv::Mat tex = texture();
  TemporalStabiliser s({.strength = 0.9});
  s.stabilise(1, crop_at(tex, 0), translate(crop_at(tex, 0), 0));
  s.stabilise(2, crop_at(tex, 0), translate(crop_at(tex, 0), 0));
  s.end_frame(std::vector<int>{1, 2});
  EXPECT_EQ(s.faces(), 2);
  s.end_frame(std::vector<int>{2});  // face 1 was not in this frame
  EXPECT_EQ(s.faces(), 1);
  const cv::Mat crop = crop_at(tex, 1), translated = translate(crop, 1);
  EXPECT_TRUE(same_bytes(s.stabilise(1, crop, translated), translated));
  EXPECT_FALSE(same_bytes(s.stabilise(2, crop, translated), translated));
  s.reset();
  EXPECT_EQ(s.faces(), 0);
}

TEST(Temporal, SameCallsGiveTheSameBytes) {
  const cv::Mat tex = texture();
  TemporalStabiliser a({.strength = 0.85}), b({.strength = 0.85});
  for (int t = 0; t < 6; ++t) {
    const cv::Mat crop = crop_at(tex, t), translated = translate(crop, t);
    EXPECT_TRUE(same_bytes(a.stabilise(0, crop, translated), b.stabilise(0, crop, translated))) << t;
  }
}

TEST(Temporal, BadOptionsAndCropsAreRefused) {
  EXPECT_THROW(TemporalStabiliser({.strength = 1.0}), AlignError);
  EXPECT_THROW(TemporalStabiliser({.strength = -0.1}), AlignError);
  EXPECT_THROW(TemporalStabiliser({.strength = 0.5, .change_levels = 0}), AlignError);
  EXPECT_THROW(TemporalStabiliser({.strength = 0.5, .flow_patch_stride = 0}), AlignError);
  EXPECT_THROW(TemporalStabiliser({.strength = 0.5, .flow_patch_stride = 9}), AlignError);
  TemporalStabiliser s({.strength = 0.5});
  const cv::Mat crop(kCrop, kCrop, CV_8UC3, cv::Scalar::all(100));
  EXPECT_THROW(s.stabilise(0, crop, cv::Mat(32, 32, CV_8UC3)), AlignError);
  EXPECT_THROW(s.stabilise(0, cv::Mat(), crop), AlignError);
  EXPECT_THROW(s.stabilise(0, crop, cv::Mat(kCrop, kCrop, CV_8UC1)), AlignError);
}

}  // namespace
}  // namespace starganv2::align::test
