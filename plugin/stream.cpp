// The stream pipeline of Processor (see processor.h). A frame is "started" when it is aligned and
// its batch is queued on the engine thread, and "finished" when its translated faces are drawn
// back. Frames start and finish in the order they came in.
//
// Files: a frame starts once `lookahead` newer frames are inside, so that the detections that
// prefetch() started for those have a head start on a worker; every detection still applies to
// the frame it was made on, so the output does not depend on timing. Live streams start a frame
// as soon as it comes in (their detections are merged when ready and nothing waits).
#include <opencv2/core.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "processor_impl.h"

namespace starganv2::plugin {

using Kind = ProcessorError::Kind;
using Clock = std::chrono::steady_clock;

namespace {

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// Frames a file keeps inside beyond the two that overlap, for detections to run ahead: 3, or
// twice the detection workers of a many-core machine, so that they all have frames to work on
// (each such frame is a buffer held from upstream).
int file_lookahead() { return std::max(3, 2 * align::prefetch_lanes()); }

// A video face's report: its box and its landmarks.
FaceBox report_box(const align::AlignedFace& f) {
  FaceBox box = face_box(f);
  box.landmarks.reserve(2 * f.landmarks.size());
  for (const cv::Point2d& p : f.landmarks) {
    box.landmarks.push_back(static_cast<float>(p.x));
    box.landmarks.push_back(static_cast<float>(p.y));
  }
  return box;
}

StyleReport style_report(const StylePlan& plan, double weight) {
  StyleReport r;
  r.domain = plan.domain_name;
  r.source = plan.source;
  r.seed = plan.options.seed;
  r.psi = plan.options.psi;
  r.reference = plan.source == StyleSource::kReference ? plan.options.reference : "";
  r.style_file = plan.source == StyleSource::kStyleFile ? plan.options.style_file : "";
  r.per_face = plan.per_face_latent();
  r.transition = weight;
  return r;
}

}  // namespace

int Processor::Impl::lookahead() const { return stream.overlap && !stream.live ? file_lookahead() : 0; }

int Processor::Impl::window() const { return stream.overlap ? 2 + lookahead() : 1; }

void Processor::Impl::push(const FrameView& view, const FrameSettings& settings, uint64_t tag) {
  const auto t0 = Clock::now();
  update_aligner();
  InFlight f;
  f.tag = tag;
  f.frame = wrap(view);
  f.format = to_align_format(view.layout);
  f.settings = settings;
  // Frames without a timestamp are taken as 30 fps, as the aligner does.
  clock_s = settings.timestamp_s >= 0 ? settings.timestamp_s : (clock_s < 0 ? 0.0 : clock_s + 1.0 / 30);
  f.timestamp_s = clock_s;
  if (plan != pushed_plan) {
    pushed_plan = plan;
    pushed_since_s = clock_s;
    pushed_transition_s = settings.transition_s;
  }
  f.plan = pushed_plan;
  f.since_s = pushed_since_s;
  f.transition_s = pushed_transition_s;
  f.compositor = compositor;
  f.mask_compositor = mask_compositor;
  f.temporal = align_options.temporal;
  // Files: this frame's scheduled detection starts now, on a worker.
  if (!settings.late && settings.mode == Mode::kFace && !stream.live) {
    aligner->prefetch(f.frame, f.format);
    f.report.times.handoff += ms_since(t0);
  }
  ++counters.frames;
  queue.push_back(std::move(f));
  queue.back().report.times.frame += ms_since(t0);
  start_ready(/*all=*/false);
}

void Processor::Impl::start_ready(bool all) {
  const int ahead = lookahead();
  for (size_t i = 0; i < queue.size(); ++i) {
    InFlight& f = queue[i];
    if (f.started) continue;
    const int newer = static_cast<int>(queue.size() - i - 1);
    if (!all && newer < ahead) break;
    const auto t0 = Clock::now();
    start(f);
    f.report.times.frame += ms_since(t0);
  }
}

void Processor::Impl::start(InFlight& f) {
  f.started = true;
  if (f.settings.late || f.frame.empty()) return;
  StageTimes& times = f.report.times;
  std::vector<cv::Mat> crops;
  std::vector<int> ids;  // whose style each crop gets
  if (f.settings.mode == Mode::kFrame) {
    const auto t0 = Clock::now();
    f.square = align::frame_to_square(f.frame, f.format, img_size(), kCropFormat);
    times.warp += ms_since(t0);
    crops.push_back(f.square);
    ids.push_back(kFrameFaceId);
  } else {
    const long before = aligner->detections_on_caller();
    f.faces = select_faces(aligner->process(f.frame, f.format, f.settings.timestamp_s));
    const align::AlignStats& a = aligner->last_stats();
    times.handoff += a.handoff_ms;
    times.landmarks += a.landmarks_ms;
    times.warp += a.warp_ms;
    times.detection_here = a.detections_here > 0;
    times.detection = a.detections_here > 0 ? a.detect_ms : a.worker_detect_ms;
    counters.detections_on_streaming_thread += aligner->detections_on_caller() - before;
    if (a.detection_merged && a.detections_here == 0) ++counters.detections_on_workers;
    for (const auto& face : f.faces) {
      crops.push_back(face.crop);
      ids.push_back(face.id);
      f.report.faces.push_back(report_box(face));
      if (f.plan && f.plan->per_face_latent())
        f.report.faces.back().style_seed = face_seed(f.plan->options.seed, face.id);
    }
  }
  if (crops.empty() || !f.plan) return;
  const double weight = transition_weight(f.timestamp_s - f.since_s, f.transition_s);
  f.report.style = style_report(*f.plan, weight);
  // A new style is shown at once, not blended in: every plan has its own key, and so has every
  // frame of a style transition (the transition is the change the viewer asked to see).
  const uint64_t style_key = weight < 1.0 ? (uint64_t{1} << 63) | ++transient_key : f.plan->serial;
  // One batch for every face of the frame, a style per face, on the engine thread (with other
  // live streams' faces when the engine is shared), and its temporal stabilisation right after it
  // there: a stream's jobs run in its frame order, so what the stabiliser carries from frame to
  // frame depends on the frames alone (files stay exact), and the streaming thread's budget is
  // not touched.
  auto result = std::make_shared<std::promise<InFlight::Translated>>();
  f.translated = result->get_future();
  TranslationJob job;
  job.crops = std::move(crops);
  job.styles = [this, ids, plan = f.plan, weight](Translator& t) { return frame_styles(t, plan, ids, weight); };
  job.done = [this, result, ids, temporal = f.temporal, style_key](std::exception_ptr error, std::vector<cv::Mat> aligned,
                                                                  std::vector<cv::Mat> translated, const BatchInfo& info) {
    try {
      if (error) std::rethrow_exception(error);
      InFlight::Translated out;
      out.batch = info;
      const auto t0 = Clock::now();
      out.crops = stabilise(temporal, style_key, aligned, ids, translated);
      out.temporal_ms = temporal > 0 ? ms_since(t0) : 0;
      result->set_value(std::move(out));
    } catch (...) {
      result->set_exception(std::current_exception());
    }
  };
  engine->submit(std::move(job), stream.live, stream.batch_timeout);
}

FrameReport Processor::Impl::finish(InFlight& f) {
  FrameReport& report = f.report;
  if (f.settings.late) {
    report.reused = true;
    report.faces.clear();
    if (!last.empty() && !f.frame.empty()) {
      const auto t0 = Clock::now();
      align::render_view(f.frame, f.format, to_align_view(f.settings.view), last, *f.compositor,
                         *f.mask_compositor, f.settings.strength);
      report.times.compositing = ms_since(t0);
      report.changed = true;
    }
    return report;
  }
  last.clear();
  if (!f.translated.valid()) return report;  // nothing to translate
  InFlight::Translated t = f.translated.get();  // waits for the engine thread; rethrows its error
  report.times.networks = t.batch.network_ms;
  report.times.queued = t.batch.queued_ms;
  report.times.batch_faces = t.batch.faces;
  report.times.batch_streams = t.batch.streams;
  report.times.temporal = t.temporal_ms;
  const auto t0 = Clock::now();
  if (f.settings.mode == Mode::kFrame) {
    align::square_to_frame(t.crops.front(), f.frame, f.format, f.settings.strength);
  } else {
    for (size_t i = 0; i < f.faces.size(); ++i)
      last.push_back({f.faces[i].crop, t.crops[i], f.faces[i].inverse, f.faces[i].shape});
    align::render_view(f.frame, f.format, to_align_view(f.settings.view), last, *f.compositor,
                       *f.mask_compositor, f.settings.strength);
  }
  report.times.compositing = ms_since(t0);
  report.changed = true;
  return report;
}

std::vector<cv::Mat> Processor::Impl::stabilise(double temporal, uint64_t style_key, const std::vector<cv::Mat>& aligned,
                                                const std::vector<int>& ids, const std::vector<cv::Mat>& translated) {
  // A live stream's flow is the cheaper one (align/temporal.h: half the stabiliser's cost, a
  // little less flicker removed), so that it fits the live frame budget; files get the finer one.
  const int stride = stream.live ? align::TemporalOptions::kLiveFlowPatchStride
                                 : align::TemporalOptions::kFileFlowPatchStride;
  if (temporal != stabiliser.options().strength || stride != stabiliser.options().flow_patch_stride) {
    align::TemporalOptions o = stabiliser.options();
    o.strength = temporal;
    o.flow_patch_stride = stride;
    stabiliser = align::TemporalStabiliser(o);
  }
  if (!stabiliser.enabled()) return translated;
  std::vector<cv::Mat> shown;
  shown.reserve(translated.size());
  for (size_t i = 0; i < translated.size(); ++i)
    shown.push_back(stabiliser.stabilise(ids[i], aligned[i], translated[i], style_key));
  stabiliser.end_frame(ids);
  return shown;
}

std::optional<FinishedFrame> Processor::Impl::pop(bool drain) {
  if (queue.empty()) return std::nullopt;
  if (!drain && static_cast<int>(queue.size()) < window()) return std::nullopt;
  const auto t0 = Clock::now();
  if (!queue.front().started) start_ready(/*all=*/true);
  InFlight& f = queue.front();
  FinishedFrame out;
  out.tag = f.tag;
  try {
    out.report = finish(f);
  } catch (...) {
    queue.pop_front();  // the frame is given up; the ones behind it can still finish
    throw;
  }
  out.report.times.frame += ms_since(t0);
  queue.pop_front();
  return out;
}

void Processor::Impl::discard() {
  wait_engine_idle();
  queue.clear();
  last.clear();
  stabiliser.reset();
  aligner->reset();
  // Timestamps start again after a flush or in a new stream: the current style applies at once.
  book = StyleBook{};
  pushed_plan.reset();
  clock_s = -1;
}

// ---- Processor: the stream pipeline -----------------------------------------------------------

void Processor::set_stream(const StreamOptions& options) {
  if (options == impl_->stream) return;
  // Frames inside were started (or will be) under the old options; a new liveness needs a new
  // aligner, which update_aligner() swaps in once every waiting frame has been aligned.
  impl_->start_ready(/*all=*/true);
  impl_->stream = options;
  impl_->use_aligner_now();
}

const StreamOptions& Processor::stream() const { return impl_->stream; }

int Processor::window() const { return impl_->window(); }

void Processor::push(const FrameView& frame, const FrameSettings& settings, uint64_t tag) {
  try {
    impl_->push(frame, settings, tag);
  } catch (const align::AlignError& e) {
    throw ProcessorError(Kind::kFailed, e.what());
  } catch (const std::invalid_argument& e) {
    throw ProcessorError(Kind::kFailed, e.what());
  }
}

std::optional<FinishedFrame> Processor::pop(bool drain) {
  try {
    return impl_->pop(drain);
  } catch (const align::AlignError& e) {
    throw ProcessorError(Kind::kFailed, e.what());
  } catch (const std::invalid_argument& e) {
    throw ProcessorError(Kind::kFailed, e.what());
  }
}

int Processor::in_flight() const { return static_cast<int>(impl_->queue.size()); }

void Processor::discard() { impl_->discard(); }

void Processor::reset() { impl_->discard(); }

StreamCounters Processor::counters() const {
  StreamCounters c = impl_->counters;
  c.engine_streams = impl_->engine->engine().clients();
  return c;
}

FrameReport Processor::process(const FrameView& frame, Mode mode, View view, double timestamp_s) {
  if (!impl_->queue.empty())
    throw ProcessorError(Kind::kFailed, "Processor::process: frames are inside the pipeline; pop them first");
  push(frame, FrameSettings{.mode = mode, .view = view, .timestamp_s = timestamp_s}, 0);
  return pop(/*drain=*/true)->report;
}

FrameReport Processor::reuse_last(const FrameView& frame, View view) {
  if (!impl_->queue.empty())
    throw ProcessorError(Kind::kFailed, "Processor::reuse_last: frames are inside the pipeline; pop them first");
  push(frame, FrameSettings{.mode = Mode::kFace, .view = view, .late = true}, 0);
  return pop(/*drain=*/true)->report;
}

}  // namespace starganv2::plugin
