// starganv2-streams-bench: many streams in one process, on one shared engine or on an engine each
// (issue 25). For each stream count and each way, a fresh process (this program again, --child)
// runs that many Processors (the element's worker) at once, one thread each, over the same 1080p
// frames with one face, and reports its resident memory and frames per second. The baseline,
// independent engines, runs in the same invocation on the same machine.
//
//   starganv2-streams-bench [--model demo|official|FILE] [--streams 1,2,4,8] [--frames 12] [--repeat 1] [--live]
//
// `official` writes a randomly initialised model of the official 256x256 AFHQ configuration
// (57 M parameters, 229 MB; speed and memory do not depend on the weights) to a temporary file.
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <torch/nn/module.h>
#include <torch/utils.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <iomanip>
#include <iostream>
#include <memory>
#include <numeric>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "model/checkpoint.h"
#include "model/config.h"
#include "model/generator.h"
#include "model/init.h"
#include "model/mapping_network.h"
#include "model/style_encoder.h"
#include "processor.h"
#include "shared_engine.h"
#include "tools/resident_memory.h"

namespace fs = std::filesystem;
namespace sp = starganv2::plugin;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* kVideo = "/usr/share/doc/opencv-doc/examples/data/Megamind.avi";

void write_official_model(const fs::path& path) {
  torch::manual_seed(1);
  const starganv2::ModelConfig config = starganv2::afhq_config();
  starganv2::Generator g(config);
  starganv2::MappingNetwork f(config);
  starganv2::StyleEncoder e(config);
  starganv2::he_init(*g);
  starganv2::he_init(*f);
  starganv2::he_init(*e);
  starganv2::CheckpointMeta meta;
  meta.config = config;
  meta.domains = {"cat", "dog", "wild"};
  meta.producer = "starganv2-streams-bench (random weights of the official AFHQ configuration)";
  starganv2::write_checkpoint(path, meta, {{"generator", g.get()}, {"mapping_network", f.get()}, {"style_encoder", e.get()}});
}

// The first `count` frames of Megamind.avi, RGB, scaled into the middle of a 1920x1080 frame.
std::vector<cv::Mat> hd_frames(int count) {
  cv::VideoCapture cap(kVideo);
  std::vector<cv::Mat> frames;
  cv::Mat bgr;
  while (static_cast<int>(frames.size()) < count && cap.read(bgr)) {
    cv::Mat rgb, scaled;
    cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
    const double s = 1080.0 / rgb.rows;
    cv::resize(rgb, scaled, {}, s, s, cv::INTER_LINEAR);
    cv::Mat hd(1080, 1920, CV_8UC3, cv::Scalar::all(0));
    scaled.copyTo(hd(cv::Rect((1920 - scaled.cols) / 2, 0, scaled.cols, scaled.rows)));
    frames.push_back(hd);
  }
  if (frames.empty()) throw std::runtime_error(std::string("cannot read frames from ") + kVideo + " (Debian package opencv-doc)");
  return frames;
}

struct ChildOptions {
  std::string model;
  int streams = 1;
  int frames = 12;
  bool shared = false;
  bool live = false;
};

