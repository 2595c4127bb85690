// The engine on CUDA: against the CPU, across precisions, and CUDA graph replay against eager
// execution. Exits 77 (skipped) when no CUDA device is available.
//
// Stated tolerances (outputs of random-weight models, uint8 units of 1/255):
//   fp32 on CUDA vs CPU: max 3, mean <= 0.25 (TF32 switched off for this comparison)
//   fp16 vs fp32: mean <= 1.0, 99th percentile <= 4; bf16 vs fp32: mean <= 2.5, 99th pct <= 10
//   CUDA graph replay vs eager, same precision: max 1
//   styles CPU vs CUDA (fp32 everywhere): 1e-4 relative

#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <torch/cuda.h>

#include <cstdio>
#include <string>

#include "engine_test_util.h"
#include "model/translator.h"

namespace starganv2 {
namespace {

test::TempDir* g_dir = nullptr;
std::filesystem::path hpf1() { return g_dir->path() / "hpf1.safetensors"; }
std::filesystem::path hpf0() { return g_dir->path() / "hpf0.safetensors"; }

Translator make(const std::filesystem::path& ckpt, const std::string& device, Precision p, bool graphs = true) {
  TranslatorOptions o;
  o.device = device;
  o.precision = p;
  o.cuda_graphs = graphs;
  return Translator::open(ckpt, o);
}

struct Diff {
  double mean, p99;
  int64_t max;
};
Diff u8_diff(const at::Tensor& a, const at::Tensor& b) {
  at::Tensor d = (a.to(at::kFloat) - b.to(at::kFloat)).abs().flatten();
  return {d.mean().item<double>(), at::quantile(d.narrow(0, 0, std::min<int64_t>(d.numel(), 1 << 24)), 0.99).item<double>(),
          d.max().item<int64_t>()};
}

class EngineGpu : public ::testing::TestWithParam<std::string> {
 protected:
  std::filesystem::path ckpt() const { return GetParam() == "hpf1" ? hpf1() : hpf0(); }
};

TEST_P(EngineGpu, Fp32MatchesCpuAndGraphsAreUsed) {
  // cuDNN may run fp32 convolutions in TF32 (LibTorch's default), which is not what this
  // comparison is about.
  const bool tf32 = at::globalContext().allowTF32CuDNN();
  at::globalContext().setAllowTF32CuDNN(false);
  struct Restore {
    bool v;
    ~Restore() { at::globalContext().setAllowTF32CuDNN(v); }
  } restore{tf32};
  Translator cpu = make(ckpt(), "cpu", Precision::kFloat32);
  Translator gpu = make(ckpt(), "cuda", Precision::kFloat32);
  EXPECT_TRUE(gpu.device().is_cuda());
  std::printf("  %s\n", gpu.description().c_str());
  cpu.use_latent_style(1, 42);
  gpu.use_latent_style(1, 42);
  const at::Tensor input = test::random_u8(3, cpu.config().img_size, 3, 1);
  const at::Tensor expected = cpu.translate(input);
  for (int i = 0; i < 5; ++i) {  // eager warm-up calls, capture, then replays
    const Diff d = u8_diff(gpu.translate(input), expected);
    EXPECT_LE(d.max, 3) << "call " << i;
    EXPECT_LE(d.mean, 0.25) << "call " << i;
  }
  for (const auto& w : gpu.warnings()) std::printf("  warning: %s\n", w.c_str());
  EXPECT_EQ(gpu.stats().graph_captures, 1);
  EXPECT_GE(gpu.stats().graph_replays, 2);
}

TEST_P(EngineGpu, GraphReplayEqualsEagerForEveryBatchSizeAndStyleChange) {
  Translator graphed = make(ckpt(), "cuda", Precision::kFloat16, /*graphs=*/true);
  Translator eager = make(ckpt(), "cuda", Precision::kFloat16, /*graphs=*/false);
  const int64_t size = graphed.config().img_size;
  for (int64_t n : {1, 2, 5, 1, 5, 2, 2, 2}) {
    const at::Tensor input = test::random_u8(n, size, 3, n);
    for (int round = 0; round < 4; ++round) {
      // A style change after capture must reach the graph (it reads a static style buffer).
      graphed.use_latent_style(round % 2, 10 + round);
      eager.use_latent_style(round % 2, 10 + round);
      EXPECT_LE(u8_diff(graphed.translate(input), eager.translate(input)).max, 1) << "batch " << n;
    }
  }
  EXPECT_EQ(graphed.stats().graph_captures, 3);  // one per batch size
  EXPECT_GT(graphed.stats().graph_replays, 0);
  EXPECT_EQ(eager.stats().graph_replays, 0);
}

TEST_P(EngineGpu, HalfPrecisionsAgreeWithFp32) {
  Translator f32 = make(ckpt(), "cuda", Precision::kFloat32);
  const at::Tensor input = test::random_u8(4, f32.config().img_size, 3, 3);
  f32.use_latent_style(0, 5, 0.7);
  const at::Tensor ref = f32.translate(input);
  struct Case {
    Precision p;
    double mean, p99;
  };
  for (const Case& c : {Case{Precision::kFloat16, 1.0, 4.0}, Case{Precision::kBFloat16, 2.5, 10.0}}) {
    Translator t = make(ckpt(), "cuda", c.p);
    t.use_latent_style(0, 5, 0.7);
    EXPECT_TRUE(at::equal(t.current_style(), f32.current_style())) << "styles are computed in fp32";
    for (int i = 0; i < 4; ++i) {
      const Diff d = u8_diff(t.translate(input), ref);
      std::printf("  %s vs fp32: mean %.3f, p99 %.1f, max %lld\n", to_string(c.p).c_str(), d.mean, d.p99,
                  static_cast<long long>(d.max));
      EXPECT_LE(d.mean, c.mean) << to_string(c.p);
      EXPECT_LE(d.p99, c.p99) << to_string(c.p);
    }
  }
}

TEST_P(EngineGpu, SameSeedSameStyleAcrossDevices) {
  Translator cpu = make(ckpt(), "cpu", Precision::kFloat32);
  Translator gpu = make(ckpt(), "cuda:0", Precision::kFloat16);
  for (double psi : {1.0, 0.7, 0.0}) {
    const at::Tensor a = cpu.latent_style(2, 1234, psi);
    const at::Tensor b = gpu.latent_style(2, 1234, psi);
    EXPECT_LE((a - b).abs().max().item<double>(), 1e-4 * std::max(1.0, a.abs().max().item<double>())) << psi;
  }
}

INSTANTIATE_TEST_SUITE_P(Models, EngineGpu, ::testing::Values("hpf1", "hpf0"));

TEST(EngineGpuDevice, MissingGpuIsAClearError) {
  TranslatorOptions o;
  o.device = "cuda:" + std::to_string(torch::cuda::device_count());
  try {
    Translator::open(hpf0(), o);
    ADD_FAILURE() << "no error for " << o.device;
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("no GPU " + std::to_string(torch::cuda::device_count())), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace starganv2

int main(int argc, char** argv) {
  if (!torch::cuda::is_available()) {
    std::printf("SKIP: no CUDA device available\n");
    return 77;
  }
  ::testing::InitGoogleTest(&argc, argv);
  starganv2::test::TempDir dir;
  starganv2::g_dir = &dir;
  starganv2::test::write_random_checkpoint(starganv2::hpf1(), starganv2::test::small_config(1.0), 11, true);
  starganv2::test::write_random_checkpoint(starganv2::hpf0(), starganv2::test::small_config(0.0), 12, false);
  return RUN_ALL_TESTS();
}
