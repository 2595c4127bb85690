// starganv2-live-switch: change the style of a running starganv2 pipeline — domain, seed, psi,
// reference image, view — while it plays, from typed commands or a timed script.
//
// Needs: GStreamer 1.22 development files (built by examples/meson.build with the rest of the
//        project); at run time the element (build/plugin via GST_PLUGIN_PATH, or installed), a
//        model file (default: the demo model that ships with the project, found from any working
//        directory: examples/models of this source tree, else the installed copy), and a
//        source: a video file, or a webcam (V4L2). The window sink needs a display (checked).
//
// Usage (from the repository root, after ./setup.sh):
//   export GST_PLUGIN_PATH=$PWD/build/plugin
//   build/examples/starganv2-live-switch --source v4l2:/dev/video0
//   build/examples/starganv2-live-switch --source file:/usr/share/doc/opencv-doc/examples/data/Megamind.avi
//   ... --sink none --script "@24 domain male; @48 seed 42; @72 view side-by-side; @96 quit"
// Commands (one per line on stdin, or `;`-separated in --script, each optionally preceded by a
// time: `2.5` seconds after PLAYING, or `@N`: from frame N on, counting from 0 as frames enter
// the element, so frame N is the first with the change whatever the sink's pace):
//   domain NAME | seed N | psi X | reference IMAGE|none | style-file FILE|none | view VIEW
//   mode face|frame | set PROPERTY VALUE | get PROPERTY | help | quit
// The options and every step of the script (command, property, value) are checked before the
// pipeline starts. Errors and warnings from the bus are printed as they come; an error stops the
// program. Exit codes: 0 played to the end or quit; 1 bad input (options, script, no display for
// the window, a missing element or model) or an error while playing. --sink file:OUT picks the
// container from OUT's extension (.mp4, .mov, .mkv or .avi; H.264 in each) and is written under a
// temporary name and renamed when the stream ended properly, so a failed run leaves no file.

#include <gst/gst.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "model/locations.h"

namespace {

constexpr int kExitDone = 0;
constexpr int kExitBadInput = 1;  // also an error while playing: one code for "did not work"

struct Step {
  double at_seconds = -1;  // >= 0: run this long after the pipeline reached PLAYING
  long long at_frame = -1; // >= 0: run on the streaming thread just before frame N enters the element
  std::string command;
};

struct App {
  GMainLoop* loop = nullptr;
  GstElement* pipeline = nullptr;
  GstElement* restyle = nullptr;  // the starganv2 element
  std::atomic<long long> frames{0};  // frames that left the element
  std::atomic<gint64> playing_since_us{-1};  // written by the main loop, read by frame steps too
  // The script in two schedules, each in the order given: timed steps run on the main loop,
  // frame steps on the streaming thread (frame_steps and frames_in belong to it).
  std::vector<Step> timed_steps;
  size_t next_timed = 0;
  std::vector<Step> frame_steps;
  size_t next_frame_step = 0;
  long long frames_in = 0;  // frames that entered the element
  std::atomic<bool> quitting{false};
  bool eos = false;  // the stream ended properly, so a file being written is complete
  bool writing_file = false;  // --sink file:
  int exit_code = kExitDone;
};

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

// A string for a gst_parse_launch description: quoted, so paths may hold spaces.
std::string launch_quoted(const std::string& s) {
  std::string q = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') q += '\\';
    q += c;
  }
  return q + "\"";
}

double seconds_playing(const App& app) {
  return app.playing_since_us < 0 ? 0.0 : (g_get_monotonic_time() - app.playing_since_us) / 1e6;
}

// EOS first, so that a file being written is finished properly. A file waits for it however long
// the frames already in flight take (a second quit or Ctrl-C stops at once, without the file);
// otherwise, if it does not come through in a few seconds (a stuck source), stop anyway.
void request_quit(App& app) {
  if (app.quitting) {
    g_main_loop_quit(app.loop);
    return;
  }
  app.quitting = true;
  gst_element_send_event(app.pipeline, gst_event_new_eos());
  if (app.writing_file) {
    std::printf("finishing the file with the frames already in flight; quit or Ctrl-C again to stop at once "
                "(the file is then not written)\n");
    std::fflush(stdout);
    return;
  }
  g_timeout_add_seconds(5, [](gpointer data) -> gboolean {
    std::fprintf(stderr, "no EOS after 5 s: stopping\n");
    g_main_loop_quit(static_cast<App*>(data)->loop);
    return G_SOURCE_REMOVE;
  }, &app);
}

