// starganv2-eval: figures for how good the pictures are. One subcommand per measure:
//   faces    a model on a folder of aligned faces: is a face still found in the translation
//            (dlib's HOG detector), is the pose kept (68 landmarks), do styles differ (diversity);
//   flicker  a video translation against its input: the warping-error ratio (align/flicker.h).
//   official FID and LPIPS exactly as the official StarGAN v2 code computes them (metrics/eval.py,
//            with the converted Inception/AlexNet weights): official_eval_cli.h, its own options.
// The translation is the element's (plugin::Processor
// in frame mode: the image resized to the model's size, as the trainer's data is); the maths of
// each measure is in align/. See --help.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <opencv2/core.hpp>
#include <opencv2/core/utils/logger.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "official_eval_cli.h"
#include "temporal_cli.h"
#include "align/alignment.h"
#include "align/detector.h"
#include "align/face_aligner.h"
#include "align/face_metrics.h"
#include "align/flicker.h"
#include "align/image.h"
#include "align/landmarks.h"
#include "model/locations.h"
#include "processor.h"
#include "seed_args.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using starganv2::plugin::AlignOptions;
using starganv2::plugin::EngineOptions;
using starganv2::plugin::FrameView;
using starganv2::plugin::Mode;
using starganv2::plugin::PixelLayout;
using starganv2::plugin::Precision;
using starganv2::plugin::Processor;
using starganv2::plugin::ProcessorError;
using starganv2::plugin::StillFace;
using starganv2::plugin::StyleOptions;
using starganv2::plugin::View;
namespace align = starganv2::align;

constexpr const char* kProgram = "starganv2-eval";

// Exit codes, as --help and the README state them.
constexpr int kExitDone = 0;
constexpr int kExitBadInput = 1;  // bad options, inputs, model or outputs (one message on stderr)

class Fatal : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// Figures with a fixed number of decimals (tables, CSV).
std::string fixed(double v, int decimals) {
  if (!std::isfinite(v)) return "n/a";
  std::ostringstream s;
  s << std::fixed << std::setprecision(decimals) << v;
  return s.str();
}

// NaN and infinity are not JSON numbers: null.
json number(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

// Written under a temporary name and renamed: a report is complete or absent.
void write_text(const std::string& path, const std::string& text, const char* what) {
  const fs::path p(path);
  std::error_code ec;
  if (p.has_parent_path()) fs::create_directories(p.parent_path(), ec);
  const fs::path tmp = p.parent_path() / ("." + p.filename().string() + ".tmp");
  bool ok = false;
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f << text;
    f.flush();
    ok = static_cast<bool>(f);
  }
  if (ok) fs::rename(tmp, p, ec);
  if (!ok || ec) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    throw Fatal(std::string("cannot write the ") + what + " " + path + (ec ? ": " + ec.message() : std::string()));
  }
}

// Fails early (before minutes of work) when a report could not be written.
void require_writable(const std::string& path, const char* what) {
  if (path.empty()) return;
  const fs::path p(path);
  std::error_code ec;
  if (fs::is_directory(p, ec)) throw Fatal(std::string("--") + what + " " + path + " is a folder; give a file name");
  const fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
  fs::create_directories(dir, ec);
  if (!fs::is_directory(dir, ec)) throw Fatal(std::string("--") + what + " " + path + ": cannot create its folder " + dir.string());
}

// ---- faces ----------------------------------------------------------------------------------

struct FacesOptions {
  std::vector<std::string> inputs;
  std::string checkpoint;
  std::string fan_checkpoint;
  std::string device = "auto";
  std::vector<std::string> domains;  // empty = every domain of the model
  std::vector<uint64_t> seeds = {1, 2, 3};
  std::vector<std::string> seed_args;  // as typed: may end with input paths
  double psi = 1.0;
  std::string landmarks = align::kDefaultShapeModel;
  std::string json_path;
  bool quiet = false;
};

bool is_image_file(const fs::path& p) {
  const std::string ext = lower(p.extension().string());
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}

