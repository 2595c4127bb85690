#include "temporal_cli.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <numeric>
#include <numbers>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "align/face_aligner.h"
#include "align/flicker.h"
#include "align/image.h"
#include "align/tools/mask_check.h"
#include "processor.h"

namespace starganv2::tools {

namespace {

namespace fs = std::filesystem;
namespace mc = align::mask_check;
using nlohmann::json;
using plugin::AlignOptions;
using plugin::EngineOptions;
using plugin::FrameReport;
using plugin::FrameView;
using plugin::Mode;
using plugin::PixelLayout;
using plugin::Processor;
using plugin::StreamOptions;
using plugin::StyleOptions;
using plugin::View;

constexpr const char* kAstronaut = "/usr/lib/python3/dist-packages/skimage/data/astronaut.png";  // python3-skimage

class Fatal : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Options {
  std::string video;
  bool synthetic = false;
  std::string checkpoint;
  std::string device = "cpu";
  std::string domain;
  uint64_t seed = 7;
  double temporal = 0.85;
  double smoothing = 0.5;
  int max_frames = 0;
  int style_change_at = -1;
  std::string json_path, csv_path, png_dir;
  bool quiet = false;
};

// ---- the synthetic clip ------------------------------------------------------------------------

// astronaut.png's head turning (mask_check::turn_head: out to +35 degrees, across to -35 and back)
// while it drifts and zooms a little, with sensor noise (sigma 2 grey levels, a seed per frame);
// after 2/3 of the clip, a cut: the same face mirrored, larger and elsewhere, drifting slowly.
class SyntheticClip {
 public:
  explicit SyntheticClip(int frames) : frames_(frames) {
    image_ = cv::imread(kAstronaut, cv::IMREAD_COLOR);
    if (image_.empty()) throw Fatal(std::string("cannot read ") + kAstronaut + " (Debian package python3-skimage)");
    align::FaceAligner aligner(plugin::shared_shape_model());
    const std::vector<align::AlignedFace> faces = aligner.align(image_, align::PixelFormat::kBGR);
    if (faces.empty()) throw Fatal(std::string("no face found in ") + kAstronaut);
    frontal_ = faces.front().landmarks;
    head_ = mc::head_shape(frontal_);
  }
  int frames() const { return frames_; }
  int cut() const { return frames_ * 2 / 3; }

  cv::Mat frame(int i) const {
    const int cut_at = cut();
    const bool after = i >= cut_at;
    const int n = after ? frames_ - cut_at : cut_at;
    const int k = after ? i - cut_at : i;
    const double phase = 2 * std::numbers::pi * k / std::max(1, n);
    cv::Mat turned = after ? image_.clone() : mc::turn_head(image_, frontal_, head_, mc::clip_yaw(k, n, 35.0)).frame;
    if (after) cv::flip(turned, turned, 1);
    // A similarity about the image centre: drift and zoom before the cut; larger and shifted,
    // drifting slowly, after it.
    const double scale = after ? 1.3 + 0.03 * std::sin(phase) : 1.0 + 0.06 * std::sin(phase);
    const cv::Point2d shift = after ? cv::Point2d(-50 + 10 * std::sin(phase), 30) : cv::Point2d(30 * std::sin(phase), 12 * std::sin(2 * phase));
    cv::Mat m = cv::getRotationMatrix2D(cv::Point2f(256, 256), 0.0, scale);
    m.at<double>(0, 2) += shift.x;
    m.at<double>(1, 2) += shift.y;
    cv::Mat out;
    cv::warpAffine(turned, out, m, image_.size(), cv::INTER_LINEAR, cv::BORDER_REFLECT);
    cv::Mat noise(out.size(), CV_16SC3);
    cv::RNG rng(static_cast<uint64_t>(1000 + i));
    rng.fill(noise, cv::RNG::NORMAL, 0.0, 2.0);
    cv::Mat noisy;
    out.convertTo(noisy, CV_16SC3);
    noisy += noise;
    noisy.convertTo(out, CV_8UC3);
    return out;
  }