// One configuration, in this process: prints one JSON line.
int run_child(const ChildOptions& o) {
  const std::vector<cv::Mat> source = hd_frames(o.frames);
  const double before_mib = sp::resident_mib();
  sp::EngineOptions engine;
  engine.checkpoint = o.model;
  engine.device = "auto";
  engine.share = o.shared;
  std::vector<std::unique_ptr<sp::Processor>> processors;
  for (int i = 0; i < o.streams; ++i) {
    processors.push_back(std::make_unique<sp::Processor>(engine, sp::AlignOptions{}));
    sp::StyleOptions style;
    style.seed = static_cast<uint64_t>(i + 1);
    processors.back()->set_style(style);
    sp::StreamOptions stream;
    stream.live = o.live;
    processors.back()->set_stream(stream);
    processors.back()->warm_up();
  }
  const double loaded_mib = sp::resident_mib();
  // Each stream writes its frames in place, so it gets its own buffers: as many as its pipeline
  // holds at once (window()) plus the one being filled, reused in turn, as a GStreamer buffer
  // pool would. Their memory is the same in both ways and is reported apart.
  std::vector<std::vector<cv::Mat>> buffers(o.streams);
  for (int i = 0; i < o.streams; ++i)
    for (int k = 0; k <= processors[i]->window(); ++k) buffers[i].push_back(source.front().clone());
  double buffer_mib = 0;
  for (const auto& b : buffers) buffer_mib += b.size() * b.front().total() * b.front().elemSize() / (1024.0 * 1024.0);
  std::vector<double> queued(o.streams, 0), batch_streams(o.streams, 0);
  const auto t0 = Clock::now();
  std::vector<std::future<double>> runs;
  for (int i = 0; i < o.streams; ++i) {
    runs.push_back(std::async(std::launch::async, [&, i] {
      sp::Processor& p = *processors[i];
      const auto s0 = Clock::now();
      int faces = 0, counted = 0;
      auto account = [&](const sp::FinishedFrame& done) {
        faces += static_cast<int>(done.report.faces.size());
        queued[i] += done.report.times.queued;
        batch_streams[i] += done.report.times.batch_streams;
        ++counted;
      };
      for (size_t n = 0; n < source.size(); ++n) {
        cv::Mat& m = buffers[i][n % buffers[i].size()];
        source[n].copyTo(m);
        p.push({m.data, m.cols, m.rows, static_cast<int>(m.step[0]), sp::PixelLayout::kRGB},
               sp::FrameSettings{.timestamp_s = static_cast<double>(n) / 25}, n);
        while (auto done = p.pop(false)) account(*done);
      }
      while (auto done = p.pop(true)) account(*done);
      if (faces < counted / 2) throw std::runtime_error("stream " + std::to_string(i) + " found faces in only " + std::to_string(faces) + " frames");
      queued[i] /= std::max(1, counted);
      batch_streams[i] /= std::max(1, counted);
      return std::chrono::duration<double>(Clock::now() - s0).count();
    }));
  }
  std::vector<double> seconds;
  for (auto& r : runs) seconds.push_back(r.get());
  const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  json out = {{"streams", o.streams},
              {"shared", o.shared},
              {"live", o.live},
              {"device", processors.front()->active_device()},
              {"models_loaded", sp::SharedEngine::models_loaded()},
              {"rss_before_mib", before_mib},
              {"rss_loaded_mib", loaded_mib},
              {"rss_end_mib", sp::resident_mib()},
              {"rss_peak_mib", sp::status_mib("VmHWM:")},
              {"frame_buffers_mib", buffer_mib},
              {"wall_s", wall},
              {"fps_total", o.streams * static_cast<double>(o.frames) / wall},
              {"fps_per_stream_min", o.frames / *std::max_element(seconds.begin(), seconds.end())},
              {"fps_per_stream_max", o.frames / *std::min_element(seconds.begin(), seconds.end())},
              {"queued_ms_mean", std::accumulate(queued.begin(), queued.end(), 0.0) / o.streams},
              {"batch_streams_mean", std::accumulate(batch_streams.begin(), batch_streams.end(), 0.0) / o.streams}};
  std::cout << out.dump() << std::endl;
  return 0;
}

std::string self_path() {
  std::error_code ec;
  const fs::path p = fs::read_symlink("/proc/self/exe", ec);
  if (ec) throw std::runtime_error("cannot find this program's path (/proc/self/exe)");
  return p.string();
}

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