// The images of each input (a file, or a folder searched with its sub-folders), sorted.
std::vector<fs::path> collect_images(const std::vector<std::string>& inputs) {
  std::vector<fs::path> found;
  for (const std::string& in : inputs) {
    std::error_code ec;
    if (!fs::exists(in, ec)) throw Fatal("input " + in + " does not exist");
    if (!fs::is_directory(in, ec)) {
      found.emplace_back(in);
      continue;
    }
    std::vector<fs::path> files;
    try {
      for (const auto& e : fs::recursive_directory_iterator(in))
        if (e.is_regular_file() && is_image_file(e.path())) files.push_back(e.path());
    } catch (const fs::filesystem_error& e) {
      throw Fatal("cannot list the folder " + in + ": " + e.code().message());
    }
    if (files.empty()) throw Fatal("no image found in the folder " + in + " (looked for .jpg, .jpeg and .png, sub-folders included)");
    std::sort(files.begin(), files.end());
    found.insert(found.end(), files.begin(), files.end());
  }
  return found;
}

// The image at `size` x `size` the way the trainer's data loader makes it (trainer/data/augment.cpp
// resize_to): area averaging when shrinking, bilinear when enlarging.
cv::Mat resize_square(const cv::Mat& src, int size) {
  const int interp = (src.cols > size && src.rows > size) ? cv::INTER_AREA : cv::INTER_LINEAR;
  cv::Mat out;
  cv::resize(src, out, cv::Size(size, size), 0, 0, interp);
  return out;
}

cv::Mat rgb_crop(const std::vector<uint8_t>& rgb, int size) {
  return cv::Mat(size, size, CV_8UC3, const_cast<uint8_t*>(rgb.data())).clone();
}

// The judge of `starganv2-eval faces`: align/face_metrics.h with the shape model the Processor
// has loaded already when it is the default one (loading takes seconds).
align::FaceJudge make_judge(const std::string& landmarks_path) {
  try {
    return align::FaceJudge(landmarks_path == align::kDefaultShapeModel ? starganv2::plugin::shared_shape_model()
                                                                          : align::ShapeModel::load(landmarks_path));
  } catch (const align::AlignError& e) {
    throw Fatal(std::string("--landmarks: ") + e.what());
  } catch (const ProcessorError& e) {
    throw Fatal(e.what());
  }
}

StyleOptions latent_style(const std::string& domain, uint64_t seed, double psi) {
  StyleOptions s;
  s.domain = domain;
  s.seed = seed;
  s.psi = psi;
  return s;
}

std::string seed_list(const std::vector<uint64_t>& seeds) {
  std::string s;
  for (uint64_t v : seeds) s += (s.empty() ? "" : " ") + std::to_string(v);
  return s;
}

