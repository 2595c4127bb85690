/**
 * SECTION:element-starganv2
 * @title: starganv2
 *
 * Restyles the faces in a video into another domain (for example female/male, or a style taken
 * from a reference photo) with a StarGAN v2 generator. Each face is found with dlib, aligned to
 * the crop the generator was trained on, translated, and blended back; the rest of the frame is
 * left exactly as it was, and frames without faces pass through bit-exact.
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 v4l2src ! videoconvert ! starganv2 checkpoint=model.safetensors domain=female seed=7 ! videoconvert ! autovideosink
 * gst-launch-1.0 filesrc location=in.mp4 ! decodebin ! videoconvert ! starganv2 checkpoint=model.safetensors reference=me.jpg ! videoconvert ! x264enc ! mp4mux ! filesink location=out.mp4
 * ]|
 *
 * ## Late frames
 * In a live pipeline, with #GstBaseTransform:qos enabled (the default), a frame that QoS events
 * say is already late is not run through the detector and the networks: the faces translated
 * last are blended back at their last places (or, when there are none, the frame passes
 * unchanged), and a QoS message is posted. No frame is dropped, so the delay does not pile up.
 * In a non-live pipeline (a file) every frame is translated in full. This differs from
 * GstBaseTransform's own QoS handling, which drops late buffers: here the element keeps QoS
 * events to itself and degrades instead of dropping. gst-inspect-1.0 shows this as the
 * "Quality-of-service" line of the factory details (the `qos` property's own text is the base
 * class's).
 *
 * ## Latency
 * The element reports its processing time in the LATENCY query: first the time of a warm-up
 * translation, then the largest per-frame time of the last 30 frames, times 1.25, once frames
 * flow. It grows at once; it comes down when 30 frames in a row stayed more than 1.5 times below
 * it. The first frame after a style, alignment or reset change is not counted. A live pipeline
 * is told of every change with a latency message.
 *
 * ## Faces as metadata
 * Every output buffer carries one #GstVideoRegionOfInterestMeta of type `face` per translated
 * face: the box in frame pixels (clipped to the frame), `id` stable while the face is tracked,
 * and a params structure `starganv2-face` with `landmarks` (array of 136 gdouble: x0, y0, ... x67,
 * y67 in frame pixels, dlib's 68-point order), `domain` (name), `style-source` (`latent`,
 * `reference` or `style-file`), `style-per-face` (gboolean), `transition` (gdouble, 0..1: how
 * far a style change has come, 1 = done), and by source `seed` (guint64, the face's own seed
 * with style-per-face) and `psi`, or `reference`, or `style-file` (the path).
 *
 * ## Messages
 * With #GstStarganv2:post-messages, an element message named `starganv2` is posted for every
 * frame, with the fields `timestamp`, `stream-time`, `running-time`, `duration` (guint64,
 * nanoseconds; GST_CLOCK_TIME_NONE when unknown), `reused` (gboolean: the late-frame path was
 * taken), and the faces in arrays with one entry per face, largest first: `face-ids` (gint,
 * stable while a face is tracked), `face-boxes` (arrays of 4 gint: x, y, width, height in frame
 * pixels, not clipped), `face-landmarks` (arrays of 136 gdouble, as in the ROI meta) and, for
 * latent styles, `face-seeds` (guint64); when there are faces, also the style fields of the ROI
 * meta (`domain`, `style-source`, `style-per-face`, `transition`, and `psi`, `reference` or
 * `style-file`). Only numbers, strings and arrays of numbers, so `gst-launch-1.0 -m` prints all
 * of it and gst_structure_from_string() reads it back. gst-inspect-1.0 shows the same as the
 * "Messages" line of the factory details.
 *
 * ## Flow
 * Once downstream refuses a frame (EOS, FLUSHING, NOT_LINKED or an error), the frames the
 * element still holds (see #GstStarganv2:overlap) are dropped rather than pushed, and the refusal
 * is the return of the buffer upstream, as from any element: upstream then ends the stream (or
 * posts the error), and the EOS that follows pushes nothing more. A buffer that still comes in
 * afterwards is taken as any element would take it.
 *
 * ## Animation and transitions
 * #GstStarganv2:psi, #GstStarganv2:feather and #GstStarganv2:strength are controllable: the
 * element syncs them to each buffer's stream time, so a #GstInterpolationControlSource animates
 * them. #GstStarganv2:transition makes style changes gradual (by buffer timestamps).
 */

// This file: the element's type and documentation, its life cycle (start, stop, caps), queries,
// events and class_init. The properties are in properties.cpp, what the application is told in
// messages.cpp, the buffers' way through in flow.cpp; element.h holds what they share.

