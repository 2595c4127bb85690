// What the element `starganv2` tells the application: a GstVideoRegionOfInterestMeta per
// translated face, the per-frame element message (post-messages), QoS messages for late frames,
// errors, and the factory details that document them in gst-inspect-1.0. Apart from the
// streaming code (flow.cpp) so that what applications read (field names, types, order) stands
// in one place, next to its documentation.

#include "element.h"

#include <gst/video/gstvideometa.h>

#include <exception>
#include <type_traits>

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

void post_current_exception(GstStarganv2* self, const char* where) {
  try {
    throw;
  } catch (const sp::ProcessorError& e) {
    post_processor_error(self, e);
  } catch (const std::exception& e) {  // c10::Error, dlib::error and cv::Exception included
    GST_ELEMENT_ERROR(self, LIBRARY, FAILED, ("%s failed: %s", where, e.what()), (nullptr));
  } catch (...) {
    GST_ELEMENT_ERROR(self, LIBRARY, FAILED, ("%s failed with an unknown exception", where),
                      (nullptr));
  }
}

// ---------------------------------------------------------------------------------------------
// Face metadata and messages
// ---------------------------------------------------------------------------------------------

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
void add_face_metas(GstBuffer* buffer, const sp::FrameReport& report, int width, int height) {
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
void post_frame_message(GstStarganv2* self, GstBuffer* buffer,
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

void post_qos_message(GstStarganv2* self, GstBuffer* buffer, GstClockTime running_time,
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

// ---------------------------------------------------------------------------------------------
// Documentation
// ---------------------------------------------------------------------------------------------

void gst_starganv2_describe_messages(GstElementClass* element_class) {
  // Shown by gst-inspect-1.0 with the factory details; the README and the section documentation
  // at the top of gststarganv2.cpp say the same.
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
}
