// starganv2-gst-bench: where a frame's time goes in the element's pipeline (the Processor the
// element drives, without GStreamer's own overhead), per stage, and what frame overlap buys.
//
// Cases: 720p and 1080p frames with 0, 1 or 4 real faces, as a live stream (frames arrive at
// 30 fps; detection never runs on the streaming thread) and as a file (as fast as possible,
// exact), for the shipped demo model and the official 256 px CelebA-HQ configuration (random
// weights: speed does not depend on them). Per case, p50 and p99 of each stage: hand-off,
// detection (on a worker, or on the streaming thread when marked), landmarks, warp, networks,
// temporal stabilisation, compositing, and the whole frame (all the streaming thread spent on it). Files also get their
// throughput with frame overlap on and off, measured in the same run (the baseline).
//
//   starganv2-gst-bench [--models demo,official] [--sizes 720,1080] [--faces 0,1,4]
//                       [--modes live,file] [--frames N] [--official-frames N] [--temporal W]
//                       [--device cpu|cuda:N] [--json]
//
// The faces come from frame 40 of Megamind.avi (Debian's opencv-doc), decoded with GStreamer.
#include <gst/gst.h>
#include <gst/video/video.h>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "model/checkpoint.h"
#include "model/config.h"
#include "model/fan.h"
#include "model/generator.h"
#include "model/init.h"
#include "model/mapping_network.h"
#include "model/style_encoder.h"
#include "processor.h"

namespace fs = std::filesystem;
namespace sp = starganv2::plugin;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* kMegamind = "/usr/share/doc/opencv-doc/examples/data/Megamind.avi";
constexpr double kLiveFps = 30;

struct Options {
  std::vector<std::string> models = {"demo", "official"};
  std::string device = "cpu";
  int frames = 40;           // timed frames per case (demo model)
  int official_frames = 6;   // the official model is ~100x slower on a CPU
  int warmup = 5;
  double temporal = sp::AlignOptions{}.temporal;  // the element's default
  bool json = false;
  // Which cases to run (all by default): frame heights, face counts, live and/or file.
  std::vector<int> heights = {720, 1080};
  std::vector<int> faces = {0, 1, 4};
  std::vector<bool> modes = {true, false};  // live, file
};

[[noreturn]] void usage(const char* argv0, const std::string& problem) {
  std::fprintf(stderr,
               "%s\nusage: %s [--models demo,official] [--sizes 720,1080] [--faces 0,1,4] [--modes live,file]\n"
               "       [--frames N] [--official-frames N] [--warmup N] [--temporal W] [--device cpu|cuda:N] [--json]\n",
               problem.c_str(), argv0);
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(argv[0], a + " needs a value");
      return argv[++i];
    };
    auto count = [&](int min) {
      const std::string v = value();
      char* end = nullptr;
      const long n = std::strtol(v.c_str(), &end, 10);
      if (end == v.c_str() || *end != '\0' || n < min || n > 100000) usage(argv[0], a + ": not a count: " + v);
      return static_cast<int>(n);
    };
    // A comma-separated list whose items `accept` turns into values (or rejects with "").
    auto list = [&](auto accept) {
      std::vector<typename decltype(accept(std::string()))::value_type> out;
      std::stringstream ss(value());
      for (std::string item; std::getline(ss, item, ',');) {
        const auto v = accept(item);
        if (!v) usage(argv[0], a + ": unknown item " + item);
        out.push_back(*v);
      }
      if (out.empty()) usage(argv[0], a + " needs at least one item");
      return out;
    };
    if (a == "--sizes") {
      o.heights = list([](const std::string& s) -> std::optional<int> {
        if (s == "720") return 720;
        if (s == "1080") return 1080;
        return std::nullopt;
      });
    } else if (a == "--faces") {
      o.faces = list([](const std::string& s) -> std::optional<int> {
        if (s == "0" || s == "1" || s == "4") return s[0] - '0';
        return std::nullopt;
      });
    } else if (a == "--modes") {
      o.modes = list([](const std::string& s) -> std::optional<bool> {
        if (s == "live") return true;
        if (s == "file") return false;
        return std::nullopt;
      });
    } else if (a == "--models") {
      o.models.clear();
      std::stringstream ss(value());
      for (std::string m; std::getline(ss, m, ',');) {
        if (m != "demo" && m != "official") usage(argv[0], "--models: demo or official, not " + m);
        o.models.push_back(m);
      }
    } else if (a == "--frames") o.frames = count(1);
    else if (a == "--official-frames") o.official_frames = count(1);
    else if (a == "--warmup") o.warmup = count(0);
    else if (a == "--temporal") {
      o.temporal = std::atof(value().c_str());
      if (!(o.temporal >= 0 && o.temporal < 1)) usage(argv[0], "--temporal: a weight in [0, 1)");
    } else if (a == "--device") o.device = value();
    else if (a == "--json") o.json = true;
    else if (a == "--help" || a == "-h") usage(argv[0], "starganv2-gst-bench: per-stage times of the element's pipeline");
    else usage(argv[0], "unknown argument " + a);
  }
  return o;
}

