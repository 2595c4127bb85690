// The buffers' way through the element `starganv2`: submit_input_buffer() maps each buffer and
// hands it to the Processor, generate_output() and drain() take the finished frames back out in
// order, and downstream's refusals drop what is still inside. Apart from the element's life
// cycle (gststarganv2.cpp) because this is the per-frame path, run on the streaming thread only,
// with its own rules about what is held, pushed and dropped.

#include "element.h"

#include <exception>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

// Gives back every frame the processor still holds, unmapped: they are not pushed (a flush, a
// stop, or an error that ends the stream).
void release_pending(GstStarganv2* self) {
  auto* priv = self->priv;
  if (priv->processor) priv->processor->discard();
  for (PendingFrame& p : priv->pending) {
    GstBuffer* buffer = p.frame.buffer;
    gst_video_frame_unmap(&p.frame);
    gst_buffer_unref(buffer);
  }
  priv->pending.clear();
}

// Downstream refused a frame (`ret`): the frames still inside are dropped, not pushed (EOS:
// quietly; FLUSHING, NOT_LINKED or an error: the refusal went upstream as the return of the
// chain call that pushed, and upstream posts the error, as with any element). Nothing is kept
// of it: a buffer that comes in later is taken and pushed in its turn, as a plain element would
// push it, and downstream answers it again.
static void stop_pushing(GstStarganv2* self, GstFlowReturn ret) {
  GST_DEBUG_OBJECT(self, "downstream returned %s: dropping the %zu frame(s) inside", gst_flow_get_name(ret),
                   self->priv->pending.size());
  release_pending(self);
}

// What downstream said to the last frame the base class pushed, when that is not known yet:
// GstBaseTransform calls generate_output() again only after a push that returned GST_FLOW_OK,
// so a frame still unconfirmed when the next buffer or event comes was refused, and the source
// pad keeps the answer. A refusal drops the frames inside (stop_pushing) and is returned.
static GstFlowReturn downstream_flow(GstStarganv2* self) {
  auto* priv = self->priv;
  if (!priv->push_unconfirmed) return GST_FLOW_OK;
  priv->push_unconfirmed = false;
  const GstFlowReturn last = gst_pad_get_last_flow_return(GST_BASE_TRANSFORM_SRC_PAD(self));
  if (last != GST_FLOW_OK) stop_pushing(self, last);
  return last;
}


// Accounts a frame's processing time by the rule of plugin/latency.h, and tells a live pipeline
// when the reported latency changed (it grows at once and comes down with hysteresis).
static void account_processing_time(GstStarganv2* self, GstClockTime elapsed, bool transient) {
  auto* priv = self->priv;
  if (!priv->latency_estimate.add(elapsed, transient)) return;
  const GstClockTime reported = priv->latency_estimate.reported();
  bool live = false;
  {
    std::lock_guard<std::mutex> lk(priv->lock);
    priv->latency = reported;
    live = priv->live;
  }
  if (live) {
    GST_INFO_OBJECT(self, "processing time changed: reporting a latency of %" GST_TIME_FORMAT,
                    GST_TIME_ARGS(reported));
    gst_element_post_message(GST_ELEMENT(self), gst_message_new_latency(GST_OBJECT(self)));
  }
}

// Takes a frame out of the element once the processor gives it back: unmapped, with its QoS
// and bus messages posted and its time accounted. Returns the buffer, now the caller's.
static GstBuffer* finish_frame(GstStarganv2* self, const sp::FinishedFrame& done) {
  auto* priv = self->priv;
  PendingFrame p = priv->pending.front();
  priv->pending.pop_front();
  GstBuffer* buffer = p.frame.buffer;
  const int width = GST_VIDEO_FRAME_WIDTH(&p.frame), height = GST_VIDEO_FRAME_HEIGHT(&p.frame);
  gst_video_frame_unmap(&p.frame);
  add_face_metas(buffer, done.report, width, height);
  if (p.late) post_qos_message(self, buffer, p.running_time, p.earliest, p.proportion);
  if (p.post_message) post_frame_message(self, buffer, done.report);
  if (!p.late)
    account_processing_time(self, static_cast<GstClockTime>(done.report.times.frame * 1e6), p.transient);
  {
    std::lock_guard<std::mutex> lk(priv->lock);
    priv->counters = priv->processor->counters();
  }
  return buffer;
}

