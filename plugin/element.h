// The private parts of the element `starganv2`, shared by the files that make it up (plugin/ only,
// never installed): the enum property types, the property ids and defaults, the element's state
// (Settings, PendingFrame, GstStarganv2Private) and what one of its files calls in another. The
// element is split by what each part does, as larger GStreamer elements are:
//   gststarganv2.cpp  the type, its documentation, life cycle (start, stop, caps), queries, events
//                     and class_init;
//   flow.cpp          the buffers' way through the element: submit_input_buffer, generate_output,
//                     drain, and the frames the Processor holds meanwhile;
//   properties.cpp    the enum GTypes, the properties with their gst-inspect documentation, and
//                     set_property/get_property;
//   messages.cpp      what the application is told: face metadata, element, QoS and error messages.
// The functions here have C++ linkage and hidden visibility (plugin/meson.build): nothing but the
// plugin's own files sees them.
#pragma once

#include <gst/video/video.h>

#include <deque>
#include <memory>
#include <mutex>
#include <string>

#include "gststarganv2.h"
#include "latency.h"
#include "processor.h"

GST_DEBUG_CATEGORY_EXTERN(gst_starganv2_debug);
#define GST_CAT_DEFAULT gst_starganv2_debug

namespace sp = starganv2::plugin;

// ---------------------------------------------------------------------------------------------
// Enum property types (their GTypes: properties.cpp)
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

// What the enum properties mean to the Processor.
inline sp::Precision to_precision(GstStarganv2Precision p) {
  switch (p) {
    case GST_STARGANV2_PRECISION_FP32: return sp::Precision::kFp32;
    case GST_STARGANV2_PRECISION_FP16: return sp::Precision::kFp16;
    case GST_STARGANV2_PRECISION_BF16: return sp::Precision::kBf16;
    case GST_STARGANV2_PRECISION_AUTO: break;
  }
  return sp::Precision::kAuto;
}

inline sp::Mode to_mode(GstStarganv2Mode m) {
  return m == GST_STARGANV2_MODE_FRAME ? sp::Mode::kFrame : sp::Mode::kFace;
}

inline sp::View to_view(GstStarganv2View v) {
  switch (v) {
    case GST_STARGANV2_VIEW_ALIGNED: return sp::View::kAligned;
    case GST_STARGANV2_VIEW_TRANSLATED: return sp::View::kTranslated;
    case GST_STARGANV2_VIEW_MASK: return sp::View::kMask;
    case GST_STARGANV2_VIEW_SIDE_BY_SIDE: return sp::View::kSideBySide;
    case GST_STARGANV2_VIEW_MERGED: break;
  }
  return sp::View::kMerged;
}

// ---------------------------------------------------------------------------------------------
// Properties (specs, set_property and get_property: properties.cpp)
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
  PROP_SHARED_ENGINE,
  PROP_BATCH_TIMEOUT,
  N_PROPERTIES,
};
// Filled in by gst_starganv2_install_properties(); for g_object_notify_by_pspec().
extern GParamSpec* gst_starganv2_properties[N_PROPERTIES];

// The properties' defaults: Settings starts from them and the param specs announce them (the
// ranges are in properties.cpp).
constexpr const char* kDefaultDevice = "auto";
constexpr guint64 kDefaultSeed = 0;
constexpr gdouble kDefaultPsi = 1.0;
constexpr GstStarganv2Precision kDefaultPrecision = GST_STARGANV2_PRECISION_AUTO;
constexpr GstStarganv2Mode kDefaultMode = GST_STARGANV2_MODE_FACE;
constexpr GstStarganv2View kDefaultView = GST_STARGANV2_VIEW_MERGED;
constexpr guint kDefaultDetectInterval = 5;
constexpr guint kDefaultMaxFaces = 4;
constexpr guint kDefaultMinFaceSize = 64;
constexpr gdouble kDefaultSmoothing = 0.5;
constexpr gdouble kDefaultFeather = 0.08;
constexpr gboolean kDefaultColorMatch = FALSE;
constexpr gdouble kDefaultTemporal = 0.7;
constexpr gboolean kDefaultPostMessages = FALSE;
constexpr gboolean kDefaultOverlap = TRUE;
constexpr gdouble kDefaultStrength = 1.0;
constexpr guint kDefaultTransition = 0;
constexpr gboolean kDefaultStylePerFace = FALSE;
constexpr gboolean kDefaultSharedEngine = TRUE;
constexpr guint64 kDefaultBatchTimeoutUs = 0;

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
  bool shared_engine = kDefaultSharedEngine;
  guint64 batch_timeout_us = kDefaultBatchTimeoutUs;
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

// ---------------------------------------------------------------------------------------------
// Called across the element's files
// ---------------------------------------------------------------------------------------------

// properties.cpp: installs the properties with their documentation and set_property/get_property.
void gst_starganv2_install_properties(GObjectClass* object_class);

// messages.cpp
// Adds the factory details gst-inspect-1.0 shows about messages, metadata and QoS.
void gst_starganv2_describe_messages(GstElementClass* element_class);
// Posts the error that fits the exception being handled; called only inside a catch handler.
// Callers hold no lock (GstBus handlers may call back into the element, e.g. to read a property).
void post_current_exception(GstStarganv2* self, const char* where);
void add_face_metas(GstBuffer* buffer, const sp::FrameReport& report, int width, int height);
void post_frame_message(GstStarganv2* self, GstBuffer* buffer, const sp::FrameReport& report);
void post_qos_message(GstStarganv2* self, GstBuffer* buffer, GstClockTime running_time,
                      GstClockTime earliest, gdouble proportion);

// flow.cpp
GstFlowReturn gst_starganv2_submit_input_buffer(GstBaseTransform* trans, gboolean is_discont,
                                                GstBuffer* input);
GstFlowReturn gst_starganv2_generate_output(GstBaseTransform* trans, GstBuffer** outbuf);
GstFlowReturn gst_starganv2_transform_frame_ip(GstVideoFilter* filter, GstVideoFrame* frame);
// Gives back every frame still inside, unpushed (a flush or a stop).
void release_pending(GstStarganv2* self);
// Pushes every frame still inside, oldest first (before a serialized event).
GstFlowReturn drain(GstStarganv2* self);

// Runs `body` and turns any exception into a posted error and `on_error`. Locks taken inside
// `body` are scoped there, so by the time an error is posted none is held.
template <typename Result, typename Body>
Result guarded(GstStarganv2* self, const char* where, Result on_error, Body&& body) {
  try {
    return body();
  } catch (...) {  // sp::ProcessorError, c10::Error, dlib::error, cv::Exception and the rest
    post_current_exception(self, where);
  }
  return on_error;
}