// Random weights at the official CelebA-HQ configuration.
void write_official_sized_checkpoint(const fs::path& path) {
  const starganv2::ModelConfig config = starganv2::celeba_hq_config();
  starganv2::Generator g(config);
  starganv2::MappingNetwork f(config);
  starganv2::StyleEncoder e(config);
  starganv2::FAN fan;
  starganv2::he_init(*g);
  starganv2::he_init(*f);
  starganv2::he_init(*e);
  starganv2::CheckpointMeta meta;
  meta.config = config;
  meta.domains = {"female", "male"};
  meta.producer = "starganv2-gst-bench (random weights)";
  starganv2::write_checkpoint(path, meta, {{"generator", g.get()},
                                           {"mapping_network", f.get()},
                                           {"style_encoder", e.get()},
                                           {"fan", fan.get()}});
}

// Frame 40 of Megamind.avi as BGR, decoded by GStreamer.
cv::Mat megamind_frame() {
  GError* err = nullptr;
  GstElement* pipeline = gst_parse_launch(
      (std::string("filesrc location=\"") + kMegamind +
       "\" ! avidemux ! avdec_mpeg4 ! videoconvert ! video/x-raw,format=BGR ! fakesink name=sink "
       "signal-handoffs=true sync=false")
          .c_str(),
      &err);
  if (!pipeline) throw std::runtime_error(err ? err->message : "cannot decode Megamind.avi");
  struct Grab {
    int index = 0;
    cv::Mat frame;
  } grab;
  GstElement* sink = gst_bin_get_by_name(GST_BIN(pipeline), "sink");
  g_signal_connect(sink, "handoff",
                   G_CALLBACK(+[](GstElement*, GstBuffer* buf, GstPad* pad, gpointer data) {
                     auto* g = static_cast<Grab*>(data);
                     if (g->index++ != 40) return;
                     GstCaps* caps = gst_pad_get_current_caps(pad);
                     GstVideoInfo info;
                     gst_video_info_from_caps(&info, caps);
                     gst_caps_unref(caps);
                     GstMapInfo map;
                     gst_buffer_map(buf, &map, GST_MAP_READ);
                     cv::Mat view(GST_VIDEO_INFO_HEIGHT(&info), GST_VIDEO_INFO_WIDTH(&info),
                                  CV_8UC3, map.data, GST_VIDEO_INFO_PLANE_STRIDE(&info, 0));
                     g->frame = view.clone();
                     gst_buffer_unmap(buf, &map);
                   }),
                   &grab);
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  GstBus* bus = gst_element_get_bus(pipeline);
  GstMessage* msg = gst_bus_timed_pop_filtered(
      bus, 60 * GST_SECOND, static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  if (msg) gst_message_unref(msg);
  gst_object_unref(bus);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(sink);
  gst_object_unref(pipeline);
  if (grab.frame.empty()) throw std::runtime_error(std::string("cannot decode ") + kMegamind);
  return grab.frame;
}

// `faces` copies of the face image on a grey canvas, BGRx: one fills the frame height, four sit
// in a 2x2 grid; none gives a smooth gradient (nothing for the detector to find).
cv::Mat make_frame(const cv::Mat& face_bgr, cv::Size size, int faces) {
  cv::Mat canvas(size, CV_8UC3, cv::Scalar(90, 90, 90));
  if (faces == 0) {
    for (int y = 0; y < size.height; ++y)
      for (int x = 0; x < size.width; ++x)
        canvas.at<cv::Vec3b>(y, x) = cv::Vec3b(x * 255 / size.width, y * 255 / size.height, 128);
  } else {
    const int grid = faces == 1 ? 1 : 2;
    const cv::Size cell(size.width / grid, size.height / grid);
    const double scale = std::min(static_cast<double>(cell.height) / face_bgr.rows,
                                  static_cast<double>(cell.width) / face_bgr.cols);
    cv::Mat scaled;
    cv::resize(face_bgr, scaled, cv::Size(), scale, scale, cv::INTER_AREA);
    for (int i = 0; i < faces; ++i) {
      const cv::Point origin((i % grid) * cell.width + (cell.width - scaled.cols) / 2,
                             (i / grid) * cell.height + (cell.height - scaled.rows) / 2);
      scaled.copyTo(canvas(cv::Rect(origin, scaled.size())));
    }
  }
  cv::Mat bgrx;
  cv::cvtColor(canvas, bgrx, cv::COLOR_BGR2BGRA);
  return bgrx;
}

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * (v.size() - 1) + 0.5))];
}

