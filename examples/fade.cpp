// starganv2-fade: animates the starganv2 element's controllable properties over a clip with
// GStreamer's controller: `strength` fades the restyled face in (0 -> 1) over the first FADE
// seconds, then `psi` moves the style to the domain's average (1 -> 0) over the next FADE
// seconds, and the face keeps that from then on.
//
// Needs: GStreamer 1.22 with gstreamer-controller-1.0 (built by examples/meson.build); at run time
//        the element (build/plugin via GST_PLUGIN_PATH, or installed), a model file (default: the
//        demo model that ships with the project), gstreamer1.0-libav for Megamind.avi, and
//        gst-plugins-good (jpegenc, matroskamux) for an .mkv output.
//
// Usage (from the repository root):
//   export GST_PLUGIN_PATH=$PWD/build/plugin
//   build/examples/starganv2-fade /usr/share/doc/opencv-doc/examples/data/Megamind.avi out/fade.mkv
//   build/examples/starganv2-fade IN none --fade 2 --domain male --seed 3 --checkpoint MODEL
// OUT is an .mkv file (Motion JPEG) or `none` (played into fakesink). Exit codes: 0 played to the
// end; 1 bad input or an error while playing (the element's message is printed).
//
// The values are taken at each buffer's stream time (the element syncs its controlled
// properties per buffer), so a file comes out the same on every run.

#include <gst/controller/controller.h>
#include <gst/gst.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "model/locations.h"

namespace {

// A string for a gst_parse_launch description: quoted, so paths may hold spaces.
std::string launch_quoted(const std::string& s) {
  std::string q = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') q += '\\';
    q += c;
  }
  return q + "\"";
}

// Linear ramp of `property` from `from` at `start` to `to` at `end` (seconds of stream time),
// held at both ends.
void ramp(GstElement* element, const char* property, double start, double end, double from, double to) {
  GstControlSource* cs = gst_interpolation_control_source_new();
  g_object_set(cs, "mode", GST_INTERPOLATION_MODE_LINEAR, nullptr);
  // Absolute: the control values are the property's own values (not 0..1 of its range).
  gst_object_add_control_binding(GST_OBJECT(element),
                                 gst_direct_control_binding_new_absolute(GST_OBJECT(element), property, cs));
  auto* tv = GST_TIMED_VALUE_CONTROL_SOURCE(cs);
  gst_timed_value_control_source_set(tv, static_cast<GstClockTime>(start * GST_SECOND), from);
  gst_timed_value_control_source_set(tv, static_cast<GstClockTime>(end * GST_SECOND), to);
  gst_object_unref(cs);
}

int usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s IN OUT.mkv|none [--fade SECONDS] [--domain NAME] [--seed N] [--checkpoint MODEL]\n",
               argv0);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  if (argc < 3) return usage(argv[0]);
  const std::string in = argv[1], out = argv[2];
  double fade = 2.0;
  std::string domain = "female", seed = "0", checkpoint;
  for (int i = 3; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) return usage(argv[0]);
    const std::string v = argv[++i];
    if (a == "--fade") {
      char* end = nullptr;
      fade = std::strtod(v.c_str(), &end);
      if (*end != '\0' || !(fade > 0)) {
        std::fprintf(stderr, "error: --fade needs a number of seconds > 0, got \"%s\"\n", v.c_str());
        return 1;
      }
    } else if (a == "--domain") domain = v;
    else if (a == "--seed") seed = v;
    else if (a == "--checkpoint") checkpoint = v;
    else return usage(argv[0]);
  }
  if (!g_file_test(in.c_str(), G_FILE_TEST_IS_REGULAR)) {
    std::fprintf(stderr, "error: input file %s does not exist\n", in.c_str());
    return 1;
  }
  if (checkpoint.empty()) checkpoint = starganv2::shipped_model().string();
  if (checkpoint.empty()) {
    std::fprintf(stderr, "error: no --checkpoint given and the demo model %s is not installed\n",
                 starganv2::kDemoModelName);
    return 1;
  }
  if (out != "none" && !g_str_has_suffix(out.c_str(), ".mkv")) {
    std::fprintf(stderr, "error: OUT must end in .mkv or be none, got %s\n", out.c_str());
    return 1;
  }
  const std::string sink = out == "none" ? "fakesink"
                                         : "videoconvert ! jpegenc ! matroskamux ! filesink location=" + launch_quoted(out);
  const std::string description = "filesrc location=" + launch_quoted(in) +
                                  " ! decodebin ! videoconvert ! starganv2 name=restyle checkpoint=" +
                                  launch_quoted(checkpoint) + " domain=" + launch_quoted(domain) + " seed=" + seed +
                                  " ! " + sink;
  std::printf("+ gst-launch-1.0 %s\n", description.c_str());
  GError* err = nullptr;
  GstElement* pipeline = gst_parse_launch(description.c_str(), &err);
  if (!pipeline) {
    std::fprintf(stderr, "error: %s\n", err ? err->message : "cannot build the pipeline");
    g_clear_error(&err);
    return 1;
  }
  GstElement* restyle = gst_bin_get_by_name(GST_BIN(pipeline), "restyle");
  ramp(restyle, "strength", 0.0, fade, 0.0, 1.0);
  ramp(restyle, "psi", fade, 2 * fade, 1.0, 0.0);
  gst_object_unref(restyle);

  int code = 0;
  if (gst_element_set_state(pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) code = 1;
  GstBus* bus = gst_element_get_bus(pipeline);
  GstMessage* msg = gst_bus_timed_pop_filtered(bus, GST_CLOCK_TIME_NONE,
                                               static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  if (msg && GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
    GError* e = nullptr;
    gst_message_parse_error(msg, &e, nullptr);
    std::fprintf(stderr, "error: %s\n", e->message);
    g_clear_error(&e);
    code = 1;
  }
  if (msg) gst_message_unref(msg);
  gst_object_unref(bus);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);
  if (code == 0) std::printf("done%s%s\n", out == "none" ? "" : ": ", out == "none" ? "" : out.c_str());
  return code;
}
