// FID and LPIPS against the official StarGAN v2 metrics code (clovaai/stargan-v2 metrics/fid.py,
// metrics/lpips.py, core/data_loader.py). tests/model/metrics_fixture.safetensors holds what the
// official code computed (tests/model/make_metrics_fixture.py) with random weights that both
// sides generate from a seed (seeded_state below repeats the script's op for op), so the fixture
// stores only inputs' seeds and outputs. Each metric is also checked to fail when broken.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/utils.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/checkpoint.h"
#include "model/frechet.h"
#include "model/inception.h"
#include "model/lpips.h"
#include "model/metric_weights.h"
#include "model/pil_resize.h"
#include "model/safetensors.h"

namespace fs = std::filesystem;

namespace starganv2 {
namespace {

// One thread: results do not depend on it, and on a loaded 2-core test machine OpenMP's spinning
// threads cost more than the second core gives (see test_official_eval.cpp).
const bool kOneThread = [] {
  at::set_num_threads(1);
  return true;
}();

// The seeds of make_metrics_fixture.py.
constexpr uint64_t kInceptionSeed = 23, kInceptionInputSeed = 24, kLpipsSeed = 25, kLpipsInputSeed = 26,
                   kFrechetSeed = 27;

// Tolerances: float32 convolutions of the same library in another process and thread count
// differ by reassociation only. Inception features reach ~120 with random weights (90 layers).
constexpr double kFeatureTolerance = 1e-4;  // times max|official feature|
constexpr double kLpipsTolerance = 1e-5;    // absolute, on values ~0.9
constexpr double kFrechetTolerance = 1e-7;  // relative to scipy's value

const SafetensorsFile& fixture() {
  static const SafetensorsFile file = [] {
    const char* root = std::getenv("STARGANV2_SOURCE_ROOT");
    fs::path p = fs::path(root ? root : ".") / "tests" / "model" / "metrics_fixture.safetensors";
    return read_safetensors(p);
  }();
  return file;
}
const at::Tensor& expected_of(const std::string& name) {
  const auto it = fixture().tensors.find(name);
  if (it == fixture().tensors.end()) throw std::runtime_error("metrics fixture: no tensor " + name);
  return it->second;
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// make_metrics_fixture.py seeded_state: sorted names, one CPU generator, the same ops in the same
// order. Returns the sum of all values (the script stores it to tell a generation mismatch from
// a network mismatch).
double seeded_state(torch::nn::Module& module, uint64_t seed) {
  std::map<std::string, at::Tensor> state;
  for (auto& [name, t] : named_state(module)) state.emplace(name, t);
  at::Generator g = at::detail::createCPUGenerator(seed);
  double sum = 0;
  torch::NoGradGuard no_grad;
  for (auto& [name, dst] : state) {
    const auto shape = dst.sizes().vec();
    at::Tensor t;
    if (ends_with(name, "running_var")) {
      t = at::rand(shape, g) + 0.5;
    } else if (ends_with(name, "running_mean") || ends_with(name, "bias")) {
      t = at::randn(shape, g) * 0.1;
    } else if (name.rfind("lpips_weights.", 0) == 0) {
      t = at::rand(shape, g);
    } else if (shape.size() == 1) {
      t = at::randn(shape, g) * 0.1 + 1.0;
    } else {
      int64_t fan_in = 1;
      for (size_t i = 1; i < shape.size(); ++i) fan_in *= shape[i];
      t = at::randn(shape, g) * std::sqrt(2.0 / static_cast<double>(fan_in));
    }
    dst.copy_(t);
    sum += t.to(at::kDouble).sum().item<double>();
  }
  return sum;
}

double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

// Built once (24M random values): the tests that break it restore it.
InceptionV3 seeded_inception() {
  static InceptionV3 cached = [] {
    InceptionV3 net;
    const double sum = seeded_state(*net, kInceptionSeed);
    EXPECT_NEAR(sum, std::stod(fixture().metadata.at("inception.weights_sum")), 1e-6 * std::abs(sum))
        << "the seeded weights differ from the script's: the features cannot match";
    EXPECT_EQ(named_state(*net).size(), std::stoul(fixture().metadata.at("inception.tensors")))
        << "our Inception has other tensors than torchvision's (AuxLogits and fc aside)";
    net->eval();
    return net;
  }();
  return cached;
}

at::Tensor inception_input() {
  at::Generator g = at::detail::createCPUGenerator(kInceptionInputSeed);
  return at::randn({2, 3, 299, 299}, g);
}

TEST(Metrics, InceptionFeaturesMatchTheOfficialFidPath) {
  InceptionV3 net = seeded_inception();
  torch::NoGradGuard no_grad;
  const at::Tensor features = net->forward(inception_input());
  const at::Tensor& expected = expected_of("inception.features");
  ASSERT_EQ(features.sizes(), expected.sizes());
  const double scale = expected.abs().max().item<double>();
  const double diff = max_abs_diff(features, expected);
  std::printf("Inception features: max |ours - official| %.3g (max |feature| %.3g)\n", diff, scale);
  EXPECT_LE(diff, kFeatureTolerance * scale) << "max |feature| " << scale;
}

TEST(Metrics, InceptionFailsWhenBroken) {
  // On a small input (the network takes any size >= 75; 299 costs 8x more on a test machine),
  // against the unbroken network's output: one weight 1% off in the last block, or torchvision's
  // transform_input applied, moves the features far beyond the parity tolerance.
  InceptionV3 net = seeded_inception();
  torch::NoGradGuard no_grad;
  const at::Tensor x = inception_input().narrow(0, 0, 1).narrow(2, 0, 107).narrow(3, 0, 107).contiguous();
  const at::Tensor good = net->forward(x);
  const double scale = good.abs().max().item<double>();
  for (auto& [name, t] : named_state(*net))
    if (name == "Mixed_7c.branch_pool.conv.weight") t.mul_(1.01);
  EXPECT_GT(max_abs_diff(net->forward(x), good), 10 * kFeatureTolerance * scale);
  for (auto& [name, t] : named_state(*net))
    if (name == "Mixed_7c.branch_pool.conv.weight") t.div_(1.01);
  EXPECT_LE(max_abs_diff(net->forward(x), good), kFeatureTolerance * scale);  // restored
  at::Tensor transformed = x.clone();
  const double m[3] = {0.485, 0.456, 0.406}, s[3] = {0.229, 0.224, 0.225};
  for (int c = 0; c < 3; ++c) transformed[0][c].copy_(x[0][c] * (s[c] / 0.5) + (m[c] - 0.5) / 0.5);
  EXPECT_GT(max_abs_diff(net->forward(transformed), good), 10 * kFeatureTolerance * scale);
}

LPIPS seeded_lpips() {
  LPIPS net;
  const double sum = seeded_state(*net, kLpipsSeed);
  EXPECT_NEAR(sum, std::stod(fixture().metadata.at("lpips.weights_sum")), 1e-6 * std::abs(sum));
  net->eval();
  return net;
}

std::vector<at::Tensor> lpips_group() {
  at::Generator g = at::detail::createCPUGenerator(kLpipsInputSeed);
  std::vector<at::Tensor> group;
  for (int i = 0; i < 3; ++i) group.push_back(at::rand({2, 3, 256, 256}, g) * 2 - 1);
  return group;
}

TEST(Metrics, LpipsMatchesTheOfficialValues) {
  LPIPS net = seeded_lpips();
  torch::NoGradGuard no_grad;
  const auto group = lpips_group();
  const at::Tensor& per_image = expected_of("lpips.per_image");  // (pairs, 2)
  int pair = 0;
  double worst = 0;
  for (size_t i = 0; i + 1 < group.size(); ++i)
    for (size_t j = i + 1; j < group.size(); ++j, ++pair) {
      const at::Tensor d = net->distance_per_image(group[i], group[j]);
      worst = std::max(worst, max_abs_diff(d, per_image[pair]));
      EXPECT_LE(max_abs_diff(d, per_image[pair]), kLpipsTolerance) << "pair " << i << "," << j;
    }
  std::printf("LPIPS per image: max |ours - official| %.3g\n", worst);
  const double value = lpips_of_group(*net, group).mean().item<double>();
  EXPECT_NEAR(value, expected_of("lpips.group").item<double>(), kLpipsTolerance);
  // The official forward (the batch mean); symmetric; zero for identical images.
  EXPECT_NEAR(net->forward(group[1], group[0]).item<double>(), per_image[0].mean().item<double>(), kLpipsTolerance);
  EXPECT_LT(net->forward(group[0], group[0]).item<double>(), 1e-12);
}

TEST(Metrics, LpipsFailsWhenBroken) {
  LPIPS net = seeded_lpips();
  torch::NoGradGuard no_grad;
  const auto group = lpips_group();
  const double expected = expected_of("lpips.per_image")[0].mean().item<double>();

  // Without the unit normalisation along channels (the same weights and features otherwise).
  auto lin = named_state(*net);
  std::map<std::string, at::Tensor> by_name(lin.begin(), lin.end());
  const auto fx = net->features(group[0]), fy = net->features(group[1]);
  ASSERT_EQ(fx.size(), 5u);
  double unnormalised = 0;
  for (size_t k = 0; k < fx.size(); ++k) {
    const at::Tensor w = by_name.at("lpips_weights." + std::to_string(k) + ".main.1.weight");
    const at::Tensor d = fx[k] - fy[k];
    unnormalised += at::conv2d(d * d, w).mean().item<double>();
  }
  EXPECT_GT(std::abs(unnormalised - expected), 100 * kLpipsTolerance);

  // Without the input normalisation: the raw [-1,1] images through the same path.
  const at::Tensor raw = net->distance_per_image(group[0] * 0.458 - 0.03, group[1] * 0.458 - 0.03).mean();
  EXPECT_GT(std::abs(raw.item<double>() - expected), 100 * kLpipsTolerance);

  // One linear weight perturbed.
  by_name.at("lpips_weights.2.main.1.weight").mul_(1.05);
  EXPECT_GT(std::abs(net->forward(group[0], group[1]).item<double>() - expected), 100 * kLpipsTolerance);
}

GaussianStats stats_of(uint64_t seed, int64_t n, int64_t d, double shift) {
  // make_metrics_fixture.py frechet_features.
  at::Generator g = at::detail::createCPUGenerator(seed);
  const at::Tensor f = at::randn({n, d}, g, at::TensorOptions().dtype(at::kDouble));
  at::Tensor mixed = f.clone();
  mixed.narrow(1, 1, d - 1).copy_(f.narrow(1, 1, d - 1) + 0.5 * f.narrow(1, 0, d - 1));
  const at::Tensor scale = 1.0 + at::arange(d, at::kDouble) / static_cast<double>(d);
  return gaussian_stats(mixed * scale + shift);
}

TEST(Metrics, FrechetDistanceMatchesScipy) {
  const struct {
    int64_t n, d;
    double shift;
  } cases[] = {{200, 32, 0.0}, {200, 32, 0.25}, {300, 64, 1.0}};  // FRECHET_CASES
  for (int i = 0; i < 3; ++i) {
    const auto a = stats_of(kFrechetSeed + 2 * i, cases[i].n, cases[i].d, 0.0);
    const auto b = stats_of(kFrechetSeed + 2 * i + 1, cases[i].n, cases[i].d, cases[i].shift);
    const double expected = expected_of("frechet." + std::to_string(i)).item<double>();
    std::printf("Frechet case %d: ours %.12g, scipy %.12g\n", i, frechet_distance(a, b), expected);
    EXPECT_NEAR(frechet_distance(a, b), expected, kFrechetTolerance * expected) << "case " << i;
    EXPECT_NEAR(frechet_distance(b, a), expected, kFrechetTolerance * expected) << "case " << i << " swapped";
  }
}

TEST(Metrics, FrechetDistanceOfKnownGaussians) {
  // Identical sets: 0 (up to rounding of the eigenvalues, tiny against the traces ~100).
  const auto a = stats_of(101, 500, 48, 0.0);
  EXPECT_NEAR(frechet_distance(a, a), 0.0, 1e-9 * a.cov.trace().item<double>());
  // Shifted by delta with the same covariance: |delta|^2.
  GaussianStats b = a;
  const at::Tensor delta = at::linspace(-1, 1, 48, at::kDouble);
  b.mean = a.mean + delta;
  const double d2 = delta.pow(2).sum().item<double>();
  EXPECT_NEAR(frechet_distance(a, b), d2, 1e-9 * a.cov.trace().item<double>());
  // Diagonal covariances: |mu1-mu2|^2 + sum (sqrt(s1) - sqrt(s2))^2.
  GaussianStats p, q;
  p.mean = at::zeros({4}, at::kDouble);
  q.mean = at::tensor({1.0, 0.0, -2.0, 0.5}, at::kDouble);
  p.cov = at::diag(at::tensor({1.0, 4.0, 9.0, 0.25}, at::kDouble));
  q.cov = at::diag(at::tensor({4.0, 1.0, 9.0, 1.0}, at::kDouble));
  const double analytic = (1 + 4 + 0.25) + (1 + 1 + 0 + 0.25);
  EXPECT_NEAR(frechet_distance(p, q), analytic, 1e-12);
  // Broken: the covariance term matters (same means, different spread).
  q.mean = p.mean;
  EXPECT_NEAR(frechet_distance(p, q), 2.25, 1e-12);
  // Covariance as numpy.cov: N-1 in the denominator.
  const at::Tensor two = at::tensor({0.0, 0.0, 2.0, 4.0}, at::kDouble).view({2, 2});
  const auto s = gaussian_stats(two);
  EXPECT_DOUBLE_EQ(s.cov[0][0].item<double>(), 2.0);
  EXPECT_DOUBLE_EQ(s.cov[0][1].item<double>(), 4.0);
  EXPECT_THROW(gaussian_stats(at::zeros({1, 3})), std::invalid_argument);
  GaussianStats bad = p;
  bad.cov = p.cov.clone();
  bad.cov[1][1] = std::nan("");
  EXPECT_THROW(frechet_distance(p, bad), std::invalid_argument);
  EXPECT_THROW(gaussian_stats(at::zeros({5})), std::invalid_argument);
}

TEST(Metrics, ResizeIsPillowBilinearBitForBit) {
  for (int i = 0; i < 3; ++i) {
    const std::string key = "resize." + std::to_string(i);
    at::Tensor img = expected_of(key + ".src");
    const auto steps = nlohmann::json::parse(fixture().metadata.at(key + ".steps"));
    for (const auto& s : steps) img = pil_resize_bilinear(img, s.get<int64_t>(), s.get<int64_t>());
    EXPECT_TRUE(at::equal(img, expected_of(key + ".out")))
        << key << ": max diff " << max_abs_diff(img, expected_of(key + ".out"));
  }
  // Broken: a resize without Pillow's antialiasing (what OpenCV's INTER_LINEAR does) differs.
  const at::Tensor src = expected_of("resize.1.src").permute({2, 0, 1}).unsqueeze(0).to(at::kFloat);
  const at::Tensor plain =
      at::upsample_bilinear2d(src, {20, 20}, /*align_corners=*/false).round().squeeze(0).permute({1, 2, 0});
  EXPECT_GT(max_abs_diff(plain, expected_of("resize.1.out")), 8);
  EXPECT_THROW(pil_resize_bilinear(at::zeros({4, 4, 3}), 2, 2), std::invalid_argument);  // float, not uint8
  EXPECT_THROW(pil_resize_bilinear(at::zeros({4, 4, 3}, at::kByte), 0, 2), std::invalid_argument);
}

TEST(Metrics, EvalLoaderTensorMatchesTheOfficialLoader) {
  const at::Tensor t = eval_loader_tensor(expected_of("resize.1.src"), 48, /*imagenet_normalize=*/true);
  ASSERT_EQ(t.sizes(), (std::vector<int64_t>{3, 299, 299}));
  const at::Tensor sums = expected_of("loader.fid.sums");
  const at::Tensor d = t.to(at::kDouble);
  EXPECT_NEAR(d.sum().item<double>(), sums[0].item<double>(), 1e-9 * std::abs(sums[0].item<double>()) + 1e-3);
  EXPECT_NEAR(d.pow(2).sum().item<double>(), sums[1].item<double>(), 1e-9 * sums[1].item<double>() + 1e-3);
  EXPECT_LE(max_abs_diff(t.flatten().slice(0, 0, c10::nullopt, 97), expected_of("loader.fid.every97")), 1e-6);
  // The generator's input: [-1,1] at img_size.
  const at::Tensor g = eval_loader_tensor(expected_of("resize.0.src"), 32, /*imagenet_normalize=*/false);
  ASSERT_EQ(g.sizes(), (std::vector<int64_t>{3, 32, 32}));
  const at::Tensor expected =
      pil_resize_bilinear(expected_of("resize.0.src"), 32, 32).permute({2, 0, 1}).to(at::kFloat) / 255;
  EXPECT_LE(max_abs_diff(g, (expected - 0.5) / 0.5), 1e-6);
  // save_image's quantisation: -1 -> 0, 1 -> 255, 0 -> 128 (0.5 * 255 + 0.5 truncated).
  const at::Tensor px = saved_image_pixels(at::tensor({-1.5f, -1.f, 0.f, 1.f}).view({1, 1, 2, 2}).expand({1, 3, 2, 2}));
  EXPECT_EQ(px[0][0][0][0].item<int>(), 0);
  EXPECT_EQ(px[0][0][1][0].item<int>(), 0);
  EXPECT_EQ(px[0][1][0][0].item<int>(), 128);
  EXPECT_EQ(px[0][1][1][0].item<int>(), 255);
}

TEST(Metrics, WeightFilesAreCheckedBeforeLoading) {
  const fs::path dir = fs::temp_directory_path() / ("starganv2-metrics-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  // A right LPIPS file round-trips; an Inception file or a file missing a tensor is refused by name.
  LPIPS net = seeded_lpips();
  write_safetensors(dir / "lpips.safetensors", named_state(*net), {{"contents", kLpipsContents}});
  LPIPS loaded = load_lpips(dir / "lpips.safetensors");
  for (auto& [name, t] : named_state(*loaded)) {
    for (auto& [n2, t2] : named_state(*net))
      if (n2 == name) {
        EXPECT_TRUE(at::equal(t, t2)) << name;
      }
  }
  write_safetensors(dir / "wrong.safetensors", named_state(*net), {{"contents", kInceptionContents}});
  try {
    load_lpips(dir / "wrong.safetensors");
    ADD_FAILURE() << "an Inception-labelled file was accepted";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("--alexnet"), std::string::npos) << e.what();
  }
  auto partial = named_state(*net);
  partial.pop_back();
  write_safetensors(dir / "partial.safetensors", partial, {{"contents", kLpipsContents}});
  try {
    load_lpips(dir / "partial.safetensors");
    ADD_FAILURE() << "a file missing a tensor was accepted";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("1 missing"), std::string::npos) << e.what();
  }
  try {
    load_inception(dir / "absent.safetensors");
    ADD_FAILURE() << "a missing file was accepted";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("no such file"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("--inception"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace starganv2