struct Stage {
  const char* name;
  double sp::StageTimes::*field;
};
constexpr Stage kStages[] = {
    {"handoff", &sp::StageTimes::handoff},   {"detection", &sp::StageTimes::detection},
    {"landmarks", &sp::StageTimes::landmarks}, {"warp", &sp::StageTimes::warp},
    {"networks", &sp::StageTimes::networks}, {"temporal", &sp::StageTimes::temporal},
    {"compositing", &sp::StageTimes::compositing}, {"frame", &sp::StageTimes::frame},
};

struct CaseResult {
  std::vector<sp::StageTimes> times;
  double fps = 0;
  double faces_per_frame = 0;
  long detections_here = 0, detections_worker = 0;
  double cpu_stages_p50 = 0, cpu_stages_p99 = 0;  // the whole frame less the networks
};

// Runs `frames` timed frames (after warm-up ones) of `frame` through one stream. Live: at
// 30 fps, never faster; files: as fast as the pipeline goes, with `overlap` as asked.
CaseResult run_case(const std::string& checkpoint, const Options& o, const cv::Mat& frame, bool live,
                    bool overlap, int frames) {
  sp::EngineOptions engine;
  engine.checkpoint = checkpoint;
  engine.device = o.device;
  sp::AlignOptions align;
  align.min_face_size = 0;
  align.temporal = o.temporal;
  sp::Processor p(engine, align);
  p.set_style(sp::StyleOptions{});
  p.set_stream(sp::StreamOptions{.live = live, .overlap = overlap});
  // Frames are written in place: each push gets its own copy from a ring as deep as the window.
  std::vector<cv::Mat> ring(p.window() + 1);
  for (cv::Mat& m : ring) m = frame.clone();
  CaseResult r;
  const int total = o.warmup + frames;
  int faces = 0;
  const auto take = [&](const sp::FinishedFrame& done) {
    if (static_cast<int>(done.tag) < o.warmup) return;
    r.times.push_back(done.report.times);
    faces += static_cast<int>(done.report.faces.size());
  };
  const auto before = p.counters();
  auto t_start = Clock::now();
  for (int i = 0; i < total; ++i) {
    if (i == o.warmup) t_start = Clock::now();
    if (live) {
      const auto due = t_start + std::chrono::duration_cast<Clock::duration>(
                                     std::chrono::duration<double>((i - std::min(i, o.warmup)) / kLiveFps));
      if (i >= o.warmup) std::this_thread::sleep_until(due);
    }
    cv::Mat& m = ring[i % ring.size()];
    frame.copyTo(m);
    const sp::FrameView view{m.data, m.cols, m.rows, static_cast<int>(m.step[0]), sp::PixelLayout::kBGRx};
    p.push(view, sp::FrameSettings{sp::Mode::kFace, sp::View::kMerged, i / kLiveFps, false},
           static_cast<uint64_t>(i));
    while (auto done = p.pop(false)) take(*done);
  }
  while (auto done = p.pop(true)) take(*done);
  const double seconds = std::chrono::duration<double>(Clock::now() - t_start).count();
  const auto after = p.counters();
  r.fps = frames / seconds;
  r.faces_per_frame = r.times.empty() ? 0 : static_cast<double>(faces) / r.times.size();
  r.detections_here = after.detections_on_streaming_thread - before.detections_on_streaming_thread;
  r.detections_worker = after.detections_on_workers - before.detections_on_workers;
  std::vector<double> cpu;
  for (const sp::StageTimes& t : r.times) cpu.push_back(t.frame - (overlap ? 0 : t.networks));
  r.cpu_stages_p50 = percentile(cpu, 0.5);
  r.cpu_stages_p99 = percentile(cpu, 0.99);
  return r;
}

