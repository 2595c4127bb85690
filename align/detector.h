// Face detection with dlib's HOG frontal face detector, run on a downscaled grey copy of the frame,
// with retries at other rotations and a finer scale when nothing is found.
#pragma once

#include <memory>
#include <vector>

#include <opencv2/core.hpp>

#include "align/image.h"

namespace starganv2::align {

// A square face region that may be rotated: `angle_deg` is how far an upright face has been
// turned (counter-clockwise as displayed, the cv::getRotationMatrix2D sense) to look like this
// one. `size` is the side in frame pixels, sized like dlib's HOG boxes (brows to chin).
struct FaceBox {
  cv::Point2d center;
  double size = 0;
  double angle_deg = 0;
  double score = 0;  // HOG score; 0 for boxes that did not come from the detector

  // Axis-aligned bounding rectangle of the (possibly rotated) square, in frame pixels.
  cv::Rect2d bounds() const;
};

struct DetectorOptions {
  // The detector runs on a copy at most this wide (0 = full resolution). 640 px keeps a 1080p
  // detection near 30 ms on one core and still finds every face at least ~80 px wide there,
  // i.e. faces wider than 1/8 of the frame; CelebA-HQ, the custom portraits and the
  // astronaut are all found at 640 (see align/README.md).
  int max_width = 640;
  // Doublings of the detection copy before detecting (finds faces smaller than 80 px there).
  int upsample = 0;
  // Boxes narrower than this (frame pixels) are dropped.
  double min_face_size = 0;
  // HOG score threshold; dlib's default operating point is 0, lower finds more (and more false).
  double threshold = 0;
  // At most this many faces are returned, largest first.
  int max_faces = 8;
  // When the plain pass finds nothing: the copy is rotated by each of these angles in turn
  // (HOG misses faces turned more than ~15 degrees), then detected once more at twice the
  // resolution, capped at retry_max_width (0 disables that pass).
  std::vector<double> retry_angles_deg = {25.0, -25.0};
  int retry_max_width = 1280;
};

// A grey, downscaled copy of a frame: what detection reads. Making it is the only full-frame work a
// detection costs the thread that owns the frame; the detector itself can then run on a worker
// while the frame moves on.
struct DetectionImage {
  cv::Mat gray;           // CV_8UC1
  double scale = 1;       // copy pixels per frame pixel
  cv::Size frame_size;    // of the frame it was made from
};

// One per thread: dlib's detector keeps scratch state and must not be shared. Cheap to move.
class Detector {
 public:
  explicit Detector(DetectorOptions options = {});
  ~Detector();
  Detector(Detector&&) noexcept;
  Detector& operator=(Detector&&) noexcept;

  const DetectorOptions& options() const { return options_; }

  // Every pass in order until one finds a face (still images). Throws AlignError on a bad frame;
  // an empty or tiny frame gives no faces.
  std::vector<FaceBox> detect(const cv::Mat& frame, PixelFormat format);

  // Number of passes: the plain one (index 0) and the retries.
  int num_passes() const;
  // Runs only pass `index` (0 <= index < num_passes()); a video pipeline spreads the retries
  // over several frames so that a stream without faces does not pay for all of them each time.
  std::vector<FaceBox> detect_pass(const cv::Mat& frame, PixelFormat format, int index);

  // The copy pass `index` reads (the finer retry needs more pixels than the others). Throws
  // AlignError on a bad frame or pass index. const: safe on any thread.
  DetectionImage prepare(const cv::Mat& frame, PixelFormat format, int index) const;
  // Pass `index` on a copy from prepare() (for any pass: a copy finer than the pass needs is
  // shrunk); boxes in frame pixels. A copy of a tiny frame gives no faces.
  std::vector<FaceBox> detect_pass(const DetectionImage& image, int index);

  // True when the detector, run on a small upright patch around `box`, finds a face of about
  // that size there with a score of at least `threshold`. Used to tell a tracked face from a
  // landmark fit that has slid onto background.
  bool verify(const cv::Mat& frame, PixelFormat format, const FaceBox& box, double threshold = -0.5);
  // verify() in two halves, so that the detector can run on another thread: the small upright
  // grey patch around `box` (cheap; empty for a degenerate box), and the check of that patch.
  static cv::Mat verify_patch(const cv::Mat& frame, PixelFormat format, const FaceBox& box);
  // The same patch cut from a grey image of the frame's neighbourhood instead (a landmark fit's
  // patch: see FitPatch), `from_frame` mapping frame pixels to its pixels: a fraction of the
  // cost of going back to a large frame. Where the patch reaches past that image, its edge
  // pixels repeat.
  static cv::Mat verify_patch(const cv::Mat& gray, const cv::Matx23d& from_frame, const FaceBox& box);
  bool verify_patch_has_face(const cv::Mat& patch, double threshold = -0.5);

 private:
  // Scale of the copy pass `index` runs on (copy width / frame width); 0 = the pass has nothing
  // to add at this frame width (a finer retry that is not finer).
  double pass_scale(int index, int frame_width) const;

  DetectorOptions options_;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace starganv2::align
