// starganv2-gst-bench: pushes 1080p frames that contain one real face through the starganv2
// element and prints frames per second and the latency the element adds, per device and
// detect-interval, next to baselines measured in the same run:
//   identity   the same harness and buffers through GStreamer's identity element (the cost of
//              moving a buffer through a harness, subtracted to get the element's added latency)
//   no face    the element on a face-less frame of the same size (detection cost alone)
//
//   starganv2-gst-bench [--checkpoint FILE] [--image FILE] [--frames N] [--device cpu|cuda:N]...
//
// Without --checkpoint it writes random weights at the official CelebA-HQ configuration (256 px,
// w_hpf 1, with a FAN) to a temporary file: speed does not depend on the weights. Without
// --image the face comes from Megamind.avi (Debian's opencv-doc), scaled to fill the frame height.
#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <gst/video/video.h>

#include <ATen/ATen.h>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <torch/cuda.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <unistd.h>

#include "model/checkpoint.h"
#include "model/config.h"
#include "model/fan.h"
#include "model/generator.h"
#include "model/init.h"
#include "model/mapping_network.h"
#include "model/style_encoder.h"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kWidth = 1920;
constexpr int kHeight = 1080;
constexpr const char* kMegamind = "/usr/share/doc/opencv-doc/examples/data/Megamind.avi";

struct Options {
  std::string checkpoint;
  std::string image;
  std::vector<std::string> devices;
  int frames = 10;
  int warmup = 3;
};

[[noreturn]] void usage(const char* argv0, const std::string& problem) {
  std::fprintf(stderr,
               "%s\nusage: %s [--checkpoint FILE] [--image FILE] [--frames N] [--warmup N] "
               "[--device cpu|cuda:N]...\n",
               problem.c_str(), argv0);
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(argv[0], a + " needs a value");
      return argv[++i];
    };
    if (a == "--checkpoint") o.checkpoint = value();
    else if (a == "--image") o.image = value();
    else if (a == "--frames") o.frames = std::max(1, std::atoi(value().c_str()));
    else if (a == "--warmup") o.warmup = std::max(0, std::atoi(value().c_str()));
    else if (a == "--device") o.devices.push_back(value());
    else usage(argv[0], "unknown argument " + a);
  }
  if (o.devices.empty()) {
    o.devices.push_back("cpu");
    if (torch::cuda::is_available()) o.devices.push_back("cuda:0");
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
       "\" ! decodebin ! videoconvert ! video/x-raw,format=BGR ! fakesink name=sink "
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

// The face image scaled to the frame height (keeping its aspect) on a grey 1080p canvas, BGRx.
cv::Mat make_face_frame(const cv::Mat& bgr) {
  const double scale = std::min(static_cast<double>(kHeight) / bgr.rows,
                                static_cast<double>(kWidth) / bgr.cols);
  cv::Mat scaled;
  cv::resize(bgr, scaled, cv::Size(), scale, scale, cv::INTER_LINEAR);
  cv::Mat canvas(kHeight, kWidth, CV_8UC3, cv::Scalar(90, 90, 90));
  scaled.copyTo(canvas(cv::Rect((kWidth - scaled.cols) / 2, (kHeight - scaled.rows) / 2,
                                scaled.cols, scaled.rows)));
  cv::Mat bgrx;
  cv::cvtColor(canvas, bgrx, cv::COLOR_BGR2BGRA);
  return bgrx;
}

cv::Mat make_faceless_frame() {
  cv::Mat frame(kHeight, kWidth, CV_8UC4);
  for (int y = 0; y < kHeight; ++y)
    for (int x = 0; x < kWidth; ++x)
      frame.at<cv::Vec4b>(y, x) = cv::Vec4b(x * 255 / kWidth, y * 255 / kHeight, 128, 255);
  return frame;
}

GstBuffer* to_buffer(const cv::Mat& bgrx) {
  const size_t size = bgrx.total() * bgrx.elemSize();
  GstBuffer* buf = gst_buffer_new_allocate(nullptr, size, nullptr);
  gst_buffer_fill(buf, 0, bgrx.data, size);
  return buf;
}

struct Result {
  double median_ms = 0;
  double p90_ms = 0;
  double fps = 0;  // frames / total time of the timed frames
  double faces_per_frame = 0;
  GstClockTime reported_latency = 0;
  std::string error;
};

double percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * (v.size() - 1) + 0.5))];
}