std::vector<double> column(const std::vector<sp::StageTimes>& times, double sp::StageTimes::*field) {
  std::vector<double> v;
  for (const auto& t : times) v.push_back(t.*field);
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  const Options o = parse(argc, argv);
  try {
    fs::path temp;
    std::vector<std::pair<std::string, fs::path>> models;
    for (const std::string& m : o.models) {
      if (m == "demo") {
        models.emplace_back("demo 64px", fs::path(STARGANV2_SOURCE_ROOT) / "examples/models/demo-faces-64.safetensors");
      } else {
        temp = fs::temp_directory_path() / ("starganv2-gst-bench-" + std::to_string(getpid()) + ".safetensors");
        write_official_sized_checkpoint(temp);
        models.emplace_back("official 256px", temp);
      }
    }
    const cv::Mat face = megamind_frame();
    nlohmann::json all = nlohmann::json::array();
    if (!o.json)
      std::printf("starganv2-gst-bench on %s, %u hardware threads: per-stage p50/p99 ms (frame = all the "
                  "streaming thread spent on it; networks run on the engine thread)\n",
                  o.device.c_str(), std::thread::hardware_concurrency());
    for (const auto& [model_name, path] : models) {
      const int frames = model_name.rfind("official", 0) == 0 ? o.official_frames : o.frames;
      for (const int height : o.heights) {
        const cv::Size size(height * 16 / 9, height);
        for (int faces : o.faces) {
          const cv::Mat frame = make_frame(face, size, faces);
          for (bool live : o.modes) {
            // The stage figures come from the run without overlap, where each stage's time is its
            // own; files are run once more with overlap for the throughput comparison.
            const CaseResult r = run_case(path.string(), o, frame, live, /*overlap=*/false, frames);
            std::optional<CaseResult> overlapped;
            if (!live) overlapped = run_case(path.string(), o, frame, live, /*overlap=*/true, frames);
            nlohmann::json j = {{"model", model_name}, {"width", size.width}, {"height", size.height},
                                {"faces", faces}, {"live", live}, {"frames", r.times.size()},
                                {"faces_found_per_frame", r.faces_per_frame},
                                {"detections_on_streaming_thread", r.detections_here},
                                {"detections_on_workers", r.detections_worker},
                                {"cpu_stages_p50_ms", r.cpu_stages_p50}, {"cpu_stages_p99_ms", r.cpu_stages_p99}};
            for (const Stage& s : kStages) {
              const auto v = column(r.times, s.field);
              j[s.name] = {{"p50_ms", percentile(v, 0.5)}, {"p99_ms", percentile(v, 0.99)}};
            }
            if (overlapped) {
              j["fps_overlap_off"] = r.fps;
              j["fps_overlap_on"] = overlapped->fps;
            }
            all.push_back(j);
            if (o.json) continue;
            std::printf("\n%s, %dx%d, %d face%s, %s: %.2f faces found per frame; detections on the "
                        "streaming thread %ld, on workers %ld\n",
                        model_name.c_str(), size.width, size.height, faces, faces == 1 ? "" : "s",
                        live ? "live (30 fps)" : "file", r.faces_per_frame, r.detections_here,
                        r.detections_worker);
            std::printf("  %-12s", "stage");
            for (const Stage& s : kStages) std::printf(" %11s", s.name);
            std::printf(" %11s\n  %-12s", "all-but-net", "p50");
            for (const Stage& s : kStages) std::printf(" %11.2f", percentile(column(r.times, s.field), 0.5));
            std::printf(" %11.2f\n  %-12s", r.cpu_stages_p50, "p99");
            for (const Stage& s : kStages) std::printf(" %11.2f", percentile(column(r.times, s.field), 0.99));
            std::printf(" %11.2f\n", r.cpu_stages_p99);
            if (overlapped)
              std::printf("  throughput: %.2f fps with overlap, %.2f fps without (baseline, same run): %.2fx\n",
                          overlapped->fps, r.fps, overlapped->fps / r.fps);
          }
        }
      }
    }
    if (o.json) std::cout << all.dump(2) << "\n";
    if (!temp.empty()) fs::remove(temp);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "starganv2-gst-bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
