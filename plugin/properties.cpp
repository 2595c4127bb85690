// The properties of the element `starganv2`: the enum GTypes (precision, mode, view), every
// GParamSpec with the documentation gst-inspect-1.0 and the API docs show, and
// set_property/get_property. Apart from the rest of the element (see element.h) because it is
// the element's interface to applications and grows with every setting, while the streaming
// code only reads the Settings these fill in.

#include "element.h"

#include <gst/gst.h>

#include <exception>
#include <mutex>
#include <string>

// ---------------------------------------------------------------------------------------------
// Enum property types
// ---------------------------------------------------------------------------------------------

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
// Properties
// ---------------------------------------------------------------------------------------------

// The properties' ranges (their defaults are in element.h, where Settings starts from them).
constexpr guint kMaxDetectInterval = 1000;
constexpr guint kMaxMaxFaces = 32;
constexpr guint kMaxMinFaceSize = 8192;
constexpr gdouble kMaxFeather = 0.5;
constexpr gdouble kMaxTemporal = 0.95;
constexpr guint kMaxTransition = 600000;  // ten minutes
constexpr guint64 kMaxBatchTimeoutUs = 1000000;  // a second: far more than a frame

GParamSpec* gst_starganv2_properties[N_PROPERTIES];

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
      case PROP_SHARED_ENGINE:
        if (engine_fixed) refused = true;
        else s.shared_engine = g_value_get_boolean(value);
        break;
      case PROP_BATCH_TIMEOUT:
        s.batch_timeout_us = g_value_get_uint64(value);
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
      case PROP_SHARED_ENGINE: g_value_set_boolean(value, s.shared_engine); break;
      case PROP_BATCH_TIMEOUT: g_value_set_uint64(value, s.batch_timeout_us); break;
      case PROP_STRENGTH: g_value_set_double(value, s.strength); break;
      case PROP_TRANSITION: g_value_set_uint(value, s.transition_ms); break;
      case PROP_STYLE_PER_FACE: g_value_set_boolean(value, s.style.per_face); break;
      case PROP_ACTIVE_DEVICE: set_string_or_null(value, priv->active_device); break;
      case PROP_STATS: {
        GstStructure* st = gst_structure_new(
            "starganv2-stats", "frames", G_TYPE_UINT64, static_cast<guint64>(priv->counters.frames),
            "detections-on-streaming-thread", G_TYPE_UINT64,
            static_cast<guint64>(priv->counters.detections_on_streaming_thread), "detections-on-workers",
            G_TYPE_UINT64, static_cast<guint64>(priv->counters.detections_on_workers), "engine-streams", G_TYPE_UINT,
            static_cast<guint>(priv->counters.engine_streams), nullptr);
        g_value_take_boxed(value, st);
        break;
      }
      default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
    }
  } catch (const std::exception& e) {
    GST_ERROR_OBJECT(self, "reading '%s' failed: %s", pspec->name, e.what());
  }
}

void gst_starganv2_install_properties(GObjectClass* object_class) {
  object_class->set_property = gst_starganv2_set_property;
  object_class->get_property = gst_starganv2_get_property;
  GParamSpec** properties = gst_starganv2_properties;

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
   * stream none runs on the streaming thread), and `engine-streams` (guint: the elements of the
   * process on this element's model and engine thread, itself included; see
   * #GstStarganv2:shared-engine).
   */
  properties[PROP_STATS] = g_param_spec_boxed(
      "stats", "Statistics",
      "Counters since start: frames, detections-on-streaming-thread, detections-on-workers; "
      "engine-streams (elements sharing this element's model, itself included)",
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

  /**
   * GstStarganv2:shared-engine:
   *
   * Elements of one process that load the same model file (same path, size and modification
   * time) with the same fan-checkpoint, device and precision share one loaded model and its
   * engine threads (on the CPU, a thread per stream for models below 256 px, so that files run
   * side by side as with models of their own): N streams cost one model's memory, and live
   * streams' faces ready at the same time are translated in one forward. Files are never
   * batched with other streams, so a file's output is the same bytes as with a model of its
   * own. Styles, views and every other setting, errors and state changes stay per element; the
   * model is freed when its last element stops. FALSE gives this element a model and engine
   * threads of its own.
   */
  properties[PROP_SHARED_ENGINE] = g_param_spec_boolean(
      "shared-engine", "Shared engine",
      "Share the loaded model and its engine threads with the other elements of the process that load "
      "the same model file, FAN, device and precision (live streams are batched together, files never); "
      "FALSE = a model of its own",
      kDefaultSharedEngine, kReady);

  /**
   * GstStarganv2:batch-timeout:
   *
   * Live streams on a shared engine: how long (microseconds) a frame's faces may wait for the
   * other live streams' frames to join their forward, a batch being cheaper per face than single
   * frames on a GPU. The wait counts in the frame time the LATENCY query reports. 0 = batch what
   * is queued and wait for nothing. Files never wait (they are not batched).
   */
  properties[PROP_BATCH_TIMEOUT] = g_param_spec_uint64(
      "batch-timeout", "Batch timeout",
      "Live streams on a shared engine: microseconds a frame may wait for other live streams' frames "
      "to share its forward (0 = none: batch whatever is queued)",
      0, kMaxBatchTimeoutUs, kDefaultBatchTimeoutUs, kPlaying);

  g_object_class_install_properties(object_class, N_PROPERTIES, properties);

  gst_type_mark_as_plugin_api(GST_TYPE_STARGANV2_PRECISION, static_cast<GstPluginAPIFlags>(0));
  gst_type_mark_as_plugin_api(GST_TYPE_STARGANV2_MODE, static_cast<GstPluginAPIFlags>(0));
  gst_type_mark_as_plugin_api(GST_TYPE_STARGANV2_VIEW, static_cast<GstPluginAPIFlags>(0));
}
