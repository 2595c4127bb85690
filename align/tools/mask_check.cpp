#include "align/tools/mask_check.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include <opencv2/imgproc.hpp>

#include "align/alignment.h"

namespace starganv2::align::mask_check {

cv::Mat face_region(cv::Size frame, const Landmarks& l, double dilate_px) {
  cv::Point2d brow(0, 0);
  for (int i = 17; i <= 26; ++i) brow += l[i];
  brow *= 0.1;
  const cv::Point2d lift = 0.6 * (brow - l[30]);
  // Sub-pixel vertices (4 fractional bits), so the region does not move with rounding.
  constexpr int kShift = 4;
  std::vector<cv::Point> points;
  const auto add = [&](cv::Point2d p) { points.emplace_back(cvRound(p.x * (1 << kShift)), cvRound(p.y * (1 << kShift))); };
  for (int i = 0; i <= 16; ++i) add(l[i]);
  for (int i = 17; i <= 26; ++i) add(l[i] + lift);
  std::vector<cv::Point> hull;
  cv::convexHull(points, hull);
  cv::Mat region = cv::Mat::zeros(frame, CV_8U);
  cv::fillConvexPoly(region, hull, cv::Scalar(255), cv::LINE_8, kShift);
  if (dilate_px > 0) {
    cv::Mat distance;
    cv::distanceTransform(region == 0, distance, cv::DIST_L2, cv::DIST_MASK_PRECISE);
    region = distance <= dilate_px;
  }
  return region;
}

cv::Mat blend_weights(cv::Size frame, const Compositor& compositor, const cv::Matx23d& inverse,
                      const Landmarks* shape) {
  // As the mask view draws it: a white crop blended into a black frame.
  cv::Mat black = cv::Mat::zeros(frame, CV_8UC3);
  const cv::Mat white(compositor.crop_size(), compositor.crop_size(), CV_8UC3, cv::Scalar::all(255));
  compositor.composite(black, PixelFormat::kRGB, white, inverse, 1.0, shape);
  cv::Mat weights;
  cv::extractChannel(black, weights, 0);
  return weights;
}

double share_outside(const cv::Mat& weights, const cv::Mat& region) {
  const double total = cv::sum(weights)[0];
  if (total <= 0) return 0;
  cv::Mat outside;
  weights.copyTo(outside, region == 0);
  return cv::sum(outside)[0] / total;
}

double feather_px(const Landmarks& landmarks, double feather) {
  const cv::Matx23d to_unit = fit_to_template(landmarks, 1);  // frame px -> crop widths
  return feather / std::hypot(to_unit(0, 0), to_unit(1, 0));
}

namespace {

double smoothstep(double t) {
  t = std::clamp(t, 0.0, 1.0);
  return t * t * (3 - 2 * t);
}

// One row of the side that turns away: where a point `u` px from the axis in the frontal image
// goes (its distance from the axis after the turn), for a row whose cheek (from `eye` px out to
// the jaw line at `jaw` px) is scaled by `cheek`, with the background beyond it scaled so that
// the image's edge, `edge` px out, stays where it is. Tabulated every 1/8 px; the scale changes
// smoothly over the first 40 % of the cheek, so no crease runs down the face.
struct Side {
  static constexpr double kStep = 1.0 / 8;
  std::vector<double> at;  // at[i]: where u = i * kStep goes