// After an exception from the processor: the frames it gave up on leave the element too.
static void forget_dropped(GstStarganv2* self) {
  auto* priv = self->priv;
  const size_t inside = priv->processor ? static_cast<size_t>(priv->processor->in_flight()) : 0;
  while (priv->pending.size() > inside) {
    PendingFrame& p = priv->pending.front();
    GstBuffer* buffer = p.frame.buffer;
    gst_video_frame_unmap(&p.frame);
    gst_buffer_unref(buffer);
    priv->pending.pop_front();
  }
}

// Makes the processor's style from `wanted` (streaming thread). Documented fallback: a value
// that cannot work keeps the previous style, with a warning. The refused source (a domain,
// reference or style file other than the one in use) is also taken back out of the properties,
// unless it was changed again meanwhile, so that they read back the style in use and a later
// seed or psi is not refused for a bad domain it has nothing to do with; a seed or psi given
// together with the refused value still applies.
static void apply_style(GstStarganv2* self, const sp::StyleOptions& wanted) {
  auto* priv = self->priv;
  auto attempt = [&](const sp::StyleOptions& style) {
    try {
      priv->processor->set_style(style);
      priv->style_in_use = style;
      return true;
    } catch (const sp::ProcessorError& e) {
      GST_ELEMENT_WARNING(self, RESOURCE, SETTINGS, ("%s; keeping the previous style.", e.what()), (nullptr));
    }
    return false;
  };
  if (attempt(wanted)) return;
  const sp::StyleOptions used = priv->style_in_use;
  std::vector<GParamSpec*> reverted;
  {
    std::lock_guard<std::mutex> lk(priv->lock);
    sp::StyleOptions& now = priv->settings.style;
    auto revert = [&](std::string sp::StyleOptions::*field, int prop) {
      if (wanted.*field != used.*field && now.*field == wanted.*field) {
        now.*field = used.*field;
        reverted.push_back(gst_starganv2_properties[prop]);
      }
    };
    revert(&sp::StyleOptions::domain, PROP_DOMAIN);
    revert(&sp::StyleOptions::reference, PROP_REFERENCE);
    revert(&sp::StyleOptions::style_file, PROP_STYLE_FILE);
  }
  for (GParamSpec* pspec : reverted) g_object_notify_by_pspec(G_OBJECT(self), pspec);
  sp::StyleOptions rest = wanted;
  rest.domain = used.domain;
  rest.reference = used.reference;
  rest.style_file = used.style_file;
  if (!(rest == used)) attempt(rest);
}