 private:
  int frames_;
  cv::Mat image_;
  align::Landmarks frontal_{};
  mc::HeadShape head_;
};

// ---- events: where the input changes -----------------------------------------------------------

struct FaceFacts {
  double mouth = 0;  // inner-lip gap over the eye distance
  double turn = 0;   // the nose tip between the jaw's ends, 0..1 (0.5 = frontal)
};

std::optional<FaceFacts> facts(const FrameReport& r) {
  if (r.faces.empty() || r.faces.front().landmarks.size() != 136) return std::nullopt;
  const auto& l = r.faces.front().landmarks;
  const auto p = [&](int i) { return cv::Point2d(l[2 * i], l[2 * i + 1]); };
  const cv::Point2d eye_l = 0.5 * (p(36) + p(39)), eye_r = 0.5 * (p(42) + p(45));
  const double eyes = std::max(1e-6, cv::norm(eye_r - eye_l));
  const cv::Point2d jaw = p(16) - p(0);
  const double jaw2 = std::max(1e-6, jaw.dot(jaw));
  return FaceFacts{cv::norm(p(66) - p(62)) / eyes, (p(30) - p(0)).dot(jaw) / jaw2};
}

// Mean absolute difference, in grey levels over the three channels, of a and b where `where` is set.
double mean_abs(const cv::Mat& a, const cv::Mat& b, const cv::Mat& where) {
  const int n = cv::countNonZero(where);
  if (n == 0) return 0;
  cv::Mat diff;
  cv::absdiff(a, b, diff);
  const cv::Scalar sum = cv::sum(diff.setTo(cv::Scalar::all(0), ~where));
  return (sum[0] + sum[1] + sum[2]) / (3.0 * n);
}

cv::Mat changed(const cv::Mat& input, const cv::Mat& output) {
  cv::Mat diff, any;
  cv::absdiff(input, output, diff);
  cv::transform(diff, any, cv::Matx13f(1, 1, 1));
  return any > 0;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))];
}

