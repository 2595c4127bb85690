#include "align/face_aligner.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace starganv2::align {

namespace {

// Frames smaller than this cannot hold a face the detector could find.
constexpr int kMinSide = 20;

struct Fit {
  Landmarks landmarks;
  FaceBox box;  // box_from_landmarks(landmarks)
  bool ok = false;
};

double angle_diff_deg(double a, double b) { return std::remainder(a - b, 360.0); }

bool boxes_differ(const FaceBox& a, const FaceBox& b) {
  return cv::norm(a.center - b.center) > 0.04 * a.size || std::abs(std::log(b.size / a.size)) > 0.06 ||
         std::abs(angle_diff_deg(a.angle_deg, b.angle_deg)) > 4.0;
}

}  // namespace

// dlib's predictor depends on the box it is given and is most accurate in one like the
// detector's around an upright face: so the fit is repeated in the box the previous fit implies
// until that box settles, which makes the result a property of the face rather than of where the
// detector or the tracker put its box. A face turned 40 degrees in an upright detector box needs
// up to 5 passes (each fit undershoots the turn); one already in a fitting box needs 1 or 2.
Landmarks fit_landmarks(const ShapeModel& model, const cv::Mat& frame, PixelFormat format, const FaceBox& start,
                        int samples, const std::function<FaceBox(const Landmarks&)>& implied_box) {
  if (samples != 1 && samples != 5 && samples != 9) throw AlignError("fit_landmarks: samples must be 1, 5 or 9");
  Landmarks landmarks;
  FaceBox box = start;
  for (int pass = 0; pass < 6; ++pass) {
    landmarks = model.fit(frame, format, box);
    const FaceBox next = implied_box(landmarks);
    if (!boxes_differ(box, next)) break;
    box = next;
  }
  if (samples == 1) return landmarks;
  const FaceBox centre = implied_box(landmarks);
  Landmarks sum{};
  int n = 0;
  for (int dy = -1; dy <= 1; ++dy)
    for (int dx = -1; dx <= 1; ++dx) {
      if (samples < 9 && dx != 0 && dy != 0) continue;
      FaceBox b = centre;
      b.center += cv::Point2d(dx, dy) * (0.03 * centre.size);
      const Landmarks l = model.fit(frame, format, b);
      for (int i = 0; i < kNumLandmarks; ++i) sum[i] += l[i];
      ++n;
    }
  for (int i = 0; i < kNumLandmarks; ++i) landmarks[i] = sum[i] / n;
  return landmarks;
}

namespace {

// fit_landmarks plus the checks that tell a face from a fit gone astray.
Fit fit_face(const ShapeModel& model, const cv::Mat& frame, PixelFormat format, const FaceBox& start, int samples) {
  Fit f;
  try {
    f.landmarks = fit_landmarks(model, frame, format, start, samples);
    f.box = box_from_landmarks(f.landmarks);
    const double extent = std::max(frame.cols, frame.rows);
    // A residual past 0.1 crop widths is no face shape (real ones sit near 0.02); the centre may
    // leave the frame by half a box at most (a face cut by the edge).
    f.ok = f.box.size > 8 && f.box.size < 4 * extent && f.box.center.x > -0.5 * f.box.size &&
           f.box.center.y > -0.5 * f.box.size && f.box.center.x < frame.cols + 0.5 * f.box.size &&
           f.box.center.y < frame.rows + 0.5 * f.box.size && template_residual(f.landmarks) < 0.1;
  } catch (const AlignError&) {
    f.ok = false;  // degenerate geometry: treated as a lost fit
  }
  return f;
}

struct Track {
  int id = 0;
  Fit fit;
  FaceBox prev_box;
  bool has_prev = false;
  PoseSmoother smoother;
  int lost = 0;          // frames since the fit was lost; 0 = active
  bool updated = false;  // fitted on the current frame
  bool detected = false;

  bool active() const { return lost == 0; }

  // Constant-velocity guess of where the face is now.
  FaceBox predicted() const {
    FaceBox b = fit.box;
    if (!has_prev) return b;
    b.center += fit.box.center - prev_box.center;
    b.angle_deg += angle_diff_deg(fit.box.angle_deg, prev_box.angle_deg);
    b.size *= std::clamp(fit.box.size / prev_box.size, 0.8, 1.25);
    return b;
  }
};

}  // namespace

struct FaceAligner::State {
  explicit State(const DetectorOptions& o) : detector(o) {}
  Detector detector;
  std::vector<Track> tracks;
  int next_id = 0;
  long frame_index = 0;
  int frames_since_detect = std::numeric_limits<int>::max() / 2;
  int retry_cursor = 0;
  double last_t = -std::numeric_limits<double>::infinity();
  cv::Size frame_size;
};

