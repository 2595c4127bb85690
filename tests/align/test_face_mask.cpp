// The blend region from the face itself (issue 26): Compositor masks from a face's shape,
// AlignedFace::shape, and how well the mask stays on a turning face (align/tools/mask_check.h).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <stdexcept>
#include <vector>

#include <opencv2/imgproc.hpp>

#include "align/compositor.h"
#include "align/face_aligner.h"
#include "align/tools/mask_check.h"
#include "align/views.h"
#include "helpers.h"

namespace starganv2::align::test {
namespace {

namespace mc = mask_check;

// The template itself as a face's shape gives exactly the template's mask, and a face's own
// shape never disturbs the template's mask that faces without one get.
TEST(FaceMask, TemplateShapeGivesTheTemplateMask) {
  for (int size : {64, 256}) {
    const Compositor c(size, PixelFormat::kRGB);
    const cv::Mat before = c.mask().clone();
    EXPECT_EQ(cv::norm(c.mask(canonical_template()), before, cv::NORM_INF), 0.0) << size;

    // A narrower face (jaw drawn in towards the middle) composited first, then the template.
    Landmarks narrow = canonical_template();
    for (int i = 0; i <= 16; ++i) narrow[i].x = 0.5 + 0.7 * (narrow[i].x - 0.5);
    const cv::Mat crop(size, size, CV_8UC3, cv::Scalar(200, 40, 90));
    const cv::Matx23d inverse(1.5, 0, 40, 0, 1.5, 30);
    cv::Mat a(480, 640, CV_8UC3, cv::Scalar::all(30)), b = a.clone(), n = a.clone(), b_after = a.clone();
    c.composite(b, PixelFormat::kBGR, crop, inverse);
    c.composite(n, PixelFormat::kBGR, crop, inverse, 1.0, &narrow);
    c.composite(b_after, PixelFormat::kBGR, crop, inverse);
    const Landmarks tmpl = canonical_template();
    c.composite(a, PixelFormat::kBGR, crop, inverse, 1.0, &tmpl);
    EXPECT_EQ(cv::norm(a, b, cv::NORM_INF), 0.0) << size;
    EXPECT_EQ(cv::norm(b_after, b, cv::NORM_INF), 0.0) << size << ": a face's own mask changed the template's";
    EXPECT_EQ(cv::norm(c.mask(), before, cv::NORM_INF), 0.0) << size;
    // The narrow face is blended over less of the frame than the template.
    const auto written = [](const cv::Mat& m) {
      cv::Mat d, blue;
      cv::absdiff(m, cv::Scalar::all(30), d);
      cv::extractChannel(d, blue, 0);
      return cv::countNonZero(blue);
    };
    EXPECT_LT(written(n), 0.85 * written(b)) << size;
  }
}

TEST(FaceMask, ShapeThatIsNotFiniteIsRefused_n) {
  const Compositor c;
  Landmarks bad = canonical_template();
  bad[5].x = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THROW(c.mask(bad), AlignError);
  cv::Mat frame(100, 100, CV_8UC3, cv::Scalar::all(0));
  const cv::Mat crop(256, 256, CV_8UC3, cv::Scalar::all(255));
  EXPECT_THROW(c.composite(frame, PixelFormat::kBGR, crop, cv::Matx23d(0.3, 0, 0, 0, 0.3, 0), 1.0, &bad), AlignError);
  EXPECT_EQ(cv::countNonZero(frame.reshape(1)), 0);
}

// Pixels where the face's own mask and the template's differ by more than half lie within the
// feather of the template region's edge: for a frontal face the blend region keeps its shape.
void expect_within_feather(const Compositor& c, const Landmarks& shape, const std::string& what) {
  const cv::Mat old_mask = c.mask(), new_mask = c.mask(shape);
  const cv::Mat inside = old_mask > 0;
  cv::Mat in_d, out_d;
  cv::distanceTransform(inside, in_d, cv::DIST_L2, cv::DIST_MASK_PRECISE);
  cv::distanceTransform(inside == 0, out_d, cv::DIST_L2, cv::DIST_MASK_PRECISE);
  const double feather_px = 0.08 * c.crop_size();
  int differ = 0;
  double worst = 0;
  for (int y = 0; y < old_mask.rows; ++y)
    for (int x = 0; x < old_mask.cols; ++x) {
      if (std::abs(new_mask.at<float>(y, x) - old_mask.at<float>(y, x)) <= 0.5f) continue;
      ++differ;
      worst = std::max<double>(worst, inside.at<uchar>(y, x) ? in_d.at<float>(y, x) : out_d.at<float>(y, x));
    }
  EXPECT_LE(worst, feather_px) << what << ": " << differ << " pixels differ by more than half, up to " << worst
                               << " px from the template's edge";
}

// The astronaut's face as a still (FaceAligner::align), aligned once for the whole binary: a
// FaceAligner deserialises dlib's detectors, which takes a second or two.
const AlignedFace& astronaut_face() {
  static const AlignedFace face = [] {
    const std::vector<AlignedFace> faces = FaceAligner(shape_model()).align(load_bgr(kAstronaut), PixelFormat::kBGR);
    if (faces.empty()) throw std::runtime_error("no face on astronaut.png");
    return faces[0];
  }();
  return face;
}

TEST(FaceMask, FrontalFaceKeepsTheTemplateShapeWithinTheFeather) {
  const AlignedFace& face = astronaut_face();
  const Compositor c;
  expect_within_feather(c, face.shape, "astronaut, still");
  // Not the template's shape itself: the mask is the face's own.
  EXPECT_GT(cv::norm(c.mask(face.shape), c.mask(), cv::NORM_INF), 0.1);
}

struct ClipResult {
  std::vector<double> old_share, new_share;  // per frame with the face found
  std::vector<Landmarks> shapes;
  std::vector<cv::Mat> merged;  // the frames with an inverted crop blended in
};

// The turning head (mask_check::turn_head, an n-frame clip at 30 fps) through a FaceAligner as a
// file is aligned, frame by frame (the first `take` of them; all when negative): each mask's share
// of weight outside the true face (dilated by the feather).
ClipResult run_turning_head(int crop_size, int frames, double max_yaw, bool keep_frames = false, int take = -1) {
  const cv::Mat image = load_bgr(kAstronaut);
  const Landmarks& frontal = astronaut_face().landmarks;
  const mc::HeadShape head = mc::head_shape(frontal);
  AlignerOptions options;
  options.crop_size = crop_size;
  FaceAligner aligner(shape_model(), options);
  const Compositor c(crop_size, PixelFormat::kRGB);
  ClipResult r;
  for (int i = 0; i < (take < 0 ? frames : take); ++i) {
    const mc::TurnedHead t = mc::turn_head(image, frontal, head, mc::clip_yaw(i, frames, max_yaw));
    const std::vector<AlignedFace> faces = aligner.process(t.frame, PixelFormat::kBGR, i / 30.0);
    const auto f = std::min_element(faces.begin(), faces.end(), [&](const AlignedFace& a, const AlignedFace& b) {
      return cv::norm(a.landmarks[30] - t.landmarks[30]) < cv::norm(b.landmarks[30] - t.landmarks[30]);
    });
    if (f == faces.end()) continue;
    const cv::Mat region = mc::face_region(t.frame.size(), t.landmarks, mc::feather_px(t.landmarks, 0.08));
    r.old_share.push_back(mc::share_outside(mc::blend_weights(t.frame.size(), c, f->inverse, nullptr), region));
    r.new_share.push_back(mc::share_outside(mc::blend_weights(t.frame.size(), c, f->inverse, &f->shape), region));
    r.shapes.push_back(f->shape);
    if (keep_frames) {
      cv::Mat out = t.frame.clone(), inverted;
      cv::bitwise_not(f->crop, inverted);
      const TranslatedFace face{f->crop, inverted, f->inverse, f->shape};
      render_view(out, PixelFormat::kBGR, View::kMerged, {&face, 1}, c, c);
      r.merged.push_back(out);
    }
  }
  return r;
}

double max_of(const std::vector<double>& v) { return v.empty() ? 0 : *std::max_element(v.begin(), v.end()); }

// Issue 26's goal on a head turning to 50 degrees one way and the other (48 frames at 30 fps):
// at most 3 % of the face's own mask falls outside the face on every frame, where the template's
// mask spills past the far cheek (measured: 4.5 % at worst for a 64 px crop, the demo model's;
// the face's own 0.02 %; for a 256 px crop 3.7 % and 0.00 %).
TEST(FaceMask, FollowsATurnedHead) {
  for (int size : {64, 256}) {
    const ClipResult r = run_turning_head(size, 48, 50);
    ASSERT_GE(r.new_share.size(), 46u) << "the turning face should be followed on (nearly) every frame";
    std::printf("crop %d: share of the mask outside the face, template: worst %.2f %%, the face's own: worst %.2f %%\n",
                size, 100 * max_of(r.old_share), 100 * max_of(r.new_share));
    for (std::size_t i = 0; i < r.new_share.size(); ++i) EXPECT_LE(r.new_share[i], 0.03) << "crop " << size << ", frame " << i;
    // The template's mask does not follow the turn: it fails the same bound.
    if (size == 64) {
      EXPECT_GT(max_of(r.old_share), 0.03);
    }
    EXPECT_GT(max_of(r.old_share), 4 * max_of(r.new_share) + 0.005) << size;
    // Facing the camera (the first frame and half-way), the region keeps the template's shape
    // within the feather.
    expect_within_feather(Compositor(size, PixelFormat::kRGB), r.shapes.front(), "turning head, frame 0");
  }
}

// The same frames give the same shapes and the same blended bytes on every run.
TEST(FaceMask, SameOnEveryRun) {
  const ClipResult a = run_turning_head(64, 48, 50, true, 14), b = run_turning_head(64, 48, 50, true, 14);
  ASSERT_EQ(a.merged.size(), b.merged.size());
  ASSERT_EQ(a.merged.size(), 14u);
  for (std::size_t i = 0; i < a.merged.size(); ++i) {
    EXPECT_EQ(cv::norm(a.merged[i], b.merged[i], cv::NORM_INF), 0.0) << "frame " << i;
    for (int k = 0; k < kNumLandmarks; ++k) EXPECT_EQ(a.shapes[i][k], b.shapes[i][k]) << "frame " << i << ", point " << k;
  }
}

}  // namespace
}  // namespace starganv2::align::test
