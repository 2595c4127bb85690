// One training iteration in bf16 autocast on CUDA against the same iteration in fp32: the same
// initial weights and batch, every loss term and weight finite, the loss terms close, and every
// network's update pointing the way the fp32 update points. A plain check program
// (tests/common/check.h). Exits 77 (skipped) without a CUDA device.
//
// Stated tolerances. bf16 keeps 8 bits of mantissa (~0.4 % per rounding), and Adam with
// beta1 = 0 moves each weight by about lr * sign(grad) on its first step, so a weight whose
// gradient is rounding noise may move either way (../shared/README.md explains the same effect
// between two fp32 implementations). No GPU was available, so the figures were measured by this
// very check with CPU bf16 autocast in place of CUDA's (its op lists differ a little from CUDA's);
// the program prints the measured values for the first GPU run to confirm:
//   loss terms: |bf16 - fp32| <= 0.01 * max(|fp32|, 0.1)          (measured: at most 0.0034)
//   update (after - init) of each network's weights, biases excluded, as one vector: cosine
//   similarity with the fp32 update >= 0.7       (measured: G 0.853, F 0.942, E 0.952, D 0.970)
// and the bf16 losses must differ from the fp32 ones somewhere, or autocast did not run.

#include <ATen/ATen.h>
#include <torch/cuda.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "../common/check.h"
#include "trainer/solver.h"

namespace starganv2 {
namespace {

constexpr double kLossRel = 0.01;
constexpr double kLossFloor = 0.1;
constexpr double kMinCosine = 0.7;

TrainOptions small_options() {
  TrainOptions o;
  o.model.img_size = 64;
  o.model.style_dim = 16;
  o.model.latent_dim = 8;
  o.model.num_domains = 2;
  o.model.max_conv_dim = 64;
  o.model.hidden_dim = 64;
  o.model.w_hpf = 1;
  o.model.base_dim = 32;  // narrow: the check is about precision, not width
  o.batch_size = 4;
  o.seed = 2024;
  return o;
}

Batch make_batch(const TrainOptions& o) {
  torch::manual_seed(31);
  const int64_t n = o.batch_size, s = o.model.img_size;
  // Smooth images (the FAN sees something face-sized rather than noise).
  auto image = [&] {
    const at::Tensor small = at::rand({n, 3, s / 8, s / 8});
    return at::upsample_bilinear2d(small, {s, s}, /*align_corners=*/false).mul(2).sub(1);
  };
  Batch b;
  b.x_real = image();
  b.x_ref = image();
  b.x_ref2 = image();
  b.y_org = at::tensor(std::vector<int64_t>{0, 1, 0, 1});
  b.y_trg = at::tensor(std::vector<int64_t>{1, 0, 1, 0});
  b.z_trg = at::randn({n, o.model.latent_dim});
  b.z_trg2 = at::randn({n, o.model.latent_dim});
  return b;
}

FAN make_fan() {
  torch::manual_seed(5);  // the same random FAN for both solvers
  return FAN();
}

using Weights = std::map<std::string, at::Tensor>;

Weights weights_of(Networks& nets) {
  Weights w;
  for (auto& [net, module] : nets.named()) {
    for (const auto& p : module->named_parameters(/*recurse=*/true)) {
      w[net + "." + p.key()] = p.value().detach().to(at::kCPU, at::kDouble).clone();
    }
  }
  return w;
}

bool is_bias(const std::string& name) { return name.size() >= 5 && name.compare(name.size() - 5, 5, ".bias") == 0; }

CHECK_CASE(TrainGpu, Bf16IterationIsFiniteAndCloseToFp32) {
  const TrainOptions o = small_options();
  const torch::Device cuda(torch::kCUDA, 0);
  Solver fp32(o, cuda, Precision::kFloat32, make_fan());
  Solver bf16(o, cuda, Precision::kBFloat16, make_fan());
  const Weights init = weights_of(fp32.nets());
  const Weights init_bf16 = weights_of(bf16.nets());
  ASSERT_EQ(init.size(), init_bf16.size());
  for (const auto& [name, t] : init) {
    ASSERT_TRUE(at::equal(t, init_bf16.at(name))) << name << ": both solvers must start from the same weights";
  }

  const Batch batch = make_batch(o);
  const StepLosses la = fp32.train_step(batch);
  const StepLosses lb = bf16.train_step(batch);
  const auto a = la.named(), b = lb.named();
  ASSERT_EQ(a.size(), b.size());
  double worst_rel = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double scale = std::max(std::abs(a[i].second), kLossFloor);
    const double rel = std::abs(b[i].second - a[i].second) / scale;
    worst_rel = std::max(worst_rel, std::isfinite(rel) ? rel : 1e30);
    std::printf("  %-16s fp32 %12.6f  bf16 %12.6f  |diff|/scale %.4f\n", a[i].first.c_str(), a[i].second,
                b[i].second, rel);
    EXPECT_TRUE(std::isfinite(b[i].second)) << b[i].first;
    EXPECT_LE(rel, kLossRel) << a[i].first;
  }
  std::printf("  worst loss difference: %.4f of max(|fp32|, %.1f)\n", worst_rel, kLossFloor);
  EXPECT_GT(worst_rel, 0.0) << "bf16 gave the fp32 losses bit for bit: autocast did not run";

  const Weights after_a = weights_of(fp32.nets());
  const Weights after_b = weights_of(bf16.nets());
  for (const auto& [name, t] : after_b) {
    EXPECT_TRUE(at::isfinite(t).all().item<bool>()) << name << " after the bf16 step";
  }
  for (auto& [net, module] : bf16.nets_ema().named()) {
    for (const auto& p : module->parameters()) {
      EXPECT_TRUE(at::isfinite(p).all().item<bool>()) << "EMA " << net;
    }
  }
  // Update directions per network, weights only (see the header for why biases are left out).
  for (const char* net : {"generator", "mapping_network", "style_encoder", "discriminator"}) {
    double dot = 0, na = 0, nb = 0;
    for (const auto& [name, t0] : init) {
      if (name.rfind(std::string(net) + ".", 0) != 0 || is_bias(name)) continue;
      const at::Tensor ua = after_a.at(name) - t0, ub = after_b.at(name) - t0;
      dot += (ua * ub).sum().item<double>();
      na += ua.pow(2).sum().item<double>();
      nb += ub.pow(2).sum().item<double>();
    }
    const double cosine = dot / std::sqrt(na * nb);
    std::printf("  %-16s update cosine bf16 vs fp32: %.4f\n", net, cosine);
    EXPECT_GE(cosine, kMinCosine) << net;
  }
}

}  // namespace
}  // namespace starganv2

int main(int argc, char** argv) {
  if (!torch::cuda::is_available()) {
    std::printf("SKIP: no CUDA device available (torch::cuda::is_available() is false)\n");
    return 77;
  }
  return starganv2::check::run_all(argc, argv);
}