json number(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

// ---- the run -------------------------------------------------------------------------------------

int run(const Options& o, const char* program) {
  if (o.video.empty() == !o.synthetic) throw Fatal("give a video or --synthetic (one of them)");
  if (o.checkpoint.empty()) throw Fatal("--checkpoint is required");
  std::optional<SyntheticClip> clip;
  cv::VideoCapture capture;
  double fps = 30;
  int frames = o.max_frames;
  if (o.synthetic) {
    clip.emplace(o.max_frames > 0 ? o.max_frames : 90);
    frames = clip->frames();
  } else {
    std::error_code ec;
    if (!fs::exists(o.video, ec)) throw Fatal("video " + o.video + " does not exist");
    if (!capture.open(o.video) || !capture.isOpened()) throw Fatal("cannot open the video " + o.video);
    if (capture.get(cv::CAP_PROP_FPS) > 0) fps = capture.get(cv::CAP_PROP_FPS);
  }

  // Two processors, the same but for `temporal`, each offline (exact) and without overlap.
  EngineOptions engine;
  engine.checkpoint = o.checkpoint;
  engine.device = o.device;
  AlignOptions off;
  off.smoothing = o.smoothing;
  off.temporal = 0;
  AlignOptions on = off;
  on.temporal = o.temporal;
  Processor per_frame(engine, off), stabilised(engine, on);
  StyleOptions style;
  style.domain = o.domain;
  style.seed = o.seed;
  for (Processor* p : {&per_frame, &stabilised}) {
    p->set_stream(StreamOptions{.live = false, .overlap = false});
    p->set_style(style);
  }

  align::FlickerMeter meter_off, meter_on;
  struct Row {
    int frame = 0;
    double ghost = 0;  // mean |stabilised - per-frame| over the changed pixels, grey levels
    std::vector<std::string> events;
    double temporal_ms = 0;
    double mouth = -1;  // mouth events: the same difference over the mouth alone
  };
  std::vector<Row> rows;
  std::optional<FaceFacts> last_facts;
  std::set<int> last_ids;
  cv::Mat last_input;
  std::vector<double> steps;  // mean absolute difference of each input frame to the last
  if (!o.png_dir.empty()) fs::create_directories(o.png_dir);
  for (int i = 0; frames <= 0 || i < frames; ++i) {
    cv::Mat input;
    if (clip) {
      input = clip->frame(i);
    } else if (!capture.read(input) || input.empty()) {
      break;
    }
    if (input.type() != CV_8UC3) throw Fatal("frame " + std::to_string(i) + " is not 8-bit BGR");
    if (i == o.style_change_at) {
      StyleOptions next = style;
      next.seed = o.seed + 1;
      per_frame.set_style(next);
      stabilised.set_style(next);
    }
    cv::Mat out_off = input.clone(), out_on = input.clone();
    const double t = i / fps;
    const auto view = [](cv::Mat& m) { return FrameView{m.data, m.cols, m.rows, static_cast<int>(m.step), PixelLayout::kBGR}; };
    const FrameReport r_off = per_frame.process(view(out_off), Mode::kFace, View::kMerged, t);
    const FrameReport r_on = stabilised.process(view(out_on), Mode::kFace, View::kMerged, t);
    meter_off.add(input, out_off);
    meter_on.add(input, out_on);

    Row row;
    row.frame = i;
    row.ghost = mean_abs(out_on, out_off, changed(input, out_off) | changed(input, out_on));
    row.temporal_ms = r_on.times.temporal;
    // Events, from the per-frame run's faces and the input itself.
    std::set<int> ids;
    for (const auto& f : r_off.faces) ids.insert(f.id);
    for (int id : ids)
      if (!last_ids.contains(id) && i > 0) row.events.push_back("new face");
    // A cut: the frame differs from the last far more than frames have differed so far.
    if (!last_input.empty()) {
      const double step = mean_abs(input, last_input, cv::Mat(input.size(), CV_8U, cv::Scalar(255)));
      if ((clip && i == clip->cut()) || (!clip && step > std::max(12.0, 4 * median(steps)))) row.events.push_back("cut");
      steps.push_back(step);
    }
    if (i == o.style_change_at) row.events.push_back("style change");
    const std::optional<FaceFacts> now = facts(r_off);
    if (now && last_facts) {
      if (std::abs(now->mouth - last_facts->mouth) > 0.06) {
        row.events.push_back("mouth");
        // Where the change is: the mouth itself (the lips' hull, grown by a quarter of its width).
        const auto& l = r_off.faces.front().landmarks;
        std::vector<cv::Point> lips;
        for (int k = 48; k < 68; ++k) lips.emplace_back(cvRound(l[2 * k]), cvRound(l[2 * k + 1]));
        std::vector<cv::Point> hull;
        cv::convexHull(lips, hull);
        cv::Mat region = cv::Mat::zeros(input.size(), CV_8U);
        cv::fillConvexPoly(region, hull, cv::Scalar(255));
        const int grow = std::max(1, cvRound(0.25 * cv::boundingRect(hull).width));
        cv::dilate(region, region, cv::getStructuringElement(cv::MORPH_ELLIPSE, {2 * grow + 1, 2 * grow + 1}));
        row.mouth = mean_abs(out_on, out_off, region);
      }
      if (std::abs(now->turn - last_facts->turn) > 0.02) row.events.push_back("turn");
    }
    last_facts = now;
    last_ids = ids;
    last_input = input;
    if (!o.png_dir.empty()) {
      cv::Mat side;
      cv::hconcat(std::vector<cv::Mat>{input, out_off, out_on}, side);
      char name[64];
      std::snprintf(name, sizeof name, "/frame-%04d.png", i);
      cv::imwrite(o.png_dir + name, side);
    }
    rows.push_back(std::move(row));
    if (!o.quiet && i % 30 == 0) std::fprintf(stderr, "\r%s temporal: frame %d", program, i);
  }
  if (!o.quiet) std::fprintf(stderr, "\n");
  if (rows.empty()) throw Fatal("no frames read");

  const align::FlickerSummary s_off = meter_off.summary(), s_on = meter_on.summary();
  std::vector<double> ghosts, costs;
  std::map<std::string, std::vector<double>> by_event;
  for (const Row& r : rows) {
    ghosts.push_back(r.ghost);
    if (r.temporal_ms > 0) costs.push_back(r.temporal_ms);
    for (const std::string& e : r.events) by_event[e].push_back(r.ghost);
  }
  const double mean_ghost = std::accumulate(ghosts.begin(), ghosts.end(), 0.0) / static_cast<double>(ghosts.size());
  const double added_off = s_off.ratio - 1, added_on = s_on.ratio - 1;
  std::printf("%s, %d frames, temporal %.3g (smoothing %.3g)\n", o.synthetic ? "synthetic clip" : o.video.c_str(),
              static_cast<int>(rows.size()), o.temporal, o.smoothing);
  std::printf("flicker ratio: off %.3f, on %.3f (flicker added: %.3f -> %.3f, x%.2f)\n", s_off.ratio, s_on.ratio,
              added_off, added_on, added_off != 0 ? added_on / added_off : 0.0);
  std::printf("difference to the per-frame output (grey levels, over the pixels the element changed): "
              "mean %.2f, 90th percentile %.2f, max %.2f\n",
              mean_ghost, percentile(ghosts, 0.9), *std::max_element(ghosts.begin(), ghosts.end()));
  for (const auto& [event, values] : by_event)
    std::printf("  on %-12s frames (%3zu): mean %.2f, max %.2f\n", event.c_str(), values.size(),
                std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(values.size()),
                *std::max_element(values.begin(), values.end()));
  std::vector<double> mouths;
  for (const Row& r : rows)
    if (r.mouth >= 0) mouths.push_back(r.mouth);
  if (!mouths.empty())
    std::printf("  on the mouth itself in mouth frames: mean %.2f, max %.2f\n",
                std::accumulate(mouths.begin(), mouths.end(), 0.0) / static_cast<double>(mouths.size()),
                *std::max_element(mouths.begin(), mouths.end()));
  std::printf("stabilisation CPU time per frame: median %.3f ms, 90th percentile %.3f ms\n", median(costs),
              percentile(costs, 0.9));

  if (!o.csv_path.empty()) {
    std::ofstream csv(o.csv_path);
    csv << "frame,ghost,mouth,temporal_ms,events\n";
    for (const Row& r : rows) {
      std::string events;
      for (const std::string& e : r.events) events += (events.empty() ? "" : ";") + e;
      csv << r.frame << "," << r.ghost << "," << r.mouth << "," << r.temporal_ms << "," << events << "\n";
    }
    if (!csv) throw Fatal("cannot write " + o.csv_path);
  }
  if (!o.json_path.empty()) {
    json events = json::object();
    for (const auto& [event, values] : by_event)
      events[event] = {{"frames", values.size()},
                       {"mean", std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(values.size())},
                       {"max", *std::max_element(values.begin(), values.end())}};
    const json report = {{"clip", o.synthetic ? "synthetic" : o.video},
                         {"frames", rows.size()},
                         {"temporal", o.temporal},
                         {"smoothing", o.smoothing},
                         {"flicker_off", number(s_off.ratio)},
                         {"flicker_on", number(s_on.ratio)},
                         {"ghost_mean", mean_ghost},
                         {"ghost_p90", percentile(ghosts, 0.9)},
                         {"ghost_max", *std::max_element(ghosts.begin(), ghosts.end())},
                         {"events", events},
                         {"mouth_region_mean", mouths.empty() ? json(nullptr) : json(std::accumulate(mouths.begin(), mouths.end(), 0.0) / static_cast<double>(mouths.size()))},
                         {"temporal_ms_median", median(costs)},
                         {"temporal_ms_p90", percentile(costs, 0.9)}};
    std::ofstream f(o.json_path);
    f << report.dump(2) << "\n";
    if (!f) throw Fatal("cannot write " + o.json_path);
  }
  return 0;
}

}  // namespace

