#include "evaluation.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <opencv2/core.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <optional>
#include <stdexcept>

#include "data/augment.h"
#include "model/checkpoint.h"
#include "model/inception.h"
#include "model/locations.h"
#include "model/lpips.h"
#include "model/official_eval.h"
#include "random.h"

#ifdef STARGANV2_TRAIN_FACES
#include "align/face_metrics.h"
#include "align/image.h"
#include "align/landmarks.h"
#endif

namespace starganv2 {

namespace fs = std::filesystem;

namespace {

// (N,3,H,W) in [-1, 1] -> (N,H,W,3) uint8 on the CPU, rounded as write_png rounds.
at::Tensor to_pixels(const at::Tensor& x) {
  return ((x.detach().to(at::kCPU, at::kFloat) + 1) / 2).clamp(0, 1).mul(255).add(0.5).floor().to(at::kByte).permute({0, 2, 3, 1}).contiguous();
}

#ifdef STARGANV2_TRAIN_FACES
// Row i of (N,H,W,3) uint8 as an RGB cv::Mat sharing its pixels.
cv::Mat pixels_mat(const at::Tensor& pixels, int64_t i) {
  const at::Tensor row = pixels[i];
  return cv::Mat(static_cast<int>(row.size(0)), static_cast<int>(row.size(1)), CV_8UC3, row.data_ptr());
}
#endif

// "eval/<figure>/<name>"
std::string key(const char* figure, const std::string& name) { return std::string("eval/") + figure + "/" + name; }

void require_file(const fs::path& path, const char* option, const std::string& make_it) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec))
    throw std::invalid_argument(std::string(option) + " " + path.string() + ": no such file; make it with `" +
                                converter_command() + " " + make_it + "`");
}

// The official protocol's options in a run: its defaults (10 outputs per source, both modes), the
// run's folders, seed, device, and --val-batch-size as the official val_batch_size.
OfficialEvalOptions official_options(const EvalSetup& s) {
  OfficialEvalOptions o;
  o.val_dir = s.val_dir;
  o.train_dir = s.train_dir;
  o.eval_dir = s.eval_dir;
  o.batch_size = s.batch_size;
  o.seed = s.seed;
  o.device = s.device;
  return o;
}

}  // namespace

double pixel_distance(const at::Tensor& a, const at::Tensor& b) {
  return (to_pixels(a).to(at::kInt) - to_pixels(b).to(at::kInt)).abs().to(at::kDouble).mean().item<double>() / 255.0;
}

struct TrainingEvaluator::Impl {
  EvalSetup setup;
  at::Tensor x_src, y_src;  // (S,3,H,W) in [-1, 1] and (S) int64, on the CPU
  at::Tensor z;             // (kEvalStyles, latent_dim): the same styles at every evaluation
  InceptionV3 inception{nullptr};
  LPIPS lpips{nullptr};
#ifdef STARGANV2_TRAIN_FACES
  std::optional<align::FaceJudge> judge;
  std::vector<align::SourceFacts> sources;
  align::FaceTally source_tally;
#endif
};

bool TrainingEvaluator::has_face_metrics() {
#ifdef STARGANV2_TRAIN_FACES
  return true;
#else
  return false;
#endif
}

TrainingEvaluator::TrainingEvaluator(const EvalSetup& setup, const ImageFolder& val) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.setup = setup;
  if (setup.images_per_domain < 1) throw std::invalid_argument("--eval-images must be >= 1");
  if (setup.inception.empty() != setup.lpips.empty())
    throw std::invalid_argument(std::string(setup.inception.empty() ? "--lpips" : "--inception") +
                                " without " + (setup.inception.empty() ? "--inception" : "--lpips") +
                                ": FID and LPIPS come from one protocol run; give both weight files");
  if (!setup.inception.empty()) {
    // LPIPS runs AlexNet's features on the outputs at the model's size; at 32 px its last pooling
    // has nothing left to pool.
    if (setup.img_size < 64)
      throw std::invalid_argument("--inception/--lpips: LPIPS needs images of at least 64 px (AlexNet's features); "
                                  "this run's --img-size is " + std::to_string(setup.img_size));
    require_file(setup.inception, "--inception", "--inception inception_v3_google-0cc3c7bd.pth --out " + setup.inception.string());
    require_file(setup.lpips, "--lpips",
                 "--alexnet alexnet-owt-7be5be79.pth --lpips lpips_weights.ckpt --out " + setup.lpips.string());
    try {
      m.inception = load_inception(setup.inception);
      m.lpips = load_lpips(setup.lpips);
    } catch (const std::exception& e) {
      throw std::invalid_argument(e.what());
    }
    // The folders FID and LPIPS will read, now rather than at the first evaluation.
    TranslatorNets shape_only;
    shape_only.config.num_domains = static_cast<int64_t>(setup.domains.size());
    shape_only.domains = setup.domains;
    try {
      check_official_eval(shape_only, official_options(setup));
    } catch (const std::invalid_argument& e) {
      std::string what = std::string("FID and LPIPS (--inception, --lpips): ") + e.what();
      // The protocol's batch is the trainer's --val-batch-size.
      if (const auto at = what.find("lower --batch-size"); at != std::string::npos) what.replace(at, 18, "lower --val-batch-size");
      throw std::invalid_argument(what);
    }
  }