FaceAligner::FaceAligner(std::shared_ptr<const ShapeModel> model, AlignerOptions options)
    : options_(std::move(options)), model_(std::move(model)) {
  if (!model_) throw AlignError("FaceAligner: no shape model (load one with ShapeModel::load)");
  if (options_.crop_size < 8 || options_.crop_size > 4096) throw AlignError("AlignerOptions: crop_size must be 8..4096");
  if (options_.crop_format != PixelFormat::kRGB && options_.crop_format != PixelFormat::kBGR)
    throw AlignError("AlignerOptions: crop_format must be RGB or BGR");
  if (options_.detect_interval < 1) throw AlignError("AlignerOptions: detect_interval must be >= 1");
  if (!(options_.frame_rate > 0)) throw AlignError("AlignerOptions: frame_rate must be > 0");
  if (options_.keep_lost_frames < 0) throw AlignError("AlignerOptions: keep_lost_frames must be >= 0");
  for (int n : {options_.still_fit_samples, options_.video_fit_samples})
    if (n != 1 && n != 5 && n != 9) throw AlignError("AlignerOptions: fit samples must be 1, 5 or 9");
  if (!(options_.smoothing.strength >= 0) || !(options_.smoothing.beta >= 0))
    throw AlignError("AlignerOptions: smoothing strength and beta must be >= 0");
  state_ = std::make_unique<State>(options_.detector);
}

FaceAligner::~FaceAligner() = default;
FaceAligner::FaceAligner(FaceAligner&&) noexcept = default;
FaceAligner& FaceAligner::operator=(FaceAligner&&) noexcept = default;

void FaceAligner::reset() {
  state_->tracks.clear();
  state_->frames_since_detect = std::numeric_limits<int>::max() / 2;
  state_->retry_cursor = 0;
  state_->last_t = -std::numeric_limits<double>::infinity();
  state_->frame_size = {};
}

std::vector<AlignedFace> FaceAligner::align(const cv::Mat& image, PixelFormat format) {
  check_frame(image, format, "image");
  if (image.cols < kMinSide || image.rows < kMinSide) return {};
  Detector& detector = state_->detector;
  std::vector<AlignedFace> faces;
  // Pass after pass until one yields a face that survives fitting and the check: a rotated pass
  // can fire on something that is no face, or on a face turned the other way, whose fit diverges.
  for (int pass = 0; pass < detector.num_passes() && faces.empty(); ++pass) {
    for (const FaceBox& box : detector.detect_pass(image, format, pass)) {
      const Fit fit = fit_face(*model_, image, format, box, options_.still_fit_samples);
      if (!fit.ok || (options_.verify_fits && !detector.verify(image, format, fit.box))) continue;
      const bool duplicate = std::any_of(faces.begin(), faces.end(), [&](const AlignedFace& f) {
        return cv::norm(f.box.center - fit.box.center) < 0.5 * std::max(f.box.size, fit.box.size);
      });
      if (duplicate) continue;
      AlignedFace face;
      face.id = static_cast<int>(faces.size());
      face.box = fit.box;
      face.box.score = box.score;
      face.landmarks = fit.landmarks;
      face.forward = fit_to_template(fit.landmarks, options_.crop_size);
      face.inverse = invert_affine(face.forward);
      face.crop = warp_crop(image, format, face.forward, options_.crop_size, options_.crop_format);
      face.detected = true;
      faces.push_back(std::move(face));
    }
  }
  return faces;
}

