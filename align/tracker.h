// Temporal smoothing of a face's crop transform: a One-Euro filter (Casiez, Roussel and Vogel,
// CHI 2012) per similarity parameter. It smooths hard while the face is still, which removes the
// frame-to-frame landmark noise, and opens up with speed, so a moving face does not lag.
#pragma once

#include <array>

#include "align/alignment.h"

namespace starganv2::align {

class OneEuroFilter {
 public:
  // min_cutoff_hz: cutoff at rest (lower = smoother); beta: how fast the cutoff rises with speed;
  // d_cutoff_hz: cutoff of the speed estimate itself.
  OneEuroFilter(double min_cutoff_hz, double beta, double d_cutoff_hz = 1.0);

  // The filtered value of sample x taken at time t (seconds, increasing). `speed_unit` divides the
  // speed before it meets beta, so that one beta suits quantities of any scale. The first sample
  // after construction or reset() passes unchanged.
  double filter(double x, double t, double speed_unit = 1.0);
  void reset() { initialised_ = false; }

 private:
  double min_cutoff_, beta_, d_cutoff_;
  bool initialised_ = false;
  double x_ = 0, dx_ = 0, t_ = 0;
  long samples_ = 0;
};

struct SmoothingOptions {
  // 0 turns smoothing off; 1 is the strongest. Maps to the rest cutoff on a log scale between
  // 8 Hz (barely any smoothing) and 0.2 Hz; 0.5 gives about 1.3 Hz.
  double strength = 0.5;
  // Cutoff rise per unit of speed, speed in crop widths (position), in log-size or in radians
  // (angle) per second. 6 keeps the framing of a face moving at 0.3 crop widths per second
  // within ~1 % of the crop while cutting frame-to-frame jitter about threefold (test_tracking).
  double beta = 6.0;
  // Cutoff of the speed estimate that drives the adaptation, Hz.
  double d_cutoff = 1.0;
};

// Smooths the CropPose of one face over time. A pose that jumps by more than half a crop (a new
// face under an old id, or a cut in the video) restarts the filter instead of gliding across.
class PoseSmoother {
 public:
  explicit PoseSmoother(const SmoothingOptions& options = {});
  CropPose filter(const CropPose& raw, double t);
  void reset();

 private:
  bool enabled_;
  OneEuroFilter x_, y_, log_side_, angle_;
  bool has_last_ = false;
  CropPose last_raw_;
  double last_angle_ = 0;  // unwrapped
};

// Smooths a face's shape over time, for the blend mask: its landmarks where that frame's fit puts
// them on the template (unit crop coordinates, no pose left), a One-Euro filter per coordinate
// with the PoseSmoother's settings (speed in crop widths per second). There they move only as the
// head turns or the expression changes; what the filter takes out is the fit's frame-to-frame
// noise, and it opens up when the head turns fast. A shape that jumps by more than a quarter of
// the crop on average (a fit gone astray) restarts it.
class ShapeSmoother {
 public:
  explicit ShapeSmoother(const SmoothingOptions& options = {});
  Landmarks filter(const Landmarks& raw, double t);
  void reset();

 private:
  bool enabled_;
  std::array<OneEuroFilter, 2 * kNumLandmarks> filters_;
  bool has_last_ = false;
  Landmarks last_raw_{};
};

}  // namespace starganv2::align
