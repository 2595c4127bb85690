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
// OUT is an .mkv file (Motion JPEG) or `none` (played into fakesink). Every argument is checked
// before the pipeline starts (one message, exit code 1). Exit codes: 0 played to the end; 1 bad
// input or an error while playing (the element's message is printed).
//
// The values are taken at each buffer's stream time (the element syncs its controlled
// properties per buffer), so a file comes out the same on every run.

#include <gst/controller/controller.h>
#include <gst/gst.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

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

constexpr int kExitDone = 0;
constexpr int kExitBadInput = 1;  // also an error while playing: one code for "did not work"

const char* kUsage = "usage: %s IN OUT.mkv|none [--fade SECONDS] [--domain NAME] [--seed N] [--checkpoint MODEL]\n";

void print_help(const char* argv0) {
  std::printf(kUsage, argv0);
  std::printf(
      "\n"
      "Restyles the faces of the video IN with the starganv2 element and animates it with GStreamer's\n"
      "controller: 'strength' fades the restyled face in (0 -> 1) over the first SECONDS, then 'psi'\n"
      "moves the style to the domain's average (1 -> 0) over the next SECONDS. OUT is an .mkv file\n"
      "(Motion JPEG) or none (played into fakesink). The values follow each frame's stream time, so\n"
      "a file comes out the same on every run.\n"
      "\n"
      "  --fade SECONDS     length of each ramp, > 0 (default 2)\n"
      "  --domain NAME      target domain, a name of the model or its index (default female)\n"
      "  --seed N           seed of the style, a whole number >= 0 (default 0)\n"
      "  --checkpoint MODEL model file (default: the shipped demo model, %s)\n"
      "  -h, --help         this text\n"
      "\n"
      "Exit codes: 0 played to the end; 1 bad input (arguments, files) or an error while playing\n"
      "(one message on stderr).\n",
      starganv2::kDemoModelName);
}

// One message for bad input, then the exit code.
int bad_input(const std::string& message) {
  std::fprintf(stderr, "error: %s (see --help)\n", message.c_str());
  return kExitBadInput;
}

}  // namespace

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h") {
      print_help(argv[0]);
      return kExitDone;
    }
  }
  std::vector<std::string> positional;
  double fade = 2.0;
  std::string domain = "female", seed = "0", checkpoint;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--", 0) != 0) {
      positional.push_back(a);
      continue;
    }
    if (a != "--fade" && a != "--domain" && a != "--seed" && a != "--checkpoint") return bad_input("unknown option " + a);
    if (i + 1 >= argc) return bad_input(a + " needs a value");
    const std::string v = argv[++i];
    if (a == "--fade") {
      char* end = nullptr;
      fade = std::strtod(v.c_str(), &end);
      if (v.empty() || *end != '\0' || !(fade > 0) || !std::isfinite(fade))
        return bad_input("--fade needs a number of seconds > 0, got \"" + v + "\"");
    } else if (a == "--domain") {
      if (v.empty()) return bad_input("--domain needs a name");
      domain = v;
    } else if (a == "--seed") {
      // Decimal digits only: the element's seed is a guint64, and "-5" or "abc" would reach it.
      guint64 parsed = 0;
      if (v.empty() || v[0] == '-' || v[0] == '+' ||
          !g_ascii_string_to_unsigned(v.c_str(), 10, 0, G_MAXUINT64, &parsed, nullptr))
        return bad_input("--seed needs a whole number >= 0, got \"" + v + "\"");
      seed = std::to_string(static_cast<unsigned long long>(parsed));
    } else {
      checkpoint = v;
    }
  }
  if (positional.size() != 2) {
    std::fprintf(stderr, kUsage, argv[0]);
    return kExitBadInput;
  }
  const std::string in = positional[0], out = positional[1];
  if (out != "none" && !g_str_has_suffix(out.c_str(), ".mkv"))
    return bad_input("OUT must end in .mkv or be none, got " + out);
  if (!g_file_test(in.c_str(), G_FILE_TEST_IS_REGULAR)) {
    std::fprintf(stderr, "error: input file %s does not exist\n", in.c_str());
    return kExitBadInput;
  }
  if (checkpoint.empty()) checkpoint = starganv2::shipped_model().string();
  if (checkpoint.empty()) {
    std::fprintf(stderr, "error: no --checkpoint given and the demo model %s is not installed\n",
                 starganv2::kDemoModelName);
    return kExitBadInput;
  }
  if (!g_file_test(checkpoint.c_str(), G_FILE_TEST_IS_REGULAR)) {
    std::fprintf(stderr, "error: model file %s does not exist\n", checkpoint.c_str());
    return kExitBadInput;
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
  GstElement* restyle = pipeline && !err ? gst_bin_get_by_name(GST_BIN(pipeline), "restyle") : nullptr;
  if (restyle == nullptr) {
    // e.g. no element starganv2: GST_PLUGIN_PATH does not name the build's plugin folder.
    std::fprintf(stderr, "error: %s\n", err ? err->message : "cannot build the pipeline");
    g_clear_error(&err);
    if (pipeline) gst_object_unref(pipeline);
    return kExitBadInput;
  }
  ramp(restyle, "strength", 0.0, fade, 0.0, 1.0);
  ramp(restyle, "psi", fade, 2 * fade, 1.0, 0.0);
  gst_object_unref(restyle);

  int code = kExitDone;
  if (gst_element_set_state(pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) code = kExitBadInput;
  GstBus* bus = gst_element_get_bus(pipeline);
  GstMessage* msg = gst_bus_timed_pop_filtered(bus, GST_CLOCK_TIME_NONE,
                                               static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  if (msg && GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
    GError* e = nullptr;
    gst_message_parse_error(msg, &e, nullptr);
    std::fprintf(stderr, "error: %s\n", e->message);
    g_clear_error(&e);
    code = kExitBadInput;
  }
  if (msg) gst_message_unref(msg);
  gst_object_unref(bus);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);
  if (code == 0) std::printf("done%s%s\n", out == "none" ? "" : ": ", out == "none" ? "" : out.c_str());
  return code;
}