// The value of property `name` of the element from text, checking what g_object_set would not:
// that the property exists, may change while playing, and that the value parses and is in range.
// False with the reason in `why` otherwise; `value` is then unset.
bool property_value(GstElement* element, const std::string& name, const std::string& text, GValue* value,
                    std::string* why) {
  GParamSpec* spec = g_object_class_find_property(G_OBJECT_GET_CLASS(element), name.c_str());
  if (spec == nullptr) {
    *why = "no property '" + name + "' (see gst-inspect-1.0 starganv2)";
    return false;
  }
  if (!(spec->flags & G_PARAM_WRITABLE)) {
    *why = "property '" + name + "' is read-only";
    return false;
  }
  if (spec->flags & GST_PARAM_MUTABLE_READY) {
    *why = "property '" + name + "' can only be changed before the pipeline starts (use --options)";
    return false;
  }
  g_value_init(value, spec->value_type);
  if (spec->value_type == G_TYPE_STRING) {
    g_value_set_string(value, text == "none" ? nullptr : text.c_str());  // paths taken as typed
    return true;
  }
  const std::string blurb = g_param_spec_get_blurb(spec);
  if (!gst_value_deserialize(value, text.c_str()) || (G_VALUE_HOLDS_UINT64(value) && text.find('-') != std::string::npos)) {
    *why = "'" + text + "' is not a valid value for '" + name + "' (" + blurb + ")";
  } else if (g_param_value_validate(spec, value)) {  // TRUE: it had to be clamped
    *why = text + " is out of range for '" + name + "' (" + blurb + ")";
  } else {
    return true;
  }
  g_value_unset(value);
  return false;
}

bool set_property(App& app, const std::string& name, const std::string& text) {
  GValue value = G_VALUE_INIT;
  std::string why;
  if (!property_value(app.restyle, name, text, &value, &why)) {
    std::fprintf(stderr, "%s\n", why.c_str());
    return false;
  }
  g_object_set_property(G_OBJECT(app.restyle), name.c_str(), &value);
  g_value_unset(&value);
  return true;
}

void print_property(App& app, const std::string& name) {
  GParamSpec* spec = g_object_class_find_property(G_OBJECT_GET_CLASS(app.restyle), name.c_str());
  if (spec == nullptr) {
    std::fprintf(stderr, "no property '%s'\n", name.c_str());
    return;
  }
  GValue value = G_VALUE_INIT;
  g_value_init(&value, spec->value_type);
  g_object_get_property(G_OBJECT(app.restyle), name.c_str(), &value);
  gchar* text = gst_value_serialize(&value);
  std::printf("%s = %s\n", name.c_str(), text ? text : "(null)");
  g_free(text);
  g_value_unset(&value);
}

const char* kHelp =
    "commands: domain NAME | seed N | psi X | reference IMAGE|none | style-file FILE|none |\n"
    "          view merged|aligned|translated|mask|side-by-side | mode face|frame |\n"
    "          set PROPERTY VALUE | get PROPERTY | help | quit\n";

const char* kExitCodes =
    "exit codes: 0 played to the end or quit; 1 bad input (options, script, no display for the window,\n"
    "            a missing element or model) or an error while playing\n";

bool is_property_command(const std::string& verb) {
  return verb == "domain" || verb == "seed" || verb == "psi" || verb == "reference" || verb == "style-file" ||
         verb == "view" || verb == "mode";
}