json run_configuration(const ChildOptions& o) {
  std::ostringstream cmd;
  cmd << quote(self_path()) << " --child --model " << quote(o.model) << " --streams " << o.streams << " --frames " << o.frames
      << (o.shared ? " --shared" : "") << (o.live ? " --live" : "");
  FILE* pipe = popen(cmd.str().c_str(), "r");
  if (!pipe) throw std::runtime_error("cannot start " + cmd.str());
  std::string text;
  char buf[4096];
  while (fgets(buf, sizeof buf, pipe)) text += buf;
  const int status = pclose(pipe);
  if (status != 0) throw std::runtime_error("the run of " + std::to_string(o.streams) + " streams failed: " + cmd.str());
  const auto line = text.rfind('{');
  if (line == std::string::npos) throw std::runtime_error("no result from " + cmd.str());
  return json::parse(text.substr(line));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"starganv2-streams-bench: N streams of 1080p with one face each, on one shared engine and on an "
               "engine each (the baseline), each way in a fresh process: resident memory and frames per second."};
  std::string model = "demo";
  std::string streams_text = "1,2,4,8";
  ChildOptions child;
  bool is_child = false;
  std::string json_path;
  int repeat = 1;
  app.add_option("--model", model, "demo (examples/models/demo-faces-64.safetensors), official (random weights of the "
                                   "official 256x256 AFHQ configuration, written to a temporary file) or a model file");
  app.add_option("--streams", streams_text, "Stream counts, comma-separated");
  app.add_option("--frames", child.frames, "Frames per stream (the first frames of Megamind.avi at 1080p)")->check(CLI::Range(1, 270));
  app.add_flag("--live", child.live, "Live streams (batched with each other on the shared engine) instead of files");
  app.add_option("--repeat", repeat, "Runs of each configuration, both ways in turn; the median is shown")->check(CLI::Range(1, 20));
  app.add_option("--json", json_path, "Also write the results to this file");
  app.add_flag("--child", is_child)->group("");
  app.add_flag("--shared", child.shared)->group("");
  CLI11_PARSE(app, argc, argv);
  try {
    if (is_child) {
      child.model = model;
      child.streams = std::stoi(streams_text);
      return run_child(child);
    }
    fs::path temp;
    if (model == "demo") {
      model = STARGANV2_SOURCE_ROOT "/examples/models/demo-faces-64.safetensors";
    } else if (model == "official") {
      temp = fs::temp_directory_path() / ("starganv2-streams-bench-" + std::to_string(getpid()));
      fs::create_directories(temp);
      model = (temp / "official-afhq-256.safetensors").string();
      std::cerr << "writing " << model << " ...\n";
      write_official_model(model);
    }
    std::vector<int> counts;
    std::stringstream ss(streams_text);
    for (std::string item; std::getline(ss, item, ',');) counts.push_back(std::stoi(item));
    json results = json::array();
    std::cout << "model " << model << ", " << child.frames << " frames per stream, " << (child.live ? "live" : "files")
              << ", " << std::thread::hardware_concurrency() << " cores\n";
    std::cout << std::left << std::setw(9) << "streams" << std::setw(13) << "engines" << std::right << std::setw(10)
              << "RSS MiB" << std::setw(12) << "+/stream" << std::setw(11) << "fps total" << std::setw(16)
              << "fps/stream" << std::setw(11) << "queued ms" << std::setw(10) << "batch\n";
    double one_rss[2] = {-1, -1};
    for (int n : counts) {
      // Both ways in turn, `repeat` times; the run of median total fps is shown (the machine's
      // speed drifts, so alternating keeps the comparison fair).
      std::vector<json> runs[2];
      for (int k = 0; k < repeat; ++k)
        for (bool shared : {false, true}) {
          ChildOptions o = child;
          o.model = model;
          o.streams = n;
          o.shared = shared;
          runs[shared].push_back(run_configuration(o));
        }
      for (bool shared : {false, true}) {
        auto& all = runs[shared];
        std::sort(all.begin(), all.end(),
                  [](const json& a, const json& b) { return a["fps_total"].get<double>() < b["fps_total"].get<double>(); });
        json r = all[all.size() / 2];
        r["fps_total_runs"] = json::array();
        for (const json& x : all) r["fps_total_runs"].push_back(x["fps_total"]);
        // The streams' own frame buffers (the same either way) are not the engine's memory.
        const double rss = r["rss_peak_mib"].get<double>() - r["frame_buffers_mib"].get<double>();
        if (n == 1) one_rss[shared] = rss;
        const double per = n > 1 && one_rss[shared] > 0 ? (rss - one_rss[shared]) / (n - 1) : 0;
        r["rss_per_extra_stream_mib"] = per;
        std::ostringstream fps;
        fps << std::fixed << std::setprecision(2) << r["fps_per_stream_min"].get<double>() << "-"
            << r["fps_per_stream_max"].get<double>();
        std::cout << std::left << std::setw(9) << n << std::setw(13) << (shared ? "shared" : "independent") << std::right
                  << std::fixed << std::setprecision(0) << std::setw(10) << rss << std::setw(12)
                  << (n > 1 ? std::to_string(static_cast<int>(std::lround(per))) : std::string("-")) << std::setprecision(2)
                  << std::setw(11) << r["fps_total"].get<double>() << std::setw(16) << fps.str() << std::setprecision(1)
                  << std::setw(11) << r["queued_ms_mean"].get<double>() << std::setw(9) << r["batch_streams_mean"].get<double>()
                  << "\n"
                  << std::flush;
        results.push_back(r);
      }
    }
    std::cout << "RSS: peak resident memory of the process (VmHWM) less the streams' frame buffers (window()+1 "
                 "1080p frames each); +/stream: (RSS - RSS of 1 stream) / (streams - 1); "
                 "fps/stream: slowest-fastest stream; queued: a frame's mean wait for the engine; batch: streams per forward.\n";
    if (!json_path.empty()) std::ofstream(json_path) << results.dump(2) << "\n";
    if (!temp.empty()) fs::remove_all(temp);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "starganv2-streams-bench: " << e.what() << "\n";
    return 1;
  }
}
