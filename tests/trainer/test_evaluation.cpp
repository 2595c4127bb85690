// The trainer's evaluation (--eval-every, issue 23) and its curves picture, without training:
// the figures of a tiny solver on synthetic validation images, that evaluating leaves the
// training alone, and that the picture of a log shows that log.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <torch/utils.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "synthetic.h"
#include "tiny_options.h"
#include "trainer/curves.h"
#include "trainer/data/image_folder.h"
#include "trainer/evaluation.h"
#include "trainer/solver.h"

#ifdef STARGANV2_TRAIN_FACES
#include "align/face_metrics.h"
#include "align/landmarks.h"
#endif

namespace fs = std::filesystem;

namespace starganv2 {
namespace {

struct TempDir : test::TempDir {
  TempDir() : test::TempDir("eval") {}
};

std::map<std::string, double> as_map(const EvalFigures& figures) {
  std::map<std::string, double> m;
  for (const auto& [k, v] : figures) m[k] = v;
  return m;
}

// Equal figures, NaN (nothing averaged) equal to NaN.
bool same_figures(const std::map<std::string, double>& a, const std::map<std::string, double>& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [k, v] : a) {
    const auto it = b.find(k);
    if (it == b.end() || !(v == it->second || (std::isnan(v) && std::isnan(it->second)))) return false;
  }
  return true;
}

bool shape_model_missing() {
#ifdef STARGANV2_TRAIN_FACES
  std::error_code ec;
  return !fs::exists(align::kDefaultShapeModel, ec);
#else
  return false;
#endif
}

TEST(PixelDistance, IsTheMeanAbsoluteDifferenceOfThe8BitPixels) {
  // -1 and 1 are 0 and 255; 0 rounds to 128 (127.5 + 0.5, floored), as write_png writes it.
  const at::Tensor a = at::tensor({-1.0f, 1.0f, 0.0f, 0.0f}).reshape({1, 1, 2, 2});
  const at::Tensor b = at::tensor({1.0f, 1.0f, -1.0f, 0.0f}).reshape({1, 1, 2, 2});
  EXPECT_NEAR(pixel_distance(a, b), (255.0 + 0 + 128 + 0) / 4 / 255, 1e-12);
  EXPECT_EQ(pixel_distance(a, a), 0.0);
#ifdef STARGANV2_TRAIN_FACES
  // The figure of `starganv2-eval faces` (align's mean_abs_diff on 8-bit pixels) on the same images.
  torch::manual_seed(3);
  const at::Tensor x = at::rand({1, 3, 16, 16}) * 2 - 1, y = at::rand({1, 3, 16, 16}) * 2 - 1;
  auto mat = [](const at::Tensor& t) {
    const at::Tensor p = ((t[0] + 1) / 2).clamp(0, 1).mul(255).add(0.5).floor().to(at::kByte).permute({1, 2, 0}).contiguous();
    return cv::Mat(16, 16, CV_8UC3, p.data_ptr()).clone();
  };
  EXPECT_NEAR(pixel_distance(x, y), align::mean_abs_diff(mat(x), mat(y)), 1e-9);
#endif
}

TEST(TrainingEvaluator, FiguresOfTheEmaNetworksLeaveTrainingAlone) {
  if (shape_model_missing()) GTEST_SKIP() << "dlib's shape model is not installed: " << "face metrics cannot be measured";
  // One thread: OpenMP's threads cost more than they give to a tiny model on a loaded 2-core machine.
  at::set_num_threads(1);
  TempDir dir;
  test::write_synthetic_set(dir.path / "val", 2, 32, 11);
  const ImageFolder val = scan_image_folder(dir.path / "val", {}, [](const std::string&) {});
  TrainOptions o = test::tiny_options();
  Solver solver(o, torch::kCPU);
  EvalSetup setup;
  setup.domains = val.domains;
  setup.val_dir = val.root;
  setup.images_per_domain = 1;
  setup.img_size = o.model.img_size;
  setup.batch_size = 3;
  setup.seed = o.seed;
  TrainingEvaluator evaluator(setup, val);

  const at::Tensor rng_before = at::detail::getDefaultCPUGenerator().get_state();
  const at::Tensor weight = solver.nets_ema().generator->named_parameters()["from_rgb.weight"].clone();
  const auto first = as_map(evaluator.evaluate(solver));
  // Nothing the training reads moved: the global generator, the EMA weights, the modes.
  EXPECT_TRUE(at::equal(at::detail::getDefaultCPUGenerator().get_state(), rng_before));
  EXPECT_TRUE(at::equal(solver.nets_ema().generator->named_parameters()["from_rgb.weight"], weight));
  EXPECT_TRUE(solver.nets_ema().generator->is_training());

  for (const std::string d : {"cool", "warm", "mean"}) {
    ASSERT_TRUE(first.count("eval/diversity/" + d)) << d;
    // Styles of a random G differ, but not by much.
    EXPECT_GT(first.at("eval/diversity/" + d), 0.0) << d;
    EXPECT_LT(first.at("eval/diversity/" + d), 0.5) << d;
  }
  EXPECT_NEAR(first.at("eval/diversity/mean"), (first.at("eval/diversity/cool") + first.at("eval/diversity/warm")) / 2, 1e-12);
  if (TrainingEvaluator::has_face_metrics()) {
    // Circles and squares are no faces; the pose error is still a number (fits start from the
    // template's box).
    for (const std::string d : {"cool", "warm", "mean", "source"}) EXPECT_EQ(first.at("eval/face_found/" + d), 0.0) << d;
    EXPECT_TRUE(std::isnan(first.at("eval/face_score/mean")));
    EXPECT_TRUE(std::isfinite(first.at("eval/pose_error/mean")));
    EXPECT_GT(first.at("eval/pose_error/mean"), 0.0);
    // The seams figure of `starganv2-eval faces`, for every domain and the sources.
    for (const std::string d : {"cool", "warm", "mean", "source"}) {
      ASSERT_TRUE(first.count("eval/seams/" + d)) << d;
      EXPECT_TRUE(std::isfinite(first.at("eval/seams/" + d))) << d;
      EXPECT_GT(first.at("eval/seams/" + d), 0.0) << d;
    }
  } else {
    EXPECT_EQ(first.count("eval/face_found/mean"), 0u);
  }
  // The same styles every time: figures of unchanged networks repeat exactly.
  EXPECT_TRUE(same_figures(as_map(evaluator.evaluate(solver)), first));
  // One style for all: no diversity (mode collapse shows as 0).
  {
    torch::NoGradGuard no_grad;
    for (auto& p : solver.nets_ema().mapping_network->parameters()) p.zero_();
  }
  EXPECT_EQ(as_map(evaluator.evaluate(solver)).at("eval/diversity/mean"), 0.0);
}

TEST(TrainingEvaluator, BadSettingsAreNamed_n) {
  TempDir dir;
  test::write_synthetic_set(dir.path / "val", 1, 32, 12);
  const ImageFolder val = scan_image_folder(dir.path / "val", {}, [](const std::string&) {});
  EvalSetup setup;
  setup.domains = val.domains;
  setup.img_size = 64;
  auto message = [&](const EvalSetup& s) {
    try {
      TrainingEvaluator e(s, val);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EvalSetup s = setup;
  s.inception = dir.path / "inception.safetensors";
  EXPECT_NE(message(s).find("--inception without --lpips"), std::string::npos) << message(s);
  s.lpips = dir.path / "lpips.safetensors";
  EXPECT_NE(message(s).find("--inception " + s.inception.string() + ": no such file; make it with `"), std::string::npos)
      << message(s);
  s.img_size = 32;
  EXPECT_NE(message(s).find("LPIPS needs images of at least 64 px"), std::string::npos) << message(s);
  s = setup;
  s.landmarks = dir.path / "nope.dat";
  EXPECT_NE(message(s).find("--landmarks"), std::string::npos) << message(s);
  s = setup;
  s.images_per_domain = 0;
  EXPECT_NE(message(s).find("--eval-images must be >= 1"), std::string::npos) << message(s);
}

// A log as the trainer writes it: loss lines every 10 iterations, evaluation lines every 50.
std::string synthetic_log(double slope) {
  std::string log;
  for (int step = 10; step <= 200; step += 10) {
    const double t = step / 200.0;
    log += "{\"step\":" + std::to_string(step) + ",\"D/latent_total\":" + std::to_string(1.5 - slope * t) +
           ",\"D/ref_total\":" + std::to_string(1.4 - slope * t) + ",\"G/latent_total\":" + std::to_string(3 + slope * t) +
           ",\"G/latent_adv\":" + std::to_string(1 + t) + ",\"D/latent_reg\":0.1}\n";
    if (step % 50 == 0)
      log += "{\"step\":" + std::to_string(step) + ",\"eval_s\":1.0,\"eval/diversity/cool\":" + std::to_string(0.1 * t) +
             ",\"eval/diversity/mean\":" + std::to_string(0.12 * slope * t) + ",\"eval/face_score/mean\":null}\n";
  }
  return log + "{\"step\":210,\"D/lat";  // a half-written last line is skipped
}

TEST(Curves, ThePictureShowsTheLog) {
  const cv::Mat a = draw_curves(synthetic_log(1.0));
  ASSERT_FALSE(a.empty());
  // Loss panels and the diversity panel: 2 columns, 3 rows (5 panels).
  EXPECT_EQ(a.cols, 2 * 520);
  EXPECT_EQ(a.rows, 3 * 300);
  // Not a blank canvas: white background, grey grid, coloured lines.
  cv::Mat grey;
  cv::cvtColor(a, grey, cv::COLOR_BGR2GRAY);
  double lo = 0, hi = 0;
  cv::minMaxLoc(grey, &lo, &hi);
  EXPECT_EQ(hi, 255.0);
  EXPECT_LT(lo, 100.0);
  EXPECT_GT(cv::countNonZero(grey < 250), a.total() / 50);
  // Another log, another picture.
  const cv::Mat b = draw_curves(synthetic_log(0.2));
  ASSERT_EQ(a.size(), b.size());
  cv::Mat diff;
  cv::absdiff(a, b, diff);
  cv::cvtColor(diff, grey, cv::COLOR_BGR2GRAY);
  EXPECT_GT(cv::countNonZero(grey), 500);
  // Without evaluation lines, no metric panels.
  EXPECT_EQ(draw_curves("{\"step\":1,\"D/latent_total\":1}\n{\"step\":2,\"D/latent_total\":2}\n").rows, 300);
  EXPECT_TRUE(draw_curves("").empty());
  EXPECT_TRUE(draw_curves("not json\n{\"no_step\":1}\n").empty());
}

TEST(Curves, WrittenAsAPngThatDecodes) {
  TempDir dir;
  {
    std::ofstream(dir.path / "log.jsonl") << synthetic_log(1.0);
  }
  ASSERT_TRUE(write_curves(dir.path / "log.jsonl", dir.path / "curves.png"));
  const cv::Mat png = cv::imread((dir.path / "curves.png").string(), cv::IMREAD_COLOR);
  ASSERT_FALSE(png.empty());
  cv::Mat diff;
  cv::absdiff(png, draw_curves(synthetic_log(1.0)), diff);
  EXPECT_EQ(cv::countNonZero(diff.reshape(1)), 0);
  // Nothing to draw: no file.
  {
    std::ofstream(dir.path / "empty.jsonl") << "";
  }
  EXPECT_FALSE(write_curves(dir.path / "empty.jsonl", dir.path / "empty.png"));
  EXPECT_FALSE(fs::exists(dir.path / "empty.png"));
}

}  // namespace
}  // namespace starganv2
