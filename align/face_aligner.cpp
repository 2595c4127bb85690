#include "align/face_aligner.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <chrono>
#include <deque>
#include <future>
#include <limits>
#include <thread>
#include <utility>

#include "align/worker.h"

namespace starganv2::align {

namespace {

// Frames smaller than this cannot hold a face the detector could find.
constexpr int kMinSide = 20;

struct Fit {
  Landmarks landmarks;
  FaceBox box;  // box_from_landmarks(landmarks)
  bool ok = false;
  FitPatch seen;  // what the fit read: the detector's check of it is cut from there

  cv::Mat verify_patch() const { return Detector::verify_patch(seen.gray, seen.from_frame, box); }
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
                        int samples, const std::function<FaceBox(const Landmarks&)>& implied_box,
                        FitPatch* patch) {
  if (samples != 1 && samples != 5 && samples != 9) throw AlignError("fit_landmarks: samples must be 1, 5 or 9");
  Landmarks landmarks;
  FaceBox box = start;
  for (int pass = 0; pass < 6; ++pass) {
    landmarks = model.fit(frame, format, box, patch);
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
      const Landmarks l = model.fit(frame, format, b, patch);
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
    f.landmarks = fit_landmarks(model, frame, format, start, samples,
                                [](const Landmarks& l) { return box_from_landmarks(l); }, &f.seen);
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
  ShapeSmoother shape_smoother;
  int lost = 0;          // frames since the fit was lost; 0 = active
  bool updated = false;  // fitted on the current frame
  bool detected = false;
  // Born from a weak detection and not checked on a later frame yet: followed, not shown
  // (AlignerOptions::confirm_below_score).
  bool tentative = false;
  // Files: the detector's check failed on the last fit, which was kept because it followed on
  // smoothly from a checked one and looked like it (HOG's score of a face wavers around its
  // threshold from frame to frame); a second failure in a row drops the face.
  bool unconfirmed = false;
  cv::Mat patch;  // files: the checked patch of the last confirmed fit

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

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// A whole-frame detection: the plain pass, and when it finds nothing one retry pass (another
// rotation or a finer scale), so that a stream without faces pays for one retry per detection
// instead of all of them. The same function runs on the caller or a worker, so where it ran
// never changes what it finds.
struct Detection {
  std::vector<FaceBox> boxes;
  double ms = 0;  // time it took where it ran
};

Detection run_detection(Detector& detector, const DetectionImage& image, int retry_pass) {
  const auto t0 = Clock::now();
  Detection d;
  d.boxes = detector.detect_pass(image, 0);
  if (d.boxes.empty() && retry_pass > 0) d.boxes = detector.detect_pass(image, retry_pass);
  d.ms = ms_since(t0);
  return d;
}

// The same face as the last checked patch: normalised correlation of the middle 60 % of the two
// patches, i.e. of the face box each was drawn upright around (the margin shows whatever is
// behind the face, which changes as it moves); a patch of background is not alike.
bool looks_alike(const cv::Mat& a, const cv::Mat& b) {
  if (a.empty() || b.empty() || a.size() != b.size()) return false;
  const cv::Rect middle(a.cols / 5, a.rows / 5, a.cols - 2 * (a.cols / 5), a.rows - 2 * (a.rows / 5));
  cv::Mat r;
  cv::matchTemplate(a(middle), b(middle), r, cv::TM_CCOEFF_NORMED);
  return r.at<float>(0, 0) > 0.7f;
}

// A live confirmation of one followed face.
struct Confirmation {
  int id = 0;
  bool has_face = false;  // the detector found it on the patch
  bool alike = false;     // the patch looks like the track's last confirmed one
  cv::Mat patch;
};

// The copy a detection reads: fine enough for the retry pass it may need.
DetectionImage prepare_detection(const Detector& detector, const cv::Mat& frame, PixelFormat format, int retry_pass) {
  return detector.prepare(frame, format, retry_pass > 0 ? retry_pass : 0);
}

// Detections on workers (files' prefetched ones, live ones) read a plain copy of the frame, since
// the caller may release or draw on its frame before the job runs; the grey, downscaled detection
// image is made by the job (a copy costs ~1 ms at 1080p, the detection image 3 to 10 ms). The copy
// goes into a buffer of `pool` that no job holds any more, or a new one when all are held.
std::shared_ptr<cv::Mat> copy_for_job(std::vector<std::shared_ptr<cv::Mat>>& pool, const cv::Mat& frame) {
  auto it = std::find_if(pool.begin(), pool.end(), [](const std::shared_ptr<cv::Mat>& c) { return c.use_count() == 1; });
  if (it == pool.end()) it = pool.insert(pool.end(), std::make_shared<cv::Mat>());
  std::atomic_thread_fence(std::memory_order_acquire);  // pairs with the job's release of its reference
  frame.copyTo(**it);
  return *it;
}

// A job's detection on a copy from copy_for_job, which it lets go of as soon as it has made the
// detection image (the job must move its reference in: a packaged task keeps its function, and
// what that captured, until its future is gone). `ms` covers both.
Detection detect_on_copy(Detector& detector, std::shared_ptr<cv::Mat> copy, PixelFormat format, int retry_pass) {
  const auto t0 = Clock::now();
  const DetectionImage image = prepare_detection(detector, *copy, format, retry_pass);
  copy.reset();
  Detection result = run_detection(detector, image, retry_pass);
  result.ms = ms_since(t0);
  return result;
}

}  // namespace

struct FaceAligner::State {
  explicit State(const DetectorOptions& o) : detector(o), worker_detector(o), confirm_detector(o) {}
  Detector detector;          // the calling thread's
  Detector worker_detector;   // used only by jobs on detect_worker
  Detector confirm_detector;  // used only by jobs on confirm_worker
  // Files: prefetch() spreads its detections over `prefetch_detectors.size()` workers, each with
  // its own detector. Every result still belongs to its frame, so which worker ran it never
  // changes anything; several only let a many-core machine keep up with a fast GPU (a 640 px HOG
  // pass takes ~25 ms on one core, and frames without a face are searched on every frame).
  std::vector<std::unique_ptr<Detector>> prefetch_detectors;
  std::vector<Track> tracks;
  int next_id = 0;
  long frame_index = 0;  // every frame given to process(), for the default time base
  // Files: frames are matched with what prefetch() started by their sequence number since
  // reset(); detection runs on every detect_interval-th frame counted from reset() or the last
  // change of frame size (so a stream that changes size is searched at once). prefetch() keeps
  // the same counts over the frames it is given.
  long seq = 0, schedule = 0;
  long prefetch_seq = 0, prefetch_schedule = 0;
  cv::Size prefetch_size;
  double last_t = -std::numeric_limits<double>::infinity();
  cv::Size frame_size;
  AlignStats stats;
  long detections_on_caller = 0;
  long detections_on_worker = 0;

  // Files: whether the last frame processed had a face followed (a hint for prefetch()).
  bool following_faces = false;
  // Files: detections started ahead by prefetch(), by frame index.
  std::deque<std::pair<long, std::future<Detection>>> prefetched;
  // Live: at most one detection and one batch of confirmations on their way.
  std::future<Detection> live_detection;
  // The frame copies detection jobs read (copy_for_job): live, and files' prefetched ones.
  std::vector<std::shared_ptr<cv::Mat>> live_copies, prefetch_copies;
  std::future<std::vector<Confirmation>> live_confirmation;
  int frames_since_request = std::numeric_limits<int>::max() / 2;
  long live_requests = 0;

  // Declared last, so destroyed first: their threads finish before the detectors they use go.
  std::unique_ptr<SerialWorker> detect_worker;
  std::unique_ptr<SerialWorker> confirm_worker;
  std::vector<std::unique_ptr<SerialWorker>> prefetch_workers;

  // Live streams merge worker results whenever they come, so those workers give way to the
  // streaming thread; a file's detections are waited for, so they run at normal priority.
  bool live = false;
  SerialWorker::Priority lane_priority() const {
    return live ? SerialWorker::Priority::kBackground : SerialWorker::Priority::kNormal;
  }

  SerialWorker& detect_lane() {
    if (!detect_worker) detect_worker = std::make_unique<SerialWorker>(lane_priority());
    return *detect_worker;
  }
  // Prefetch worker `i` and its detector.
  int lanes = 1;
  std::pair<SerialWorker*, Detector*> prefetch_lane(std::size_t i) {
    if (prefetch_workers.empty()) {
      for (int k = 0; k < lanes; ++k) {
        prefetch_detectors.push_back(std::make_unique<Detector>(detector.options()));
        prefetch_workers.push_back(std::make_unique<SerialWorker>(SerialWorker::Priority::kNormal));
      }
    }
    i %= prefetch_workers.size();
    return {prefetch_workers[i].get(), prefetch_detectors[i].get()};
  }

  // Files: the detectors that check the fits of one frame's faces in parallel, face i with
  // check_detector(i) (dlib's detector keeps scratch state: one per thread).
  std::vector<std::unique_ptr<Detector>> check_detectors;
  void make_check_detectors(std::size_t n) {
    while (check_detectors.size() + 1 < n) check_detectors.push_back(std::make_unique<Detector>(detector.options()));
  }
  Detector& check_detector(std::size_t i) { return i == 0 ? detector : *check_detectors[i - 1]; }

  SerialWorker& confirm_lane() {
    if (!confirm_worker) confirm_worker = std::make_unique<SerialWorker>(lane_priority());
    return *confirm_worker;
  }

  // The retry pass a detection on frame `index` may run: the retries take turns.
  int retry_pass(long turn) const {
    const int passes = detector.num_passes();
    return passes > 1 ? 1 + static_cast<int>(turn % (passes - 1)) : 0;
  }
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
  if (!std::isfinite(options_.confirm_below_score))
    throw AlignError("AlignerOptions: confirm_below_score must be a finite HOG score");
  if (options_.prefetch_workers < 0 || options_.prefetch_workers > 64)
    throw AlignError("AlignerOptions: prefetch_workers must be 0 (automatic) to 64");
  for (int n : {options_.still_fit_samples, options_.video_fit_samples})
    if (n != 1 && n != 5 && n != 9) throw AlignError("AlignerOptions: fit samples must be 1, 5 or 9");
  if (!(options_.smoothing.strength >= 0) || !(options_.smoothing.beta >= 0))
    throw AlignError("AlignerOptions: smoothing strength and beta must be >= 0");
  state_ = std::make_unique<State>(options_.detector);
  state_->live = options_.live;
  state_->lanes = options_.prefetch_workers > 0 ? options_.prefetch_workers : prefetch_lanes();
}

FaceAligner::~FaceAligner() = default;
FaceAligner::FaceAligner(FaceAligner&&) noexcept = default;
FaceAligner& FaceAligner::operator=(FaceAligner&&) noexcept = default;

void FaceAligner::reset() {
  State& st = *state_;
  st.tracks.clear();
  st.seq = st.schedule = 0;
  st.prefetch_seq = st.prefetch_schedule = 0;
  st.prefetch_size = {};
  st.last_t = -std::numeric_limits<double>::infinity();
  st.frame_size = {};
  // Results still on their way belong to frames of before; their jobs own their inputs, so they
  // can finish unobserved.
  st.prefetched.clear();
  st.live_detection = {};
  st.live_confirmation = {};
  st.frames_since_request = std::numeric_limits<int>::max() / 2;
}

const AlignStats& FaceAligner::last_stats() const { return state_->stats; }

int prefetch_lanes() {
  static const int lanes = std::clamp(static_cast<int>(std::thread::hardware_concurrency() / 4), 1, 4);
  return lanes;
}
long FaceAligner::detections_on_caller() const { return state_->detections_on_caller; }
long FaceAligner::detections_on_worker() const { return state_->detections_on_worker; }

std::vector<AlignedFace> FaceAligner::align(const cv::Mat& image, PixelFormat format) {
  check_frame(image, format);
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
      face.shape = to_unit_crop(fit.landmarks, face.forward, options_.crop_size);
      face.crop = warp_crop(image, format, face.forward, options_.crop_size, options_.crop_format);
      face.detected = true;
      faces.push_back(std::move(face));
    }
  }
  return faces;
}

void FaceAligner::prefetch(const cv::Mat& frame, PixelFormat format) {
  if (options_.live) return;
  State& st = *state_;
  check_frame(frame, format);
  const long seq = st.prefetch_seq++;
  if (frame.size() != st.prefetch_size) st.prefetch_schedule = 0, st.prefetch_size = frame.size();
  const long schedule = st.prefetch_schedule++;
  if (frame.cols < kMinSide || frame.rows < kMinSide) return;
  // Scheduled detections always start ahead; while no face is followed, process() looks on every
  // frame, so those start ahead too. Which ones ran ahead never changes a result, only where the
  // work was done.
  if (schedule % options_.detect_interval != 0 && st.following_faces) return;
  const int retry = st.retry_pass(schedule);
  const auto [lane, d] = st.prefetch_lane(static_cast<std::size_t>(seq));
  st.prefetched.emplace_back(seq, lane->submit([d, copy = copy_for_job(st.prefetch_copies, frame), format, retry]() mutable {
    return detect_on_copy(*d, std::move(copy), format, retry);
  }));
}

std::vector<AlignedFace> FaceAligner::process(const cv::Mat& frame, PixelFormat format, double timestamp_s) {
  check_frame(frame, format);
  State& st = *state_;
  st.stats = AlignStats{};
  AlignStats& stats = st.stats;
  const double t = timestamp_s >= 0 ? timestamp_s : st.frame_index / options_.frame_rate;
  ++st.frame_index;
  const long seq = st.seq++;
  if (frame.size() != st.frame_size) st.schedule = 0;
  const long index = st.schedule++;
  if (frame.cols < kMinSide || frame.rows < kMinSide) {
    st.frame_size = frame.size();
    return {};
  }
  if (frame.size() != st.frame_size) {
    // Faces tracked at another size mean nothing now. The detection schedule and what prefetch()
    // started go on: they belong to the frames in the order given, whatever their size.
    st.tracks.clear();
    st.live_detection = {};
    st.live_confirmation = {};
    st.frames_since_request = std::numeric_limits<int>::max() / 2;
    st.frame_size = frame.size();
  }
  // A seek or a long gap: positions from before say nothing about motion now.
  if (t < st.last_t || t - st.last_t > 1.0) {
    for (Track& tr : st.tracks) tr.smoother.reset(), tr.shape_smoother.reset(), tr.has_prev = false;
  }
  st.last_t = t;
  const bool live = options_.live;

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
  const auto lose = [&](Track& tr) {
    // A tentative face that is lost is forgotten at once: if it is found again, it is a new
    // tentative face that must be borne out again, not an old one coming back.
    tr.lost = tr.tentative ? options_.keep_lost_frames + 2 : 1;
    tr.has_prev = false;
  };
  // Files check every fit with the detector here and now; live streams leave that to the
  // confirmation worker. `patch` receives what was checked; `detector` is this thread's (fits
  // checked in parallel each have their own).
  const bool check_here = options_.verify_fits && !live;
  const auto confirmed_here = [&](Detector& detector, const Fit& fit, cv::Mat& patch) {
    if (!check_here) return true;
    patch = fit.verify_patch();
    return detector.verify_patch_has_face(patch);
  };


  // Detection boxes: each goes to the nearest track that could have moved there (active ones at
  // their predicted place, lost ones where they were last seen) or starts a new one.
  // `stale` boxes come from an earlier frame (a live worker's): they only start tracks for faces
  // not followed yet (a box within a face's width of a followed face is that face, moved on), and
  // never re-fit a followed face from where it was.
  const auto merge = [&](const std::vector<FaceBox>& boxes, bool match_active, bool stale = false) {
    stats.detection_merged = true;
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
        const double radius = stale ? 1.0 : 0.5;
        const bool taken = std::any_of(st.tracks.begin(), st.tracks.end(), [&](const Track& tr) {
          return tr.active() && cv::norm(box.center - tr.fit.box.center) < radius * std::max(box.size, tr.fit.box.size);
        });
        if (taken || num_active() >= options_.detector.max_faces) continue;
      }
      const auto t0 = Clock::now();
      const Fit fit = fit_face(*model_, frame, format, box, options_.video_fit_samples);
      cv::Mat patch;
      const bool ok = fit.ok && confirmed_here(st.detector, fit, patch);
      stats.landmarks_ms += ms_since(t0);
      if (!ok) continue;
      if (best == nullptr) {
        Track tr;
        tr.id = st.next_id++;
        tr.tentative = box.score < options_.confirm_below_score;
        tr.smoother = PoseSmoother(options_.smoothing);
        tr.shape_smoother = ShapeSmoother(options_.smoothing);
        tr.lost = 1;  // update() below makes it active without a previous box
        st.tracks.push_back(std::move(tr));
        best = &st.tracks.back();
      } else {
        best->tentative = false;  // a detection on a later frame bears a tentative face out
      }
      update(*best, fit, true);
      best->unconfirmed = false;
      // Live: the detector found this face (on a recent frame), so its patch is what the
      // confirmations that follow compare against.
      best->patch = live ? fit.verify_patch() : std::move(patch);
    }
  };
  // A detection on this very frame, on the calling thread (files only).
  const auto detect_here = [&](int retry) {
    const auto t0 = Clock::now();
    const Detection d = run_detection(st.detector, prepare_detection(st.detector, frame, format, retry), retry);
    stats.detect_ms += ms_since(t0);
    ++stats.detections_here;
    ++st.detections_on_caller;
    return d.boxes;
  };

  // A file's detection of this very frame: started ahead by prefetch(), or run here.
  const auto this_frames_detection = [&] {
    while (!st.prefetched.empty() && st.prefetched.front().first < seq) st.prefetched.pop_front();
    if (!st.prefetched.empty() && st.prefetched.front().first == seq) {
      const Detection d = st.prefetched.front().second.get();  // waits when it is not done yet
      st.prefetched.pop_front();
      stats.worker_detect_ms = d.ms;
      ++st.detections_on_worker;
      return d.boxes;
    }
    return detect_here(st.retry_pass(index));
  };

  bool detect_now = false;
  if (live) {
    // Results that have arrived apply to this frame: confirmations first (a face the detector no
    // longer sees there is dropped), then new detections.
    using namespace std::chrono_literals;
    if (st.live_confirmation.valid() && st.live_confirmation.wait_for(0s) == std::future_status::ready) {
      // A face the detector misses is kept while it still looks like its last confirmed self
      // (answers come a frame or two late, and HOG's score of a face wavers around its
      // threshold); a patch that does not, such as background, drops it at once.
      for (Confirmation& c : st.live_confirmation.get()) {
        for (Track& tr : st.tracks) {
          if (tr.id != c.id || !tr.active()) continue;
          if (c.has_face) {
            tr.unconfirmed = false;
            tr.tentative = false;
            tr.patch = std::move(c.patch);
          } else if (tr.tentative) {
            lose(tr);  // a weak detection the check does not bear out: gone before it was shown
          } else if (c.alike || (tr.patch.empty() && !tr.unconfirmed)) {
            // (A face not confirmed yet has nothing to look like: one miss is let pass.)
            tr.unconfirmed = true;
          } else {
            lose(tr);
          }
        }
      }
    }
    if (st.live_detection.valid() && st.live_detection.wait_for(0s) == std::future_status::ready) {
      const Detection d = st.live_detection.get();
      stats.worker_detect_ms = d.ms;
      ++st.detections_on_worker;
      merge(d.boxes, /*match_active=*/false, /*stale=*/true);
    }
  } else if (index % options_.detect_interval == 0 || num_active() == 0) {
    // Files look on every detect_interval-th frame, and on every frame while no face is
    // followed, so that a face is translated on the first frame it can be found on.
    detect_now = true;
    merge(this_frames_detection(), true);
  }

  // Tracking: re-fit in the predicted box (faces in parallel when there are several and spare
  // cores; each fit only reads the frame); a fit that fails the checks is lost.
  std::vector<Track*> to_fit;
  for (Track& tr : st.tracks)
    if (tr.active() && !tr.updated) to_fit.push_back(&tr);
  std::vector<Fit> fits(to_fit.size());
  {
    const auto t0 = Clock::now();
    // Files check each fit with the detector here and now, in the same parallel task as the fit:
    // the faces' checks (3-4 ms each at 1080p) no longer run one after another.
    std::vector<cv::Mat> patches(fits.size());
    std::vector<char> confirmed(fits.size(), 0);  // fitted, and (files) the check passed
    if (check_here) st.make_check_detectors(fits.size());
    const auto fit_range = [&](const cv::Range& r) {
      for (int i = r.start; i < r.end; ++i) {
        fits[i] = fit_face(*model_, frame, format, to_fit[i]->predicted(), options_.video_fit_samples);
        // (check_detector(i) exists only when checking, hence the test before the call.)
        confirmed[i] = fits[i].ok && (!check_here || confirmed_here(st.check_detector(static_cast<std::size_t>(i)),
                                                                    fits[i], patches[i]));
      }
    };
    if (fits.size() > 1) cv::parallel_for_(cv::Range(0, static_cast<int>(fits.size())), fit_range);
    else fit_range(cv::Range(0, static_cast<int>(fits.size())));
    bool lost_now = false;
    for (std::size_t i = 0; i < fits.size(); ++i) {
      Track& tr = *to_fit[i];
      const FaceBox predicted = tr.predicted();
      const bool follows_on = cv::norm(fits[i].box.center - predicted.center) < 0.15 * predicted.size &&
                              std::abs(std::log(fits[i].box.size / predicted.size)) < 0.15;
      const cv::Mat& patch = patches[i];
      if (fits[i].ok && live) {
        // Live: the detector's confirmations decide, when they come back (above), whether this
        // is still a face; a fit leaves their state (the last confirmed patch, a miss pending)
        // as it is, or a face that left could never be dropped.
        update(tr, fits[i], false);
      } else if (confirmed[i]) {
        update(tr, fits[i], false);
        tr.unconfirmed = false;
        tr.tentative = false;
        tr.patch = patch;
      } else if (fits[i].ok && !tr.unconfirmed && !tr.tentative && follows_on && looks_alike(patch, tr.patch)) {
        update(tr, fits[i], false);
        tr.unconfirmed = true;
      } else {
        lose(*to_fit[i]);
        lost_now = true;
      }
    }
    stats.landmarks_ms += ms_since(t0);
    // Files: a face lost here is looked for again on this very frame.
    if (lost_now && !detect_now && !live) merge(this_frames_detection(), false);
    if (lost_now && live) st.frames_since_request = std::numeric_limits<int>::max() / 2;
  }

  // Two tracks that have converged on one face: the younger one goes.
  for (Track& a : st.tracks) {
    for (Track& b : st.tracks) {
      if (&a == &b || !a.active() || !b.active() || a.id > b.id) continue;
      if (cv::norm(a.fit.box.center - b.fit.box.center) < 0.35 * std::max(a.fit.box.size, b.fit.box.size))
        b.lost = options_.keep_lost_frames + 2;
    }
  }
  std::erase_if(st.tracks, [&](const Track& tr) { return tr.lost > options_.keep_lost_frames + 1; });

  if (live) {
    // Hand-offs: a downscaled grey copy for detection every detect_interval frames (and as soon
    // as a face was lost), and the patches around this frame's fits for the detector's
    // confirmation, each when the previous one has come back.
    const auto t0 = Clock::now();
    ++st.frames_since_request;
    if (!st.live_detection.valid() && st.frames_since_request >= options_.detect_interval) {
      st.frames_since_request = 0;
      const int retry = st.retry_pass(st.live_requests++);
      // A plain copy of the frame is all this thread does (copy_for_job).
      Detector* d = &st.worker_detector;
      st.live_detection = st.detect_lane().submit([d, copy = copy_for_job(st.live_copies, frame), format, retry]() mutable {
        return detect_on_copy(*d, std::move(copy), format, retry);
      });
    }
    if (options_.verify_fits && !st.live_confirmation.valid()) {
      struct Request {
        int id;
        cv::Mat patch, last;
      };
      std::vector<Request> requests;
      for (const Track& tr : st.tracks)
        if (tr.active()) requests.push_back({tr.id, tr.fit.verify_patch(), tr.patch});
      if (!requests.empty()) {
        Detector* d = &st.confirm_detector;
        st.live_confirmation = st.confirm_lane().submit([d, requests = std::move(requests)] {
          std::vector<Confirmation> out;
          for (const Request& r : requests) {
            Confirmation c{r.id, d->verify_patch_has_face(r.patch), false, r.patch};
            if (!c.has_face) c.alike = looks_alike(r.patch, r.last);
            out.push_back(std::move(c));
          }
          return out;
        });
      }
    }
    stats.handoff_ms += ms_since(t0);
  }

  const auto t_warp = Clock::now();
  std::vector<AlignedFace> faces;
  for (Track& tr : st.tracks) {
    if (!tr.active() || tr.tentative) continue;
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
    // The blend region's shape: the face's own shape where this frame's fit puts it on the
    // template (no pose left, only the shape), smoothed in time, then carried into the crop as it
    // is cut through this frame's fit. The region keeps the smoothed shape and still goes where
    // the face is on this frame, however far the smoothed framing lags behind a quick turn.
    const Landmarks own = tr.shape_smoother.filter(to_unit_crop(tr.fit.landmarks, raw, options_.crop_size), t);
    const cv::Matx23d raw_inverse = invert_affine(raw);
    Landmarks in_frame;
    for (int i = 0; i < kNumLandmarks; ++i)
      in_frame[i] = apply(raw_inverse, own[i] * options_.crop_size - cv::Point2d(0.5, 0.5));
    face.shape = to_unit_crop(in_frame, face.forward, options_.crop_size);
    faces.push_back(std::move(face));
  }
  const auto warp_range = [&](const cv::Range& r) {
    for (int i = r.start; i < r.end; ++i)
      faces[i].crop = warp_crop(frame, format, faces[i].forward, options_.crop_size, options_.crop_format);
  };
  if (faces.size() > 1) cv::parallel_for_(cv::Range(0, static_cast<int>(faces.size())), warp_range);
  else warp_range(cv::Range(0, static_cast<int>(faces.size())));
  stats.warp_ms = ms_since(t_warp);
  st.following_faces = !faces.empty();
  std::sort(faces.begin(), faces.end(), [](const AlignedFace& a, const AlignedFace& b) { return a.box.size > b.box.size; });
  return faces;
}

}  // namespace starganv2::align
