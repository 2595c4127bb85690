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

#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include "gststarganv2.h"

#include <gst/video/video.h>
#include <gst/video/gstvideometa.h>

#include <array>
#include <deque>
#include <chrono>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <utility>

#include "latency.h"
#include "processor.h"

GST_DEBUG_CATEGORY_STATIC(gst_starganv2_debug);
#define GST_CAT_DEFAULT gst_starganv2_debug

namespace sp = starganv2::plugin;

#define FORMATS "{ RGB, BGR, RGBA, BGRA, RGBx, BGRx }"

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE(
    "sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS(GST_VIDEO_CAPS_MAKE(FORMATS)));
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE(
    "src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS(GST_VIDEO_CAPS_MAKE(FORMATS)));

// ---------------------------------------------------------------------------------------------
// Enum property types
// ---------------------------------------------------------------------------------------------

/**
 * GstStarganv2Precision:
 * @GST_STARGANV2_PRECISION_AUTO: fp16 on CUDA, fp32 on the CPU
 * @GST_STARGANV2_PRECISION_FP32: 32-bit floats everywhere
 * @GST_STARGANV2_PRECISION_FP16: 16-bit floats (CUDA only)
 * @GST_STARGANV2_PRECISION_BF16: bfloat16 (CUDA only)
 */
typedef enum {
  GST_STARGANV2_PRECISION_AUTO,
  GST_STARGANV2_PRECISION_FP32,
  GST_STARGANV2_PRECISION_FP16,
  GST_STARGANV2_PRECISION_BF16,
} GstStarganv2Precision;

/**
 * GstStarganv2Mode:
 * @GST_STARGANV2_MODE_FACE: find, align and translate each face, blend it back
 * @GST_STARGANV2_MODE_FRAME: translate the whole frame resized to the model (AFHQ-like models)
 */
typedef enum {
  GST_STARGANV2_MODE_FACE,
  GST_STARGANV2_MODE_FRAME,
} GstStarganv2Mode;

/**
 * GstStarganv2View:
 * @GST_STARGANV2_VIEW_MERGED: the translated faces blended into the frame
 * @GST_STARGANV2_VIEW_ALIGNED: the aligned crops the model sees, over the frame's top-left corner
 * @GST_STARGANV2_VIEW_TRANSLATED: the translated crops, over the frame's top-left corner
 * @GST_STARGANV2_VIEW_MASK: the blend mask as a grey image (white = translated face)
 * @GST_STARGANV2_VIEW_SIDE_BY_SIDE: the merged frame with each face's aligned and translated crops
 *   next to each other in its top-left corner
 */
typedef enum {
  GST_STARGANV2_VIEW_MERGED,
  GST_STARGANV2_VIEW_ALIGNED,
  GST_STARGANV2_VIEW_TRANSLATED,
  GST_STARGANV2_VIEW_MASK,
  GST_STARGANV2_VIEW_SIDE_BY_SIDE,
} GstStarganv2View;

#define GST_TYPE_STARGANV2_PRECISION (gst_starganv2_precision_get_type())
static GType gst_starganv2_precision_get_type() {
  static const GEnumValue values[] = {
      {GST_STARGANV2_PRECISION_AUTO, "fp16 on CUDA, fp32 on the CPU", "auto"},
      {GST_STARGANV2_PRECISION_FP32, "32-bit float", "fp32"},
      {GST_STARGANV2_PRECISION_FP16, "16-bit float (CUDA only)", "fp16"},
      {GST_STARGANV2_PRECISION_BF16, "bfloat16 (CUDA only)", "bf16"},
      {0, nullptr, nullptr},
  };
  static GType type = 0;
  static std::once_flag once;
  std::call_once(once, [] { type = g_enum_register_static("GstStarganv2Precision", values); });
  return type;
}

#define GST_TYPE_STARGANV2_MODE (gst_starganv2_mode_get_type())
static GType gst_starganv2_mode_get_type() {
  static const GEnumValue values[] = {
      {GST_STARGANV2_MODE_FACE, "Align and translate each face", "face"},
      {GST_STARGANV2_MODE_FRAME, "Translate the whole frame resized to the model", "frame"},
      {0, nullptr, nullptr},
  };
  static GType type = 0;
  static std::once_flag once;
  std::call_once(once, [] { type = g_enum_register_static("GstStarganv2Mode", values); });
  return type;
}

#define GST_TYPE_STARGANV2_VIEW (gst_starganv2_view_get_type())
static GType gst_starganv2_view_get_type() {
  static const GEnumValue values[] = {
      {GST_STARGANV2_VIEW_MERGED, "Translated faces blended into the frame", "merged"},
      {GST_STARGANV2_VIEW_ALIGNED, "Aligned input crops over the top-left corner", "aligned"},
      {GST_STARGANV2_VIEW_TRANSLATED, "Translated crops over the top-left corner", "translated"},
      {GST_STARGANV2_VIEW_MASK, "Blend mask as grey (white = translated)", "mask"},
      {GST_STARGANV2_VIEW_SIDE_BY_SIDE, "Merged frame with aligned and translated crops side by side",
       "side-by-side"},
      {0, nullptr, nullptr},
  };
  static GType type = 0;
  static std::once_flag once;
  std::call_once(once, [] { type = g_enum_register_static("GstStarganv2View", values); });
  return type;
}

// ---------------------------------------------------------------------------------------------
// Instance
// ---------------------------------------------------------------------------------------------

enum {
  PROP_0,
  PROP_CHECKPOINT,
  PROP_FAN_CHECKPOINT,
  PROP_DOMAIN,
  PROP_SEED,
  PROP_PSI,
  PROP_REFERENCE,
  PROP_STYLE_FILE,
  PROP_DEVICE,
  PROP_PRECISION,
  PROP_MODE,
  PROP_DETECT_INTERVAL,
  PROP_MAX_FACES,
  PROP_MIN_FACE_SIZE,
  PROP_SMOOTHING,
  PROP_FEATHER,
  PROP_COLOR_MATCH,
  PROP_TEMPORAL,
  PROP_VIEW,
  PROP_POST_MESSAGES,
  PROP_OVERLAP,
  PROP_ACTIVE_DEVICE,
  PROP_STATS,
  PROP_STRENGTH,
  PROP_TRANSITION,
  PROP_STYLE_PER_FACE,
  N_PROPERTIES,
};
static GParamSpec* properties[N_PROPERTIES];

constexpr const char* kDefaultDevice = "auto";
constexpr guint64 kDefaultSeed = 0;
constexpr gdouble kDefaultPsi = 1.0;
constexpr GstStarganv2Precision kDefaultPrecision = GST_STARGANV2_PRECISION_AUTO;
constexpr GstStarganv2Mode kDefaultMode = GST_STARGANV2_MODE_FACE;
constexpr GstStarganv2View kDefaultView = GST_STARGANV2_VIEW_MERGED;
constexpr guint kDefaultDetectInterval = 5;
constexpr guint kMaxDetectInterval = 1000;
constexpr guint kDefaultMaxFaces = 4;
constexpr guint kMaxMaxFaces = 32;
constexpr guint kDefaultMinFaceSize = 64;
constexpr guint kMaxMinFaceSize = 8192;
constexpr gdouble kDefaultSmoothing = 0.5;
constexpr gdouble kDefaultFeather = 0.08;
constexpr gdouble kMaxFeather = 0.5;
constexpr gboolean kDefaultColorMatch = FALSE;
constexpr gdouble kDefaultTemporal = 0.7;
constexpr gdouble kMaxTemporal = 0.95;
constexpr gboolean kDefaultPostMessages = FALSE;
constexpr gboolean kDefaultOverlap = TRUE;
constexpr gdouble kDefaultStrength = 1.0;
constexpr guint kDefaultTransition = 0;
constexpr guint kMaxTransition = 600000;  // ten minutes
constexpr gboolean kDefaultStylePerFace = FALSE;

// Everything a property sets. Copied out whole under the lock by the streaming side.
struct Settings {
  std::string checkpoint;
  std::string fan_checkpoint;
  std::string device = kDefaultDevice;
  GstStarganv2Precision precision = kDefaultPrecision;
  GstStarganv2Mode mode = kDefaultMode;
  GstStarganv2View view = kDefaultView;
  sp::StyleOptions style;
  sp::AlignOptions align{
      .detect_interval = static_cast<int>(kDefaultDetectInterval),
      .max_faces = static_cast<int>(kDefaultMaxFaces),
      .min_face_size = static_cast<int>(kDefaultMinFaceSize),
      .smoothing = kDefaultSmoothing,
      .feather = kDefaultFeather,
      .color_match = static_cast<bool>(kDefaultColorMatch),
      .temporal = kDefaultTemporal,
  };
  bool post_messages = kDefaultPostMessages;
  bool overlap = kDefaultOverlap;
  double strength = kDefaultStrength;
  guint transition_ms = kDefaultTransition;
};

// A buffer inside the processor's pipeline: mapped from submit_input_buffer() until it leaves
// through generate_output() (or a drain), in the order it came.
struct PendingFrame {
  GstVideoFrame frame;
  GstClockTime running_time = GST_CLOCK_TIME_NONE;
  GstClockTime earliest = GST_CLOCK_TIME_NONE;
  gdouble proportion = 1.0;
  bool late = false;
  bool post_message = false;
  bool transient = false;  // the first frame after a setting change: not counted in the latency
};

struct GstStarganv2Private {
  std::mutex lock;
  // --- guarded by lock --------------------------------------------------------------------
  Settings settings;
  bool style_dirty = true;
  bool align_dirty = true;
  bool reset_pending = false;
  bool started = false;  // between start() and stop(): the engine options are fixed
  std::string active_device;
  bool live = false;  // upstream said so in the last LATENCY query
  GstClockTime earliest_time = GST_CLOCK_TIME_NONE;  // from QoS events, running time
  gdouble proportion = 1.0;
  GstClockTime latency = 0;  // processing time the LATENCY query answers
  // Frames the pipeline holds back in a live stream (overlap), times a frame's duration, is
  // added to it.
  int held_frames = 0;
  GstClockTime frame_duration = 0;

  // --- start()/stop() and the streaming thread, which never run at the same time ------------
  std::unique_ptr<sp::Processor> processor;
  sp::PixelLayout layout = sp::PixelLayout::kRGB;
  std::deque<PendingFrame> pending;  // what the processor holds, oldest first
  uint64_t next_tag = 0;
  // generate_output() gave the base class a frame to push and has not heard back: GstBaseTransform
  // calls it again only when that push returned GST_FLOW_OK (see downstream_flow()).
  bool push_unconfirmed = false;
  sp::LatencyEstimate latency_estimate;  // plugin/latency.h: the rule of the reported latency
  guint64 processed = 0;
  guint64 reused = 0;
  sp::StreamCounters counters;  // copied under `lock` after every frame, for the stats property
  sp::StyleOptions style_in_use;  // what the processor's style was last made of
};

struct _GstStarganv2 {
  GstVideoFilter parent;
  GstStarganv2Private* priv;
};

#define gst_starganv2_parent_class parent_class
G_DEFINE_TYPE(GstStarganv2, gst_starganv2, GST_TYPE_VIDEO_FILTER);
GST_ELEMENT_REGISTER_DEFINE(starganv2, "starganv2", GST_RANK_NONE, GST_TYPE_STARGANV2);

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

// Posts the error that fits the failure. Callers hold no lock (GstBus handlers may call back
// into the element, e.g. to read a property).
static void post_processor_error(GstStarganv2* self, const sp::ProcessorError& e) {
  const char* what = e.what();
  switch (e.kind()) {
    case sp::ProcessorError::Kind::kNotFound:
      GST_ELEMENT_ERROR(self, RESOURCE, NOT_FOUND, ("%s", what), (nullptr));
      break;
    case sp::ProcessorError::Kind::kRead:
      GST_ELEMENT_ERROR(self, RESOURCE, READ, ("%s", what), (nullptr));
      break;
    case sp::ProcessorError::Kind::kSettings:
      GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS, ("%s", what), (nullptr));
      break;
    case sp::ProcessorError::Kind::kDevice:
      GST_ELEMENT_ERROR(self, RESOURCE, NOT_FOUND, ("%s", what), (nullptr));
      break;
    case sp::ProcessorError::Kind::kFailed:
      GST_ELEMENT_ERROR(self, STREAM, FAILED, ("%s", what), (nullptr));
      break;
  }
}

// Runs `body` and turns any exception into a posted error and `on_error`. Locks taken inside
// `body` are scoped there, so by the time an error is posted none is held.
template <typename Result, typename Body>
static Result guarded(GstStarganv2* self, const char* where, Result on_error, Body&& body) {
  try {
    return body();
  } catch (const sp::ProcessorError& e) {
    post_processor_error(self, e);
  } catch (const std::exception& e) {  // c10::Error, dlib::error and cv::Exception included
    GST_ELEMENT_ERROR(self, LIBRARY, FAILED, ("%s failed: %s", where, e.what()), (nullptr));
  } catch (...) {
    GST_ELEMENT_ERROR(self, LIBRARY, FAILED, ("%s failed with an unknown exception", where),
                      (nullptr));
  }
  return on_error;
}

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

static std::string string_or_empty(const GValue* value) {
  const gchar* s = g_value_get_string(value);
  return s ? s : "";
}

static void set_string_or_null(GValue* value, const std::string& s) {
  g_value_set_string(value, s.empty() ? nullptr : s.c_str());
}

static void gst_starganv2_set_property(GObject* object, guint prop_id, const GValue* value,
                                       GParamSpec* pspec) {
  auto* self = GST_STARGANV2(object);
  auto* priv = self->priv;
  bool refused = false;
  try {
    std::lock_guard<std::mutex> lk(priv->lock);
    Settings& s = priv->settings;
    // The engine options only apply when the element (re)starts; changing them while it runs
    // would suggest an effect that does not happen.
    const bool engine_fixed = priv->started;
    switch (prop_id) {
      case PROP_CHECKPOINT:
        if (engine_fixed) refused = true;
        else s.checkpoint = string_or_empty(value);
        break;
      case PROP_FAN_CHECKPOINT:
        if (engine_fixed) refused = true;
        else s.fan_checkpoint = string_or_empty(value);
        break;
      case PROP_DEVICE:
        if (engine_fixed) refused = true;
        else s.device = g_value_get_string(value) ? g_value_get_string(value) : kDefaultDevice;
        break;
      case PROP_PRECISION:
        if (engine_fixed) refused = true;
        else s.precision = static_cast<GstStarganv2Precision>(g_value_get_enum(value));
        break;
      case PROP_DOMAIN:
        s.style.domain = string_or_empty(value);
        priv->style_dirty = true;
        break;
      case PROP_SEED:
        s.style.seed = g_value_get_uint64(value);
        priv->style_dirty = true;
        break;
      case PROP_PSI:
        s.style.psi = g_value_get_double(value);
        priv->style_dirty = true;
        break;
      case PROP_REFERENCE:
        s.style.reference = string_or_empty(value);
        priv->style_dirty = true;
        break;
      case PROP_STYLE_FILE:
        s.style.style_file = string_or_empty(value);
        priv->style_dirty = true;
        break;
      case PROP_MODE:
        s.mode = static_cast<GstStarganv2Mode>(g_value_get_enum(value));
        break;
      case PROP_VIEW:
        s.view = static_cast<GstStarganv2View>(g_value_get_enum(value));
        break;
      case PROP_DETECT_INTERVAL:
        s.align.detect_interval = static_cast<int>(g_value_get_uint(value));
        priv->align_dirty = true;
        break;
      case PROP_MAX_FACES:
        s.align.max_faces = static_cast<int>(g_value_get_uint(value));
        priv->align_dirty = true;
        break;
      case PROP_MIN_FACE_SIZE:
        s.align.min_face_size = static_cast<int>(g_value_get_uint(value));
        priv->align_dirty = true;
        break;
      case PROP_SMOOTHING:
        s.align.smoothing = g_value_get_double(value);
        priv->align_dirty = true;
        break;
      case PROP_FEATHER:
        s.align.feather = g_value_get_double(value);
        priv->align_dirty = true;
        break;
      case PROP_COLOR_MATCH:
        s.align.color_match = g_value_get_boolean(value);
        priv->align_dirty = true;
        break;
      case PROP_TEMPORAL:
        s.align.temporal = g_value_get_double(value);
        priv->align_dirty = true;
        break;
      case PROP_POST_MESSAGES:
        s.post_messages = g_value_get_boolean(value);
        break;
      case PROP_STRENGTH:
        s.strength = g_value_get_double(value);
        break;
      case PROP_TRANSITION:
        s.transition_ms = g_value_get_uint(value);
        break;
      case PROP_STYLE_PER_FACE:
        s.style.per_face = g_value_get_boolean(value);
        priv->style_dirty = true;
        break;
      case PROP_OVERLAP:
        if (engine_fixed) refused = true;
        else s.overlap = g_value_get_boolean(value);
        break;
      default:
        G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
        break;
    }
  } catch (const std::exception& e) {
    GST_ERROR_OBJECT(self, "setting '%s' failed: %s", pspec->name, e.what());
  }
  if (refused) {
    GST_ELEMENT_WARNING(self, RESOURCE, SETTINGS,
                        ("Property '%s' can only be changed in the NULL or READY state; the new "
                         "value is ignored.",
                         pspec->name),
                        (nullptr));
  }
}

static void gst_starganv2_get_property(GObject* object, guint prop_id, GValue* value,
                                       GParamSpec* pspec) {
  auto* self = GST_STARGANV2(object);
  auto* priv = self->priv;
  try {
    std::lock_guard<std::mutex> lk(priv->lock);
    const Settings& s = priv->settings;
    switch (prop_id) {
      case PROP_CHECKPOINT: set_string_or_null(value, s.checkpoint); break;
      case PROP_FAN_CHECKPOINT: set_string_or_null(value, s.fan_checkpoint); break;
      case PROP_DEVICE: set_string_or_null(value, s.device); break;
      case PROP_PRECISION: g_value_set_enum(value, s.precision); break;
      case PROP_DOMAIN: set_string_or_null(value, s.style.domain); break;
      case PROP_SEED: g_value_set_uint64(value, s.style.seed); break;
      case PROP_PSI: g_value_set_double(value, s.style.psi); break;
      case PROP_REFERENCE: set_string_or_null(value, s.style.reference); break;
      case PROP_STYLE_FILE: set_string_or_null(value, s.style.style_file); break;
      case PROP_MODE: g_value_set_enum(value, s.mode); break;
      case PROP_VIEW: g_value_set_enum(value, s.view); break;
      case PROP_DETECT_INTERVAL: g_value_set_uint(value, s.align.detect_interval); break;
      case PROP_MAX_FACES: g_value_set_uint(value, s.align.max_faces); break;
      case PROP_MIN_FACE_SIZE: g_value_set_uint(value, s.align.min_face_size); break;
      case PROP_SMOOTHING: g_value_set_double(value, s.align.smoothing); break;
      case PROP_FEATHER: g_value_set_double(value, s.align.feather); break;
      case PROP_COLOR_MATCH: g_value_set_boolean(value, s.align.color_match); break;
      case PROP_TEMPORAL: g_value_set_double(value, s.align.temporal); break;
      case PROP_POST_MESSAGES: g_value_set_boolean(value, s.post_messages); break;
      case PROP_OVERLAP: g_value_set_boolean(value, s.overlap); break;
      case PROP_STRENGTH: g_value_set_double(value, s.strength); break;
      case PROP_TRANSITION: g_value_set_uint(value, s.transition_ms); break;
      case PROP_STYLE_PER_FACE: g_value_set_boolean(value, s.style.per_face); break;
      case PROP_ACTIVE_DEVICE: set_string_or_null(value, priv->active_device); break;
      case PROP_STATS: {
        GstStructure* st = gst_structure_new(
            "starganv2-stats", "frames", G_TYPE_UINT64, static_cast<guint64>(priv->counters.frames),
            "detections-on-streaming-thread", G_TYPE_UINT64,
            static_cast<guint64>(priv->counters.detections_on_streaming_thread), "detections-on-workers",
            G_TYPE_UINT64, static_cast<guint64>(priv->counters.detections_on_workers), nullptr);
        g_value_take_boxed(value, st);
        break;
      }
      default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
    }
  } catch (const std::exception& e) {
    GST_ERROR_OBJECT(self, "reading '%s' failed: %s", pspec->name, e.what());
  }
}

// ---------------------------------------------------------------------------------------------
// GstBaseTransform
// ---------------------------------------------------------------------------------------------

static sp::Precision to_precision(GstStarganv2Precision p) {
  switch (p) {
    case GST_STARGANV2_PRECISION_FP32: return sp::Precision::kFp32;
    case GST_STARGANV2_PRECISION_FP16: return sp::Precision::kFp16;
    case GST_STARGANV2_PRECISION_BF16: return sp::Precision::kBf16;
    case GST_STARGANV2_PRECISION_AUTO: break;
  }
  return sp::Precision::kAuto;
}

static sp::Mode to_mode(GstStarganv2Mode m) {
  return m == GST_STARGANV2_MODE_FRAME ? sp::Mode::kFrame : sp::Mode::kFace;
}

static sp::View to_view(GstStarganv2View v) {
  switch (v) {
    case GST_STARGANV2_VIEW_ALIGNED: return sp::View::kAligned;
    case GST_STARGANV2_VIEW_TRANSLATED: return sp::View::kTranslated;
    case GST_STARGANV2_VIEW_MASK: return sp::View::kMask;
    case GST_STARGANV2_VIEW_SIDE_BY_SIDE: return sp::View::kSideBySide;
    case GST_STARGANV2_VIEW_MERGED: break;
  }
  return sp::View::kMerged;
}

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
  g_object_notify_by_pspec(G_OBJECT(self), properties[PROP_ACTIVE_DEVICE]);
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

// Gives back every frame the processor still holds, unmapped: they are not pushed (a flush, a
// stop, or an error that ends the stream).
static void release_pending(GstStarganv2* self) {
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
    g_object_notify_by_pspec(G_OBJECT(self), properties[PROP_ACTIVE_DEVICE]);
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

static const char* style_source_name(sp::StyleSource source) {
  switch (source) {
    case sp::StyleSource::kReference: return "reference";
    case sp::StyleSource::kStyleFile: return "style-file";
    case sp::StyleSource::kLatent: break;
  }
  return "latent";
}

// Appends `value` (taken) to the GstValueArray `array`.
template <typename T>
static void append(GValue* array, GType type, T value) {
  GValue v = G_VALUE_INIT;
  g_value_init(&v, type);
  if constexpr (std::is_same_v<T, double>) g_value_set_double(&v, value);
  else if constexpr (std::is_same_v<T, guint64>) g_value_set_uint64(&v, value);
  else g_value_set_int(&v, value);
  gst_value_array_append_and_take_value(array, &v);
}

static GValue landmarks_array(const sp::FaceBox& face) {
  GValue landmarks = G_VALUE_INIT;
  g_value_init(&landmarks, GST_TYPE_ARRAY);
  for (float v : face.landmarks) append(&landmarks, G_TYPE_DOUBLE, static_cast<double>(v));
  return landmarks;
}

static guint64 face_style_seed(const sp::FaceBox& face, const sp::StyleReport& style) {
  return style.per_face ? face.style_seed : style.seed;
}

// The style of a frame's faces as fields of `st`: domain, style-source, style-per-face,
// transition, and by source psi, reference or style-file (the seed is per face).
static void set_style_fields(GstStructure* st, const sp::StyleReport& style) {
  gst_structure_set(st, "domain", G_TYPE_STRING, style.domain.c_str(), "style-source", G_TYPE_STRING,
                    style_source_name(style.source), "style-per-face", G_TYPE_BOOLEAN, style.per_face,
                    "transition", G_TYPE_DOUBLE, style.transition, nullptr);
  switch (style.source) {
    case sp::StyleSource::kLatent:
      gst_structure_set(st, "psi", G_TYPE_DOUBLE, style.psi, nullptr);
      break;
    case sp::StyleSource::kReference:
      gst_structure_set(st, "reference", G_TYPE_STRING, style.reference.c_str(), nullptr);
      break;
    case sp::StyleSource::kStyleFile:
      gst_structure_set(st, "style-file", G_TYPE_STRING, style.style_file.c_str(), nullptr);
      break;
  }
}

// One GstVideoRegionOfInterestMeta of type "face" per translated face, as GStreamer's own face
// detectors attach them: the box clipped to the frame, the track id, and a "starganv2-face"
// params structure with the landmarks and the style.
static void add_face_metas(GstBuffer* buffer, const sp::FrameReport& report, int width, int height) {
  for (const sp::FaceBox& f : report.faces) {
    const int x0 = CLAMP(f.x, 0, width), y0 = CLAMP(f.y, 0, height);
    const int x1 = CLAMP(f.x + f.width, 0, width), y1 = CLAMP(f.y + f.height, 0, height);
    GstVideoRegionOfInterestMeta* meta = gst_buffer_add_video_region_of_interest_meta(
        buffer, "face", static_cast<guint>(x0), static_cast<guint>(y0), static_cast<guint>(x1 - x0),
        static_cast<guint>(y1 - y0));
    if (!meta) continue;
    meta->id = f.id;
    GstStructure* params = gst_structure_new_empty("starganv2-face");
    GValue landmarks = landmarks_array(f);
    gst_structure_take_value(params, "landmarks", &landmarks);
    set_style_fields(params, report.style);
    if (report.style.source == sp::StyleSource::kLatent)
      gst_structure_set(params, "seed", G_TYPE_UINT64, face_style_seed(f, report.style), nullptr);
    gst_video_region_of_interest_meta_add_param(meta, params);  // takes it
  }
}

// The faces go in parallel arrays of numbers, one entry per face, rather than an array of
// structures: gst_structure_to_string (gst-launch-1.0 -m) writes nested structures as escaped
// strings, and nested arrays of numbers as they are, readable and parsed back as they were.
static void post_frame_message(GstStarganv2* self, GstBuffer* buffer,
                               const sp::FrameReport& report) {
  const GstSegment& segment = GST_BASE_TRANSFORM(self)->segment;
  const GstClockTime pts = GST_BUFFER_PTS(buffer);
  GstClockTime stream_time = GST_CLOCK_TIME_NONE;
  GstClockTime running_time = GST_CLOCK_TIME_NONE;
  if (segment.format == GST_FORMAT_TIME && GST_CLOCK_TIME_IS_VALID(pts)) {
    stream_time = gst_segment_to_stream_time(&segment, GST_FORMAT_TIME, pts);
    running_time = gst_segment_to_running_time(&segment, GST_FORMAT_TIME, pts);
  }
  GstStructure* s = gst_structure_new(
      "starganv2", "timestamp", G_TYPE_UINT64, pts, "stream-time", G_TYPE_UINT64, stream_time,
      "running-time", G_TYPE_UINT64, running_time, "duration", G_TYPE_UINT64,
      GST_BUFFER_DURATION(buffer), "reused", G_TYPE_BOOLEAN, report.reused, nullptr);
  GValue ids = G_VALUE_INIT, boxes = G_VALUE_INIT, landmarks = G_VALUE_INIT, seeds = G_VALUE_INIT;
  for (GValue* v : {&ids, &boxes, &landmarks, &seeds}) g_value_init(v, GST_TYPE_ARRAY);
  for (const auto& f : report.faces) {
    append(&ids, G_TYPE_INT, f.id);
    GValue box = G_VALUE_INIT;
    g_value_init(&box, GST_TYPE_ARRAY);
    for (int v : {f.x, f.y, f.width, f.height}) append(&box, G_TYPE_INT, v);
    gst_value_array_append_and_take_value(&boxes, &box);
    GValue points = landmarks_array(f);
    gst_value_array_append_and_take_value(&landmarks, &points);
    append(&seeds, G_TYPE_UINT64, face_style_seed(f, report.style));
  }
  gst_structure_take_value(s, "face-ids", &ids);
  gst_structure_take_value(s, "face-boxes", &boxes);
  gst_structure_take_value(s, "face-landmarks", &landmarks);
  if (!report.faces.empty()) {
    set_style_fields(s, report.style);
    if (report.style.source == sp::StyleSource::kLatent) gst_structure_take_value(s, "face-seeds", &seeds);
  }
  if (G_IS_VALUE(&seeds)) g_value_unset(&seeds);
  gst_element_post_message(GST_ELEMENT(self), gst_message_new_element(GST_OBJECT(self), s));
}

static void post_qos_message(GstStarganv2* self, GstBuffer* buffer, GstClockTime running_time,
                             GstClockTime earliest, gdouble proportion) {
  auto* priv = self->priv;
  const GstSegment& segment = GST_BASE_TRANSFORM(self)->segment;
  const GstClockTime pts = GST_BUFFER_PTS(buffer);
  GstMessage* msg = gst_message_new_qos(
      GST_OBJECT(self), TRUE, running_time,
      gst_segment_to_stream_time(&segment, GST_FORMAT_TIME, pts), pts,
      GST_BUFFER_DURATION(buffer));
  // Quality is halved, not lost: the frame still carries the last translated faces.
  gst_message_set_qos_values(msg, GST_CLOCK_DIFF(running_time, earliest), proportion, 500000);
  gst_message_set_qos_stats(msg, GST_FORMAT_BUFFERS, priv->processed, 0);
  gst_element_post_message(GST_ELEMENT(self), msg);
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
        reverted.push_back(properties[prop]);
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
  priv->processor->set_stream(sp::StreamOptions{.live = live, .overlap = s.overlap});
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

static GstFlowReturn gst_starganv2_submit_input_buffer(GstBaseTransform* trans, gboolean /*is_discont*/,
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

static GstFlowReturn gst_starganv2_generate_output(GstBaseTransform* trans, GstBuffer** outbuf) {
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
static GstFlowReturn drain(GstStarganv2* self) {
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
static GstFlowReturn gst_starganv2_transform_frame_ip(GstVideoFilter* filter, GstVideoFrame* frame) {
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

  object_class->set_property = gst_starganv2_set_property;
  object_class->get_property = gst_starganv2_get_property;
  object_class->finalize = gst_starganv2_finalize;

  constexpr auto kReady = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                                                   GST_PARAM_MUTABLE_READY);
  constexpr auto kPlaying = static_cast<GParamFlags>(
      G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING);
  // Animatable with GstController: synced to each buffer's stream time (submit_input_buffer).
  constexpr auto kControllable = static_cast<GParamFlags>(kPlaying | GST_PARAM_CONTROLLABLE);

  /**
   * GstStarganv2:checkpoint:
   *
   * The model: a StarGAN v2 .safetensors file (from starganv2-train or
   * starganv2-convert-official) with the generator, the mapping network and the style encoder,
   * and the FAN when the model uses face masks (w_hpf > 0). Loaded when the element starts.
   */
  properties[PROP_CHECKPOINT] = g_param_spec_string(
      "checkpoint", "Checkpoint",
      "StarGAN v2 model file (.safetensors), loaded when the element starts (required)", nullptr,
      kReady);

  /**
   * GstStarganv2:fan-checkpoint:
   *
   * The FAN landmark network's weights when they are not in #GstStarganv2:checkpoint. Only
   * models with w_hpf > 0 need them; given to a model that needs none, the file is not read and
   * a warning on the bus says so.
   */
  properties[PROP_FAN_CHECKPOINT] = g_param_spec_string(
      "fan-checkpoint", "FAN checkpoint",
      "File with the FAN weights (fan.*) when the checkpoint lacks them; only for models with "
      "w_hpf > 0. NULL = take them from the checkpoint",
      nullptr, kReady);

  /**
   * GstStarganv2:domain:
   *
   * The target domain: one of the checkpoint's domain names (e.g. "female", "male") or its
   * index. NULL selects domain 0. An unknown domain at start is an error whose message lists the
   * valid ones; set while playing, it posts a warning and the previous domain stays.
   */
  properties[PROP_DOMAIN] = g_param_spec_string(
      "domain", "Domain",
      "Target domain: a domain name of the checkpoint or its index (NULL = domain 0)", nullptr,
      kPlaying);

  /**
   * GstStarganv2:seed:
   *
   * Seed of the latent code z ~ N(0, I) that the mapping network turns into the style, when
   * neither #GstStarganv2:style-file nor #GstStarganv2:reference is set. The same seed gives the
   * same style on every device.
   */
  properties[PROP_SEED] = g_param_spec_uint64(
      "seed", "Seed", "Seed of the latent code that gives the style (latent-guided synthesis)", 0,
      G_MAXUINT64, kDefaultSeed, kPlaying);

  /**
   * GstStarganv2:psi:
   *
   * Truncation of the latent style towards the domain's average style: 1 keeps it, 0 gives the
   * average style.
   */
  properties[PROP_PSI] = g_param_spec_double(
      "psi", "Psi",
      "Truncation of the latent style towards the domain's average (1 = none, 0 = the average); "
      "controllable",
      0.0, 1.0, kDefaultPsi, kControllable);

  /**
   * GstStarganv2:reference:
   *
   * An image file whose face gives the style (reference-guided synthesis): the face is found,
   * aligned and encoded by the style encoder for the target domain. Takes precedence over
   * #GstStarganv2:seed. An unreadable image or one without a face is an error at start; set while
   * playing, it posts a warning and the previous style stays.
   */
  properties[PROP_REFERENCE] = g_param_spec_string(
      "reference", "Reference image",
      "Image whose face gives the style (reference-guided); overrides seed and psi", nullptr,
      kPlaying);

  /**
   * GstStarganv2:style-file:
   *
   * A file holding an explicit style vector (see the model library's style files). Takes
   * precedence over #GstStarganv2:reference and #GstStarganv2:seed.
   */
  properties[PROP_STYLE_FILE] = g_param_spec_string(
      "style-file", "Style file",
      "File with an explicit style vector; overrides reference, seed and psi", nullptr, kPlaying);

  /**
   * GstStarganv2:device:
   *
   * Where the networks run: "auto" (the first CUDA GPU when there is one, else the CPU), "cpu",
   * or "cuda:N". Asking for a GPU that is not there is an error at start.
   */
  properties[PROP_DEVICE] = g_param_spec_string(
      "device", "Device", "Where the networks run: auto, cpu or cuda:N", kDefaultDevice, kReady);

  /**
   * GstStarganv2:precision:
   *
   * Floating-point precision of the networks. fp16 and bf16 need CUDA.
   */
  properties[PROP_PRECISION] = g_param_spec_enum(
      "precision", "Precision", "Floating-point precision of the networks (fp16/bf16 need CUDA)",
      GST_TYPE_STARGANV2_PRECISION, kDefaultPrecision, kReady);

  /**
   * GstStarganv2:mode:
   *
   * "face" finds, aligns and translates every face and blends it back; "frame" translates the
   * whole frame resized to the model's size (for models trained on whole images, such as AFHQ).
   */
  properties[PROP_MODE] = g_param_spec_enum(
      "mode", "Mode", "What is translated: each aligned face, or the whole frame",
      GST_TYPE_STARGANV2_MODE, kDefaultMode, kPlaying);

  /**
   * GstStarganv2:detect-interval:
   *
   * The face detector runs every this many frames; in between, faces are tracked from the
   * previous frame (cheaper). 1 = detect in every frame.
   */
  properties[PROP_DETECT_INTERVAL] = g_param_spec_uint(
      "detect-interval", "Detect interval",
      "Run the face detector every N frames and track faces in between (1 = every frame)", 1,
      kMaxDetectInterval, kDefaultDetectInterval, kPlaying);

  /**
   * GstStarganv2:max-faces:
   *
   * At most this many faces (the largest first) are translated per frame, in one batch.
   */
  properties[PROP_MAX_FACES] = g_param_spec_uint(
      "max-faces", "Max faces", "Translate at most this many faces per frame, largest first", 1,
      kMaxMaxFaces, kDefaultMaxFaces, kPlaying);

  /**
   * GstStarganv2:min-face-size:
   *
   * Faces whose detected box is narrower than this many frame pixels are left alone.
   */
  properties[PROP_MIN_FACE_SIZE] = g_param_spec_uint(
      "min-face-size", "Min face size",
      "Ignore faces whose box is narrower than this many pixels of the frame", 0,
      kMaxMinFaceSize, kDefaultMinFaceSize, kPlaying);

  /**
   * GstStarganv2:smoothing:
   *
   * Temporal smoothing of each face's alignment, against jitter: 0 = off, 1 = strongest.
   */
  properties[PROP_SMOOTHING] = g_param_spec_double(
      "smoothing", "Smoothing", "Temporal smoothing of the face alignment (0 = off, 1 = strongest)",
      0.0, 1.0, kDefaultSmoothing, kPlaying);

  /**
   * GstStarganv2:feather:
   *
   * Width of the soft edge where a translated face is blended into the frame, in widths of the
   * aligned crop (so it scales with the face: 0.08 is 20 px of a 256 px crop). 0 = a hard edge.
   */
  properties[PROP_FEATHER] = g_param_spec_double(
      "feather", "Feather",
      "Width of the blend edge in aligned-crop widths, scaling with the face (0 = hard edge); "
      "controllable",
      0.0, kMaxFeather, kDefaultFeather, kControllable);

  /**
   * GstStarganv2:color-match:
   *
   * Match the translated face's colours to the original face before blending.
   */
  properties[PROP_COLOR_MATCH] = g_param_spec_boolean(
      "color-match", "Colour match",
      "Match the colours of the translated face to the original before blending",
      kDefaultColorMatch, kPlaying);

  /**
   * GstStarganv2:temporal:
   *
   * Temporal stabilisation against flicker: each face's previous output, carried along the
   * input face's motion (optical flow between its aligned crops), is blended into the new
   * translation with this weight where the input face did not change; where it changed (a mouth
   * opening, a turn, a cut) the new translation shows as it is. 0 = off: every frame translated
   * on its own. Files stay exact.
   */
  properties[PROP_TEMPORAL] = g_param_spec_double(
      "temporal", "Temporal stabilisation",
      "Weight of each face's previous output, moved along the face's motion, where the input face did "
      "not change: against flicker (0 = off, every frame on its own)",
      0.0, kMaxTemporal, kDefaultTemporal, kPlaying);

  /**
   * GstStarganv2:view:
   *
   * What the output shows; everything but "merged" is for checking the alignment and the model.
   */
  properties[PROP_VIEW] = g_param_spec_enum(
      "view", "View", "What the output shows (all but merged are for inspection)",
      GST_TYPE_STARGANV2_VIEW, kDefaultView, kPlaying);

  /**
   * GstStarganv2:post-messages:
   *
   * Post an element message named "starganv2" for every frame, with the face boxes (see the
   * element's documentation).
   */
  properties[PROP_POST_MESSAGES] = g_param_spec_boolean(
      "post-messages", "Post messages",
      "Post an element message \"starganv2\" for every frame, fields: timestamp, stream-time, "
      "running-time, duration (guint64 ns), reused (gboolean, late-frame path taken), face-ids, "
      "face-boxes, face-landmarks, face-seeds (arrays, one entry per face) and the style's fields",
      kDefaultPostMessages, kPlaying);

  /**
   * GstStarganv2:overlap:
   *
   * Overlap frames: while the networks run for one frame (on their own thread, or queued on the
   * GPU), the next frame is aligned and the previous one blended back. A live stream then holds
   * one frame more, which the LATENCY query reports (one frame duration); a file holds a few
   * more so that face detections run ahead on a worker. Output is the same either way. FALSE
   * runs each frame start to end before taking the next.
   */
  properties[PROP_OVERLAP] = g_param_spec_boolean(
      "overlap", "Overlap frames",
      "Align the next frame and blend the previous one while the networks run (live: one frame "
      "more latency)",
      kDefaultOverlap, kReady);

  /**
   * GstStarganv2:active-device:
   *
   * The device the networks run on once the element has started (e.g. "cpu", "cuda:0"); NULL
   * before.
   */
  properties[PROP_ACTIVE_DEVICE] = g_param_spec_string(
      "active-device", "Active device",
      "Device the networks run on once started (e.g. cpu, cuda:0); NULL before", nullptr,
      static_cast<GParamFlags>(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));

  /**
   * GstStarganv2:stats:
   *
   * Counters since the element started: `frames` (taken in), `detections-on-streaming-thread`
   * and `detections-on-workers` (whole-frame face detections, by where they ran; in a live
   * stream none runs on the streaming thread).
   */
  properties[PROP_STATS] = g_param_spec_boxed(
      "stats", "Statistics",
      "Counters since start: frames, detections-on-streaming-thread, detections-on-workers",
      GST_TYPE_STRUCTURE, static_cast<GParamFlags>(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));

  /**
   * GstStarganv2:strength:
   *
   * How much of the translated face is shown: the translated face blended with the original
   * one, 1 = translated, 0 = the original (the frame passes unchanged). Controllable, e.g. to
   * fade the effect in and out with a #GstInterpolationControlSource.
   */
  properties[PROP_STRENGTH] = g_param_spec_double(
      "strength", "Strength",
      "Blend of the translated face with the original (1 = translated, 0 = original); "
      "controllable",
      0.0, 1.0, kDefaultStrength, kControllable);

  /**
   * GstStarganv2:transition:
   *
   * A change of #GstStarganv2:domain, #GstStarganv2:seed, #GstStarganv2:psi,
   * #GstStarganv2:reference, #GstStarganv2:style-file or #GstStarganv2:style-per-face while
   * playing moves each face from its old style code to the new one over this many milliseconds
   * of stream (buffer timestamps, so a file comes out the same on every run): a straight line
   * between the two codes, also across domains, eased by the official StarGAN v2 video's sigmoid
   * schedule. 0 = at once.
   */
  properties[PROP_TRANSITION] = g_param_spec_uint(
      "transition", "Transition",
      "Milliseconds of stream over which a style change (domain, seed, psi, reference, "
      "style-file) moves from the old style code to the new one (0 = at once)",
      0, kMaxTransition, kDefaultTransition, kPlaying);

  /**
   * GstStarganv2:style-per-face:
   *
   * Give each tracked face its own latent style, from (#GstStarganv2:seed, face id), for as long
   * as the face is tracked; all faces still go through the generator in one batch. With
   * #GstStarganv2:reference or #GstStarganv2:style-file all faces share that style.
   */
  properties[PROP_STYLE_PER_FACE] = g_param_spec_boolean(
      "style-per-face", "Style per face",
      "Each tracked face gets its own latent style from (seed, face id); a reference or style "
      "file is shared by all faces",
      kDefaultStylePerFace, kPlaying);

  g_object_class_install_properties(object_class, N_PROPERTIES, properties);

  gst_element_class_add_static_pad_template(element_class, &sink_template);
  gst_element_class_add_static_pad_template(element_class, &src_template);
  gst_element_class_set_static_metadata(
      element_class, "StarGAN v2 face translation", "Filter/Effect/Video",
      "Translates the faces in video frames into another domain and style with a StarGAN v2 "
      "generator",
      "starganv2 developers");
  // Shown by gst-inspect-1.0 with the factory details; the README and the section documentation
  // at the top of this file say the same.
  gst_element_class_add_static_metadata(
      element_class, "messages",
      "with post-messages=true, an element message \"starganv2\" per frame: timestamp, stream-time, "
      "running-time, duration (guint64 ns, GST_CLOCK_TIME_NONE when unknown), reused (gboolean: the "
      "late-frame path was taken); one entry per face, largest first: face-ids (gint, stable while "
      "tracked), face-boxes (<x, y, width, height> gint frame pixels), face-landmarks (<136 gdouble>), "
      "face-seeds (guint64, latent styles); with faces also domain, style-source, style-per-face, "
      "transition, and psi, reference or style-file");
  gst_element_class_add_static_metadata(
      element_class, "region-of-interest-meta",
      "every output buffer carries a GstVideoRegionOfInterestMeta of type \"face\" per translated "
      "face: box in frame pixels, id stable while tracked, params \"starganv2-face\": landmarks "
      "(136 gdouble: x0, y0 ... x67, y67), domain, style-source (latent, reference, style-file), "
      "style-per-face, transition (0..1), seed and psi, or reference, or style-file");
  gst_element_class_add_static_metadata(
      element_class, "quality-of-service",
      "unlike GstBaseTransform, late buffers are never dropped: in a live pipeline with qos=true "
      "(default) a frame that QoS events say is late skips detection and the networks, the last "
      "translated faces are blended back at their last places (or the frame passes unchanged) and "
      "a QoS message is posted; not live, every frame is translated in full");

  trans_class->start = GST_DEBUG_FUNCPTR(gst_starganv2_start);
  trans_class->stop = GST_DEBUG_FUNCPTR(gst_starganv2_stop);
  trans_class->query = GST_DEBUG_FUNCPTR(gst_starganv2_query);
  trans_class->src_event = GST_DEBUG_FUNCPTR(gst_starganv2_src_event);
  trans_class->sink_event = GST_DEBUG_FUNCPTR(gst_starganv2_sink_event);
  filter_class->set_info = GST_DEBUG_FUNCPTR(gst_starganv2_set_info);
  filter_class->transform_frame_ip = GST_DEBUG_FUNCPTR(gst_starganv2_transform_frame_ip);
  trans_class->submit_input_buffer = GST_DEBUG_FUNCPTR(gst_starganv2_submit_input_buffer);
  trans_class->generate_output = GST_DEBUG_FUNCPTR(gst_starganv2_generate_output);

  gst_type_mark_as_plugin_api(GST_TYPE_STARGANV2_PRECISION, static_cast<GstPluginAPIFlags>(0));
  gst_type_mark_as_plugin_api(GST_TYPE_STARGANV2_MODE, static_cast<GstPluginAPIFlags>(0));
  gst_type_mark_as_plugin_api(GST_TYPE_STARGANV2_VIEW, static_cast<GstPluginAPIFlags>(0));
}