// What is wrong with a command before it runs ("" when nothing): an unknown verb, a missing
// argument, a property or value the element would not take. The domain's name is the model's
// business: a wrong one is the element's warning when the step runs.
std::string check_command(GstElement* element, const std::string& line) {
  const std::string cmd = trim(line);
  if (cmd.empty() || cmd[0] == '#') return "";
  const auto space = cmd.find_first_of(" \t");
  const std::string verb = cmd.substr(0, space);
  const std::string arg = space == std::string::npos ? "" : trim(cmd.substr(space));
  std::string property = verb, text = arg, why;
  if (verb == "quit" || verb == "q" || verb == "help") return "";
  if (verb == "get") {
    if (arg.empty()) return "usage: get PROPERTY";
    if (g_object_class_find_property(G_OBJECT_GET_CLASS(element), arg.c_str()) == nullptr)
      return "no property '" + arg + "' (see gst-inspect-1.0 starganv2)";
    return "";
  }
  if (verb == "set") {
    const auto sep = arg.find_first_of(" \t");
    if (sep == std::string::npos) return "usage: set PROPERTY VALUE";
    property = arg.substr(0, sep);
    text = trim(arg.substr(sep));
  } else if (!is_property_command(verb)) {
    return "unknown command '" + verb + "' (commands: domain, seed, psi, reference, style-file, view, mode, set, get, "
           "help, quit)";
  } else if (arg.empty()) {
    return "usage: " + verb + " VALUE";
  }
  GValue value = G_VALUE_INIT;
  if (!property_value(element, property, text, &value, &why)) return why;
  g_value_unset(&value);
  return "";
}

// `frame`: the frame a frame step runs before; -1 for other commands.
void run_command(App& app, const std::string& line, long long frame = -1) {
  const std::string cmd = trim(line);
  if (cmd.empty() || cmd[0] == '#') return;
  const auto space = cmd.find_first_of(" \t");
  const std::string verb = cmd.substr(0, space);
  const std::string arg = space == std::string::npos ? "" : trim(cmd.substr(space));
  std::printf("[frame %lld, %.2f s] %s\n", frame >= 0 ? frame : app.frames.load(), seconds_playing(app), cmd.c_str());
  std::fflush(stdout);
  if (verb == "quit" || verb == "q") {
    if (frame >= 0) {
      // From the streaming thread: the main loop sends the EOS (it may wait for this thread).
      g_idle_add([](gpointer data) -> gboolean {
        request_quit(*static_cast<App*>(data));
        return G_SOURCE_REMOVE;
      }, &app);
    } else {
      request_quit(app);
    }
  } else if (verb == "help") {
    std::fputs(kHelp, stdout);
  } else if (verb == "get") {
    print_property(app, arg);
  } else if (verb == "set") {
    const auto sep = arg.find_first_of(" \t");
    if (sep == std::string::npos) std::fprintf(stderr, "usage: set PROPERTY VALUE\n");
    else set_property(app, arg.substr(0, sep), trim(arg.substr(sep)));
  } else if (is_property_command(verb)) {
    if (arg.empty()) std::fprintf(stderr, "usage: %s VALUE\n", verb.c_str());
    else set_property(app, verb, arg);
  } else {
    std::fprintf(stderr, "unknown command '%s'\n%s", verb.c_str(), kHelp);
  }
  std::fflush(stdout);
}

// "2.5 domain male; @48 seed 3; quit" -> steps (a step without a time runs right at the start).
// Prints one message and returns false when a step cannot be read.
bool parse_script(const std::string& text, std::vector<Step>& steps) {
  gchar** parts = g_strsplit(text.c_str(), ";", -1);
  bool ok = true;
  for (gchar** p = parts; *p != nullptr && ok; ++p) {
    std::string s = trim(*p);
    if (s.empty()) continue;
    Step step;
    const std::string first = s.substr(0, s.find_first_of(" \t"));
    char* end = nullptr;
    const double seconds = std::strtod(first.c_str(), &end);
    if (first[0] == '@') {
      step.at_frame = std::strtoll(first.c_str() + 1, &end, 10);
      ok = end != first.c_str() + 1 && *end == '\0' && step.at_frame >= 0;
      s = trim(s.substr(first.size()));
    } else if (end != first.c_str() && *end == '\0') {
      step.at_seconds = seconds;
      ok = seconds >= 0;
      s = trim(s.substr(first.size()));
    } else {
      step.at_seconds = 0;  // no time: right at the start
    }
    if (!ok || s.empty()) {
      std::fprintf(stderr, "--script: cannot read step '%s' (want [SECONDS | @FRAME] COMMAND)\n", *p);
      ok = false;
    }
    step.command = s;
    steps.push_back(step);
  }
  g_strfreev(parts);
  return ok;
}