std::vector<AlignedFace> FaceAligner::process(const cv::Mat& frame, PixelFormat format, double timestamp_s) {
  check_frame(frame, format);
  State& st = *state_;
  const double t = timestamp_s >= 0 ? timestamp_s : st.frame_index / options_.frame_rate;
  ++st.frame_index;
  if (frame.cols < kMinSide || frame.rows < kMinSide) return {};
  if (frame.size() != st.frame_size) {
    reset();
    st.frame_size = frame.size();
  }
  // A seek or a long gap: positions from before say nothing about motion now.
  if (t < st.last_t || t - st.last_t > 1.0) {
    for (Track& tr : st.tracks) tr.smoother.reset(), tr.has_prev = false;
  }
  st.last_t = t;

  std::erase_if(st.tracks, [&](Track& tr) { return !tr.active() && ++tr.lost > options_.keep_lost_frames + 1; });
  for (Track& tr : st.tracks) tr.updated = tr.detected = false;

  const auto num_active = [&] {
    return std::count_if(st.tracks.begin(), st.tracks.end(), [](const Track& tr) { return tr.active(); });
  };
  const auto update = [&](Track& tr, const Fit& fit, bool detected) {
    tr.has_prev = tr.active();
    tr.prev_box = tr.fit.box;
    tr.fit = fit;
    tr.lost = 0;
    tr.updated = true;
    tr.detected = detected;
  };

  // Detection, then each box goes to the nearest track that could have moved there (active ones
  // at their predicted place, lost ones where they were last seen) or starts a new one.
  const auto detect = [&](bool match_active) {
    st.frames_since_detect = 0;
    std::vector<FaceBox> boxes = st.detector.detect_pass(frame, format, 0);
    const int passes = st.detector.num_passes();
    // The retries cost several plain passes; on a stream without faces spread them over the
    // detection frames, one each, instead of paying for all of them every time.
    if (boxes.empty() && num_active() == 0 && passes > 1) {
      boxes = st.detector.detect_pass(frame, format, 1 + st.retry_cursor);
      st.retry_cursor = (st.retry_cursor + 1) % (passes - 1);
    }
    for (const FaceBox& box : boxes) {
      Track* best = nullptr;
      double best_d = 0.5;
      for (Track& tr : st.tracks) {
        if (tr.updated || (tr.active() && !match_active)) continue;
        const FaceBox ref = tr.active() ? tr.predicted() : tr.fit.box;
        const double d = cv::norm(box.center - ref.center) / std::max(box.size, ref.size);
        const double r = box.size / ref.size;
        if (d < best_d && r > 0.6 && r < 1.0 / 0.6) best_d = d, best = &tr;
      }
      if (best == nullptr) {
        // A box on a face that is already tracked (one the matching above skipped) is no new face.
        const bool taken = std::any_of(st.tracks.begin(), st.tracks.end(), [&](const Track& tr) {
          return tr.active() && cv::norm(box.center - tr.fit.box.center) < 0.5 * std::max(box.size, tr.fit.box.size);
        });
        if (taken || num_active() >= options_.detector.max_faces) continue;
      }
      const Fit fit = fit_face(*model_, frame, format, box, options_.video_fit_samples);
      if (!fit.ok || (options_.verify_fits && !st.detector.verify(frame, format, fit.box))) continue;
      if (best == nullptr) {
        Track tr;
        tr.id = st.next_id++;
        tr.smoother = PoseSmoother(options_.smoothing);
        tr.lost = 1;  // update() below makes it active without a previous box
        st.tracks.push_back(std::move(tr));
        best = &st.tracks.back();
      }
      update(*best, fit, true);
    }
  };

  const bool detect_now = ++st.frames_since_detect >= options_.detect_interval;
  if (detect_now) detect(true);

  // Tracking: re-fit in the predicted box; a fit that fails the checks is lost.
  bool lost_now = false;
  for (Track& tr : st.tracks) {
    if (!tr.active() || tr.updated) continue;
    const Fit fit = fit_face(*model_, frame, format, tr.predicted(), options_.video_fit_samples);
    if (fit.ok && (!options_.verify_fits || st.detector.verify(frame, format, fit.box))) {
      update(tr, fit, false);
    } else {
      tr.lost = 1;
      tr.has_prev = false;
      lost_now = true;
    }
  }
  if (lost_now && !detect_now) detect(false);

  // Two tracks that have converged on one face: the younger one goes.
  for (Track& a : st.tracks) {
    for (Track& b : st.tracks) {
      if (&a == &b || !a.active() || !b.active() || a.id > b.id) continue;
      if (cv::norm(a.fit.box.center - b.fit.box.center) < 0.35 * std::max(a.fit.box.size, b.fit.box.size))
        b.lost = options_.keep_lost_frames + 2;
    }
  }
  std::erase_if(st.tracks, [&](const Track& tr) { return tr.lost > options_.keep_lost_frames + 1; });

  std::vector<AlignedFace> faces;
  for (Track& tr : st.tracks) {
    if (!tr.active()) continue;
    AlignedFace face;
    face.id = tr.id;
    face.box = tr.fit.box;
    face.landmarks = tr.fit.landmarks;
    face.detected = tr.detected;
    const cv::Matx23d raw = fit_to_template(tr.fit.landmarks, options_.crop_size);
    if (options_.smoothing.strength > 0) {
      const CropPose pose = tr.smoother.filter(pose_from_forward(raw, options_.crop_size), t);
      face.forward = forward_from_pose(pose, options_.crop_size);
    } else {
      face.forward = raw;
    }
    face.inverse = invert_affine(face.forward);
    face.crop = warp_crop(frame, format, face.forward, options_.crop_size, options_.crop_format);
    faces.push_back(std::move(face));
  }
  std::sort(faces.begin(), faces.end(), [](const AlignedFace& a, const AlignedFace& b) { return a.box.size > b.box.size; });
  return faces;
}

}  // namespace starganv2::align