// Why submit_input_buffer/generate_output rather than transform_frame_ip: the processor holds a
// few frames (the networks of one run on the engine thread while the next is aligned, and files
// let detections run ahead), which the in-place transform cannot express: it must return each
// frame before it sees the next. These two virtual methods of GstBaseTransform take a buffer in
// and give zero or more out on the same streaming thread, so upstream's pace, the segment, QoS,
// caps and allocation stay the base class's business, and no thread of our own pushes buffers
// (an element with its own source-pad task would have to re-implement all of that). Serialized
// events drain the frames inside first (sink_event), so nothing overtakes a buffer.
static GstFlowReturn submit_unguarded(GstStarganv2* self, GstBuffer* input) {
  auto* priv = self->priv;
  auto* trans = GST_BASE_TRANSFORM(self);
  if (!priv->processor) {
    gst_buffer_unref(input);
    GST_ELEMENT_ERROR(self, CORE, FAILED, ("The element was not started."), (nullptr));
    return GST_FLOW_ERROR;
  }
  // After a refusal the frames that were inside are gone; this buffer starts afresh.
  downstream_flow(self);
  // Controlled properties (psi, feather, strength) take their values for this buffer's stream
  // time, as GstBaseTransform would do before a transform: so a GstInterpolationControlSource
  // animates them by timestamps, and a file comes out the same on every run.
  if (trans->segment.format == GST_FORMAT_TIME && GST_BUFFER_PTS_IS_VALID(input)) {
    const GstClockTime stream_time =
        gst_segment_to_stream_time(&trans->segment, GST_FORMAT_TIME, GST_BUFFER_PTS(input));
    if (GST_CLOCK_TIME_IS_VALID(stream_time)) gst_object_sync_values(GST_OBJECT(self), stream_time);
  }
  Settings s;
  bool style_dirty = false, align_dirty = false, reset = false, live = false;
  GstClockTime earliest = GST_CLOCK_TIME_NONE;
  gdouble proportion = 1.0;
  {
    std::lock_guard<std::mutex> lk(priv->lock);
    s = priv->settings;
    std::swap(style_dirty, priv->style_dirty);
    std::swap(align_dirty, priv->align_dirty);
    std::swap(reset, priv->reset_pending);
    live = priv->live;
    earliest = priv->earliest_time;
    proportion = priv->proportion;
  }

  // Applied outside the lock: a new style may take a network pass (or a reference image's
  // alignment), and property setters must not wait for it.
  if (reset) priv->processor->reset();
  priv->processor->set_stream(sp::StreamOptions{
      .live = live, .overlap = s.overlap, .batch_timeout = std::chrono::microseconds(s.batch_timeout_us)});
  if (align_dirty) priv->processor->set_align(s.align);
  if (style_dirty) apply_style(self, s.style);
  // Written in place: a buffer someone else still holds is copied first.
  GstBuffer* buffer = gst_buffer_make_writable(input);
  PendingFrame p;
  if (!gst_video_frame_map(&p.frame, &GST_VIDEO_FILTER(self)->in_info, buffer, GST_MAP_READWRITE)) {
    gst_buffer_unref(buffer);
    GST_ELEMENT_ERROR(self, STREAM, FAILED, ("Cannot map a video frame for writing."), (nullptr));
    return GST_FLOW_ERROR;
  }
  if (trans->segment.format == GST_FORMAT_TIME && GST_BUFFER_PTS_IS_VALID(buffer)) {
    p.running_time = gst_segment_to_running_time(&trans->segment, GST_FORMAT_TIME, GST_BUFFER_PTS(buffer));
  }
  p.earliest = earliest;
  p.proportion = proportion;
  p.late = live && gst_base_transform_is_qos_enabled(trans) && GST_CLOCK_TIME_IS_VALID(earliest) &&
           GST_CLOCK_TIME_IS_VALID(p.running_time) && p.running_time <= earliest;
  p.post_message = s.post_messages;
  p.transient = style_dirty || align_dirty || reset;
  if (p.late) {
    GST_DEBUG_OBJECT(self, "late frame (running time %" GST_TIME_FORMAT " <= %" GST_TIME_FORMAT
                     "): reusing the last faces", GST_TIME_ARGS(p.running_time), GST_TIME_ARGS(earliest));
    priv->reused++;
  }
  priv->processed++;
  const sp::FrameView view{
      .data = static_cast<uint8_t*>(GST_VIDEO_FRAME_PLANE_DATA(&p.frame, 0)),
      .width = GST_VIDEO_FRAME_WIDTH(&p.frame),
      .height = GST_VIDEO_FRAME_HEIGHT(&p.frame),
      .stride = GST_VIDEO_FRAME_PLANE_STRIDE(&p.frame, 0),
      .layout = priv->layout,
  };
  const sp::FrameSettings settings{
      .mode = to_mode(s.mode),
      .view = to_view(s.view),
      .timestamp_s = GST_CLOCK_TIME_IS_VALID(p.running_time) ? p.running_time / 1e9 : -1.0,
      .late = p.late,
      .strength = s.strength,
      .transition_s = s.transition_ms / 1000.0,
  };
  priv->pending.push_back(p);
  try {
    priv->processor->push(view, settings, priv->next_tag++);
  } catch (...) {
    forget_dropped(self);  // push() may have failed before taking the frame in
    throw;
  }
  return GST_FLOW_OK;
}