#ifdef STARGANV2_TRAIN_FACES
  const std::string landmarks = setup.landmarks.empty() ? align::kDefaultShapeModel : setup.landmarks.string();
  try {
    m.judge.emplace(align::ShapeModel::load(landmarks));
  } catch (const std::exception& e) {
    throw std::invalid_argument(std::string("--landmarks: ") + e.what());
  }
#else
  if (!setup.landmarks.empty())
    throw std::invalid_argument("--landmarks " + setup.landmarks.string() +
                                ": this starganv2-train was built without align/ (dlib), so it measures no landmarks");
#endif

  std::vector<at::Tensor> images;
  std::vector<int64_t> labels;
  for (size_t d = 0; d < val.files.size(); ++d) {
    const int64_t n = std::min<int64_t>(setup.images_per_domain, static_cast<int64_t>(val.files[d].size()));
    for (int64_t i = 0; i < n; ++i) {
      images.push_back(resize_normalise(decode_rgb(val.files[d][static_cast<size_t>(i)]), static_cast<int>(setup.img_size)));
      labels.push_back(static_cast<int64_t>(d));
    }
  }
  m.x_src = at::stack(images);
  m.y_src = at::tensor(labels, at::kLong);

#ifdef STARGANV2_TRAIN_FACES
  // The sources do not change during training: measured once.
  const at::Tensor pixels = to_pixels(m.x_src);
  for (int64_t i = 0; i < pixels.size(0); ++i) {
    const cv::Mat crop = pixels_mat(pixels, i);
    m.sources.push_back(m.judge->measure_source(crop));
    m.source_tally.add_detection(m.sources.back().facts);
    m.source_tally.add_seams(crop);
  }
#endif
}

TrainingEvaluator::~TrainingEvaluator() = default;