int run_faces(const FacesOptions& o) {
  if (o.checkpoint.empty()) {
    const fs::path demo = starganv2::shipped_model();
    throw Fatal("--checkpoint is required: a model file from starganv2-train or the converter" +
                (demo.empty() ? std::string() : ", e.g. the demo model " + demo.string()));
  }
  std::error_code ec;
  if (!fs::exists(o.checkpoint, ec)) throw Fatal("checkpoint " + o.checkpoint + " does not exist");
  if (o.inputs.empty()) throw Fatal("no input: give one or more folders (or files) of aligned face images");
  if (o.seeds.empty()) throw Fatal("--seed: give at least one seed");
  require_writable(o.json_path, "json");
  const std::vector<fs::path> images = collect_images(o.inputs);

  EngineOptions engine;
  engine.checkpoint = o.checkpoint;
  engine.fan_checkpoint = o.fan_checkpoint;
  engine.device = o.device;
  engine.precision = Precision::kAuto;
  AlignOptions align_options;
  align_options.detect_interval = 1;
  align_options.smoothing = 0;
  std::optional<Processor> processor;
  try {
    processor.emplace(engine, align_options);
  } catch (const ProcessorError& e) {
    throw Fatal(e.what());
  }
  const int size = processor->img_size();
  std::vector<std::string> domains = o.domains;
  if (domains.empty()) domains = processor->domains();
  // Every style once before any image: an unknown domain stops the run here.
  for (std::string& d : domains) {
    try {
      processor->set_style(latent_style(d, o.seeds.front(), o.psi));
    } catch (const ProcessorError& e) {
      throw Fatal(e.what());
    }
    // A domain given by index is reported by its name.
    const auto& names = processor->domains();
    if (std::find(names.begin(), names.end(), d) == names.end()) d = names.at(std::stoul(d));
  }
  align::FaceJudge judge = make_judge(o.landmarks);

  if (!o.quiet)
    std::cout << kProgram << " faces: " << o.checkpoint << " (" << size << "x" << size << ", "
              << processor->active_device() << "), " << images.size() << " images, " << domains.size()
              << " domains, seeds " << seed_list(o.seeds) << "\n";

  align::FaceTally source_tally;
  std::map<std::string, align::FaceTally> tallies;
  json per_image = json::array();
  const auto t0 = std::chrono::steady_clock::now();
  for (size_t n = 0; n < images.size(); ++n) {
    const fs::path& path = images[n];
    cv::Mat image;
    try {
      image = cv::imread(path.string(), cv::IMREAD_COLOR);
    } catch (const cv::Exception&) {
    }
    if (image.empty()) throw Fatal("cannot read " + path.string() + ": not an image OpenCV can read");
    cv::Mat small = resize_square(image, size);
    const FrameView view{small.data, small.cols, small.rows, static_cast<int>(small.step[0]), PixelLayout::kBGR};
    cv::Mat source_rgb;
    cv::cvtColor(small, source_rgb, cv::COLOR_BGR2RGB);
    try {
      processor->find_still(view, Mode::kFrame);
    } catch (const ProcessorError& e) {
      throw Fatal(path.string() + ": " + e.what());
    }
    const align::SourceFacts source = judge.measure_source(source_rgb);
    source_tally.add_detection(source.facts);
    const double source_seams = source_tally.add_seams(source_rgb);

    json image_json = {{"file", path.string()},
                       {"source", {{"found", source.facts.found}, {"score", number(source.facts.best)}, {"seams", number(source_seams)}}},
                       {"translated", json::array()}};
    for (const std::string& domain : domains) {
      align::FaceTally& tally = tallies[domain];
      std::vector<cv::Mat> outputs;
      for (uint64_t seed : o.seeds) {
        cv::Mat out = small.clone();
        std::vector<StillFace> faces;
        try {
          processor->set_style(latent_style(domain, seed, o.psi));
          processor->render_still(FrameView{out.data, out.cols, out.rows, static_cast<int>(out.step[0]), PixelLayout::kBGR},
                                  View::kMerged, &faces);
        } catch (const ProcessorError& e) {
          throw Fatal(path.string() + ": " + e.what());
        }
        if (faces.empty()) throw Fatal(path.string() + ": the model gave no translation");
        const cv::Mat translated = rgb_crop(faces.front().translated, size);
        const align::TranslationFacts facts = judge.measure_translation(source, translated);
        const double change = tally.add_change(translated, source_rgb);
        const double seams = tally.add_seams(translated);
        tally.add_translation(facts);
        outputs.push_back(translated);
        image_json["translated"].push_back({{"domain", domain},
                                            {"seed", seed},
                                            {"found", facts.facts.found},
                                            {"score", number(facts.facts.best)},
                                            {"pose_error", number(facts.pose_error)},
                                            {"change", number(change)},
                                            {"seams", number(seams)}});
      }
      tally.add_diversity(outputs);
    }
    per_image.push_back(image_json);
    if (!o.quiet && (n + 1) % 10 == 0 && n + 1 < images.size())
      std::cerr << "  " << n + 1 << "/" << images.size() << " images\n";
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  if (!o.quiet) {
    std::cout << "\n"
              << std::left << std::setw(14) << "" << std::right << std::setw(7) << "crops" << std::setw(16)
              << "found" << std::setw(8) << "score" << std::setw(8) << "best" << std::setw(12) << "pose error" << std::setw(11)
              << "diversity" << std::setw(9) << "change" << std::setw(8) << "seams" << "\n";
    auto row = [&](const std::string& name, const align::FaceTally& t, bool translated) {
      const std::string found = std::to_string(t.found) + "/" + std::to_string(t.crops) + " " +
                                fixed(100.0 * t.found_rate(), 0) + "%";
      std::cout << std::left << std::setw(14) << name << std::right << std::setw(7) << t.crops << std::setw(16)
                << found << std::setw(8) << fixed(t.mean_score(), 2) << std::setw(8) << fixed(t.mean_best(), 2) << std::setw(12)
                << (translated ? fixed(t.pose(), 4) : "-") << std::setw(11)
                << (translated ? fixed(t.diversity(), 4) : "-") << std::setw(9)
                << (translated ? fixed(t.change(), 4) : "-") << std::setw(8) << fixed(t.seams(), 2) << "\n";
    };
    row("source", source_tally, false);
    for (const std::string& d : domains) row("-> " + d, tallies[d], true);
    std::cout << "\nfound: dlib's HOG frontal-face detector finds a face (score >= 0) in the crop at " << align::kMeasureSize
              << " px; score: its mean best score over the crops where it found one;\n"
                 "best: its mean best score over all crops (down to " << align::kScoreFloor << ": noise; a missed face is between that and 0).\n"
                 "pose error: mean distance of the 68 landmarks, translated vs source, in crop widths.\n"
                 "diversity: mean |difference| between the outputs of two seeds for one source, pixels in [0, 1];\n"
                 "change: the same between each output and its source.\n"
                 "seams: mean grey-level step across the seams of the generator's 2x nearest-neighbour upsampling\n"
                 "(every 2nd pixel) over the step elsewhere, at the model's size: about 1 = no grid, as a photo's.\n"
              << "(" << fixed(seconds, 1) << " s)\n";
  }

  if (!o.json_path.empty()) {
    auto tally_json = [](const align::FaceTally& t, bool translated) {
      json j = {{"crops", t.crops}, {"found", t.found}, {"found_rate", number(t.found_rate())},
                {"mean_score", number(t.mean_score())}, {"mean_best_score", number(t.mean_best())},
                {"seams", number(t.seams())}};
      if (translated) {
        j["pose_error"] = number(t.pose());
        j["diversity"] = number(t.diversity());
        j["change"] = number(t.change());
      }
      return j;
    };
    json report = {{"measure", "faces"},
                   {"checkpoint", o.checkpoint},
                   {"img_size", size},
                   {"measure_size", align::kMeasureSize},
                   {"seeds", o.seeds},
                   {"psi", o.psi},
                   {"images", images.size()},
                   {"pixel_scale", "[0, 1]"},
                   {"source", tally_json(source_tally, false)},
                   {"domains", json::object()},
                   {"per_image", per_image}};
    for (const std::string& d : domains) report["domains"][d] = tally_json(tallies[d], true);
    write_text(o.json_path, report.dump(2) + "\n", "json");
    if (!o.quiet) std::cout << "json: " << o.json_path << "\n";
  }
  return kExitDone;
}

// ---- flicker --------------------------------------------------------------------------------

struct FlickerCli {
  std::string input, output;
  std::string region = "changed";
  int dilate = 2;
  int max_frames = 0;
  std::string json_path, csv_path;
  bool quiet = false;
};

cv::VideoCapture open_video(const std::string& path, const char* what) {
  std::error_code ec;
  // A printf pattern (frames/%04d.png) names an image sequence, not a file.
  if (path.find('%') == std::string::npos && !fs::exists(path, ec))
    throw Fatal(std::string(what) + " video " + path + " does not exist");
  cv::VideoCapture cap;
  try {
    cap.open(path);
  } catch (const cv::Exception&) {
  }
  if (!cap.isOpened()) throw Fatal(std::string("cannot open the ") + what + " video " + path + ": not a video OpenCV can read");
  return cap;
}

int run_flicker(const FlickerCli& o) {
  require_writable(o.json_path, "json");
  require_writable(o.csv_path, "csv");
  cv::VideoCapture in = open_video(o.input, "input");
  cv::VideoCapture out = open_video(o.output, "output");
  align::FlickerOptions options;
  options.region = o.region == "all" ? align::FlickerOptions::Region::kAll : align::FlickerOptions::Region::kChanged;
  options.dilate_px = o.dilate;
  align::FlickerMeter meter(options);

  if (!o.quiet)
    std::cout << kProgram << " flicker: " << o.output << " against " << o.input << " (pixels counted: "
              << (o.region == "all" ? "all" : "changed, dilated " + std::to_string(o.dilate) + " px") << ")\n"
              << std::right << std::setw(6) << "pair" << std::setw(10) << "pixels" << std::setw(13) << "input err"
              << std::setw(13) << "output err" << std::setw(9) << "ratio" << "\n";
  std::ostringstream csv;
  csv << "frame,pixels,input_error,output_error,ratio\n";
  cv::Mat a, b;
  int frame = 0;
  while (o.max_frames <= 0 || frame < o.max_frames) {
    const bool got_in = in.read(a), got_out = out.read(b);
    if (!got_in && !got_out) break;
    if (got_in != got_out)
      throw Fatal("the videos differ in length: " + (got_in ? o.output : o.input) + " ends after " +
                  std::to_string(frame) + " frames, " + (got_in ? o.input : o.output) + " goes on");
    if (a.size() != b.size())
      throw Fatal("frame " + std::to_string(frame) + ": the input is " + std::to_string(a.cols) + "x" +
                  std::to_string(a.rows) + ", the output " + std::to_string(b.cols) + "x" + std::to_string(b.rows));
    if (a.type() != CV_8UC3 || b.type() != CV_8UC3) throw Fatal("frame " + std::to_string(frame) + ": not 8-bit colour");
    std::optional<align::FlickerPair> pair;
    try {
      pair = meter.add(a, b);
    } catch (const align::AlignError& e) {
      throw Fatal("frame " + std::to_string(frame) + ": " + e.what());
    }
    if (pair) {
      const align::FlickerPair& p = *pair;
      if (!o.quiet)
        std::cout << std::setw(6) << p.frame << std::setw(10) << p.pixels << std::setw(13) << fixed(p.input_error * 1e3, 4)
                  << std::setw(13) << fixed(p.output_error * 1e3, 4) << std::setw(9) << fixed(p.ratio(), 3) << "\n";
      csv << p.frame << "," << p.pixels << "," << std::setprecision(10) << p.input_error << "," << p.output_error << ","
          << (std::isfinite(p.ratio()) ? fixed(p.ratio(), 6) : std::string()) << "\n";
    }
    ++frame;
  }
  if (frame < 2) throw Fatal("the videos have " + std::to_string(frame) + " frame" + (frame == 1 ? "" : "s") + ": need at least 2");
  const align::FlickerSummary s = meter.summary();

  std::cout << (o.quiet ? "" : "\n") << "flicker ratio " << fixed(s.ratio, 3) << " (output's warping error "
            << fixed(s.output_error * 1e3, 4) << "e-3 / input's " << fixed(s.input_error * 1e3, 4) << "e-3, mean over "
            << s.measured << " of " << s.pairs.size() << " frame pairs"
            << (s.unchanged ? "; the output equals the input" : "") << ")\n";
  if (!o.quiet)
    std::cout << "errors: mean squared difference of RGB in [0, 1] between frame t and frame t+1 warped onto it along\n"
                 "the input's optical flow (x1e-3 in the table); 1 = the output moves exactly with the input.\n";

  if (!o.json_path.empty()) {
    json pairs = json::array();
    for (const align::FlickerPair& p : s.pairs)
      pairs.push_back({{"frame", p.frame}, {"pixels", p.pixels}, {"input_error", number(p.input_error)},
                       {"output_error", number(p.output_error)}, {"ratio", number(p.ratio())}});
    const json report = {{"measure", "flicker"},
                         {"input", o.input},
                         {"output", o.output},
                         {"region", o.region},
                         {"dilate_px", o.dilate},
                         {"frames", frame},
                         {"pairs_measured", s.measured},
                         {"input_error", number(s.input_error)},
                         {"output_error", number(s.output_error)},
                         {"ratio", number(s.ratio)},
                         {"unchanged", s.unchanged},
                         {"pairs", pairs}};
    write_text(o.json_path, report.dump(2) + "\n", "json");
  }
  if (!o.csv_path.empty()) write_text(o.csv_path, csv.str(), "csv");
  return kExitDone;
}

}  // namespace