// Pushes `frame` warmup + frames times through `description` in a harness, one at a time: the
// push returns once the element has processed the frame, so its duration is the added latency.
Result run(const std::string& description, const cv::Mat& frame, const Options& o) {
  Result r;
  GstHarness* h = gst_harness_new_parse(description.c_str());
  if (!h) {
    r.error = "cannot create " + description;
    return r;
  }
  GstBus* bus = gst_bus_new();
  GstElement* el = gst_harness_find_element(h, "starganv2");
  if (el) gst_element_set_bus(el, bus);
  gst_harness_set_src_caps_str(
      h, ("video/x-raw,format=BGRx,width=" + std::to_string(kWidth) +
          ",height=" + std::to_string(kHeight) + ",framerate=30/1")
             .c_str());
  gst_harness_set_live(h, TRUE);
  std::vector<double> times;
  int faces = 0, messages = 0;
  const auto t_all = Clock::now();
  auto t_timed = t_all;
  for (int i = 0; i < o.warmup + o.frames; ++i) {
    if (i == o.warmup) t_timed = Clock::now();
    GstBuffer* buf = to_buffer(frame);
    GST_BUFFER_PTS(buf) = i * GST_SECOND / 30;
    GST_BUFFER_DURATION(buf) = GST_SECOND / 30;
    const auto t0 = Clock::now();
    const GstFlowReturn ret = gst_harness_push(h, buf);
    const auto t1 = Clock::now();
    if (ret != GST_FLOW_OK) {
      r.error = std::string("push failed: ") + gst_flow_get_name(ret);
      break;
    }
    gst_buffer_unref(gst_harness_pull(h));
    if (i >= o.warmup) times.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  const double total_s = std::chrono::duration<double>(Clock::now() - t_timed).count();
  while (GstMessage* m = gst_bus_pop(bus)) {
    if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR && r.error.empty()) {
      GError* err = nullptr;
      gst_message_parse_error(m, &err, nullptr);
      r.error = err->message;
      g_clear_error(&err);
    } else if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ELEMENT) {
      const GstStructure* s = gst_message_get_structure(m);
      if (gst_structure_has_name(s, "starganv2")) {
        ++messages;
        faces += gst_value_array_get_size(gst_structure_get_value(s, "faces"));
      }
    }
    gst_message_unref(m);
  }
  if (!times.empty()) {
    r.median_ms = percentile(times, 0.5);
    r.p90_ms = percentile(times, 0.9);
    r.fps = times.size() / total_s;
  }
  r.faces_per_frame = messages ? static_cast<double>(faces) / messages : 0;
  r.reported_latency = gst_harness_query_latency(h);
  if (el) {
    gst_element_set_bus(el, nullptr);
    gst_object_unref(el);
  }
  gst_object_unref(bus);
  gst_harness_teardown(h);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  const Options o = parse(argc, argv);
  try {
    // Find the plugin of this build tree when it is not installed.
    if (!gst_registry_find_feature(gst_registry_get(), "starganv2", GST_TYPE_ELEMENT_FACTORY))
      gst_registry_scan_path(gst_registry_get(), STARGANV2_PLUGIN_BUILD_DIR);

    fs::path checkpoint = o.checkpoint;
    fs::path temp;
    if (checkpoint.empty()) {
      temp = fs::temp_directory_path() / ("starganv2-gst-bench-" + std::to_string(getpid()) +
                                          ".safetensors");
      std::printf("writing random weights at the official CelebA-HQ config (256 px, w_hpf 1, "
                  "FAN) to %s\n", temp.c_str());
      write_official_sized_checkpoint(temp);
      checkpoint = temp;
    }
    cv::Mat face_bgr = o.image.empty() ? megamind_frame() : cv::imread(o.image, cv::IMREAD_COLOR);
    if (face_bgr.empty()) throw std::runtime_error("cannot read image " + o.image);
    const cv::Mat face = make_face_frame(face_bgr);
    const cv::Mat faceless = make_faceless_frame();

    std::printf("frames: %dx%d BGRx, one face (%s); %d timed frames after %d warm-up frames; "
                "medians\n", kWidth, kHeight, o.image.empty() ? kMegamind : o.image.c_str(),
                o.frames, o.warmup);
    const Result identity = run("identity", face, o);
    std::printf("%-8s %-22s %9s %9s %8s %10s %8s %11s\n", "device", "case", "median_ms", "p90_ms",
                "fps", "added_ms", "faces", "latency_ms");
    std::printf("%-8s %-22s %9.2f %9.2f %8.1f %10s %8s %11s\n", "-", "identity (baseline)",
                identity.median_ms, identity.p90_ms, identity.fps, "-", "-", "-");
    for (const std::string& device : o.devices) {
      const std::string base = "starganv2 checkpoint=\"" + checkpoint.string() + "\" device=" +
                               device + " post-messages=true min-face-size=0";
      struct Case {
        std::string name;
        std::string props;
        const cv::Mat* frame;
      };
      const Case cases[] = {
          {"no face, interval 1", " detect-interval=1", &faceless},
          {"1 face, interval 1", " detect-interval=1", &face},
          {"1 face, interval 5", " detect-interval=5", &face},
      };
      for (const Case& c : cases) {
        const Result r = run(base + c.props, *c.frame, o);
        if (!r.error.empty()) {
          std::printf("%-8s %-22s error: %s\n", device.c_str(), c.name.c_str(), r.error.c_str());
          continue;
        }
        std::printf("%-8s %-22s %9.2f %9.2f %8.2f %10.2f %8.2f %11.2f\n", device.c_str(),
                    c.name.c_str(), r.median_ms, r.p90_ms, r.fps,
                    r.median_ms - identity.median_ms, r.faces_per_frame,
                    r.reported_latency / 1e6);
      }
    }
    if (!temp.empty()) fs::remove(temp);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "starganv2-gst-bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