  Side(double eye, double jaw, double edge, double cheek) {
    const double ramp = 0.4 * (jaw - eye);
    const auto scale = [&](double u) { return 1 + (cheek - 1) * smoothstep((u - eye) / ramp); };
    const int n = static_cast<int>(std::ceil(edge / kStep)) + 2;
    at.resize(n);
    at[0] = 0;
    for (int i = 1; i < n; ++i) at[i] = at[i - 1] + kStep * scale((i - 0.5) * kStep);
    // Past the jaw (the silhouette), the background fills what is left out to the edge.
    const int j = std::min(n - 1, static_cast<int>(std::lround(jaw / kStep)));
    const double background = (edge - at[j]) / (edge - jaw);
    for (int i = j + 1; i < n; ++i) at[i] = at[j] + (i - j) * kStep * background;
  }
  double forward(double u) const {
    const double k = std::clamp(u / kStep, 0.0, at.size() - 1.001);
    const int i = static_cast<int>(k);
    return at[i] + (k - i) * (at[i + 1] - at[i]);
  }
  double inverse(double v) const {
    const auto it = std::lower_bound(at.begin(), at.end(), v);
    if (it == at.begin()) return 0;
    if (it == at.end()) return (at.size() - 1) * kStep;
    const int i = static_cast<int>(it - at.begin());
    return kStep * (i - 1 + (v - at[i - 1]) / (at[i] - at[i - 1]));
  }
};

}  // namespace

TurnedHead turn_head(const cv::Mat& image, const Landmarks& frontal, const HeadShape& head, double yaw_deg) {
  const double s = std::sin(std::abs(yaw_deg) * std::numbers::pi / 180);
  const double sign = yaw_deg >= 0 ? 1 : -1;  // positive yaw: the right side of the image turns away
  // The far half of the jaw line (the chin and the side that turns away) as distances from the
  // axis by row: a row between two of its points takes the distance between theirs.
  std::vector<cv::Point2d> jaw;  // (row, distance), top to bottom
  for (int i = 0; i <= 8; ++i) {
    const cv::Point2d p = frontal[sign > 0 ? 16 - i : i];
    jaw.emplace_back(p.y, std::max(1.0, sign * (p.x - head.axis_x)));
  }
  const double chin = jaw.back().x, height = chin - jaw.front().x;
  const auto contour = [&](double y) {
    if (y <= jaw.front().x) return jaw.front().y;
    for (std::size_t i = 1; i < jaw.size(); ++i)
      if (y <= jaw[i].x) return jaw[i - 1].y + (jaw[i].y - jaw[i - 1].y) * (y - jaw[i - 1].x) / std::max(1e-6, jaw[i].x - jaw[i - 1].x);
    return jaw.back().y;
  };
  const double edge = sign > 0 ? image.cols - 1 - head.axis_x : head.axis_x;
  // The head turns about the neck, behind the face: the face moves sideways by that distance
  // times the sine of the turn, towards the side that turns away.
  const double shift = sign * head.neck_depth * s;
  // A Side per row; rows with the same contour and squeeze (all those above the jaw line's top,
  // and far below the chin) share one.
  std::vector<Side> sides;
  std::vector<int> side_of(image.rows);
  double last_c = -1, last_cheek = -1;
  for (int y = 0; y < image.rows; ++y) {
    // Below the chin the turn fades out over 30 % of the face's height (the neck turns less).
    const double strength = s * (1 - smoothstep((y - chin) / (0.3 * height)));
    const double c = contour(y), cheek = std::max(0.1, 1 - 1.4 * strength);
    if (c != last_c || cheek != last_cheek) sides.emplace_back(0.35 * c, c, edge, cheek), last_c = c, last_cheek = cheek;
    side_of[y] = static_cast<int>(sides.size()) - 1;
  }
  const auto row = [&](int y) -> const Side& { return sides[side_of[std::clamp(y, 0, image.rows - 1)]]; };
  cv::Mat map_x(image.size(), CV_32F), map_y(image.size(), CV_32F);
  for (int y = 0; y < image.rows; ++y)
    for (int x = 0; x < image.cols; ++x) {
      const double v = sign * (x - shift - head.axis_x);
      map_x.at<float>(y, x) = static_cast<float>(head.axis_x + sign * (v > 0 ? row(y).inverse(v) : v));
      map_y.at<float>(y, x) = static_cast<float>(y);
    }
  TurnedHead out;
  cv::remap(image, out.frame, map_x, map_y, cv::INTER_LINEAR, cv::BORDER_REFLECT_101);
  out.landmarks = frontal;
  for (cv::Point2d& p : out.landmarks) {
    const double u = sign * (p.x - head.axis_x);
    const Side& side = row(static_cast<int>(std::lround(p.y)));
    p.x = shift + head.axis_x + sign * (u > 0 ? side.forward(u) : u);
  }
  return out;
}

HeadShape head_shape(const Landmarks& l) {
  HeadShape h;
  h.axis_x = 0.25 * (l[27].x + l[28].x + l[29].x + l[30].x);
  h.neck_depth = 0.8 * (l[16].x - l[0].x);
  return h;
}

double clip_yaw(int i, int n, double max_yaw_deg) {
  return max_yaw_deg * std::sin(2 * std::numbers::pi * i / std::max(1, n));
}

}  // namespace starganv2::align::mask_check