gboolean on_script_tick(gpointer data) {
  auto& app = *static_cast<App*>(data);
  if (app.playing_since_us < 0) return G_SOURCE_CONTINUE;
  while (app.next_timed < app.timed_steps.size() && !app.quitting) {
    const Step& s = app.timed_steps[app.next_timed];
    if (seconds_playing(app) < s.at_seconds) break;
    ++app.next_timed;
    run_command(app, s.command);
  }
  return app.next_timed < app.timed_steps.size() ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

// Frame steps run here, on the streaming thread, before the frame they name enters the element:
// the element reads its properties as each frame comes in, so that frame is the first with the
// change, however fast or slow the sink takes frames (a timer on the main loop would see a count
// that a fast file sink has long passed).
GstPadProbeReturn run_frame_steps(GstPad*, GstPadProbeInfo*, gpointer data) {
  auto& app = *static_cast<App*>(data);
  const long long frame = app.frames_in++;
  while (app.next_frame_step < app.frame_steps.size() && !app.quitting &&
         app.frame_steps[app.next_frame_step].at_frame <= frame)
    run_command(app, app.frame_steps[app.next_frame_step++].command, frame);
  return GST_PAD_PROBE_OK;
}

gboolean on_stdin(GIOChannel* channel, GIOCondition, gpointer data) {
  auto& app = *static_cast<App*>(data);
  gchar* line = nullptr;
  const GIOStatus status = g_io_channel_read_line(channel, &line, nullptr, nullptr, nullptr);
  if (status == G_IO_STATUS_NORMAL) run_command(app, line);
  g_free(line);
  if (status == G_IO_STATUS_EOF || status == G_IO_STATUS_ERROR) return G_SOURCE_REMOVE;  // keep playing
  if (isatty(STDIN_FILENO)) std::printf("> "), std::fflush(stdout);
  return G_SOURCE_CONTINUE;
}

gboolean on_bus(GstBus*, GstMessage* msg, gpointer data) {
  auto& app = *static_cast<App*>(data);
  switch (GST_MESSAGE_TYPE(msg)) {
    case GST_MESSAGE_ERROR:
    case GST_MESSAGE_WARNING: {
      GError* err = nullptr;
      gchar* debug = nullptr;
      const bool error = GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR;
      if (error) gst_message_parse_error(msg, &err, &debug);
      else gst_message_parse_warning(msg, &err, &debug);
      std::fprintf(stderr, "%s from %s: %s\n", error ? "ERROR" : "WARNING", GST_OBJECT_NAME(msg->src),
                   err->message);
      if (debug != nullptr) std::fprintf(stderr, "  (%s)\n", debug);
      g_clear_error(&err);
      g_free(debug);
      if (error) {
        app.exit_code = kExitBadInput;
        g_main_loop_quit(app.loop);
      }
      break;
    }
    case GST_MESSAGE_EOS:
      app.eos = true;
      std::printf("end of stream after %lld frames\n", app.frames.load());
      g_main_loop_quit(app.loop);
      break;
    case GST_MESSAGE_STATE_CHANGED:
      if (GST_MESSAGE_SRC(msg) == GST_OBJECT(app.pipeline)) {
        GstState old_state, new_state;
        gst_message_parse_state_changed(msg, &old_state, &new_state, nullptr);
        if (new_state == GST_STATE_PLAYING && app.playing_since_us < 0) {
          app.playing_since_us = g_get_monotonic_time();
          gchar* device = nullptr;
          g_object_get(app.restyle, "active-device", &device, nullptr);
          std::printf("playing on %s; type 'help' for the commands\n", device ? device : "?");
          g_free(device);
          std::fflush(stdout);
        }
      }
      break;
    default:
      break;
  }
  return G_SOURCE_CONTINUE;
}

GstPadProbeReturn count_frame(GstPad*, GstPadProbeInfo*, gpointer data) {
  static_cast<App*>(data)->frames.fetch_add(1);
  return GST_PAD_PROBE_OK;
}

}  // namespace

