// The whole chain as a user runs it, through the programs rather than the libraries:
// starganv2-train (tiny config, a few iterations, on a synthetic image set) writes a model file;
// the system's gst-launch-1.0 runs it through the built element on a real video (Megamind.avi)
// into a lossless file (FFV1 in Matroska); the test then decodes input and output side by side
// and checks that every frame and timestamp is kept, that the faces changed, and that the
// background did not change at all. gst-inspect-1.0 must document every property of the element.
//
// Also: the live style switching example (examples/live-switch.cpp) driven by its --script.
//
// Arguments: STARGANV2_TRAIN GST_LAUNCH GST_INSPECT [STARGANV2_LIVE_SWITCH [STARGANV2_FADE]]
// [gtest flags]. Exits
// 77 (meson's "skipped") when a test on the video is selected and the video (Debian's opencv-doc)
// or a GStreamer element it needs is not installed. STARGANV2_E2E_KEEP=1 keeps the temporary
// folder for a look.

#include <gst/app/gstappsink.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include <gtest/gtest.h>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "align/face_aligner.h"
#include "align/landmarks.h"
#include "synthetic.h"

namespace fs = std::filesystem;

namespace {

std::string g_train, g_launch, g_inspect;  // programs under test (from meson)

const fs::path kVideo = "/usr/share/doc/opencv-doc/examples/data/Megamind.avi";
constexpr int kVideoFrames = 270;  // Megamind.avi: 270 frames of 720x528 at 2997/125 fps

// ---- Running programs -----------------------------------------------------------------------

using starganv2::test::kUnset;
using starganv2::test::Result;

// Runs argv with `env` added to this process's environment, in `cwd` when given; no shell in
// between (tests/common/cli_test_util.h); its output goes through a scratch folder of its own.
Result run(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env = {},
           const fs::path& cwd = {}) {
  const starganv2::test::TempDir scratch("e2e-run");
  return starganv2::test::run_argv(argv, scratch.path, cwd, env);
}

// GStreamer finds the element of this build tree through GST_PLUGIN_PATH (set by meson); a
// registry file of the test's own makes the child rescan, so the plugin is really loaded from there.
std::map<std::string, std::string> gst_env(const fs::path& dir) {
  const char* plugin_path = g_getenv("GST_PLUGIN_PATH");
  return {{"GST_PLUGIN_PATH", plugin_path ? plugin_path : ""}, {"GST_REGISTRY", (dir / "registry.bin").string()}};
}

// Removed afterwards unless STARGANV2_E2E_KEEP is set (then it holds the model, the output and
// the input/output frames of every failed check, for a look).
struct TempDir {
  fs::path path = starganv2::test::make_temp_dir("e2e");
  ~TempDir() {
    if (g_getenv("STARGANV2_E2E_KEEP") != nullptr) {
      std::printf("kept %s\n", path.c_str());
      return;
    }
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

// ---- Decoding -------------------------------------------------------------------------------

struct Frame {
  GstClockTime pts = GST_CLOCK_TIME_NONE;
  cv::Mat bgrx;  // CV_8UC4, owns its pixels
};

// A pipeline description ending in "appsink name=sink"; frames are pulled one at a time.
class FrameReader {
 public:
  explicit FrameReader(const std::string& description) {
    GError* error = nullptr;
    pipeline_ = gst_parse_launch(description.c_str(), &error);
    if (error != nullptr) {
      const std::string msg = error->message;
      g_error_free(error);
      if (pipeline_) gst_object_unref(pipeline_);
      throw std::runtime_error("cannot build '" + description + "': " + msg);
    }
    sink_ = gst_bin_get_by_name(GST_BIN(pipeline_), "sink");
    if (gst_element_set_state(pipeline_, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
      check_bus();
      throw std::runtime_error("cannot start '" + description + "'");
    }
  }
  ~FrameReader() {
    gst_element_set_state(pipeline_, GST_STATE_NULL);
    gst_object_unref(sink_);
    gst_object_unref(pipeline_);
  }
  FrameReader(const FrameReader&) = delete;
  FrameReader& operator=(const FrameReader&) = delete;

  // The next frame, or nullopt at the end of the stream. Throws on a pipeline error or a stall.
  std::optional<Frame> next() {
    for (int waited = 0; waited < 120; ++waited) {
      GstSample* sample = gst_app_sink_try_pull_sample(GST_APP_SINK(sink_), GST_SECOND);
      if (sample != nullptr) {
        Frame f = to_frame(sample);
        gst_sample_unref(sample);
        return f;
      }
      if (gst_app_sink_is_eos(GST_APP_SINK(sink_))) return std::nullopt;
      check_bus();
    }
    throw std::runtime_error("no frame for 120 s");
  }

 private:
  static Frame to_frame(GstSample* sample) {
    GstVideoInfo info;
    if (!gst_video_info_from_caps(&info, gst_sample_get_caps(sample))) throw std::runtime_error("bad caps");
    GstBuffer* buffer = gst_sample_get_buffer(sample);
    GstVideoFrame vf;
    if (!gst_video_frame_map(&vf, &info, buffer, GST_MAP_READ)) throw std::runtime_error("cannot map a frame");
    Frame f;
    f.pts = GST_BUFFER_PTS(buffer);
    cv::Mat view(GST_VIDEO_INFO_HEIGHT(&info), GST_VIDEO_INFO_WIDTH(&info), CV_8UC4,
                 GST_VIDEO_FRAME_PLANE_DATA(&vf, 0), GST_VIDEO_FRAME_PLANE_STRIDE(&vf, 0));
    f.bgrx = view.clone();
    gst_video_frame_unmap(&vf);
    return f;
  }
  void check_bus() {
    GstBus* bus = gst_element_get_bus(pipeline_);
    GstMessage* msg = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
    gst_object_unref(bus);
    if (msg == nullptr) return;
    GError* error = nullptr;
    gst_message_parse_error(msg, &error, nullptr);
    const std::string text = error->message;
    g_error_free(error);
    gst_message_unref(msg);
    throw std::runtime_error("decoding failed: " + text);
  }

  GstElement* pipeline_ = nullptr;
  GstElement* sink_ = nullptr;
};

// The colour bytes of a BGRx frame (the padding byte carries nothing).
cv::Mat colour(const cv::Mat& bgrx) {
  cv::Mat bgr;
  cv::cvtColor(bgrx, bgr, cv::COLOR_BGRA2BGR);
  return bgr;
}

// ---- The chain ------------------------------------------------------------------------------

// A tiny model from the trainer: 32x32, narrow, no FAN; a few iterations suffice because the
// test asks only that faces change, not that they look like the domain.
fs::path train_tiny_model(const fs::path& dir) {
  starganv2::test::write_synthetic_set(dir / "data", /*per_domain=*/4, /*size=*/32, /*seed=*/5);
  const std::vector<std::string> args = {
      g_train, "--train-dir", (dir / "data").string(), "--out", (dir / "run").string(),
      "--img-size", "32", "--base-dim", "8", "--max-conv-dim", "32", "--style-dim", "16",
      "--latent-dim", "8", "--hidden-dim", "32", "--w-hpf", "0", "--batch-size", "2",
      "--total-iters", "4", "--save-every", "4", "--sample-every", "1000", "--val-batch-size", "2",
      "--sample-outs", "1", "--device", "cpu", "--workers", "1", "--no-progress"};
  // One thread: the networks are tiny, and OpenMP's spinning threads made these 4 iterations
  // take 20 s instead of 2 s whenever the 2-core test machine was busy with anything else.
  const Result r = run(args, {{"OMP_NUM_THREADS", "1"}});
  std::printf("starganv2-train: %.1f s\n%s", r.seconds, r.out.c_str());
  EXPECT_EQ(r.rc, 0) << r.out << r.err;
  const fs::path model = dir / "run" / "checkpoints" / "model-000004.safetensors";
  EXPECT_TRUE(fs::exists(model)) << "the trainer did not write " << model << "\n" << r.out;
  return model;
}

// Where the element may have written for `face`: the aligned crop's square mapped back into the
// frame, grown by `margin` of its side as a safety band (the element's aligner cuts crops at the
// model's size, 32 px here, the test's at 256 px, so the two poses may differ by rounding).
void mark_crop_footprint(cv::Mat& near, const starganv2::align::AlignedFace& face, int crop_size, double margin) {
  const double lo = -margin * crop_size, hi = (1 + margin) * crop_size;
  std::vector<cv::Point> corners;
  for (const cv::Vec3d& p : {cv::Vec3d(lo, lo, 1), cv::Vec3d(hi, lo, 1), cv::Vec3d(hi, hi, 1), cv::Vec3d(lo, hi, 1)}) {
    const cv::Vec2d q = face.inverse * p;
    corners.emplace_back(cvRound(q[0]), cvRound(q[1]));
  }
  cv::fillConvexPoly(near, corners, cv::Scalar(255));
}

TEST(Chain, TrainThenGstLaunchKeepsFramesAndTimestampsAndChangesOnlyFaces) {
  TempDir dir;
  const fs::path model = train_tiny_model(dir.path);
  ASSERT_FALSE(testing::Test::HasFailure());

  // The element with its defaults (detect every 5th frame, tracking and smoothing in between) in
  // BGRx, which FFV1 stores losslessly: what the element wrote is exactly what is read back.
  const fs::path out = dir.path / "out.mkv";
  const std::vector<std::string> launch = {
      g_launch, "-q", "filesrc", "location=" + kVideo.string(), "!", "avidemux", "!", "avdec_mpeg4", "!",
      "videoconvert", "!", "video/x-raw,format=BGRx", "!", "starganv2", "checkpoint=" + model.string(),
      "domain=warm", "seed=3", "device=cpu", "!", "avenc_ffv1", "!",
      // Nanosecond timecodes: Matroska's default millisecond scale would round the timestamps.
      "matroskamux", "timecodescale=1", "!", "filesink", "location=" + out.string()};
  const Result r = run(launch, gst_env(dir.path));
  std::printf("gst-launch-1.0 (%d frames): %.1f s\n", kVideoFrames, r.seconds);
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  ASSERT_TRUE(fs::exists(out));

  // Decoding the input exactly as the pipeline did gives the frames the element was given.
  FrameReader input("filesrc location=\"" + kVideo.string() +
                    "\" ! avidemux ! avdec_mpeg4 ! videoconvert ! video/x-raw,format=BGRx ! "
                    "appsink name=sink sync=false max-buffers=4");
  FrameReader output("filesrc location=\"" + out.string() +
                     "\" ! matroskademux ! avdec_ffv1 ! videoconvert ! video/x-raw,format=BGRx ! "
                     "appsink name=sink sync=false max-buffers=4");

  // Where the faces are: the aligner the element runs, with the element's default settings
  // (detector every 5th frame, tracking and smoothing in between, every face kept) and the same
  // timestamps, run here on the decoded input. So the comparison tests the chain — decoding,
  // the element's glue and compositing, encoding, muxing — and not the face detector's recall
  // (align/'s own tests do that): a tracked face the detector alone would miss is still a face.
  namespace align = starganv2::align;
  align::AlignerOptions options;
  options.detector.max_faces = 32;
  options.detector.min_face_size = 0;
  align::FaceAligner aligner(align::ShapeModel::load(), options);
  constexpr double kMargin = 0.10;    // of the crop side, around each crop footprint
  constexpr double kMinFaceSize = 64; // the element's min-face-size default: smaller faces stay
  constexpr double kFaceChange = 4;   // mean |difference| (of 255) inside a face, at least

  int frames = 0, changed_frames = 0, faces_checked = 0, faces_unchanged = 0, background_frames = 0;
  int pts_mismatches = 0, background_changed_frames = 0;
  std::string first_pts_mismatch, first_unchanged_face, first_background_change;
  const auto keep_frame = [&](const std::string& tag, const cv::Mat& in, const cv::Mat& out, const cv::Mat& near) {
    if (g_getenv("STARGANV2_E2E_KEEP") == nullptr) return;
    const std::string stem = (dir.path / ("frame" + std::to_string(frames) + "-")).string();
    cv::imwrite(stem + tag + "-in.png", in);
    cv::imwrite(stem + tag + "-out.png", out);
    cv::imwrite(stem + tag + "-near.png", near);
  };
  for (;;) {
    std::optional<Frame> a = input.next(), b = output.next();
    if (!a || !b) {
      EXPECT_EQ(a.has_value(), b.has_value()) << "one stream ends after " << frames << " frames, the other does not";
      break;
    }
    ASSERT_EQ(a->bgrx.size(), b->bgrx.size()) << "frame " << frames;
    if (a->pts != b->pts && pts_mismatches++ == 0) {
      std::ostringstream s;
      s << "frame " << frames << ": input pts " << a->pts << ", output pts " << b->pts;
      first_pts_mismatch = s.str();
    }
    const cv::Mat in = colour(a->bgrx), out_frame = colour(b->bgrx);
    cv::Mat diff, changed;
    cv::absdiff(in, out_frame, diff);
    cv::transform(diff, changed, cv::Matx13f(1, 1, 1));
    changed = changed > 0;  // any colour byte differs
    if (cv::countNonZero(changed) > 0) ++changed_frames;

    const auto faces = aligner.process(in, align::PixelFormat::kBGR, static_cast<double>(a->pts) / GST_SECOND);
    cv::Mat near = cv::Mat::zeros(in.size(), CV_8U);
    for (const auto& f : faces) mark_crop_footprint(near, f, options.crop_size, kMargin);
    // Lossless all the way: far from the faces every byte is as decoded.
    const int background_changed = cv::countNonZero(changed & (near == 0));
    if (background_changed > 0 && background_changed_frames++ == 0) {
      first_background_change =
          "frame " + std::to_string(frames) + ": " + std::to_string(background_changed) + " pixels";
      keep_frame("background", in, out_frame, near);
    }
    if (cv::countNonZero(near == 0) > static_cast<int>(in.total() / 5)) ++background_frames;
    // The middle of each face the element translates (the inner half of its landmark box) is
    // under the blend mask's solid part.
    for (const auto& f : faces) {
      if (f.box.size < kMinFaceSize) continue;
      ++faces_checked;
      const cv::Rect2d box = f.box.bounds();
      const cv::Rect inner = cv::Rect(cvRound(box.x + box.width / 4), cvRound(box.y + box.height / 4),
                                      cvRound(box.width / 2), cvRound(box.height / 2)) &
                             cv::Rect(0, 0, in.cols, in.rows);
      const cv::Scalar mean = cv::mean(diff(inner));
      if ((mean[0] + mean[1] + mean[2]) / 3 <= kFaceChange && faces_unchanged++ == 0) {
        first_unchanged_face = "frame " + std::to_string(frames);
        keep_frame("face", in, out_frame, near);
      }
    }
    ++frames;
  }
  std::printf("%d frames, %d changed; %d faces of >= %g px found, %d of them unchanged; %d frames with "
              ">= 20%% background\n",
              frames, changed_frames, faces_checked, kMinFaceSize, faces_unchanged, background_frames);
  EXPECT_EQ(frames, kVideoFrames);
  EXPECT_EQ(pts_mismatches, 0) << first_pts_mismatch;
  EXPECT_EQ(background_changed_frames, 0) << "frames with changes far from every face; first: "
                                          << first_background_change;
  EXPECT_EQ(faces_unchanged, 0) << "faces left unchanged; first: " << first_unchanged_face;
  // dlib finds the face in 26 of every 27 frames of this video; the checks must have had
  // something to check.
  EXPECT_GE(faces_checked, frames * 8 / 10);
  EXPECT_GE(changed_frames, frames * 8 / 10);
  EXPECT_GE(background_frames, frames * 8 / 10);
}

// ---- examples/live-switch.cpp ----------------------------------------------------------------

std::string g_live_switch;  // starganv2-live-switch, when the examples are built

// The live style switching example, driven by its --script: every property change while PLAYING
// is applied at its frame, a bad one is refused with the element's warning and the stream goes
// on, and every frame of the file reaches the end.
TEST(LiveSwitch, ScriptChangesTheStyleWhilePlaying) {
  ASSERT_FALSE(g_live_switch.empty()) << "the path of starganv2-live-switch is not given";
  TempDir dir;
  const fs::path model = train_tiny_model(dir.path);
  ASSERT_FALSE(testing::Test::HasFailure());
  const std::vector<std::pair<int, std::string>> steps = {
      {24, "domain cool"}, {48, "seed 42"},           {72, "psi 0.5"},       {96, "view side-by-side"},
      {120, "get domain"}, {120, "get psi"},          {150, "domain nosuch"}, {200, "view merged"}};
  std::string script;
  for (const auto& [frame, command] : steps) script += "@" + std::to_string(frame) + " " + command + "; ";
  const Result r = run({g_live_switch, "--source", "file:" + kVideo.string(), "--sink", "none", "--checkpoint",
                        model.string(), "--domain", "warm", "--options", "device=cpu", "--script", script},
                       gst_env(dir.path));
  std::printf("starganv2-live-switch: %.1f s\n%s", r.seconds, r.out.c_str());
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  for (const auto& [frame, command] : steps) {
    const std::regex line("\\[frame ([0-9]+), [0-9.]+ s\\] " + command + "\n");
    std::smatch m;
    ASSERT_TRUE(std::regex_search(r.out, m, line)) << "step '" << command << "' was not run:\n" << r.out;
    EXPECT_GE(std::stoi(m[1]), frame) << command;
  }
  EXPECT_NE(r.out.find("domain = cool\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("psi = 0.5"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("WARNING from restyle: unknown domain \"nosuch\""), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("ERROR"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("end of stream after " + std::to_string(kVideoFrames) + " frames"), std::string::npos)
      << r.out;
}

// Every file under `dir`, hidden ones (a leftover .part) included, by relative name.
std::vector<std::string> files_in(const fs::path& dir) {
  std::vector<std::string> names;
  if (!fs::exists(dir)) return names;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) names.push_back(e.path().lexically_relative(dir).string());
  std::sort(names.begin(), names.end());
  return names;
}

std::string joined(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += n + " ";
  return s;
}

// The program with the demo model, from a working directory that is not the repository root: it
// finds the shipped model itself; a file sink's output appears whole, under its name, at the end.
TEST(LiveSwitch, FindsTheDemoModelFromAnyFolderAndWritesTheFileWhole) {
  ASSERT_FALSE(g_live_switch.empty()) << "the path of starganv2-live-switch is not given";
  TempDir dir;
  const Result r = run({g_live_switch, "--source", "file:" + kVideo.string(), "--sink", "file:out/switch.mkv",
                        "--domain", "male", "--options", "device=cpu", "--script", "@12 quit"},
                       gst_env(dir.path), dir.path);
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("demo-faces-64.safetensors"), std::string::npos) << r.out;
  EXPECT_EQ(files_in(dir.path / "out"), std::vector<std::string>{"switch.mkv"});
  EXPECT_GT(fs::file_size(dir.path / "out" / "switch.mkv"), 1000u);
}

TEST(LiveSwitch, FailedRunLeavesNoFile_n) {
  ASSERT_FALSE(g_live_switch.empty()) << "the path of starganv2-live-switch is not given";
  TempDir dir;
  const Result r = run({g_live_switch, "--source", "file:" + kVideo.string(), "--sink", "file:out/switch.mp4",
                        "--domain", "nosuch", "--options", "device=cpu"},
                       gst_env(dir.path), dir.path);
  EXPECT_EQ(r.rc, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("unknown domain \"nosuch\""), std::string::npos) << r.err;
  EXPECT_EQ(joined(files_in(dir.path / "out")), "") << "an empty or partial output was left behind";
}

// Bad options and scripts are refused before anything plays: exit 1, one message naming the
// problem, no pipeline line printed, no file left (the issue: `domian` found only when reached,
// with exit code 0; `--seed -5` taken).
TEST(LiveSwitch, BadOptionsAndScriptsAreRefusedBeforeStarting_n) {
  ASSERT_FALSE(g_live_switch.empty()) << "the path of starganv2-live-switch is not given";
  TempDir dir;
  const std::vector<std::string> base = {g_live_switch, "--source", "file:" + kVideo.string(), "--sink", "file:out/x.mkv",
                                         "--options", "device=cpu"};
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--seed", "abc"}, "--seed needs a whole number >= 0, got 'abc'"},
      {{"--seed", "-5"}, "--seed needs a whole number >= 0, got '-5'"},
      {{"--script", "@8 domian male"}, "--script: step 'domian male': unknown command 'domian'"},
      {{"--script", "@2 view side-by-side; 3.5 psi 2"}, "--script: step 'psi 2': 2 is out of range for 'psi'"},
      {{"--script", "@4 seed minus"}, "'minus' is not a valid value for 'seed'"},
      {{"--script", "@4 seed -1"}, "'-1' is not a valid value for 'seed'"},
      {{"--script", "@4 view sideways"}, "'sideways' is not a valid value for 'view'"},
      {{"--script", "@4 set checkpoint other.safetensors"}, "'checkpoint' can only be changed before the pipeline starts"},
      {{"--script", "@4 set nosuch 1"}, "no property 'nosuch'"},
      {{"--script", "@4 get"}, "usage: get PROPERTY"},
      {{"--script", "@x quit"}, "--script: cannot read step '@x quit'"},
      {{"--sink", "file:out/x.webm"}, "--sink file:out/x.webm: cannot write that kind of file; name it .mp4, .mov, .mkv or .avi"},
      {{"--source", "file:" + (dir.path / "nothing.avi").string()}, "no such file"},
      {{"stray"}, "unexpected argument 'stray'"},
  };
  for (const auto& [extra, message] : cases) {
    std::vector<std::string> argv = base;
    argv.insert(argv.end(), extra.begin(), extra.end());
    const Result r = run(argv, gst_env(dir.path), dir.path);
    SCOPED_TRACE(joined(extra));
    EXPECT_EQ(r.rc, 1) << r.out << r.err;
    EXPECT_NE(r.err.find(message), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one message:\n" << r.err;
    EXPECT_EQ(r.out.find("playing"), std::string::npos) << r.out;
    EXPECT_EQ(joined(files_in(dir.path / "out")), "");
  }
}

// --help describes the program and documents the exit codes.
TEST(LiveSwitch, HelpDocumentsTheCommandsAndExitCodes) {
  ASSERT_FALSE(g_live_switch.empty()) << "the path of starganv2-live-switch is not given";
  const Result r = run({g_live_switch, "--help"});
  EXPECT_EQ(r.rc, 0) << r.err;
  for (const char* part : {"restyle faces and switch the style while playing", "commands: domain NAME",
                           "exit codes: 0 played to the end or quit; 1 bad input", ".mp4|.mov|.mkv|.avi"})
    EXPECT_NE(r.out.find(part), std::string::npos) << part << " not in:\n" << r.out;
}

// Mean |B - G| + |G - R| of a frame: about 0 for the grey mask view, well above for the video.
double colourfulness(const cv::Mat& bgrx) {
  std::vector<cv::Mat> ch;
  cv::split(colour(bgrx), ch);
  cv::Mat bg, gr;
  cv::absdiff(ch[0], ch[1], bg);
  cv::absdiff(ch[1], ch[2], gr);
  return cv::mean(bg)[0] + cv::mean(gr)[0];
}

// A step `@N` changes frame N and later ones, and no earlier one, whatever the sink: written into
// a file by x264 (where the step once ran 21 frames late: a main-loop timer saw a frame count
// that the encoder's look-ahead had long passed) and into fakesink; the container follows the
// file's extension (the issue: .avi got MP4 bytes).
TEST(LiveSwitch, FrameStepsApplyFromTheFrameTheyNameWhateverTheSink) {
  ASSERT_FALSE(g_live_switch.empty()) << "the path of starganv2-live-switch is not given";
  TempDir dir;
  constexpr int kStep = 6;
  const std::string script = "@" + std::to_string(kStep) + " view mask; @14 quit";
  for (const std::string name : {"switch.mkv", "switch.avi"}) {
    SCOPED_TRACE(name);
    const Result r = run({g_live_switch, "--source", "file:" + kVideo.string(), "--sink", "file:out/" + name,
                          "--options", "device=cpu", "--script", script},
                         gst_env(dir.path), dir.path);
    ASSERT_EQ(r.rc, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("[frame " + std::to_string(kStep) + ", "), std::string::npos) << r.out;
    const fs::path out = dir.path / "out" / name;
    std::ifstream f(out, std::ios::binary);
    std::string head(12, '\0');
    f.read(head.data(), 12);
    const std::string magic = name.ends_with(".avi") ? head.substr(8, 3) : head.substr(0, 4);
    EXPECT_EQ(magic, name.ends_with(".avi") ? std::string("AVI") : std::string("\x1a\x45\xdf\xa3"))
        << "not the container the extension names";
    FrameReader reader("filesrc location=\"" + out.string() +
                       "\" ! decodebin ! videoconvert ! video/x-raw,format=BGRx ! appsink name=sink sync=false");
    int index = 0;
    while (auto frame = reader.next()) {
      const double c = colourfulness(frame->bgrx);
      // Frame 0 of the video is black (no colour either way).
      if (index >= kStep) {
        EXPECT_LT(c, 2.0) << "frame " << index << " should show the mask";
      } else if (index > 0) {
        EXPECT_GT(c, 6.0) << "frame " << index << " should not show the mask yet";
      }
      ++index;
    }
    EXPECT_GE(index, 14);
  }
  const Result r = run({g_live_switch, "--source", "file:" + kVideo.string(), "--sink", "none", "--options",
                        "device=cpu", "--script", script},
                       gst_env(dir.path), dir.path);
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("[frame " + std::to_string(kStep) + ", "), std::string::npos) << r.out;
  // The other containers, from the pipeline printed before the (here refused) script stops it.
  for (const auto& [name, muxer] : std::vector<std::pair<std::string, std::string>>{
           {"x.mp4", "! mp4mux !"}, {"x.MOV", "! qtmux !"}}) {
    const Result p = run({g_live_switch, "--source", "file:" + kVideo.string(), "--sink", "file:out/" + name,
                          "--script", "@1 nosuch"},
                         gst_env(dir.path), dir.path);
    EXPECT_EQ(p.rc, 1);
    EXPECT_NE(p.out.find(muxer), std::string::npos) << p.out;
  }
}

// ---- examples/fade.cpp -----------------------------------------------------------------------

std::string g_fade;  // starganv2-fade, when built

// Every argument is checked before the pipeline is built: exit 1 and one message (the issue:
// `--seed abc` gave five CRITICAL assertions, `--seed -5` exited 0).
TEST(Fade, BadArgumentsAreRefusedBeforeStarting_n) {
  if (g_fade.empty()) GTEST_SKIP() << "starganv2-fade is not built (no gstreamer-controller-1.0)";
  TempDir dir;
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--seed", "abc"}, "--seed needs a whole number >= 0, got \"abc\""},
      {{"--seed", "-5"}, "--seed needs a whole number >= 0, got \"-5\""},
      {{"--fade", "0"}, "--fade needs a number of seconds > 0"},
      {{"--fade"}, "--fade needs a value"},
      {{"--colour", "red"}, "unknown option --colour"},
      {{"--checkpoint", (dir.path / "none.safetensors").string()}, "model file " + (dir.path / "none.safetensors").string() + " does not exist"},
  };
  for (const auto& [extra, message] : cases) {
    std::vector<std::string> argv = {g_fade, kVideo.string(), "none"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    const Result r = run(argv, gst_env(dir.path), dir.path);
    SCOPED_TRACE(joined(extra));
    EXPECT_EQ(r.rc, 1) << r.out << r.err;
    EXPECT_NE(r.err.find(message), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one message:\n" << r.err;
    EXPECT_EQ(r.err.find("CRITICAL"), std::string::npos) << r.err;
    EXPECT_EQ(r.out.find("gst-launch-1.0"), std::string::npos) << "it started:\n" << r.out;
  }
  for (const std::vector<std::string>& argv : std::vector<std::vector<std::string>>{
           {g_fade, kVideo.string(), "out.mp4"}, {g_fade, kVideo.string()}, {g_fade, "a", "b", "c"}}) {
    const Result r = run(argv, gst_env(dir.path), dir.path);
    EXPECT_EQ(r.rc, 1) << r.out << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one message:\n" << r.err;
  }
}

TEST(Fade, HelpDescribesTheProgramAndItsExitCodes) {
  if (g_fade.empty()) GTEST_SKIP() << "starganv2-fade is not built (no gstreamer-controller-1.0)";
  const Result r = run({g_fade, "--help"});
  EXPECT_EQ(r.rc, 0) << r.err;
  for (const char* part : {"usage:", "fades the restyled face in", "--seed N", "Exit codes: 0 played to the end; 1 bad input"})
    EXPECT_NE(r.out.find(part), std::string::npos) << part << " not in:\n" << r.out;
}

TEST(LiveSwitch, WindowWithoutADisplayFailsClearly_n) {
  ASSERT_FALSE(g_live_switch.empty()) << "the path of starganv2-live-switch is not given";
  TempDir dir;
  auto env = gst_env(dir.path);
  env["DISPLAY"] = kUnset;
  env["WAYLAND_DISPLAY"] = kUnset;
  const Result r = run({g_live_switch, "--source", "file:" + kVideo.string()}, env, dir.path);
  EXPECT_EQ(r.rc, 1) << r.out << r.err;  // not a crash in autovideosink
  EXPECT_NE(r.err.find("no display"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--sink none or file:"), std::string::npos) << r.err;
}

// ---- examples/*.sh --------------------------------------------------------------------------

// The scripts as a user runs them, with the element of this build (BUILD_DIR).
std::map<std::string, std::string> script_env(const fs::path& dir) {
  auto env = gst_env(dir);
  const char* build = g_getenv("STARGANV2_BUILD_ROOT");
  env["BUILD_DIR"] = build ? build : "";
  return env;
}

fs::path example(const std::string& name) {
  const char* root = g_getenv("STARGANV2_SOURCE_ROOT");
  return fs::path(root ? root : ".") / "examples" / name;
}

// A failed conversion (an unknown domain) leaves neither the output nor a partial file.
TEST(Examples, FailedConversionLeavesNoFile_n) {
  TempDir dir;
  const fs::path out = dir.path / "out" / "megamind-cat.mp4";
  const Result r = run({example("convert-file.sh").string(), kVideo.string(), out.string(), "cat"},
                       script_env(dir.path));
  EXPECT_EQ(r.rc, 1) << r.err;
  EXPECT_NE(r.err.find("unknown domain \"cat\""), std::string::npos) << r.err;
  EXPECT_EQ(joined(files_in(dir.path / "out")), "") << "an empty or partial output was left behind";
}

// four-streams.sh: four elements on one model; one setting none of them can take (an unknown
// domain) fails the run with the element's error and leaves no mosaic, not a partial one.
TEST(Examples, FourStreamsFailureLeavesNoFile_n) {
  TempDir dir;
  const fs::path out = dir.path / "out" / "four.mp4";
  auto env = script_env(dir.path);
  env["ELEMENT_OPTS"] = "device=cpu domain=cat";
  const Result r = run({example("four-streams.sh").string(), out.string(), kVideo.string(), kVideo.string(),
                        kVideo.string(), kVideo.string()},
                       env);
  EXPECT_EQ(r.rc, 1) << r.err;
  EXPECT_NE(r.err.find("unknown domain \"cat\""), std::string::npos) << r.err;
  EXPECT_EQ(joined(files_in(dir.path / "out")), "") << "an empty or partial output was left behind";
}

// A still image through afhq-frame-mode.sh (one frame of the demo model in frame mode): written
// whole on success, nothing on failure.
TEST(Examples, StillImageIsWrittenWholeOrNotAtAll) {
  TempDir dir;
  const fs::path in = dir.path / "in.png";
  cv::Mat image(96, 96, CV_8UC3);
  cv::randu(image, 0, 255);
  ASSERT_TRUE(cv::imwrite(in.string(), image));
  auto env = script_env(dir.path);
  env["MODEL"] = example("models/demo-faces-64.safetensors").string();
  env["ELEMENT_OPTS"] = "device=cpu";
  Result r = run({example("afhq-frame-mode.sh").string(), in.string(), (dir.path / "out" / "bad.png").string(),
                  "zebra"},
                 env);
  EXPECT_EQ(r.rc, 1) << r.err;
  EXPECT_EQ(joined(files_in(dir.path / "out")), "") << "an empty or partial output was left behind";

  r = run({example("afhq-frame-mode.sh").string(), in.string(), (dir.path / "out" / "ok.png").string(), "male"},
          env);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(files_in(dir.path / "out"), std::vector<std::string>{"ok.png"});
  const cv::Mat written = cv::imread((dir.path / "out" / "ok.png").string());
  EXPECT_EQ(written.size(), image.size());
}

// The README's live command is the webcam script, which checks for a display before
// autovideosink can crash on a headless machine.
TEST(Examples, WebcamWindowWithoutADisplayFailsClearly_n) {
  TempDir dir;
  auto env = script_env(dir.path);
  env["SOURCE"] = "videotestsrc num-buffers=1";
  env["DISPLAY"] = kUnset;
  env["WAYLAND_DISPLAY"] = kUnset;
  const Result r = run({example("webcam-window.sh").string()}, env);
  EXPECT_EQ(r.rc, 1) << r.err;
  EXPECT_NE(r.err.find("no display"), std::string::npos) << r.err;
}

// ---- gst-inspect-1.0 ------------------------------------------------------------------------

// What a user reads in gst-inspect-1.0 without the source: the per-frame message's fields, how
// late frames are handled (not as GstBaseTransform does), and where the plugin comes from.
TEST(Inspect, GstInspectDocumentsMessagesQosAndOrigin) {
  TempDir dir;
  const Result r = run({g_inspect, "starganv2"}, gst_env(dir.path));
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  EXPECT_EQ(r.out.find("Unknown package origin"), std::string::npos) << r.out;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.out, m, std::regex("Origin URL +([^\n]*)\n"))) << r.out;
  EXPECT_NE(m[1].str().find("starganv2"), std::string::npos) << m[1];

  ASSERT_TRUE(std::regex_search(r.out, m, std::regex("\n +Messages +([^\n]*)\n"))) << r.out;
  const std::string messages = m[1];
  for (const char* field : {"\"starganv2\"", "timestamp", "stream-time", "running-time", "duration", "reused", "faces",
                            "id", "x, y, width, height", "face-ids", "face-boxes", "face-landmarks", "face-seeds"})
    EXPECT_NE(messages.find(field), std::string::npos) << "the message field " << field << " is not described: " << messages;

  // The faces as GstVideoRegionOfInterestMeta, and the properties an animation can drive.
  ASSERT_TRUE(std::regex_search(r.out, m, std::regex("\n +Region-of-interest-meta +([^\n]*)\n"))) << r.out;
  for (const char* what : {"GstVideoRegionOfInterestMeta", "\"face\"", "landmarks", "domain", "style-source"})
    EXPECT_NE(m[1].str().find(what), std::string::npos) << what << " missing from: " << m[1];
  for (const char* property : {"psi", "feather", "strength"}) {
    ASSERT_TRUE(std::regex_search(r.out, m, std::regex(std::string("\n +") + property + " +: [^\n]*\n +flags: ([^\n]*)\n")))
        << property << "\n" << r.out;
    EXPECT_NE(m[1].str().find("controllable"), std::string::npos) << property << ": " << m[1];
  }
  for (const char* property : {"transition", "style-per-face"})
    EXPECT_TRUE(std::regex_search(r.out, std::regex(std::string("\n +") + property + " +: "))) << property;

  ASSERT_TRUE(std::regex_search(r.out, m, std::regex("\n +Quality-of-service +([^\n]*)\n"))) << r.out;
  const std::string qos = m[1];
  for (const char* what : {"GstBaseTransform", "never dropped", "late", "QoS message", "not live"})
    EXPECT_NE(qos.find(what), std::string::npos) << what << " missing from: " << qos;

  // The property itself names the fields too.
  ASSERT_TRUE(std::regex_search(r.out, m, std::regex("\n +post-messages +: ([^\n]*)\n"))) << r.out;
  EXPECT_NE(m[1].str().find("running-time"), std::string::npos) << m[1];
}

TEST(Inspect, GstInspectDocumentsEveryProperty) {
  TempDir dir;
  const Result r = run({g_inspect, "starganv2"}, gst_env(dir.path));
  ASSERT_EQ(r.rc, 0) << r.out << r.err;

  // The element class as the registry has it (GST_PLUGIN_PATH and GST_REGISTRY come from meson).
  GstElement* element = gst_element_factory_make("starganv2", nullptr);
  ASSERT_NE(element, nullptr) << "the starganv2 element is not in the registry";
  guint n = 0;
  GParamSpec** specs = g_object_class_list_properties(G_OBJECT_GET_CLASS(element), &n);
  EXPECT_GE(n, 20u);
  // Each property is a block: "  name  : blurb", then its flags line, then its type line.
  std::vector<std::string> lines;
  {
    std::istringstream s(r.out);
    for (std::string l; std::getline(s, l);) lines.push_back(l);
  }
  for (guint i = 0; i < n; ++i) {
    const std::string name = specs[i]->name;
    const std::regex head("^ +" + name + " *: (.*)$");
    std::smatch m;
    size_t at = lines.size();
    for (size_t k = 0; k < lines.size(); ++k)
      if (std::regex_match(lines[k], m, head)) {
        at = k;
        break;
      }
    ASSERT_LT(at, lines.size()) << "gst-inspect-1.0 starganv2 does not list property '" << name << "'";
    const std::string blurb = m[1];
    EXPECT_FALSE(blurb.empty() || blurb == "(null)" || blurb == name) << name << " has no description";
    std::string block;
    for (size_t k = at + 1; k < std::min(at + 4, lines.size()); ++k) block += lines[k] + "\n";
    EXPECT_NE(block.find("flags:"), std::string::npos) << name << ":\n" << block;
    // A type line with the default value (and the range, for numbers); object-valued ones
    // (GstObject's "parent") and read-only structures ("stats") have no default to show.
    if (!G_IS_PARAM_SPEC_OBJECT(specs[i]) && !G_IS_PARAM_SPEC_BOXED(specs[i])) {
      EXPECT_NE(block.find("Default:"), std::string::npos) << name << " shows no default:\n" << block;
    }
    if (G_IS_PARAM_SPEC_UINT(specs[i]) || G_IS_PARAM_SPEC_UINT64(specs[i]) || G_IS_PARAM_SPEC_DOUBLE(specs[i]) ||
        G_IS_PARAM_SPEC_INT(specs[i])) {
      EXPECT_NE(block.find("Range:"), std::string::npos) << name << " shows no range:\n" << block;
    }
  }
  g_free(specs);
  gst_object_unref(element);
}

}  // namespace

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s STARGANV2_TRAIN GST_LAUNCH GST_INSPECT [STARGANV2_LIVE_SWITCH [STARGANV2_FADE]] [gtest flags]\n",
                 argv[0]);
    return 2;
  }
  g_train = argv[1];
  g_launch = argv[2];
  g_inspect = argv[3];
  // Absolute: some tests run it from another working directory (meson passes build-relative paths).
  if (argc > 4) g_live_switch = fs::absolute(argv[4]).string();
  if (argc > 5) g_fade = fs::absolute(argv[5]).string();
  gst_init(nullptr, nullptr);
  const std::string filter = GTEST_FLAG_GET(filter);
  if (filter == "*" || filter.find("Chain") != std::string::npos || filter.find("LiveSwitch") != std::string::npos ||
      filter.find("Fade") != std::string::npos ||
      filter.find("Examples") != std::string::npos) {
    if (!fs::exists(kVideo)) {
      std::printf("SKIP: %s not found (Debian package opencv-doc)\n", kVideo.c_str());
      return 77;
    }
    for (const char* factory : {"avidemux", "avdec_mpeg4", "avenc_ffv1", "avdec_ffv1", "matroskamux", "matroskademux"}) {
      if (GstElementFactory* f = gst_element_factory_find(factory)) {
        gst_object_unref(f);
      } else {
        std::printf("SKIP: GStreamer element %s not found (Debian packages gstreamer1.0-libav, "
                    "gstreamer1.0-plugins-good)\n", factory);
        return 77;
      }
    }
  }
  return RUN_ALL_TESTS();
}
