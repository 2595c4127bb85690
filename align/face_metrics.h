// Face kept, pose kept and diversity of translated crops (issue 23): what `starganv2-eval faces`
// reports and what `starganv2-train --eval-every` logs, measured by one piece of code so that the
// two agree. Every crop, source and translation, is measured at kMeasureSize px (bilinear upscale)
// with one plain pass of dlib's HOG frontal-face detector and dlib's 68-point shape predictor.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "align/detector.h"
#include "align/landmarks.h"

namespace starganv2::align {

// dlib's HOG window is 80 px, and an aligned CelebA-HQ face fills about half the crop, so 256 px
// puts it well above that whatever the model's size (a 64 px crop's face alone would be too small
// to be found).
inline constexpr int kMeasureSize = 256;

// The detector is run down to this score so that a crop without a face still has a figure ("how
// far from a face"): a missed face scores between -1 and 0, noise at -1. Windows that reach 0
// (dlib's threshold) are found and scored exactly as at the default threshold.
inline constexpr double kScoreFloor = -1.0;

// What the detector says about one crop.
struct CropFacts {
  bool found = false;         // best >= 0: dlib's own operating point
  double best = kScoreFloor;  // the best HOG window score, kScoreFloor when none reaches it
  FaceBox box;
};

// A source crop, measured once for all its translations.
struct SourceFacts {
  CropFacts facts;
  FaceBox start;        // where landmark fits start: the source's detection, else the template's box
  Landmarks landmarks;  // fitted on the source
};

// One translation of a source.
struct TranslationFacts {
  CropFacts facts;
  double pose_error = 0;  // mean landmark distance to the source's, in crop widths
};

// `crop` (8-bit, square, any size) at kMeasureSize: bilinear up, area down.
cv::Mat to_measure_size(const cv::Mat& crop);

// Mean absolute difference of two 8-bit images of one size, in [0, 1] (pixel values / 255).
double mean_abs_diff(const cv::Mat& a, const cv::Mat& b);

// How much the generator's nearest-neighbour upsampling shows in a crop it made ("seams"): the mean
// absolute grey-level step across the seams of 2x2 nearest-upsampled cells (between pixels 2k+1 and
// 2k+2, rows and columns) over the mean step everywhere else. Every upsampling of StarGAN v2's
// decoder doubles each pixel before its convolutions, so until they have learnt to hide it the
// output keeps a fixed grid whose coarser levels (4, 8, 16 px) are subsets of these seams; the eye
// sees it as a mosaic once the crop is scaled up into the frame. A picture without it gives about 1
// (aligned photos at 64 px: 0.93-1.13 each, 1.00-1.01 on average), a 2x nearest upscale of one
// softened by a 3x3 blur 2.6 (unsoftened: infinite); the crop must be the generator's output as it
// came (not shifted or resized), at least 4 px on each side.
double upsampling_seams(const cv::Mat& crop);

// Mean distance between corresponding landmarks of crops at kMeasureSize, in crop widths.
double landmark_error(const Landmarks& a, const Landmarks& b);

// One per thread (the detector keeps scratch state); the shape model may be shared.
class FaceJudge {
 public:
  // Requires a loaded shape model (ShapeModel::load).
  explicit FaceJudge(std::shared_ptr<const ShapeModel> shape);

  // The detector on one RGB crop at kMeasureSize: found, and the best box and its score.
  CropFacts detect(const cv::Mat& rgb);
  // The 68 landmarks fitted from `start` (the same box for a source and its translations, so
  // that only the pictures differ), averaged over 5 shifted fits as the aligner does for stills.
  Landmarks fit(const cv::Mat& rgb, const FaceBox& start) const;
  // Where dlib's detector puts its box on a face aligned to the project's template, at kMeasureSize.
  static FaceBox canonical_box();

  // A source / a translation of it: RGB crops of any square size (scaled to kMeasureSize here).
  SourceFacts measure_source(const cv::Mat& rgb);
  TranslationFacts measure_translation(const SourceFacts& source, const cv::Mat& rgb);

 private:
  std::unique_ptr<Detector> detector_;
  std::shared_ptr<const ShapeModel> shape_;
};

// Running totals over crops: a row of `starganv2-eval faces`' table, a target domain of the
// trainer's evaluation. Rates and means are NaN while nothing was counted.
struct FaceTally {
  long crops = 0, found = 0;
  double score_sum = 0;  // best scores of found crops
  double best_sum = 0;   // best scores of all crops
  double pose_sum = 0;
  long pose_n = 0;
  double diversity_sum = 0;
  long diversity_n = 0;
  double change_sum = 0;  // how far translations are from their sources (mean_abs_diff)
  long change_n = 0;
  double seams_sum = 0;  // upsampling_seams of each crop counted
  long seams_n = 0;

  void add_detection(const CropFacts& f);
  void add_translation(const TranslationFacts& t);
  // The outputs of several styles for one source (8-bit, one size): every pair's mean_abs_diff.
  void add_diversity(const std::vector<cv::Mat>& outputs);
  // Returns the change counted: mean_abs_diff(translated, source).
  double add_change(const cv::Mat& translated, const cv::Mat& source);
  // Returns the seams figure counted: upsampling_seams(crop).
  double add_seams(const cv::Mat& crop);

  double found_rate() const;
  double mean_score() const;  // over the crops where a face was found
  double mean_best() const;   // over all crops
  double pose() const;
  double diversity() const;
  double change() const;
  double seams() const;
};

}  // namespace starganv2::align
