#include "align/face_metrics.h"

#include <cmath>
#include <utility>

#include <opencv2/imgproc.hpp>

#include "align/alignment.h"
#include "align/face_aligner.h"

namespace starganv2::align {

cv::Mat to_measure_size(const cv::Mat& crop) {
  if (crop.cols == kMeasureSize && crop.rows == kMeasureSize) return crop;
  cv::Mat out;
  cv::resize(crop, out, {kMeasureSize, kMeasureSize}, 0, 0, crop.cols < kMeasureSize ? cv::INTER_LINEAR : cv::INTER_AREA);
  return out;
}

double mean_abs_diff(const cv::Mat& a, const cv::Mat& b) {
  cv::Mat d;
  cv::absdiff(a, b, d);
  const cv::Scalar s = cv::mean(d);
  double sum = 0;
  for (int c = 0; c < d.channels(); ++c) sum += s[c];
  return sum / (d.channels() * 255.0);
}

double upsampling_seams(const cv::Mat& crop) {
  if (crop.cols < 4 || crop.rows < 4) throw AlignError("upsampling_seams: a crop of at least 4x4 px is needed");
  cv::Mat grey;
  if (crop.channels() == 1)
    crop.convertTo(grey, CV_32F);
  else {
    cv::Mat g8;
    cv::cvtColor(crop, g8, crop.channels() == 4 ? cv::COLOR_RGBA2GRAY : cv::COLOR_RGB2GRAY);
    g8.convertTo(grey, CV_32F);
  }
  // Steps between neighbours: [0] inside a 2x2 cell (x even -> x + 1), [1] across a seam (x odd).
  double sum[2] = {0, 0};
  long n[2] = {0, 0};
  for (int y = 0; y < grey.rows; ++y) {
    const float* row = grey.ptr<float>(y);
    const float* below = y + 1 < grey.rows ? grey.ptr<float>(y + 1) : nullptr;
    for (int x = 0; x < grey.cols; ++x) {
      if (x + 1 < grey.cols) {
        sum[x % 2] += std::abs(row[x + 1] - row[x]);
        ++n[x % 2];
      }
      if (below) {
        sum[y % 2] += std::abs(below[x] - row[x]);
        ++n[y % 2];
      }
    }
  }
  const double inside = sum[0] / static_cast<double>(n[0]), across = sum[1] / static_cast<double>(n[1]);
  // A flat crop has no steps at all: nothing shows, as for a picture without a grid.
  if (inside == 0) return across == 0 ? 1.0 : INFINITY;
  return across / inside;
}

double landmark_error(const Landmarks& a, const Landmarks& b) {
  double sum = 0;
  for (int i = 0; i < kNumLandmarks; ++i) sum += std::hypot(a[i].x - b[i].x, a[i].y - b[i].y);
  return sum / kNumLandmarks / kMeasureSize;
}

FaceJudge::FaceJudge(std::shared_ptr<const ShapeModel> shape) : shape_(std::move(shape)) {
  if (!shape_) throw AlignError("FaceJudge: no shape model");
  // One plain pass of dlib's detector on the whole crop: no downscaling, no rotated or finer
  // retries, so that "found" (score >= 0) means what it means to anyone running dlib's
  // frontal_face_detector on that crop.
  DetectorOptions d;
  d.max_width = 0;
  d.upsample = 0;
  d.threshold = kScoreFloor;
  d.max_faces = 1000;  // every window that reaches the floor: the best one is kept
  d.retry_angles_deg = {};
  d.retry_max_width = 0;
  detector_ = std::make_unique<Detector>(d);
}

CropFacts FaceJudge::detect(const cv::Mat& rgb) {
  CropFacts f;
  for (const FaceBox& b : detector_->detect(rgb, PixelFormat::kRGB)) {
    if (b.score > f.best) {
      f.best = b.score;
      f.box = b;
    }
  }
  f.found = f.best >= 0;
  return f;
}

Landmarks FaceJudge::fit(const cv::Mat& rgb, const FaceBox& start) const {
  return fit_landmarks(*shape_, rgb, PixelFormat::kRGB, start, 5);
}

FaceBox FaceJudge::canonical_box() {
  const TemplateBox& t = canonical_detector_box();
  FaceBox b;
  b.center = t.center * static_cast<double>(kMeasureSize);
  b.size = t.size * kMeasureSize;
  return b;
}

SourceFacts FaceJudge::measure_source(const cv::Mat& rgb) {
  const cv::Mat big = to_measure_size(rgb);
  SourceFacts s;
  s.facts = detect(big);
  s.start = s.facts.found ? s.facts.box : canonical_box();
  s.landmarks = fit(big, s.start);
  return s;
}

TranslationFacts FaceJudge::measure_translation(const SourceFacts& source, const cv::Mat& rgb) {
  const cv::Mat big = to_measure_size(rgb);
  TranslationFacts t;
  t.facts = detect(big);
  t.pose_error = landmark_error(fit(big, source.start), source.landmarks);
  return t;
}

void FaceTally::add_detection(const CropFacts& f) {
  ++crops;
  best_sum += f.best;
  if (f.found) {
    ++found;
    score_sum += f.best;
  }
}

void FaceTally::add_translation(const TranslationFacts& t) {
  add_detection(t.facts);
  pose_sum += t.pose_error;
  ++pose_n;
}

void FaceTally::add_diversity(const std::vector<cv::Mat>& outputs) {
  for (size_t i = 0; i < outputs.size(); ++i)
    for (size_t j = i + 1; j < outputs.size(); ++j) {
      diversity_sum += mean_abs_diff(outputs[i], outputs[j]);
      ++diversity_n;
    }
}

double FaceTally::add_change(const cv::Mat& translated, const cv::Mat& source) {
  const double change = mean_abs_diff(translated, source);
  change_sum += change;
  ++change_n;
  return change;
}

double FaceTally::add_seams(const cv::Mat& crop) {
  const double seams = upsampling_seams(crop);
  seams_sum += seams;
  ++seams_n;
  return seams;
}

double FaceTally::found_rate() const { return crops ? static_cast<double>(found) / crops : NAN; }
double FaceTally::mean_score() const { return found ? score_sum / found : NAN; }
double FaceTally::mean_best() const { return crops ? best_sum / crops : NAN; }
double FaceTally::pose() const { return pose_n ? pose_sum / pose_n : NAN; }
double FaceTally::diversity() const { return diversity_n ? diversity_sum / diversity_n : NAN; }
double FaceTally::change() const { return change_n ? change_sum / change_n : NAN; }
double FaceTally::seams() const { return seams_n ? seams_sum / seams_n : NAN; }

}  // namespace starganv2::align
