// The canonical template and the similarity maths (align/alignment.h).
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <vector>

#include "align/alignment.h"
#include "helpers.h"

namespace starganv2::align::test {
namespace {

Landmarks template_points() {
  Landmarks p;
  for (int i = 0; i < kNumLandmarks; ++i) p[i] = canonical_template()[i];
  return p;
}

cv::Point2d mean_of(const Landmarks& p, int first, int last) {
  cv::Point2d m(0, 0);
  for (int i = first; i <= last; ++i) m += p[i];
  return m / (last - first + 1);
}

TEST(Template, IsAFrontalFaceInTheCelebAHQFraming) {
  const Landmarks t = template_points();
  for (const cv::Point2d& p : t) {
    EXPECT_GT(p.x, 0.1);
    EXPECT_LT(p.x, 0.9);
    EXPECT_GT(p.y, 0.3);
    EXPECT_LT(p.y, 0.97);
  }
  const cv::Point2d left_eye = mean_of(t, 36, 41), right_eye = mean_of(t, 42, 47);
  const cv::Point2d nose = t[30], mouth = mean_of(t, 48, 67), chin = t[8];
  EXPECT_LT(left_eye.x, nose.x);
  EXPECT_GT(right_eye.x, nose.x);
  EXPECT_LT(std::abs(left_eye.y - right_eye.y), 0.01);  // level eyes
  EXPECT_LT(left_eye.y, nose.y);
  EXPECT_LT(nose.y, mouth.y);
  EXPECT_LT(mouth.y, chin.y);
  // Mirror symmetry about the face's vertical axis: jaw point i pairs with 16 - i. (The mean
  // face is turned a little: the jaw's midpoint sits ~0.012 right of the eyes' midpoint.)
  const double axis = 0.5 * (left_eye.x + right_eye.x);
  for (int i = 0; i < 8; ++i) {
    EXPECT_NEAR(t[i].x + t[16 - i].x, 2 * axis, 0.03) << i;
    EXPECT_NEAR(t[i].y, t[16 - i].y, 0.02) << i;
  }
  // Eyes about a quarter of the crop apart: the CelebA-HQ framing, not a tight face crop.
  EXPECT_NEAR(cv::norm(right_eye - left_eye), 0.25, 0.05);
  const TemplateBox& box = canonical_detector_box();
  EXPECT_NEAR(box.center.x, axis, 0.03);
  EXPECT_GT(box.center.y, left_eye.y);
  EXPECT_LT(box.center.y, mouth.y);
  EXPECT_GT(box.size, 0.4);
  EXPECT_LT(box.size, 0.7);
}

TEST(Similarity, RecoversAKnownTransform) {
  const Landmarks t = template_points();
  const cv::Matx23d M = similarity({0.5, 0.5}, {400, 300}, -21.0, 350.0);
  const cv::Matx23d fitted = fit_similarity(map(M, t), t);  // frame -> unit
  EXPECT_LT(cv::norm(compose(fitted, M) - cv::Matx23d(1, 0, 0, 0, 1, 0)), 1e-9);

  // fit_to_template maps the face onto the template scaled to the crop.
  const cv::Matx23d forward = fit_to_template(map(M, t), 256);
  for (int i = 0; i < kNumLandmarks; ++i) {
    const cv::Point2d p = apply(forward, apply(M, t[i]));
    EXPECT_NEAR(p.x, t[i].x * 256 - 0.5, 1e-6);
    EXPECT_NEAR(p.y, t[i].y * 256 - 0.5, 1e-6);
  }
  EXPECT_NEAR(template_residual(map(M, t)), 0.0, 1e-9);
}

TEST(Similarity, WeightsDecideWhichPointsCount) {
  const Landmarks t = template_points();
  Landmarks moved = t;
  moved[3] += cv::Point2d(0.2, -0.1);
  std::vector<double> w(kNumLandmarks, 1.0);
  w[3] = 0;
  const cv::Matx23d identity(1, 0, 0, 0, 1, 0);
  EXPECT_LT(cv::norm(fit_similarity(moved, t, w) - identity), 1e-12);
  EXPECT_GT(cv::norm(fit_similarity(moved, t) - identity), 1e-3);
  EXPECT_THROW(fit_similarity(moved, t, std::vector<double>(3, 1.0)), AlignError);
  EXPECT_THROW(fit_similarity(moved, t, std::vector<double>(kNumLandmarks, 0.0)), AlignError);
  ASSERT_EQ(landmark_weights().size(), static_cast<std::size_t>(kNumLandmarks));
  EXPECT_EQ(landmark_weights()[8], 0.5);   // chin
  EXPECT_EQ(landmark_weights()[20], 0.5);  // brow
  EXPECT_EQ(landmark_weights()[30], 1.0);  // nose tip
}

TEST(Similarity, DegenerateInputIsAClearError_n) {
  Landmarks same;
  same.fill({5, 5});
  EXPECT_THROW(fit_to_template(same), AlignError);
  std::array<cv::Point2d, 1> one{cv::Point2d(1, 1)};
  EXPECT_THROW(fit_similarity(one, one), AlignError);
  Landmarks nan = template_points();
  nan[3].x = std::nan("");
  EXPECT_THROW(fit_to_template(nan), AlignError);
}

TEST(Similarity, BoxFromLandmarksTurnsAndScalesWithTheFace) {
  const Landmarks t = template_points();
  const cv::Matx23d M = similarity({0.5, 0.5}, {640, 360}, 30.0, 400.0);
  const FaceBox box = box_from_landmarks(map(M, t));
  const TemplateBox& unit = canonical_detector_box();
  const cv::Point2d expected = apply(M, unit.center);
  EXPECT_NEAR(box.center.x, expected.x, 1e-6);
  EXPECT_NEAR(box.center.y, expected.y, 1e-6);
  EXPECT_NEAR(box.size, unit.size * 400.0, 1e-6);
  EXPECT_NEAR(box.angle_deg, 30.0, 1e-9);
}

TEST(Similarity, PoseRoundTrip) {
  const cv::Matx23d forward = invert_affine(similarity({127.5, 127.5}, {812, 455}, -12.0, 1.9));
  const CropPose pose = pose_from_forward(forward, 256);
  EXPECT_NEAR(pose.center.x, 812, 1e-9);
  EXPECT_NEAR(pose.center.y, 455, 1e-9);
  EXPECT_NEAR(pose.side, 256 * 1.9, 1e-9);
  EXPECT_NEAR(pose.angle_rad, -12.0 * std::numbers::pi / 180, 1e-12);
  EXPECT_LT(cv::norm(forward_from_pose(pose, 256) - forward), 1e-9);
}

}  // namespace
}  // namespace starganv2::align::test