GstFlowReturn gst_starganv2_submit_input_buffer(GstBaseTransform* trans, gboolean /*is_discont*/,
                                                       GstBuffer* input) {
  auto* self = GST_STARGANV2(trans);
  return guarded(self, "Translating a frame", GST_FLOW_ERROR, [&] {
    try {
      return submit_unguarded(self, input);
    } catch (...) {
      forget_dropped(self);
      throw;
    }
  });
}

GstFlowReturn gst_starganv2_generate_output(GstBaseTransform* trans, GstBuffer** outbuf) {
  auto* self = GST_STARGANV2(trans);
  auto* priv = self->priv;
  *outbuf = nullptr;
  // Called again within a chain call only after the base class pushed the last frame given with
  // GST_FLOW_OK.
  priv->push_unconfirmed = false;
  return guarded(self, "Translating a frame", GST_FLOW_ERROR, [&] {
    if (!priv->processor) return GST_FLOW_OK;
    try {
      if (auto done = priv->processor->pop(/*drain=*/false)) *outbuf = finish_frame(self, *done);
    } catch (...) {
      forget_dropped(self);
      throw;
    }
    priv->push_unconfirmed = *outbuf != nullptr;
    return GST_FLOW_OK;
  });
}

// Pushes every frame still inside downstream, oldest first (before a serialized event, so that
// it stays behind the buffers that came before it), unless downstream refused one already.
GstFlowReturn drain(GstStarganv2* self) {
  auto* priv = self->priv;
  GstFlowReturn ret = downstream_flow(self);
  if (ret != GST_FLOW_OK) return ret;
  while (priv->processor && priv->processor->in_flight() > 0) {
    GstBuffer* buffer = nullptr;
    try {
      if (auto done = priv->processor->pop(/*drain=*/true)) buffer = finish_frame(self, *done);
    } catch (...) {
      forget_dropped(self);
      throw;
    }
    if (buffer == nullptr) break;
    ret = gst_pad_push(GST_BASE_TRANSFORM_SRC_PAD(self), buffer);
    if (ret != GST_FLOW_OK) {
      stop_pushing(self, ret);
      break;
    }
  }
  return ret;
}

// The in-place path GstVideoFilter configures the base class from; generate_output() replaces
// its use, so it runs only if the base class calls it directly: one frame through, synchronously.
GstFlowReturn gst_starganv2_transform_frame_ip(GstVideoFilter* filter, GstVideoFrame* frame) {
  auto* self = GST_STARGANV2(filter);
  auto* priv = self->priv;
  return guarded(self, "Translating a frame", GST_FLOW_ERROR, [&] {
    if (!priv->processor) return GST_FLOW_ERROR;
    Settings s;
    {
      std::lock_guard<std::mutex> lk(priv->lock);
      s = priv->settings;
    }
    const sp::FrameView view{
        .data = static_cast<uint8_t*>(GST_VIDEO_FRAME_PLANE_DATA(frame, 0)),
        .width = GST_VIDEO_FRAME_WIDTH(frame),
        .height = GST_VIDEO_FRAME_HEIGHT(frame),
        .stride = GST_VIDEO_FRAME_PLANE_STRIDE(frame, 0),
        .layout = priv->layout,
    };
    priv->processor->process(view, to_mode(s.mode), to_view(s.view));
    return GST_FLOW_OK;
  });
}