EvalFigures TrainingEvaluator::evaluate(Solver& solver) {
  Impl& m = *impl_;
  const EvalSetup& s = m.setup;
  const ModelConfig& c = solver.options().model;
  const torch::Device device = solver.device();
  Networks& nets = solver.nets_ema();
  EvalFigures figures;
  if (!m.z.defined()) {
    // Its own generator: the training's streams (random.h) are counters, but the global
    // generator must not move either.
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(derive_seed(s.seed, RandomStream::kEvalStyle, 0));
    m.z = at::randn({kEvalStyles, c.latent_dim}, gen, at::TensorOptions().dtype(at::kFloat));
  }
  {
    torch::NoGradGuard no_grad;
    const int64_t count = m.x_src.size(0);
#ifdef STARGANV2_TRAIN_FACES
    align::FaceTally all;
#endif
    double diversity_sum = 0;
    for (int64_t y = 0; y < c.num_domains; ++y) {
      const std::string& domain = s.domains.at(static_cast<size_t>(y));
      // outputs[k]: every source in style k, (S,3,H,W) in [-1, 1] on the CPU
      std::vector<at::Tensor> outputs;
      for (int64_t k = 0; k < kEvalStyles; ++k) {
        std::vector<at::Tensor> parts;
        for (int64_t first = 0; first < count; first += s.batch_size) {
          const int64_t n = std::min(s.batch_size, count - first);
          const at::Tensor x = m.x_src.narrow(0, first, n).to(device);
          const at::Tensor y_trg = at::full({n}, y, at::TensorOptions().dtype(at::kLong).device(device));
          const at::Tensor s_trg = nets.mapping_network(m.z[k].unsqueeze(0).repeat({n, 1}).to(device), y_trg);
          parts.push_back(nets.generator(x, s_trg, solver.masks_for(x)).to(at::kCPU, at::kFloat));
        }
        outputs.push_back(at::cat(parts));
      }
      double diversity = 0;
      int64_t pairs = 0;
      for (size_t a = 0; a < outputs.size(); ++a)
        for (size_t b = a + 1; b < outputs.size(); ++b) {
          diversity += pixel_distance(outputs[a], outputs[b]);
          ++pairs;
        }
      diversity /= static_cast<double>(pairs);
      diversity_sum += diversity;
      figures.emplace_back(key("diversity", domain), diversity);
#ifdef STARGANV2_TRAIN_FACES
      align::FaceTally tally;
      for (const at::Tensor& out : outputs) {
        const at::Tensor pixels = to_pixels(out);
        for (int64_t i = 0; i < count; ++i) {
          const cv::Mat crop = pixels_mat(pixels, i);
          const align::TranslationFacts t = m.judge->measure_translation(m.sources[static_cast<size_t>(i)], crop);
          tally.add_translation(t);
          all.add_translation(t);
          tally.add_seams(crop);
          all.add_seams(crop);
        }
      }
      figures.emplace_back(key("face_found", domain), tally.found_rate());
      figures.emplace_back(key("face_score", domain), tally.mean_score());
      figures.emplace_back(key("pose_error", domain), tally.pose());
      figures.emplace_back(key("seams", domain), tally.seams());
#endif
    }
    figures.emplace_back(key("diversity", "mean"), diversity_sum / static_cast<double>(c.num_domains));
#ifdef STARGANV2_TRAIN_FACES
    figures.emplace_back(key("face_found", "mean"), all.found_rate());
    figures.emplace_back(key("face_found", "source"), m.source_tally.found_rate());
    figures.emplace_back(key("face_score", "mean"), all.mean_score());
    figures.emplace_back(key("face_score", "source"), m.source_tally.mean_score());
    figures.emplace_back(key("pose_error", "mean"), all.pose());
    figures.emplace_back(key("seams", "mean"), all.seams());
    figures.emplace_back(key("seams", "source"), m.source_tally.seams());
#endif
  }

  if (m.inception) {
    TranslatorNets t;
    t.config = c;
    t.domains = s.domains;
    t.generator = nets.generator;
    t.mapping_network = nets.mapping_network;
    t.style_encoder = nets.style_encoder;
    t.fan = solver.fan();
    OfficialEvalOptions o = official_options(s);
    o.step = solver.step();
    const auto decode = [](const fs::path& p) {
      cv::Mat rgb = decode_rgb(p);
      return at::from_blob(rgb.data, {rgb.rows, rgb.cols, 3}, at::kByte).clone();
    };
    std::vector<OfficialEvalMode> results;
    try {
      results = run_official_eval(t, *m.inception, *m.lpips, o, decode);
    } catch (...) {
      for (const auto& [name, net] : nets.named()) net->train();
      throw;
    }
    // run_official_eval puts the networks in eval mode; the official trainer never does, and
    // the sample grids of the next steps see them as the training leaves them.
    for (const auto& [name, net] : nets.named()) net->train();
    for (const OfficialEvalMode& r : results) {
      for (const auto& [k, v] : r.fid) figures.emplace_back("eval/" + k, v);
      for (const auto& [k, v] : r.lpips) figures.emplace_back("eval/" + k, v);
    }
  }
  return figures;
}

std::string TrainingEvaluator::summary(const EvalFigures& figures) {
  static const std::map<std::string, std::string> labels = {
      {"eval/diversity/mean", "diversity"},       {"eval/face_found/mean", "face found"},
      {"eval/pose_error/mean", "pose error"},     {"eval/FID_latent/mean", "FID latent"},
      {"eval/FID_reference/mean", "FID reference"}, {"eval/LPIPS_latent/mean", "LPIPS latent"},
      {"eval/LPIPS_reference/mean", "LPIPS reference"}};
  std::string line;
  char text[96];
  for (const auto& [k, v] : figures) {
    if (k == "eval/face_found/source") {
      std::snprintf(text, sizeof text, " (sources %.0f%%)", 100.0 * v);
      line += text;
      continue;
    }
    const auto it = labels.find(k);
    if (it == labels.end()) continue;
    if (k == "eval/face_found/mean")
      std::snprintf(text, sizeof text, "%s %.0f%%", it->second.c_str(), 100.0 * v);
    else
      std::snprintf(text, sizeof text, "%s %.4g", it->second.c_str(), v);
    line += (line.empty() ? "" : ", ") + std::string(text);
  }
  return line;
}

}  // namespace starganv2
