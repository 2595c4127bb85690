// Flicker of a video translation: the warping error of Lai et al., "Learning Blind Video
// Temporal Consistency" (ECCV 2018), taken as a ratio of the output's to the input's.
//
// For each pair of consecutive frames t, t+1: optical flow from t to t+1 and back is computed on
// the *input* video (OpenCV's DIS); pixels whose forward-backward round trip does not come back
// (Ruder et al. 2016: |F + B(x + F)|^2 > 0.01 (|F|^2 + |B(x + F)|^2) + 0.5), or whose flow leaves
// the frame, are occluded and not counted. The same flow warps input frame t+1 and output frame
// t+1 onto frame t; the error of each is the mean squared difference to its frame t (RGB scaled
// to [0, 1], mean over the three channels) over the counted pixels. Only the pixels the
// translation changed are counted (see FlickerOptions::region), so that a face in a large frame
// is not diluted by the background the element leaves alone.
//
// The video's figure is Lai et al.'s E_warp (the mean over pairs) of the output divided by that
// of the input. 1 means the output moves exactly as the input does; a translation that adds its
// own frame-to-frame changes (flicker, shimmer, colour flashes) scores above 1. Taking the flow
// from the input, not the output, keeps the output's own artefacts from bending the flow that
// judges them.
#pragma once

#include <optional>
#include <vector>

#include <opencv2/core.hpp>

namespace starganv2::align {

struct FlickerOptions {
  enum class Region {
    // Pixels where output frame t or (warped onto t) output frame t+1 differs from its input
    // frame in any channel, grown by dilate_px (a (2 dilate_px + 1)^2 square) so that the soft
    // edge of a moving face is counted whole.
    kChanged,
    // Every pixel (that is not occluded): the plain warping error of Lai et al.
    kAll,
  };
  Region region = Region::kChanged;
  int dilate_px = 2;
};

// One pair of consecutive frames t, t+1.
struct FlickerPair {
  int frame = 0;        // t
  long pixels = 0;      // pixels counted; 0 = nothing changed (or all of it occluded): not measured
  bool changed = true;  // kChanged: some pixel of output t or t+1 differs from its input
  double input_error = 0;   // mean squared difference, [0, 1] RGB, over the pixels counted
  double output_error = 0;
  // output_error / input_error; NaN when the pair was not measured or its input did not move.
  double ratio() const;
};

struct FlickerSummary {
  std::vector<FlickerPair> pairs;  // every pair, measured or not
  int measured = 0;                // pairs with pixels > 0
  double input_error = 0;          // E_warp of the input: the mean over measured pairs
  double output_error = 0;         // E_warp of the output
  // output_error / input_error. Exactly 1 when no pixel of any pair changed (the output is the
  // input, which moves with itself); NaN when the input has no frame-to-frame error at all.
  double ratio = 0;
  bool unchanged = false;  // no pixel changed in any pair
};

// Warping error of one pair. Frames: 8-bit BGR (CV_8UC3), all four the same size. Throws
// AlignError otherwise.
FlickerPair warping_error(const cv::Mat& input_t, const cv::Mat& input_t1, const cv::Mat& output_t,
                          const cv::Mat& output_t1, const FlickerOptions& options = {});

// The figure of a whole clip, fed one frame at a time (so that a long video needs two frames of
// memory). Deterministic: the same frames give the same figures.
class FlickerMeter {
 public:
  explicit FlickerMeter(FlickerOptions options = {});
  // Frame t of the input and of the output (8-bit BGR, same size as every earlier frame). From the
  // second frame on, returns the pair (t - 1, t). Throws AlignError for a bad or resized frame.
  std::optional<FlickerPair> add(const cv::Mat& input, const cv::Mat& output);
  FlickerSummary summary() const;
  int frames() const { return frames_; }

 private:
  FlickerOptions options_;
  cv::Mat last_input_, last_output_;
  std::vector<FlickerPair> pairs_;
  int frames_ = 0;
};

}  // namespace starganv2::align