int main(int argc, char** argv) {
  // `official` has its own option parser (the official protocol's options); it takes the rest.
  if (argc > 1 && std::string(argv[1]) == "official")
    return starganv2::tools::official_eval_main(argc - 1, argv + 1, "starganv2-eval official");
  if (argc > 1 && std::string(argv[1]) == "temporal")
    return starganv2::tools::temporal_eval_main(argc - 1, argv + 1, "starganv2-eval temporal");
  // OpenCV's video backends log every probe of a file they cannot read; the one error line this
  // tool prints says it.
  cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_SILENT);
  CLI::App app{
      "starganv2-eval: how good the pictures are, as figures. Subcommands:\n"
      "  faces    a model on aligned face images (e.g. CelebA-HQ's): each image resized to the model's size and\n"
      "           translated into each domain with each seed; dlib's face detector and 68 landmarks on each\n"
      "           translation vs its source (face kept, pose kept) and the distance between seeds (diversity)\n"
      "  flicker  a translated video against its input: the warping-error ratio of Lai et al. (ECCV 2018),\n"
      "           1 = the output moves exactly with the input, above 1 = it adds flicker of its own\n"
      "  official FID and LPIPS exactly as the official StarGAN v2 code computes them (metrics/eval.py), from\n"
      "           the val/ and train/ folders of a dataset; needs the converted Inception and AlexNet weights\n"
      "  temporal the element's temporal stabilisation on a clip (or a synthetic one): flicker with it off and on,\n"
      "           and how far it strays from the per-frame output where the input changes\n"
      "Run `starganv2-eval SUBCOMMAND --help` for each one's options.\n"
      "Exit codes: 0 done; 1 bad input: an unknown or invalid option, a missing or unusable model, folder,\n"
      "image or video, videos of different length or size, or an unwritable report (one message on stderr)."};
  app.require_subcommand(1);
  // Listed for --help; `official` runs before this parser (see above).
  app.add_subcommand("official", "FID and LPIPS by the official StarGAN v2 protocol (see `official --help`)");
  app.add_subcommand("temporal", "Temporal stabilisation off vs on, on a clip (see `temporal --help`)");
  app.option_defaults()->always_capture_default();

  FacesOptions fo;
  CLI::App* faces = app.add_subcommand(
      "faces",
      "Face kept, pose kept and diversity of a model on aligned face images. The images are taken as aligned\n"
      "(not detected): each is resized to the model's size, as the trainer's data is, and translated whole.\n"
      "Every crop, source and translation, is measured at 256 px (bilinear upscale of the model's size).");
  faces->footer(
      "Figures, per target domain (all sources into each domain, every seed):\n"
      "  found       crops where dlib's HOG frontal-face detector (one pass, its default threshold 0) finds a face\n"
      "  score       the detector's mean best score over the crops where it found one\n"
      "  best        its mean best score over all crops, floored at -1 (noise: -1; a missed face: between -1 and 0)\n"
      "  pose error  mean distance of the 68 landmarks (dlib's shape predictor, fitted from the source's detector box)\n"
      "              between the translation and its source, in crop widths\n"
      "  diversity   mean absolute pixel difference between the outputs of two seeds for one source (pixels in [0, 1])\n"
      "  change      the same between each output and its source\n"
      "  seams       mean grey-level step across the seams of the generator's 2x nearest-neighbour upsampling\n"
      "              over the step elsewhere, at the model's size (about 1 for a photo; a visible grid: well above)\n"
      "Example: starganv2-eval faces --checkpoint examples/models/demo-faces-64.safetensors --device cpu \\\n"
      "           ../shared/data/celeba_hq --seed 1 2 3 --json faces.json");
  faces->add_option("inputs", fo.inputs, "Aligned face images, or folders of .jpg/.jpeg/.png (sub-folders included)");
  faces->add_option("-c,--checkpoint", fo.checkpoint, "Model (.safetensors from starganv2-train or the converter; required)");
  faces->add_option("--fan-checkpoint", fo.fan_checkpoint, "FAN weights when they are not in --checkpoint (w_hpf > 0)");
  faces->add_option("--device", fo.device, "auto (CUDA when available), cpu or cuda:N; figures are exact on the CPU");
  // One domain per occurrence (or a comma list), so that it cannot swallow the input paths after it.
  faces->add_option("-d,--domain", fo.domains, "Target domain, a name or index; repeat or list for several "
                                               "(default: every domain)")
      ->delimiter(',')
      ->expected(1)
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  faces->add_option("-s,--seed", fo.seed_args, "Latent seeds, one style each, e.g. --seed 1 2 3 or 1,2,3 "
                                               "(several for diversity; default: 1 2 3)")
      ->delimiter(',')
      ->type_name("UINT");
  faces->add_option("--psi", fo.psi, "Truncation of latent styles towards the domain's average (1 = none)")
      ->check(CLI::Range(0.0, 1.0));
  faces->add_option("--landmarks", fo.landmarks, "dlib's 68-point shape predictor (.dat)");
  faces->add_option("--json", fo.json_path, "Also write the figures, per domain and per image, as JSON");
  faces->add_flag("-q,--quiet", fo.quiet, "No table (errors only)");

  FlickerCli fl;
  CLI::App* flicker = app.add_subcommand(
      "flicker",
      "Flicker of a video translation: INPUT is the video the element was given, OUTPUT what it made of it (same\n"
      "frames, same size; any file OpenCV's VideoCapture reads, e.g. raw AVI or an image sequence frames/%04d.png).\n"
      "Use lossless files: compression noise is flicker too.");
  flicker->footer(
      "For each pair of frames t, t+1: DIS optical flow on the input (both ways); pixels whose forward-backward\n"
      "round trip does not return, or whose flow leaves the frame, are dropped; input and output frame t+1 are warped\n"
      "onto t with that flow, and each one's error is the mean squared difference to its frame t (RGB in [0, 1])\n"
      "over the pixels the translation changed (output != input in frame t or t+1, dilated by --dilate px).\n"
      "The ratio is the output's error over the input's, each the mean over the pairs measured (Lai et al.'s E_warp).\n"
      "Example: starganv2-eval flicker in.avi out.avi --json flicker.json --csv flicker.csv");
  flicker->add_option("input", fl.input, "The input video")->required();
  flicker->add_option("output", fl.output, "The translated video")->required();
  flicker->add_option("--region", fl.region, "Pixels counted: changed (by the translation) or all")
      ->check(CLI::IsMember({"changed", "all"}));
  flicker->add_option("--dilate", fl.dilate, "Pixels the changed region is grown by")->check(CLI::Range(0, 64));
  flicker->add_option("--max-frames", fl.max_frames, "Only the first N frames (0 = all)")->check(CLI::NonNegativeNumber);
  flicker->add_option("--json", fl.json_path, "Also write the figures, per frame pair, as JSON");
  flicker->add_option("--csv", fl.csv_path, "Also write the per-pair figures as CSV");
  flicker->add_flag("-q,--quiet", fl.quiet, "Only the ratio");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::cerr << kProgram << ": error: " << e.what() << " (see --help)\n";
    return kExitBadInput;
  }
  // "--seed 1 2 faces/": the seed list reads on into the inputs; what is not a number is one.
  if (!fo.seed_args.empty()) {
    std::string bad;
    if (!starganv2::plugin::split_seed_args(fo.seed_args, fo.seeds, fo.inputs, bad)) {
      std::cerr << kProgram << ": error: --seed " << bad << ": not a seed (a whole number from 0 to 2^64-1)\n";
      return kExitBadInput;
    }
  }
  try {
    if (faces->parsed()) return run_faces(fo);
    if (flicker->parsed()) return run_flicker(fl);
  } catch (const Fatal& e) {
    std::cerr << kProgram << ": error: " << e.what() << "\n";
    return kExitBadInput;
  } catch (const std::exception& e) {
    std::cerr << kProgram << ": error: " << e.what() << "\n";
    return kExitBadInput;
  }
  return kExitBadInput;
}
