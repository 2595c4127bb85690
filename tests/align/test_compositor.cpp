// Blending crops back (align/compositor.h).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include <opencv2/imgproc.hpp>

#include "align/compositor.h"
#include "align/face_aligner.h"
#include "helpers.h"

namespace starganv2::align::test {
namespace {

// Frame pixels the compositor may write for a face: where its warped mask is above 0.
cv::Mat reach(const Compositor& c, const cv::Matx23d& inverse, cv::Size frame) {
  cv::Mat alpha;
  warp_affine(c.mask(), alpha, inverse, frame, cv::BORDER_CONSTANT);
  return alpha;
}

TEST(Compositor, MaskCoversTheFaceAndFeathers) {
  const Compositor narrow(256, PixelFormat::kRGB, {.feather = 0.02});
  const Compositor wide(256, PixelFormat::kRGB, {.feather = 0.12});
  const Compositor standard;
  for (const Compositor* c : {&narrow, &standard, &wide}) {
    const cv::Mat& m = c->mask();
    ASSERT_EQ(m.type(), CV_32F);
    double lo, hi;
    cv::minMaxLoc(m, &lo, &hi);
    EXPECT_EQ(lo, 0);
    EXPECT_EQ(hi, 1);
    // Nose, eyes and mouth are fully inside (the outer eye and mouth corners lie in the ramp of a
    // very wide feather); the crop corners and border are fully outside.
    for (int i : c == &wide ? std::vector<int>{27, 30, 33, 51, 57} : std::vector<int>{30, 36, 45, 48, 54, 57}) {
      const cv::Point2d p = canonical_template()[i] * 256;
      EXPECT_EQ(m.at<float>(cvRound(p.y), cvRound(p.x)), 1.0f) << i;
    }
    EXPECT_EQ(cv::countNonZero(m.row(0)) + cv::countNonZero(m.row(255)) + cv::countNonZero(m.col(0)) +
                  cv::countNonZero(m.col(255)),
              0);
  }
  const auto soft = [](const Compositor& c) { return cv::countNonZero((c.mask() > 0) & (c.mask() < 1)); };
  EXPECT_GT(soft(wide), 3 * soft(narrow));
  EXPECT_THROW(Compositor(256, PixelFormat::kRGB, {.feather = -1}), AlignError);
  EXPECT_THROW(Compositor(256, PixelFormat::kBGRx), AlignError);
}

// The unchanged crop put back: outside the mask the frame is bit-exact, inside it differs only by
// two rounds of resampling. Bound: mean absolute difference <= 2.5 grey levels and PSNR >= 32 dB
// under the full-strength mask, for a face at about the crop's own resolution.
TEST(Compositor, UnchangedCropLeavesTheFrameAlone) {
  std::mt19937 rng(11);
  const cv::Mat head = astronaut_head();
  for (PixelFormat format : {PixelFormat::kBGR, PixelFormat::kxRGB}) {
    cv::Mat bgr = place(head, random_background({640, 480}, rng), similarity(kHeadFaceCentre, {330, 230}, 12, 1.9));
    cv::Mat frame(bgr.size(), CV_8UC(channels(format)), cv::Scalar::all(77));
    const ChannelIndex c = channel_index(format);
    const int pairs[] = {2, c.r, 1, c.g, 0, c.b};
    cv::mixChannels(&bgr, 1, &frame, 1, pairs, 3);

    FaceAligner aligner(shape_model());
    const std::vector<AlignedFace> faces = aligner.align(frame, format);
    ASSERT_EQ(faces.size(), 1u);
    const Compositor compositor;
    cv::Mat out = frame.clone();
    compositor.composite(out, format, faces[0].crop, faces[0].inverse);

    const cv::Mat alpha = reach(compositor, faces[0].inverse, frame.size());
    double sum = 0, se = 0;
    long inside = 0, outside_changed = 0, padding_changed = 0;
    for (int y = 0; y < frame.rows; ++y)
      for (int x = 0; x < frame.cols; ++x) {
        const uchar* a = frame.ptr<uchar>(y) + x * frame.channels();
        const uchar* b = out.ptr<uchar>(y) + x * frame.channels();
        if (channels(format) == 4 && b[0] != 77) ++padding_changed;
        const float w = alpha.at<float>(y, x);
        if (w <= 0) {
          outside_changed += std::memcmp(a, b, frame.channels()) != 0;
        } else if (w >= 1) {
          for (int k = 0; k < frame.channels(); ++k) {
            const double d = a[k] - b[k];
            sum += std::abs(d), se += d * d;
          }
          inside += 3;
        }
      }
    ASSERT_GT(inside, 3 * 10000);
    EXPECT_EQ(outside_changed, 0) << to_string(format);
    EXPECT_EQ(padding_changed, 0) << to_string(format);
    const double mean_abs = sum / inside, psnr_db = 10 * std::log10(255.0 * 255.0 / std::max(1e-9, se / inside));
    std::printf("%s: unchanged crop put back: mean |diff| %.2f, PSNR %.1f dB under the mask\n", to_string(format),
                mean_abs, psnr_db);
    EXPECT_LE(mean_abs, 2.5);
    EXPECT_GE(psnr_db, 32);
  }
}

TEST(Compositor, SeveralFacesAreEachReplacedAndNothingElse) {
  const cv::Mat head = astronaut_head();
  std::mt19937 rng(12);
  cv::Mat frame = random_background({1280, 720}, rng);
  const cv::Point2d centres[] = {{220, 330}, {640, 380}, {1060, 330}};
  for (int i = 0; i < 3; ++i) frame = place(head, frame, similarity(kHeadFaceCentre, centres[i], 6.0 * (i - 1), 1.4));
  AlignerOptions options;
  options.detector.max_width = 0;  // faces this small need the full-resolution detector
  FaceAligner aligner(shape_model(), options);
  const std::vector<AlignedFace> faces = aligner.process(frame, PixelFormat::kBGR);
  ASSERT_EQ(faces.size(), 3u);

  // Each face gets a crop of one flat colour; its nose tip must take exactly that colour.
  const Compositor compositor;
  const cv::Vec3b colours[] = {{250, 10, 10}, {10, 250, 10}, {10, 10, 250}};  // RGB
  std::vector<Compositor::Face> items;
  for (int i = 0; i < 3; ++i) items.push_back({cv::Mat(256, 256, CV_8UC3, cv::Scalar(colours[i])), faces[i].inverse, {}});
  cv::Mat out = frame.clone();
  compositor.composite(out, PixelFormat::kBGR, items);
  cv::Mat any_reach = cv::Mat::zeros(frame.size(), CV_32F);
  for (int i = 0; i < 3; ++i) {
    any_reach = cv::max(any_reach, reach(compositor, faces[i].inverse, frame.size()));
    const cv::Point2d nose = faces[i].landmarks[30];
    const cv::Vec3b bgr = out.at<cv::Vec3b>(cvRound(nose.y), cvRound(nose.x));
    EXPECT_EQ(bgr, cv::Vec3b(colours[i][2], colours[i][1], colours[i][0])) << "face " << i;
  }
  long bad = 0;
  for (int y = 0; y < frame.rows; ++y)
    for (int x = 0; x < frame.cols; ++x)
      if (any_reach.at<float>(y, x) <= 0 && out.at<cv::Vec3b>(y, x) != frame.at<cv::Vec3b>(y, x)) ++bad;
  EXPECT_EQ(bad, 0);
}

TEST(Compositor, ColourMatchingRemovesACast) {
  const cv::Mat head = astronaut_head();
  std::mt19937 rng(13);
  const cv::Mat frame = place(head, random_background({640, 480}, rng), similarity(kHeadFaceCentre, {320, 240}, 0, 1.8));
  FaceAligner aligner(shape_model());
  const std::vector<AlignedFace> faces = aligner.align(frame, PixelFormat::kBGR);
  ASSERT_EQ(faces.size(), 1u);
  cv::Mat cast;
  cv::add(faces[0].crop, cv::Scalar(60, 0, 0), cast);  // a red cast (RGB crop)
  const Compositor plain, matched(256, PixelFormat::kRGB, {.color_match = true});
  cv::Mat a = frame.clone(), b = frame.clone();
  plain.composite(a, PixelFormat::kBGR, cast, faces[0].inverse);
  matched.composite(b, PixelFormat::kBGR, cast, faces[0].inverse);
  const cv::Mat core = reach(plain, faces[0].inverse, frame.size()) >= 1;
  const double red_before = cv::mean(frame, core)[2];
  EXPECT_GT(cv::mean(a, core)[2] - red_before, 40);
  EXPECT_LT(std::abs(cv::mean(b, core)[2] - red_before), 4);
}

// At full strength each colour byte becomes the rounded float blend f + a/255 (c - f) of frame
// value f and crop value c under the warped mask a, exactly (the blend runs in integers, 16 pixels
// at a time); the padding byte and every pixel outside the mask keep their value. A flat white
// crop over a black frame gives the mask itself; flat crops of boundary and random values over
// noise then check every pixel, in 3- and 4-channel frames with the colour bytes in each order.
TEST(Compositor, FullStrengthBlendIsTheRoundedFloatBlend) {
  std::mt19937 rng(14);
  const Compositor compositor(64, PixelFormat::kRGB);
  // A 64 crop onto about 420 frame pixels, turned and partly off the left edge.
  const cv::Matx23d inverse = similarity({32, 32}, {60, 200}, 17, 420.0 / 64);
  for (PixelFormat format : {PixelFormat::kBGR, PixelFormat::kRGBx, PixelFormat::kxRGB}) {
    const int n = channels(format);
    const ChannelIndex fc = channel_index(format);
    cv::Mat mask(400, 330, CV_8UC(n), cv::Scalar::all(0));
    compositor.composite(mask, format, cv::Mat(64, 64, CV_8UC3, cv::Scalar::all(255)), inverse);
    long covered = 0, ramp = 0;
    for (int y = 0; y < mask.rows; ++y)
      for (int x = 0; x < mask.cols; ++x) {
        const uchar a = mask.ptr<uchar>(y)[x * n + fc.r];
        covered += a > 0, ramp += a > 0 && a < 255;
      }
    ASSERT_GT(covered, 50000) << to_string(format);
    ASSERT_GT(ramp, 5000) << to_string(format);
    const std::vector<cv::Vec3b> crops = {{0, 255, 128}, {255, 0, 1}, {127, 254, 0},
                                          cv::Vec3b(rng() % 256, rng() % 256, rng() % 256)};
    for (const cv::Vec3b& rgb : crops) {
      cv::Mat frame(mask.size(), mask.type());
      cv::randu(frame, 0, 256);
      cv::Mat out = frame.clone();
      compositor.composite(out, format, cv::Mat(64, 64, CV_8UC3, cv::Scalar(rgb[0], rgb[1], rgb[2])), inverse);
      long wrong = 0;
      for (int y = 0; y < frame.rows; ++y)
        for (int x = 0; x < frame.cols; ++x) {
          const uchar* f = frame.ptr<uchar>(y) + x * n;
          const uchar* o = out.ptr<uchar>(y) + x * n;
          const uchar a = mask.ptr<uchar>(y)[x * n + fc.r];
          for (int k = 0; k < n; ++k) {
            const int ci = k == fc.r ? 0 : k == fc.g ? 1 : k == fc.b ? 2 : -1;
            uchar expected = f[k];
            if (ci >= 0 && a > 0) {
              const float w = a * (1.0f / 255);
              expected = cv::saturate_cast<uchar>(f[k] + w * (static_cast<float>(rgb[ci]) - f[k]));
            }
            wrong += o[k] != expected;
          }
        }
      EXPECT_EQ(wrong, 0) << to_string(format) << " crop " << rgb;
    }
  }
}

TEST(Compositor, OddCasesAreHandled_n) {
  const Compositor compositor;
  cv::Mat frame(100, 100, CV_8UC3, cv::Scalar::all(40));
  const cv::Mat before = frame.clone();
  const cv::Mat crop(256, 256, CV_8UC3, cv::Scalar::all(200));
  // Entirely outside the frame: nothing happens.
  compositor.composite(frame, PixelFormat::kBGR, crop, cv::Matx23d(1, 0, 5000, 0, 1, 5000));
  EXPECT_EQ(cv::norm(frame, before, cv::NORM_INF), 0);
  // Huge (crop pixel = 1000 frame pixels): the face fills the frame.
  compositor.composite(frame, PixelFormat::kBGR, crop, cv::Matx23d(1000, 0, -130000, 0, 1000, -150000));
  EXPECT_EQ(frame.at<cv::Vec3b>(50, 50), cv::Vec3b(200, 200, 200));
  // Tiny (a 256 crop onto 3 px): no crash, nothing far away changes.
  frame = before.clone();
  compositor.composite(frame, PixelFormat::kBGR, crop, cv::Matx23d(0.01, 0, 50, 0, 0.01, 50));
  EXPECT_EQ(frame.at<cv::Vec3b>(10, 10), cv::Vec3b(40, 40, 40));
  EXPECT_THROW(compositor.composite(frame, PixelFormat::kBGR, cv::Mat(128, 128, CV_8UC3), cv::Matx23d(1, 0, 0, 0, 1, 0)), AlignError);
  EXPECT_THROW(compositor.composite(frame, PixelFormat::kBGR, crop, cv::Matx23d(std::nan(""), 0, 0, 0, 1, 0)), AlignError);
  cv::Mat empty;
  EXPECT_THROW(compositor.composite(empty, PixelFormat::kBGR, crop, cv::Matx23d(1, 0, 0, 0, 1, 0)), AlignError);
  cv::Mat grey(100, 100, CV_8UC1);
  EXPECT_THROW(compositor.composite(grey, PixelFormat::kBGR, crop, cv::Matx23d(1, 0, 0, 0, 1, 0)), AlignError);
}

}  // namespace
}  // namespace starganv2::align::test