int temporal_eval_main(int argc, char** argv, const char* program) {
  Options o;
  CLI::App app{
      "Temporal stabilisation (the element's `temporal` property) on a clip: the clip goes through the element's\n"
      "Processor twice in one run, offline (exact), with stabilisation off and on. Reports both outputs' flicker\n"
      "(the warping-error ratio, as `starganv2-eval flicker`), how far the stabilised output is from the per-frame\n"
      "one (mean absolute difference in grey levels over the pixels the element changed) over all frames and on the\n"
      "frames where the input changes (a new face or a cut, a style change, a mouth opening or closing by more than\n"
      "0.06 eye distances, a turn moving the nose by more than 2 % of the jaw's width), and the stabilisation's CPU\n"
      "time.",
      program};
  app.option_defaults()->always_capture_default();
  app.add_option("video", o.video, "The clip (any file OpenCV reads); or --synthetic");
  app.add_flag("--synthetic", o.synthetic,
               "A synthetic clip instead: astronaut.png's head turning +-35 degrees while it drifts and zooms, with "
               "sensor noise, then a cut to the face mirrored and larger (90 frames)");
  app.add_option("-c,--checkpoint", o.checkpoint, "Model (.safetensors; required)");
  app.add_option("--device", o.device, "cpu, auto or cuda:N (figures are exact on the CPU)");
  app.add_option("-d,--domain", o.domain, "Target domain (default: the model's first)");
  app.add_option("-s,--seed", o.seed, "Latent seed of the style");
  app.add_option("--temporal", o.temporal, "The stabilised run's `temporal`")->check(CLI::Range(0.0, 0.95));
  app.add_option("--smoothing", o.smoothing, "`smoothing` of both runs")->check(CLI::Range(0.0, 1.0));
  app.add_option("--max-frames", o.max_frames, "Only the first N frames (0 = all; the synthetic clip's length)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--style-change-at", o.style_change_at, "Switch both runs to seed + 1 at this frame (-1 = never)");
  app.add_option("--json", o.json_path, "Also write the figures as JSON");
  app.add_option("--csv", o.csv_path, "Also write per-frame figures as CSV");
  app.add_option("--png-dir", o.png_dir, "Also write each frame as input | per-frame | stabilised PNGs");
  app.add_flag("-q,--quiet", o.quiet, "No progress");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::cerr << program << ": error: " << e.what() << " (see --help)\n";
    return 1;
  }
  try {
    return run(o, program);
  } catch (const std::exception& e) {
    std::cerr << program << ": error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace starganv2::tools