#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include "gststarganv2.h"

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "element.h"

GST_DEBUG_CATEGORY(gst_starganv2_debug);

#define FORMATS "{ RGB, BGR, RGBA, BGRA, RGBx, BGRx }"

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE(
    "sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS(GST_VIDEO_CAPS_MAKE(FORMATS)));
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE(
    "src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS(GST_VIDEO_CAPS_MAKE(FORMATS)));

#define gst_starganv2_parent_class parent_class
G_DEFINE_TYPE(GstStarganv2, gst_starganv2, GST_TYPE_VIDEO_FILTER);
GST_ELEMENT_REGISTER_DEFINE(starganv2, "starganv2", GST_RANK_NONE, GST_TYPE_STARGANV2);

// ---------------------------------------------------------------------------------------------
// GObject
// ---------------------------------------------------------------------------------------------

static void gst_starganv2_init(GstStarganv2* self) {
  self->priv = new GstStarganv2Private();
}

static void gst_starganv2_finalize(GObject* object) {
  auto* self = GST_STARGANV2(object);
  try {
    delete self->priv;
  } catch (...) {
    // Releasing LibTorch memory should not throw; if it does, there is nobody to tell.
  }
  self->priv = nullptr;
  G_OBJECT_CLASS(parent_class)->finalize(object);
}

// ---------------------------------------------------------------------------------------------
// GstBaseTransform
// ---------------------------------------------------------------------------------------------

static gboolean start_unguarded(GstStarganv2* self) {
  auto* priv = self->priv;
  Settings s;
  {
    std::lock_guard<std::mutex> lk(priv->lock);
    s = priv->settings;
    priv->style_dirty = false;
    priv->align_dirty = false;
    priv->reset_pending = false;
    priv->earliest_time = GST_CLOCK_TIME_NONE;
    priv->proportion = 1.0;
    // The engine options are fixed from here, not from the end of loading: a checkpoint or device
    // set while the model loads would otherwise be stored, read back, and never used. Style and
    // alignment changes made meanwhile stay dirty and apply to the first frame.
    priv->started = true;
  }
  if (s.checkpoint.empty()) {
    GST_ELEMENT_ERROR(self, RESOURCE, NOT_FOUND,
                      ("No model: set the 'checkpoint' property to a StarGAN v2 .safetensors "
                       "file."),
                      (nullptr));
    return FALSE;
  }

  sp::EngineOptions engine{
      .checkpoint = s.checkpoint,
      .fan_checkpoint = s.fan_checkpoint,
      .device = s.device,
      .precision = to_precision(s.precision),
      .share = s.shared_engine,
  };
  GST_INFO_OBJECT(self, "loading %s on %s", s.checkpoint.c_str(), s.device.c_str());
  auto processor = std::make_unique<sp::Processor>(engine, s.align);
  // A bad domain, reference or style file given before starting is an error: there is no
  // earlier style to fall back to.
  processor->set_style(s.style);
  const auto warm = processor->warm_up();
  const std::string device = processor->active_device();
  GST_INFO_OBJECT(self, "loaded on %s; a warm-up translation took %.2f ms", device.c_str(),
                  std::chrono::duration<double, std::milli>(warm).count());
  // Accepted but worth knowing (e.g. a fan-checkpoint the model does not use): the stream runs.
  for (const std::string& w : processor->warnings())
    GST_ELEMENT_WARNING(self, RESOURCE, SETTINGS, ("%s", w.c_str()), (nullptr));

  priv->processor = std::move(processor);
  priv->style_in_use = s.style;
  const auto warm_latency = static_cast<GstClockTime>(warm.count() * sp::LatencyEstimate::kMargin);
  priv->latency_estimate.reset(warm_latency);
  priv->processed = 0;
  priv->reused = 0;
  priv->push_unconfirmed = false;
  {
    std::lock_guard<std::mutex> lk(priv->lock);
    priv->started = true;
    priv->active_device = device;
    priv->counters = {};
    // What a live stream's pipeline holds back (Processor::window() of a live stream, less the
    // frame being worked on): reported from the first LATENCY query on.
    priv->held_frames = s.overlap ? 1 : 0;
    priv->latency = warm_latency;
  }
  g_object_notify_by_pspec(G_OBJECT(self), gst_starganv2_properties[PROP_ACTIVE_DEVICE]);
  return TRUE;
}

static gboolean gst_starganv2_start(GstBaseTransform* trans) {
  auto* self = GST_STARGANV2(trans);
  const gboolean ok = guarded(self, "Loading the model", FALSE, [&] { return start_unguarded(self); });
  if (!ok) {
    std::lock_guard<std::mutex> lk(self->priv->lock);
    self->priv->started = false;
  }
  return ok;
}

static gboolean gst_starganv2_stop(GstBaseTransform* trans) {
  auto* self = GST_STARGANV2(trans);
  auto* priv = self->priv;
  return guarded(self, "Releasing the model", FALSE, [&] {
    release_pending(self);
    priv->push_unconfirmed = false;
    priv->processor.reset();
    {
      std::lock_guard<std::mutex> lk(priv->lock);
      priv->started = false;
      priv->active_device.clear();
      priv->latency = 0;
    }
    g_object_notify_by_pspec(G_OBJECT(self), gst_starganv2_properties[PROP_ACTIVE_DEVICE]);
    return TRUE;
  });
}

static gboolean gst_starganv2_set_info(GstVideoFilter* filter, GstCaps* /*incaps*/,
                                       GstVideoInfo* in_info, GstCaps* /*outcaps*/,
                                       GstVideoInfo* /*out_info*/) {
  auto* self = GST_STARGANV2(filter);
  auto* priv = self->priv;
  return guarded(self, "Setting the format", FALSE, [&]() -> gboolean {
    switch (GST_VIDEO_INFO_FORMAT(in_info)) {
      case GST_VIDEO_FORMAT_RGB: priv->layout = sp::PixelLayout::kRGB; break;
      case GST_VIDEO_FORMAT_BGR: priv->layout = sp::PixelLayout::kBGR; break;
      case GST_VIDEO_FORMAT_RGBA: priv->layout = sp::PixelLayout::kRGBA; break;
      case GST_VIDEO_FORMAT_BGRA: priv->layout = sp::PixelLayout::kBGRA; break;
      case GST_VIDEO_FORMAT_RGBx: priv->layout = sp::PixelLayout::kRGBx; break;
      case GST_VIDEO_FORMAT_BGRx: priv->layout = sp::PixelLayout::kBGRx; break;
      default:
        GST_ERROR_OBJECT(self, "unsupported format %s",
                         gst_video_format_to_string(GST_VIDEO_INFO_FORMAT(in_info)));
        return FALSE;
    }
    // Frames of the old format left before the CAPS event reached us (sink_event drains).
    std::lock_guard<std::mutex> lk(priv->lock);
    priv->frame_duration =
        GST_VIDEO_INFO_FPS_N(in_info) > 0
            ? gst_util_uint64_scale_int(GST_SECOND, GST_VIDEO_INFO_FPS_D(in_info), GST_VIDEO_INFO_FPS_N(in_info))
            : 0;
    // Faces tracked at another size are meaningless now.
    priv->reset_pending = true;
    return TRUE;
  });
}

static gboolean gst_starganv2_query(GstBaseTransform* trans, GstPadDirection direction,
                                    GstQuery* query) {
  auto* self = GST_STARGANV2(trans);
  auto* priv = self->priv;
  return guarded(self, "Answering a query", FALSE, [&]() -> gboolean {
    if (direction != GST_PAD_SRC || GST_QUERY_TYPE(query) != GST_QUERY_LATENCY)
      return GST_BASE_TRANSFORM_CLASS(parent_class)->query(trans, direction, query);

    if (!gst_pad_peer_query(GST_BASE_TRANSFORM_SINK_PAD(trans), query)) return FALSE;
    gboolean live = FALSE;
    GstClockTime min = 0, max = GST_CLOCK_TIME_NONE;
    gst_query_parse_latency(query, &live, &min, &max);
    GstClockTime ours;
    {
      std::lock_guard<std::mutex> lk(priv->lock);
      priv->live = live;
      // A live stream with overlapping frames holds each frame until the next one comes in.
      ours = priv->latency + (live ? priv->held_frames * priv->frame_duration : 0);
    }
    GST_DEBUG_OBJECT(self, "upstream %s, min %" GST_TIME_FORMAT "; adding %" GST_TIME_FORMAT,
                     live ? "live" : "not live", GST_TIME_ARGS(min), GST_TIME_ARGS(ours));
    min += ours;
    if (GST_CLOCK_TIME_IS_VALID(max)) max += ours;
    gst_query_set_latency(query, live, min, max);
    return TRUE;
  });
}

static gboolean gst_starganv2_src_event(GstBaseTransform* trans, GstEvent* event) {
  auto* self = GST_STARGANV2(trans);
  auto* priv = self->priv;
  if (GST_EVENT_TYPE(event) == GST_EVENT_QOS) {
    // Kept to ourselves rather than handed to GstBaseTransform, which would drop late buffers:
    // we degrade instead, and only in live pipelines (see the section documentation).
    GstQOSType type;
    gdouble proportion;
    GstClockTimeDiff diff;
    GstClockTime timestamp;
    gst_event_parse_qos(event, &type, &proportion, &diff, &timestamp);
    const bool ok = guarded(self, "Handling QoS", false, [&] {
      std::lock_guard<std::mutex> lk(priv->lock);
      priv->proportion = proportion;
      if (GST_CLOCK_TIME_IS_VALID(timestamp) &&
          (diff >= 0 || timestamp >= static_cast<GstClockTime>(-diff)))
        priv->earliest_time = timestamp + diff;
      else
        priv->earliest_time = GST_CLOCK_TIME_NONE;
      return true;
    });
    if (!ok) {
      gst_event_unref(event);
      return FALSE;
    }
    return gst_pad_push_event(GST_BASE_TRANSFORM_SINK_PAD(trans), event);
  }
  return GST_BASE_TRANSFORM_CLASS(parent_class)->src_event(trans, event);
}

static gboolean gst_starganv2_sink_event(GstBaseTransform* trans, GstEvent* event) {
  auto* self = GST_STARGANV2(trans);
  auto* priv = self->priv;
  bool ok = true;
  switch (GST_EVENT_TYPE(event)) {
    case GST_EVENT_FLUSH_STOP:
      // The frames inside belong to before the flush: dropped, not pushed.
      ok = guarded(self, "Handling a flush", false, [&] {
        release_pending(self);
        priv->push_unconfirmed = false;
        std::lock_guard<std::mutex> lk(priv->lock);
        priv->earliest_time = GST_CLOCK_TIME_NONE;
        priv->reset_pending = true;
        return true;
      });
      break;
    case GST_EVENT_STREAM_START:
      ok = guarded(self, "Handling an event", false, [&] {
        drain(self);
        std::lock_guard<std::mutex> lk(priv->lock);
        priv->earliest_time = GST_CLOCK_TIME_NONE;
        priv->reset_pending = true;
        return true;
      });
      break;
    default:
      // EOS, CAPS, SEGMENT, GAP, tags...: after the frames that came before them.
      if ((gst_event_type_get_flags(GST_EVENT_TYPE(event)) & GST_EVENT_TYPE_SERIALIZED) != 0)
        ok = guarded(self, "Handling an event", false, [&] {
          drain(self);
          return true;
        });
      break;
  }
  if (!ok) {
    gst_event_unref(event);
    return FALSE;
  }
  return GST_BASE_TRANSFORM_CLASS(parent_class)->sink_event(trans, event);
}

// ---------------------------------------------------------------------------------------------
// Class
// ---------------------------------------------------------------------------------------------

static void gst_starganv2_class_init(GstStarganv2Class* klass) {
  auto* object_class = G_OBJECT_CLASS(klass);
  auto* element_class = GST_ELEMENT_CLASS(klass);
  auto* trans_class = GST_BASE_TRANSFORM_CLASS(klass);
  auto* filter_class = GST_VIDEO_FILTER_CLASS(klass);

  GST_DEBUG_CATEGORY_INIT(gst_starganv2_debug, "starganv2", 0, "StarGAN v2 face translation");

  object_class->finalize = gst_starganv2_finalize;

  gst_starganv2_install_properties(object_class);

  gst_element_class_add_static_pad_template(element_class, &sink_template);
  gst_element_class_add_static_pad_template(element_class, &src_template);
  gst_element_class_set_static_metadata(
      element_class, "StarGAN v2 face translation", "Filter/Effect/Video",
      "Translates the faces in video frames into another domain and style with a StarGAN v2 "
      "generator",
      "starganv2 developers");
  gst_starganv2_describe_messages(element_class);

  trans_class->start = GST_DEBUG_FUNCPTR(gst_starganv2_start);
  trans_class->stop = GST_DEBUG_FUNCPTR(gst_starganv2_stop);
  trans_class->query = GST_DEBUG_FUNCPTR(gst_starganv2_query);
  trans_class->src_event = GST_DEBUG_FUNCPTR(gst_starganv2_src_event);
  trans_class->sink_event = GST_DEBUG_FUNCPTR(gst_starganv2_sink_event);
  filter_class->set_info = GST_DEBUG_FUNCPTR(gst_starganv2_set_info);
  filter_class->transform_frame_ip = GST_DEBUG_FUNCPTR(gst_starganv2_transform_frame_ip);
  trans_class->submit_input_buffer = GST_DEBUG_FUNCPTR(gst_starganv2_submit_input_buffer);
  trans_class->generate_output = GST_DEBUG_FUNCPTR(gst_starganv2_generate_output);
}