int main(int argc, char** argv) {
  gchar* source = nullptr;
  gchar* sink = nullptr;
  gchar* checkpoint = nullptr;
  gchar* domain = nullptr;
  gchar* script = nullptr;
  gchar* options = nullptr;
  gchar* seed_text = nullptr;
  const GOptionEntry entries[] = {
      {"source", 0, 0, G_OPTION_ARG_STRING, &source, "file:PATH or v4l2:DEVICE (default v4l2:/dev/video0)", "SRC"},
      {"sink", 0, 0, G_OPTION_ARG_STRING, &sink,
       "window (default), none, or file:OUT.mp4|.mov|.mkv|.avi (H.264; the container follows the extension)", "SINK"},
      {"checkpoint", 0, 0, G_OPTION_ARG_FILENAME, &checkpoint,
       "model file (default: the shipped demo model, demo-faces-64.safetensors)", "PATH"},
      {"domain", 0, 0, G_OPTION_ARG_STRING, &domain, "domain at start (default: the model's first)", "NAME"},
      {"seed", 0, 0, G_OPTION_ARG_STRING, &seed_text, "seed at start, a whole number >= 0 (default 7)", "N"},
      {"options", 0, 0, G_OPTION_ARG_STRING, &options, "more element properties, e.g. \"psi=0.7 detect-interval=3\"",
       "PROPS"},
      {"script", 0, 0, G_OPTION_ARG_STRING, &script,
       "timed commands instead of (or before) typed ones: \"[SECONDS|@FRAME] COMMAND; ...\"", "STEPS"},
      {nullptr, 0, 0, G_OPTION_ARG_NONE, nullptr, nullptr, nullptr},
  };
  GOptionContext* context = g_option_context_new("- restyle faces and switch the style while playing");
  const std::string description = std::string(kHelp) + "\n" + kExitCodes;
  g_option_context_set_description(context, description.c_str());
  g_option_context_add_main_entries(context, entries, nullptr);
  g_option_context_add_group(context, gst_init_get_option_group());
  GError* error = nullptr;
  if (!g_option_context_parse(context, &argc, &argv, &error)) {
    std::fprintf(stderr, "%s (see --help)\n", error->message);
    return kExitBadInput;
  }
  g_option_context_free(context);

  if (argc > 1) {
    std::fprintf(stderr, "unexpected argument '%s' (see --help)\n", argv[1]);
    return kExitBadInput;
  }
  guint64 seed = 7;
  if (seed_text != nullptr) {
    GError* seed_error = nullptr;
    // Decimal digits only: GLib's parser would take "-5" for 2^64 - 5 in other calls.
    if (!g_ascii_string_to_unsigned(seed_text, 10, 0, G_MAXUINT64, &seed, &seed_error) || seed_text[0] == '-' ||
        seed_text[0] == '+') {
      std::fprintf(stderr, "--seed needs a whole number >= 0, got '%s'\n", seed_text);
      g_clear_error(&seed_error);
      return kExitBadInput;
    }
  }

  App app;
  std::vector<Step> script_steps;
  if (script != nullptr && !parse_script(script, script_steps)) return kExitBadInput;
  for (const Step& s : script_steps) (s.at_frame >= 0 ? app.frame_steps : app.timed_steps).push_back(s);

  std::string model = checkpoint ? checkpoint : "";
  if (model.empty()) {
    model = starganv2::shipped_model().string();
    if (model.empty()) {
      std::fprintf(stderr, "no --checkpoint given and the demo model %s is neither in %s nor in %s\n",
                   starganv2::kDemoModelName, STARGANV2_SOURCE_MODELS_DIR, STARGANV2_INSTALLED_MODELS_DIR);
      return kExitBadInput;
    }
  }

  // The source: decodebin takes raw camera frames as they are and decodes files and MJPEG.
  const std::string src = source ? source : "v4l2:/dev/video0";
  std::string desc;
  bool live = false;
  if (src.rfind("file:", 0) == 0) {
    if (!g_file_test(src.substr(5).c_str(), G_FILE_TEST_IS_REGULAR)) {
      std::fprintf(stderr, "--source %s: no such file\n", src.c_str());
      return kExitBadInput;
    }
    desc = "filesrc location=" + launch_quoted(src.substr(5)) + " ! decodebin";
    // As in convert-file.sh: decodebin's mpeg4videoparse repeats timestamps on some AVI files.
    if (GstPluginFeature* f = gst_registry_lookup_feature(gst_registry_get(), "mpeg4videoparse")) {
      gst_plugin_feature_set_rank(f, GST_RANK_NONE);
      gst_object_unref(f);
    }
  } else if (src.rfind("v4l2:", 0) == 0) {
    desc = "v4l2src device=" + launch_quoted(src.substr(5)) + " ! decodebin";
    live = true;
  } else {
    std::fprintf(stderr, "--source %s: want file:PATH or v4l2:DEVICE\n", src.c_str());
    return kExitBadInput;
  }
  // Live: a one-frame leaky queue keeps the picture current when the element is slower than the
  // camera. A file: nothing is dropped.
  desc += live ? " ! queue leaky=downstream max-size-buffers=1 max-size-bytes=0 max-size-time=0"
               : " ! video/x-raw ! queue";
  desc += " ! videoconvert ! starganv2 name=restyle checkpoint=" + launch_quoted(model) +
          " seed=" + std::to_string(static_cast<unsigned long long>(seed));
  if (domain) desc += " domain=" + launch_quoted(domain);
  if (options) desc += std::string(" ") + options;
  desc += " ! videoconvert ! ";
  const std::string snk = sink ? sink : "window";
  std::string out_file, part_file;  // --sink file: the output, and the name it is written under
  if (snk == "window") {
    // Without a display autovideosink falls back to DirectFB, which crashes on a headless machine.
    if (!g_getenv("DISPLAY") && !g_getenv("WAYLAND_DISPLAY")) {
      std::fprintf(stderr, "--sink window: no display (DISPLAY/WAYLAND_DISPLAY unset); use --sink none or file:OUT.mp4\n");
      return kExitBadInput;
    }
    desc += std::string("autovideosink sync=") + (live ? "false" : "true");
  } else if (snk == "none") {
    desc += "fakesink sync=false";
  } else if (snk.rfind("file:", 0) == 0) {
    out_file = snk.substr(5);
    // The container the name promises; H.264 goes into each of these.
    gchar* lower = g_ascii_strdown(out_file.c_str(), -1);
    const std::string name = lower;
    g_free(lower);
    const auto ends = [&](const char* ext) { return g_str_has_suffix(name.c_str(), ext); };
    std::string muxer;
    if (ends(".mp4") || ends(".m4v")) muxer = "mp4mux";
    else if (ends(".mov")) muxer = "qtmux";
    else if (ends(".mkv")) muxer = "matroskamux";
    else if (ends(".avi")) muxer = "avimux";
    if (muxer.empty()) {
      std::fprintf(stderr, "--sink %s: cannot write that kind of file; name it .mp4, .mov, .mkv or .avi\n",
                   snk.c_str());
      return kExitBadInput;
    }
    app.writing_file = true;
    gchar* parent = g_path_get_dirname(out_file.c_str());
    gchar* base = g_path_get_basename(out_file.c_str());
    g_mkdir_with_parents(parent, 0755);
    // Next to the output (same file system, so the rename is atomic), hidden while incomplete.
    gchar* part = g_strdup_printf("%s/.%s.part-%d", parent, base, static_cast<int>(getpid()));
    part_file = part;
    g_free(part);
    g_free(base);
    g_free(parent);
    // 4:2:0: from RGB frames x264enc would pick 4:4:4, which most players cannot play.
    desc += "video/x-raw,format=I420 ! x264enc speed-preset=faster pass=qual quantizer=20 ! h264parse ! " + muxer +
            " ! filesink location=" + launch_quoted(part_file);
  } else {
    std::fprintf(stderr, "--sink %s: want window, none or file:PATH\n", snk.c_str());
    return kExitBadInput;
  }

  std::printf("pipeline: %s\n", desc.c_str());
  app.pipeline = gst_parse_launch(desc.c_str(), &error);
  if (app.pipeline == nullptr || error != nullptr) {
    std::fprintf(stderr, "cannot build the pipeline: %s\n", error ? error->message : "unknown error");
    if (error && g_error_matches(error, GST_PARSE_ERROR, GST_PARSE_ERROR_NO_SUCH_ELEMENT))
      std::fprintf(stderr, "(is GST_PLUGIN_PATH set to the build's plugin folder, e.g. build/plugin?)\n");
    return kExitBadInput;
  }
  app.restyle = gst_bin_get_by_name(GST_BIN(app.pipeline), "restyle");
  // Every step of the script checked before anything starts: a typo is not found halfway.
  for (const Step& s : script_steps) {
    const std::string why = check_command(app.restyle, s.command);
    if (!why.empty()) {
      std::fprintf(stderr, "--script: step '%s': %s\n", s.command.c_str(), why.c_str());
      gst_object_unref(app.restyle);
      gst_object_unref(app.pipeline);
      return kExitBadInput;
    }
  }
  GstPad* src_pad = gst_element_get_static_pad(app.restyle, "src");
  gst_pad_add_probe(src_pad, GST_PAD_PROBE_TYPE_BUFFER, count_frame, &app, nullptr);
  gst_object_unref(src_pad);
  GstPad* sink_pad = gst_element_get_static_pad(app.restyle, "sink");
  gst_pad_add_probe(sink_pad, GST_PAD_PROBE_TYPE_BUFFER, run_frame_steps, &app, nullptr);
  gst_object_unref(sink_pad);

  app.loop = g_main_loop_new(nullptr, FALSE);
  GstBus* bus = gst_element_get_bus(app.pipeline);
  gst_bus_add_watch(bus, on_bus, &app);
  gst_object_unref(bus);
  GIOChannel* in = g_io_channel_unix_new(STDIN_FILENO);
  g_io_add_watch(in, static_cast<GIOCondition>(G_IO_IN | G_IO_HUP), on_stdin, &app);
  if (!app.timed_steps.empty()) g_timeout_add(20, on_script_tick, &app);
  g_unix_signal_add(SIGINT, [](gpointer data) -> gboolean {
    request_quit(*static_cast<App*>(data));  // a second Ctrl-C quits at once
    return G_SOURCE_CONTINUE;
  }, &app);

  if (gst_element_set_state(app.pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    // The reason is on the bus (e.g. a missing model file): let on_bus print it.
    app.exit_code = kExitBadInput;
  }
  g_main_loop_run(app.loop);

  gst_element_set_state(app.pipeline, GST_STATE_NULL);
  if (!part_file.empty()) {
    // Only a stream that ended properly (EOS reached the muxer) is a playable file.
    if (app.exit_code == kExitDone && app.eos) {
      if (g_rename(part_file.c_str(), out_file.c_str()) != 0) {
        std::fprintf(stderr, "cannot rename %s to %s\n", part_file.c_str(), out_file.c_str());
        app.exit_code = kExitBadInput;
      } else {
        std::printf("wrote %s\n", out_file.c_str());
      }
    } else {
      g_unlink(part_file.c_str());
      if (app.exit_code == kExitDone) app.exit_code = kExitBadInput;
      std::fprintf(stderr, "%s not written: the stream did not end properly\n", out_file.c_str());
    }
  }
  g_io_channel_unref(in);
  gst_object_unref(app.restyle);
  gst_object_unref(app.pipeline);
  g_main_loop_unref(app.loop);
  return app.exit_code;
}
