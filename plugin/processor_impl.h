// Processor's state, shared by the files that implement it (processor.cpp: model, styles and
// settings; stream.cpp: the stream pipeline; still.cpp: still images). Private to plugin/.
#pragma once

#include <opencv2/core.hpp>

#include <ATen/core/Tensor.h>

#include <deque>
#include <filesystem>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "align/compositor.h"
#include "align/face_aligner.h"
#include "align/temporal.h"
#include "align/views.h"
#include "align/worker.h"
#include "model/translator.h"
#include "processor.h"
#include "shared_engine.h"

namespace starganv2::plugin {

// The crops handed to the generator; the translator takes either order, RGB is what it was
// trained on.
inline constexpr align::PixelFormat kCropFormat = align::PixelFormat::kRGB;

align::PixelFormat to_align_format(PixelLayout layout);
// The engine's views of an RGB crop (img_size x img_size, 3 bytes per pixel), no copy.
ImageView view_of(const cv::Mat& crop);
MutableImageView mutable_view_of(cv::Mat& crop);
starganv2::Precision to_engine_precision(Precision p);
// Throws ProcessorError (kNotFound, naming the folder a relative path was looked up from, or
// kRead for a folder) unless `path` is a file; `what` names it ("checkpoint", "style file", ...).
void require_file(const std::string& path, const char* what);
align::View to_align_view(View view);
// A cv::Mat over a mapped frame: no copy, writes go straight to the buffer.
cv::Mat wrap(const FrameView& frame);
// The reported box of an aligned face: its id and the rounded bounds of its (turned) box; no
// landmarks.
FaceBox face_box(const align::AlignedFace& face);

// What a FaceAligner is built with; FaceAligner takes its options only at construction.
struct AlignerKey {
  int crop_size = 0;
  int detect_interval = 0;
  double smoothing = 0;
  bool live = false;
  bool operator==(const AlignerKey&) const = default;
};

// Building a FaceAligner deserialises dlib's HOG detectors (0.3-0.7 s each on a small CPU).
// Aligners of finished streams are kept, reset, for the next start with the same options, so
// that state changes and restarts do not pay for it again.
class AlignerPool {
 public:
  static bool contains(const AlignerKey& key);
  static std::unique_ptr<align::FaceAligner> take(const AlignerKey& key);
  static void give(const AlignerKey& key, std::unique_ptr<align::FaceAligner> aligner);
  static std::unique_ptr<align::FaceAligner> build(const AlignerKey& key);
  static std::unique_ptr<align::FaceAligner> take_or_build(const AlignerKey& key);
};

// A style as set_style() made it: what every face of the frames pushed after it is given.
// Immutable once made, shared by those frames.
struct StylePlan {
  StyleOptions options;
  int64_t domain = 0;
  std::string domain_name;
  StyleSource source = StyleSource::kLatent;
  at::Tensor code;  // (style_dim) float32 CPU: the shared code (latent: the code of `seed`)
  uint64_t serial = 0;  // 1, 2, ... in the order set_style() made them: tells plans apart
  bool per_face_latent() const { return options.per_face && source == StyleSource::kLatent; }
};

// The face id under which frame mode's one crop keeps its style.
inline constexpr int kFrameFaceId = 0;

// The styles the engine thread gave the faces, for transitions. Only engine jobs touch it (and
// discard(), once the engine is idle), so it needs no lock; jobs run in frame order, so what it
// holds depends on the frames alone, never on thread timing.
struct StyleBook {
  std::shared_ptr<const StylePlan> plan;  // of the last frame translated
  std::map<int, at::Tensor> shown;        // face id -> code given in the last frame translated
  // A style change in progress: face id -> the code it had when the change came. A face not in
  // it (one that appeared since) gets the new style at once.
  std::map<int, at::Tensor> from;
  std::map<int, at::Tensor> targets;      // per-face latent codes of `plan`, by face id
};

// A frame inside the stream pipeline.
struct InFlight {
  uint64_t tag = 0;
  cv::Mat frame;  // over the caller's pixels
  align::PixelFormat format = align::PixelFormat::kRGB;
  FrameSettings settings;
  // The frame's own style and blending, fixed when it is pushed, so that a change of them applies
  // to the same frames whether frames overlap or not.
  std::shared_ptr<const StylePlan> plan;
  double since_s = 0;       // timestamp of the first frame pushed with `plan`
  double transition_s = 0;  // what that frame asked for
  double timestamp_s = 0;   // settings.timestamp_s, or the 30 fps clock when it has none
  std::shared_ptr<const align::Compositor> compositor, mask_compositor;
  double temporal = 0;  // AlignOptions::temporal when it was pushed
  bool started = false;  // aligned, and its networks queued
  std::vector<align::AlignedFace> faces;
  cv::Mat square;  // Mode::kFrame: the frame at img_size
  struct Translated {
    std::vector<cv::Mat> crops;  // stabilised when the frame asks for it
    BatchInfo batch;
    double temporal_ms = 0;
  };
  std::future<Translated> translated;  // from the engine thread
  FrameReport report;
};

struct Processor::Impl {
  // The model and the thread that runs it, maybe shared with other streams (shared_engine.h):
  // every translation of the stream is queued there, so the streaming thread aligns the next
  // frame meanwhile; styles and still images go through engine->call().
  std::unique_ptr<EngineClient> engine;

