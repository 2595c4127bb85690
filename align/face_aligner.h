// The per-stream face pipeline: detect every N frames, track in between, smooth, and cut aligned
// crops in the CelebA-HQ framing. One FaceAligner per streaming thread; the ShapeModel is shared.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include <opencv2/core.hpp>

#include "align/alignment.h"
#include "align/detector.h"
#include "align/image.h"
#include "align/landmarks.h"
#include "align/tracker.h"

namespace starganv2::align {

struct AlignerOptions {
  DetectorOptions detector;
  SmoothingOptions smoothing;
  int crop_size = kDefaultCropSize;
  PixelFormat crop_format = PixelFormat::kRGB;  // what the generator eats
  // Run the detector on every Nth frame; in between, landmarks are re-fitted in the box predicted
  // from the previous frame. A face that is lost triggers detection on the same frame.
  int detect_interval = 5;
  // Check every fit with the HOG detector on a small upright patch around it (a few ms per face).
  // A tracked fit that fails counts as lost; without the check it can slide onto background
  // unnoticed until the next detection frame. A detection whose fit fails is dropped (a false
  // detection, or a face in a retry pass turned the wrong way, whose fit diverges).
  bool verify_fits = true;
  // Landmark fits averaged per face (1, 5 or 9; each costs one dlib fit, ~1.5 ms). Averaging
  // halves the landmark noise; stills can afford it, video relies on the smoothing instead.
  int still_fit_samples = 9;
  int video_fit_samples = 1;
  // Video: a face whose detection scored below this (HOG score; dlib's threshold is 0) is followed
  // but not shown until a later frame's fit of it passes the detector's check again (files: the
  // next frame; live: the next confirmation), and is dropped at once if it does not. Why: a
  // false face is mostly a weak, passing detection. The round badge on the astronaut's suit in
  // `starganv2-eval temporal --synthetic` was found on three detection frames (0, 40, 55; scores
  // 0.02-0.14), each time fitted, checked and translated for that one frame only: a painted patch
  // flashing on the suit, which made most of that clip's flicker (ratio 2.94 -> 1.24 without it).
  // The false faces dlib finds on the AFHQ animal photos score 0.04-0.41. Real portraits score
  // 0.3-2.6, 45 of 47 at 0.5 or more (CelebA-HQ samples and the custom photos), so most faces
  // still show on their first frame; one first found with a low score (Megamind.avi after its
  // second cut: 0.04) shows one frame later. 0 (or less) shows every detected face at once.
  double confirm_below_score = 0.5;
  // A lost face keeps its id this many frames, so a face re-found nearby continues its track.
  int keep_lost_frames = 15;
  // Time base when process() is given no timestamps.
  double frame_rate = 30.0;
  // Live streams: detection (on a downscaled copy) and the detector's confirmation of tracked
  // faces run on worker threads, and their results are merged into whichever frame is current
  // when they arrive, so the calling thread never runs the detector. Otherwise (files) every
  // result applies to a fixed frame whatever the thread timing, and the output is deterministic:
  // detection runs on every detect_interval-th frame (counted from the first frame or reset()),
  // possibly started ahead of time by prefetch(), and tracked fits are checked on the frame.
  bool live = false;
  // Files: workers prefetch() spreads detections over; 0 = prefetch_lanes().
  int prefetch_workers = 0;
};

// Where the calling thread's time went in the last process() call, in milliseconds.
struct AlignStats {
  double handoff_ms = 0;    // detection copy and confirmation patches made for the workers
  double detect_ms = 0;     // detector passes over the frame run on the calling thread
  double landmarks_ms = 0;  // landmark fits, and (files) the detector's checks of them
  double warp_ms = 0;       // aligned crops
  double worker_detect_ms = 0;  // worker time of a detection merged into this frame (not ours)
  int detections_here = 0;      // whole-frame detections run on the calling thread
  bool detection_merged = false;  // a detection result was applied to this frame
};

struct AlignedFace {
  int id = -1;             // stable across frames while the face is tracked
  FaceBox box;             // detector-like box from the landmarks, frame pixels
  Landmarks landmarks;     // as fitted on this frame (not smoothed), frame pixels
  cv::Mat crop;            // crop_size x crop_size, CV_8UC3 in crop_format
  cv::Matx23d forward;     // frame pixel -> crop pixel (smoothed)
  cv::Matx23d inverse;     // crop pixel -> frame pixel
  // The face's landmarks in `crop`, in unit crop coordinates (as canonical_template()): its shape
  // smoothed in time (ShapeSmoother), placed where this frame's fit puts the face in the crop.
  // The face's own blend region (Compositor::Face::shape), which follows the face as it turns.
  Landmarks shape{};
  bool detected = false;   // true when this frame's detector found it, false when tracked
};

// The landmark fit FaceAligner uses: dlib's fit in `start`, repeated in the box the landmarks
// imply (`implied_box`) until that box settles (at most 6 passes); with samples = 5 or 9, fits in
// boxes shifted by 3 % of their size (a plus, or a 3x3 grid) are averaged, which halves the
// landmark noise between two views of one face. `patch` receives what the last dlib fit read.
// Throws AlignError like ShapeModel::fit.
Landmarks fit_landmarks(const ShapeModel& model, const cv::Mat& frame, PixelFormat format, const FaceBox& start,
                        int samples = 1,
                        const std::function<FaceBox(const Landmarks&)>& implied_box =
                            [](const Landmarks& l) { return box_from_landmarks(l); },
                        FitPatch* patch = nullptr);

// Workers FaceAligner::prefetch() spreads a file's detections over: a quarter of the hardware
// threads, 1 to 4. A pipeline that wants all of them busy keeps at least twice as many frames
// ahead of the one it aligns.
int prefetch_lanes();

class FaceAligner {
 public:
  // Throws AlignError for a null model or bad options.
  explicit FaceAligner(std::shared_ptr<const ShapeModel> model, AlignerOptions options = {});
  ~FaceAligner();
  FaceAligner(FaceAligner&&) noexcept;
  FaceAligner& operator=(FaceAligner&&) noexcept;

  const AlignerOptions& options() const { return options_; }

  // One video frame (3 or 4 channels as `format` says, any stride). `timestamp_s` < 0 means
  // "the next frame at options().frame_rate". Returns the faces, largest first. Throws
  // AlignError for a frame it cannot read (wrong depth or channel count, too large); an empty or
  // tiny frame gives no faces.
  std::vector<AlignedFace> process(const cv::Mat& frame, PixelFormat format, double timestamp_s = -1);

  // A still image: every detector pass, no tracking or smoothing, ids 0, 1, ... Does not touch
  // the video state.
  std::vector<AlignedFace> align(const cv::Mat& image, PixelFormat format);

  // Forgets all tracks (a seek, a new stream) and results still on their way.
  void reset();

  // Files (not live): `frame` is the next frame not yet given to prefetch(); process() will get
  // the frames in the same order. When it is a detection frame, its detection starts now on a
  // worker, so that it is ready when process() reaches it; the result is the same as when
  // process() runs it itself. Does nothing in live streams.
  void prefetch(const cv::Mat& frame, PixelFormat format);

  const AlignStats& last_stats() const;
  // Whole-frame detections since construction, on the calling thread and on workers.
  long detections_on_caller() const;
  long detections_on_worker() const;

 private:
  struct State;
  AlignerOptions options_;
  std::shared_ptr<const ShapeModel> model_;
  std::unique_ptr<State> state_;
};

}  // namespace starganv2::align