  // Alignment. `aligner` follows the faces; a change of detect-interval, smoothing or liveness
  // builds its replacement on a worker thread (or takes one from the pool) while frames flow.
  AlignOptions align_options;
  AlignerKey aligner_key;
  std::unique_ptr<align::FaceAligner> aligner;
  std::future<std::unique_ptr<align::FaceAligner>> pending;
  AlignerKey pending_key;
  // Rebuilt when feather or colour matching change; frames inside keep the ones they were
  // pushed with.
  std::shared_ptr<const align::Compositor> compositor;
  std::shared_ptr<const align::Compositor> mask_compositor;  // colour matching off, for the mask view

  StyleOptions style;
  bool has_style = false;
  std::shared_ptr<const StylePlan> plan;  // made by set_style()
  // The plan of the last frame pushed, when it began, and the transition it asked for.
  std::shared_ptr<const StylePlan> pushed_plan;
  double pushed_since_s = 0;
  double pushed_transition_s = 0;
  double clock_s = -1;  // timestamp of the last frame pushed
  StyleBook book;       // engine thread only

  // The stream pipeline (stream.cpp).
  StreamOptions stream;
  std::deque<InFlight> queue;
  std::vector<align::TranslatedFace> last;  // the last translated faces, for late frames
  // Temporal stabilisation, applied by the engine thread right after each frame's translation
  // (jobs run in frame order: what it carries from frame to frame depends on the frames alone,
  // so files stay exact). Engine jobs only (and discard(), once the engine is idle). Rebuilt
  // (its history forgotten) when a frame asks for another strength.
  align::TemporalStabiliser stabiliser;
  uint64_t style_serial = 0;    // of the last plan set_style() made
  uint64_t transient_key = 0;   // streaming thread: style keys of frames in a style transition, each its own
  StreamCounters counters;

  // Aligned reference faces by file (size and time tell a rewritten file), most recent last:
  // a tool that alternates references, or a stream switching between a few, aligns each once.
  struct CachedReference {
    std::string path;
    uintmax_t size = 0;
    std::filesystem::file_time_type mtime;
    cv::Mat crop;
  };
  static constexpr size_t kMaxCachedReferences = 8;
  std::vector<CachedReference> references;

  // What find_still() found, for render_still().
  Mode still_mode = Mode::kFace;
  cv::Size still_size;
  std::vector<align::AlignedFace> still_faces;
  cv::Mat still_small;  // kFrame: the image at img_size, RGB

  Impl(const EngineOptions& options, const AlignOptions& align);
  ~Impl();

  int img_size() const { return static_cast<int>(engine->engine().config().img_size); }
  AlignerKey key_for(const AlignOptions& o) const;
  void build_compositors(const AlignOptions& o);
  void set_align(const AlignOptions& o);
  // Swaps in a finished replacement aligner, and starts one when the wanted options differ.
  // Frames waiting to be aligned are aligned by the old one first (its look-ahead belongs to them).
  void update_aligner();
  // Swaps in the aligner the current options want, now (waiting for it to be built if needed):
  // a stream that turns out to be live must not have its detections run by a file's aligner.
  void use_aligner_now();
  void swap_aligner(std::unique_ptr<align::FaceAligner> next, const AlignerKey& key);
  void set_style(const StyleOptions& o);
  cv::Mat reference_crop(const std::string& path);
  cv::Mat align_reference(const std::string& path);
  // Blocks until the engine has run every job of this stream queued so far.
  void wait_engine_idle();
  // The translation of `crops` (one batch) with the current style (the first domain's average
  // style before any), on the engine thread; the caller waits.
  std::vector<cv::Mat> translate(const std::vector<cv::Mat>& crops);
  // Engine thread: the style codes of a frame's faces ((N,style_dim) float32), moving from the
  // codes shown before a plan change to the plan's over the transition (see StyleBook).
  at::Tensor frame_styles(Translator& t, const std::shared_ptr<const StylePlan>& plan, const std::vector<int>& ids,
                          double weight);
  at::Tensor target_style(Translator& t, const StylePlan& plan, int id);
  // max-faces and min-face-size: the largest faces that are big enough.
  std::vector<align::AlignedFace> select_faces(std::vector<align::AlignedFace> faces) const;

  // stream.cpp
  int lookahead() const;
  int window() const;
  void push(const FrameView& frame, const FrameSettings& settings, uint64_t tag);
  std::optional<FinishedFrame> pop(bool drain);
  void start_ready(bool all);
  void start(InFlight& f);
  FrameReport finish(InFlight& f);
  // Engine thread: the crops to show for `translated`, stabilised with strength `temporal` (see
  // align/temporal.h); `translated` itself when 0.
  std::vector<cv::Mat> stabilise(double temporal, uint64_t style_key, const std::vector<cv::Mat>& aligned,
                                 const std::vector<int>& ids, const std::vector<cv::Mat>& translated);
  void discard();

  // still.cpp
  int find_still(cv::Mat& image, align::PixelFormat format, Mode mode);
  FrameReport render_still(cv::Mat& out, align::PixelFormat format, View view, std::vector<StillFace>* still);
};

}  // namespace starganv2::plugin
