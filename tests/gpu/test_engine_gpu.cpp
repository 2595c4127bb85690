// The engine on CUDA, through the paths the element uses: translate(span) of uint8 crops via
// pinned staging, CUDA graphs captured at warm-up for every batch size up to max-faces and none
// afterwards (translation from another thread, as the streaming thread), one graph memory pool,
// FAN masks in float32 under fp16/bf16; plus fp32 against the CPU and the precisions against
// each other. A plain check program (tests/common/check.h), not GoogleTest: it must build on a
// bare GPU machine. Exits 77 (skipped) without a CUDA device.
//
// Stated tolerances (random-weight models, uint8 units of 1/255). They were set before any GPU
// ran this code (none was available to the project) and the program prints every measured
// figure, so the first run on a GPU shows how much margin they leave:
//   fp32 on CUDA vs CPU: max 3, mean <= 0.25 (TF32 switched off for these comparisons)
//   fp16 vs fp32: mean <= 1.0, 99th percentile <= 4; bf16 vs fp32: mean <= 2.5, 99th pct <= 10
//   CUDA graph replay vs eager, same precision: max 1
//   styles CPU vs CUDA (fp32 everywhere): 1e-4 relative
//   FAN masks of an fp16/bf16 translator vs an fp32 one on the same GPU: max 1e-5 (both float32;
//   an fp16 FAN differs by ~1e-3 and more); fp32 masks CUDA vs CPU: mean 1e-4, the tolerance
//   ../shared/README.md states for masks from one's own FAN (TF32 off)
//   graph memory pool for batch sizes 1..4 <= 1.6 x the pool of batch 4 alone (separate pools
//   would hold about 1+2+3+4 = 2.5 x)

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <torch/cuda.h>

#ifdef STARGANV2_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "../common/check.h"
#include "../engine/engine_test_util.h"
#include "model/cuda_graph_runner.h"
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

// cuDNN may run fp32 convolutions in TF32 (LibTorch's default), which is not what a comparison
// with the CPU is about.
struct NoTf32 {
  bool was = at::globalContext().allowTF32CuDNN();
  NoTf32() { at::globalContext().setAllowTF32CuDNN(false); }
  ~NoTf32() { at::globalContext().setAllowTF32CuDNN(was); }
};

struct Tolerance {
  Precision p;
  double max_mean, max_p99;
  int64_t max_max;  // checked only for fp32
};
const Tolerance kTolerances[] = {{Precision::kFloat32, 0.25, 3.0, 3},
                                 {Precision::kFloat16, 1.0, 4.0, 255},
                                 {Precision::kBFloat16, 2.5, 10.0, 255}};

void print_diff(const Diff& d, const std::string& what) {
  std::printf("  %-44s mean %.3f  p99 %.1f  max %lld\n", what.c_str(), d.mean, d.p99, static_cast<long long>(d.max));
}
Diff worst_of(const Diff& a, const Diff& b) { return {std::max(a.mean, b.mean), std::max(a.p99, b.p99), std::max(a.max, b.max)}; }

void check_diff(const Diff& d, const Tolerance& t, const std::string& what, bool print = true) {
  if (print) print_diff(d, what);
  EXPECT_LE(d.mean, t.max_mean) << what;
  EXPECT_LE(d.p99, t.max_p99) << what;
  EXPECT_LE(d.max, t.max_max) << what;
}

// ---- what the element calls: translate(span) of uint8 crops ----

const char* const kFormatNames[] = {"RGB", "BGR", "RGBx", "BGRx"};  // PixelFormat order

// Crops of every pixel format the element hands over, with padded rows, translated in place
// (4-byte formats) or into separate views, against the CPU engine; repeated so that the later
// calls are CUDA graph replays from the pinned staging buffers.
void translate_span_matches_cpu(const std::filesystem::path& ckpt) {
  NoTf32 no_tf32;
  Translator cpu = make(ckpt, "cpu", Precision::kFloat32);
  cpu.use_latent_style(1, 42);
  const int64_t s = cpu.config().img_size;
  for (const Tolerance& tol : kTolerances) {
    Translator gpu = make(ckpt, "cuda", tol.p);
    gpu.use_latent_style(1, 42);
    std::printf("  %s\n", gpu.description().c_str());
    for (int64_t n : {1, 3}) {
      const at::Tensor rgb = test::random_u8(n, s, 3, 100 + n);
      const at::Tensor expected_rgb = cpu.translate(rgb);
      for (PixelFormat f : {PixelFormat::kRGB, PixelFormat::kBGR, PixelFormat::kRGBx, PixelFormat::kBGRx}) {
        const int64_t bpp = bytes_per_pixel(f);
        const int64_t stride = s * bpp + 16;  // padded rows, as video frames have
        Diff worst{0, 0, 0};
        for (int call = 0; call < 4; ++call) {
          // Frames: the crop's pixels in the format's channel order, alpha 77, padding 55.
          at::Tensor frames = at::full({n, s, stride}, 55, at::kByte);
          at::Tensor body = frames.narrow(2, 0, s * bpp).view({n, s, s, bpp});
          body.narrow(3, 0, 3).copy_(is_bgr(f) ? rgb.flip({3}) : rgb);
          if (bpp == 4) body.select(3, 3).fill_(77);
          const at::Tensor before = frames.clone();
          std::vector<ImageView> in;
          std::vector<MutableImageView> out;
          for (int64_t i = 0; i < n; ++i) {
            uint8_t* p = frames[i].data_ptr<uint8_t>();
            in.push_back({p, s, s, stride, f});
            out.push_back({p, s, s, stride, f});  // in place, as the element does
          }
          gpu.translate(in, out);
          at::Tensor got = body.narrow(3, 0, 3);
          if (is_bgr(f)) got = got.flip({3});
          const std::string what = to_string(tol.p) + " batch " + std::to_string(n) + " " +
                                   kFormatNames[static_cast<int>(f)] + " call " + std::to_string(call);
          const Diff d = u8_diff(got.contiguous(), expected_rgb);
          worst = worst_of(worst, d);
          check_diff(d, tol, what, /*print=*/false);
          // Only the three colour bytes of each pixel may change.
          EXPECT_TRUE(at::equal(frames.narrow(2, s * bpp, 16), before.narrow(2, s * bpp, 16))) << what << ": padding";
          if (bpp == 4) {
            const at::Tensor alpha_before = before.narrow(2, 0, s * bpp).view({n, s, s, bpp}).select(3, 3);
            EXPECT_TRUE(at::equal(body.select(3, 3), alpha_before)) << what << ": alpha";
          }
        }
        print_diff(worst, to_string(tol.p) + " batch " + std::to_string(n) + " " + kFormatNames[static_cast<int>(f)] +
                              ", worst of 4 calls");
      }
    }
    for (const auto& w : gpu.warnings()) std::printf("  warning: %s\n", w.c_str());
    // Two channel orders x two batch sizes were captured and then replayed.
    EXPECT_EQ(gpu.stats().graph_captures, 4) << to_string(tol.p);
    EXPECT_GE(gpu.stats().graph_replays, 8) << to_string(tol.p);
  }
}
check::Registrar r_span1("EngineGpu.TranslateSpanMatchesCpu/hpf1", [] { translate_span_matches_cpu(hpf1()); });
check::Registrar r_span0("EngineGpu.TranslateSpanMatchesCpu/hpf0", [] { translate_span_matches_cpu(hpf0()); });

// The element's start: warm_up_to(max_faces) captures every batch size, and the streaming thread
// (here another std::thread) then only replays; a batch size or channel order that was not
// warmed up runs eagerly instead of being captured there.
CHECK_CASE(EngineGpu, WarmUpCapturesEveryBatchSizeAndNothingAfterwards) {
  constexpr int64_t kMaxFaces = 4;
  Translator graphed = make(hpf1(), "cuda", Precision::kFloat16, /*graphs=*/true);
  Translator eager = make(hpf1(), "cuda", Precision::kFloat16, /*graphs=*/false);
  graphed.use_latent_style(0, 3);
  eager.use_latent_style(0, 3);
  const auto t0 = std::chrono::steady_clock::now();
  graphed.warm_up_to(kMaxFaces, PixelFormat::kRGB);
  const double warm_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("  warm_up_to(%lld): %.0f ms, %lld captures\n", static_cast<long long>(kMaxFaces), warm_ms,
              static_cast<long long>(graphed.stats().graph_captures));
  EXPECT_EQ(graphed.graph_batch_sizes(PixelFormat::kRGB), (std::vector<int64_t>{1, 2, 3, 4}));
  EXPECT_TRUE(graphed.graph_batch_sizes(PixelFormat::kBGR).empty());
  EXPECT_EQ(graphed.stats().graph_captures, kMaxFaces);
  const TranslatorStats before = graphed.stats();
  EXPECT_TRUE(graphed.current_style().defined()) << "warm_up keeps the chosen style";

  const int64_t s = graphed.config().img_size;
  std::vector<int64_t> worst(kMaxFaces + 2, 0);
  std::thread streaming([&] {
    for (int round = 0; round < 3; ++round) {
      for (int64_t n = 1; n <= kMaxFaces + 1; ++n) {  // kMaxFaces + 1 was never warmed up
        const at::Tensor crops = test::random_u8(n, s, 3, 10 * round + n);
        at::Tensor a = crops.clone(), b = crops.clone();
        std::vector<ImageView> in_a, in_b;
        std::vector<MutableImageView> out_a, out_b;
        for (int64_t i = 0; i < n; ++i) {
          out_a.push_back({a[i].data_ptr<uint8_t>(), s, s, s * 3, PixelFormat::kRGB});
          out_b.push_back({b[i].data_ptr<uint8_t>(), s, s, s * 3, PixelFormat::kRGB});
          in_a.push_back(out_a.back());
          in_b.push_back(out_b.back());
        }
        graphed.translate(in_a, out_a);
        eager.translate(in_b, out_b);
        worst[n] = std::max(worst[n], test::max_u8_diff(a, b));
      }
      // The other channel order was not warmed up either.
      (void)graphed.translate(test::random_u8(2, s, 3, 99), PixelFormat::kBGR);
    }
  });
  streaming.join();
  for (int64_t n = 1; n <= kMaxFaces + 1; ++n) {
    EXPECT_LE(worst[n], 1) << "graph replay vs eager, batch " << n;
  }
  const TranslatorStats after = graphed.stats();
  EXPECT_EQ(after.graph_captures, before.graph_captures) << "no capture after warm-up";
  EXPECT_EQ(after.graph_replays - before.graph_replays, 3 * kMaxFaces);
  EXPECT_EQ(after.eager_calls - before.eager_calls, 3 * 2) << "batch 5 and BGR run eagerly";
  EXPECT_EQ(graphed.graph_batch_sizes(PixelFormat::kRGB), (std::vector<int64_t>{1, 2, 3, 4}));
  for (const auto& w : graphed.warnings()) std::printf("  warning: %s\n", w.c_str());
}

#ifdef STARGANV2_WITH_CUDA
// Bytes of CUDA memory per graph pool (segments owned by a private pool) on the device.
std::map<GraphPoolId, size_t> graph_pool_bytes(int device) {
  std::map<GraphPoolId, size_t> pools;
  for (const auto& seg : c10::cuda::CUDACachingAllocator::snapshot({0, 0}, /*include_traces=*/false).segments) {
    if (seg.device != device) continue;
    const GraphPoolId id{seg.owner_private_pool_id.first, seg.owner_private_pool_id.second};
    if (id != GraphPoolId{0, 0}) pools[id] += seg.total_size;
  }
  return pools;
}

// The pools a block of code created, with their bytes.
template <typename F>
std::map<GraphPoolId, size_t> new_graph_pools(int device, F&& f) {
  c10::cuda::CUDACachingAllocator::emptyCache();  // returns the memory of released pools
  const auto before = graph_pool_bytes(device);
  f();
  auto after = graph_pool_bytes(device);
  for (const auto& [id, bytes] : before) after.erase(id);
  return after;
}

CHECK_CASE(EngineGpu, CapturesShareOneMemoryPool) {
  const int device = 0;
  size_t alone = 0;
  {
    Translator t = make(hpf1(), "cuda:0", Precision::kFloat16);
    t.use_latent_style(1, 5);
    const auto pools = new_graph_pools(device, [&] {
      const int64_t batch[] = {4};
      t.warm_up(batch);
    });
    ASSERT_EQ(pools.size(), size_t{1}) << "one capture, one pool";
    alone = pools.begin()->second;
  }
  Translator t = make(hpf1(), "cuda:0", Precision::kFloat16);
  t.use_latent_style(1, 5);
  const auto pools = new_graph_pools(device, [&] { t.warm_up_to(4); });
  EXPECT_EQ(t.stats().graph_captures, 4);
  EXPECT_EQ(pools.size(), size_t{1}) << "four captures must share one pool";
  size_t shared = 0;
  for (const auto& [id, bytes] : pools) shared += bytes;
  std::printf("  graph pool: batch 4 alone %.1f MiB; batches 1..4 shared %.1f MiB (%.2fx)\n", alone / 1048576.0,
              shared / 1048576.0, alone ? static_cast<double>(shared) / alone : 0.0);
  EXPECT_LE(static_cast<double>(shared), 1.6 * static_cast<double>(alone));
  // And the graphs still compute the right thing when replayed in any order.
  Translator eager = make(hpf1(), "cuda:0", Precision::kFloat16, /*graphs=*/false);
  eager.use_latent_style(1, 5);
  for (int64_t n : {3, 1, 4, 2, 4, 1}) {
    const at::Tensor x = test::random_u8(n, t.config().img_size, 3, 50 + n);
    EXPECT_LE(test::max_u8_diff(t.translate(x), eager.translate(x)), 1) << "batch " << n;
  }
}
#endif

// ---- FAN masks stay float32 whatever G runs in ----

CHECK_CASE(EngineGpu, FanMasksStayFloat32UnderHalfPrecisions) {
  NoTf32 no_tf32;  // the CPU comparison is about float32, not cuDNN's TF32 tensor cores
  Translator f32 = make(hpf1(), "cuda", Precision::kFloat32);
  Translator cpu = make(hpf1(), "cpu", Precision::kFloat32);
  const at::Tensor x = test::u8_to_float(test::random_u8(2, f32.config().img_size, 3, 8));
  const Masks ref = f32.masks(x);
  const Masks on_cpu = cpu.masks(x);
  ASSERT_TRUE(ref.defined());
  EXPECT_EQ(ref.coarse.scalar_type(), at::kFloat);
  const double cpu_mean = (ref.coarse - on_cpu.coarse).abs().mean().item<double>() +
                          (ref.fine - on_cpu.fine).abs().mean().item<double>();
  std::printf("  fp32 masks CUDA vs CPU: mean |diff| %.2e (coarse + fine)\n", cpu_mean);
  EXPECT_LE(cpu_mean, 1e-4);
  // Masks whose values half precision would round (random FAN weights saturate the coarse mask
  // at 1, the fine one varies), or this comparison would prove nothing.
  EXPECT_FALSE(at::equal(ref.fine, ref.fine.to(at::kHalf).to(at::kFloat)));
  for (Precision p : {Precision::kFloat16, Precision::kBFloat16}) {
    Translator t = make(hpf1(), "cuda", p);
    const Masks m = t.masks(x);
    EXPECT_EQ(m.coarse.scalar_type(), at::kFloat) << to_string(p);
    const double worst = std::max((m.coarse - ref.coarse).abs().max().item<double>(),
                                  (m.fine - ref.fine).abs().max().item<double>());
    std::printf("  masks of the %s translator vs fp32: max |diff| %.2e\n", to_string(p).c_str(), worst);
    EXPECT_LE(worst, 1e-5) << to_string(p) << ": the FAN must run in float32";
  }
}

// ---- fp32 against the CPU; graphs against eager; precisions against fp32 ----

void fp32_matches_cpu_and_graphs_are_used(const std::filesystem::path& ckpt) {
  NoTf32 no_tf32;
  Translator cpu = make(ckpt, "cpu", Precision::kFloat32);
  Translator gpu = make(ckpt, "cuda", Precision::kFloat32);
  EXPECT_TRUE(gpu.device().is_cuda());
  std::printf("  %s\n", gpu.description().c_str());
  cpu.use_latent_style(1, 42);
  gpu.use_latent_style(1, 42);
  const at::Tensor input = test::random_u8(3, cpu.config().img_size, 3, 1);
  const at::Tensor expected = cpu.translate(input);
  for (int i = 0; i < 5; ++i) {  // eager warm-up calls, capture, then replays
    check_diff(u8_diff(gpu.translate(input), expected), kTolerances[0], "fp32 call " + std::to_string(i));
  }
  for (const auto& w : gpu.warnings()) std::printf("  warning: %s\n", w.c_str());
  EXPECT_EQ(gpu.stats().graph_captures, 1);
  EXPECT_GE(gpu.stats().graph_replays, 2);
}
check::Registrar r_fp1("EngineGpu.Fp32MatchesCpuAndGraphsAreUsed/hpf1", [] { fp32_matches_cpu_and_graphs_are_used(hpf1()); });
check::Registrar r_fp0("EngineGpu.Fp32MatchesCpuAndGraphsAreUsed/hpf0", [] { fp32_matches_cpu_and_graphs_are_used(hpf0()); });

void graph_replay_equals_eager(const std::filesystem::path& ckpt) {
  Translator graphed = make(ckpt, "cuda", Precision::kFloat16, /*graphs=*/true);
  Translator eager = make(ckpt, "cuda", Precision::kFloat16, /*graphs=*/false);
  const int64_t size = graphed.config().img_size;
  for (int64_t n : {1, 2, 5, 1, 5, 2, 2, 2}) {
    const at::Tensor input = test::random_u8(n, size, 3, n);
    for (int round = 0; round < 4; ++round) {
      // A style change after capture must reach the graph (it reads a static style buffer).
      graphed.use_latent_style(round % 2, 10 + round);
      eager.use_latent_style(round % 2, 10 + round);
      EXPECT_LE(test::max_u8_diff(graphed.translate(input), eager.translate(input)), 1) << "batch " << n;
    }
  }
  EXPECT_EQ(graphed.stats().graph_captures, 3);  // one per batch size, captured on demand
  EXPECT_GT(graphed.stats().graph_replays, 0);
  EXPECT_EQ(eager.stats().graph_replays, 0);
  EXPECT_EQ(eager.stats().graph_captures, 0);
}
check::Registrar r_ge1("EngineGpu.GraphReplayEqualsEager/hpf1", [] { graph_replay_equals_eager(hpf1()); });
check::Registrar r_ge0("EngineGpu.GraphReplayEqualsEager/hpf0", [] { graph_replay_equals_eager(hpf0()); });

void half_precisions_agree_with_fp32(const std::filesystem::path& ckpt) {
  Translator f32 = make(ckpt, "cuda", Precision::kFloat32);
  const at::Tensor input = test::random_u8(4, f32.config().img_size, 3, 3);
  f32.use_latent_style(0, 5, 0.7);
  const at::Tensor ref = f32.translate(input);
  for (const Tolerance& tol : {kTolerances[1], kTolerances[2]}) {
    Translator t = make(ckpt, "cuda", tol.p);
    t.use_latent_style(0, 5, 0.7);
    EXPECT_TRUE(at::equal(t.current_style(), f32.current_style())) << "styles are computed in fp32";
    for (int i = 0; i < 4; ++i) check_diff(u8_diff(t.translate(input), ref), tol, to_string(tol.p) + " vs fp32");
  }
}
check::Registrar r_hp1("EngineGpu.HalfPrecisionsAgreeWithFp32/hpf1", [] { half_precisions_agree_with_fp32(hpf1()); });
check::Registrar r_hp0("EngineGpu.HalfPrecisionsAgreeWithFp32/hpf0", [] { half_precisions_agree_with_fp32(hpf0()); });

CHECK_CASE(EngineGpu, SameSeedSameStyleAcrossDevices) {
  Translator cpu = make(hpf1(), "cpu", Precision::kFloat32);
  Translator gpu = make(hpf1(), "cuda:0", Precision::kFloat16);
  for (double psi : {1.0, 0.7, 0.0}) {
    const at::Tensor a = cpu.latent_style(2, 1234, psi);
    const at::Tensor b = gpu.latent_style(2, 1234, psi);
    EXPECT_LE((a - b).abs().max().item<double>(), 1e-4 * std::max(1.0, a.abs().max().item<double>())) << psi;
  }
}

CHECK_CASE(EngineGpu, MissingGpuIsAClearError) {
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
    std::printf("SKIP: no CUDA device available (torch::cuda::is_available() is false)\n");
    return 77;
  }
  starganv2::test::TempDir dir;
  starganv2::g_dir = &dir;
  starganv2::test::write_random_checkpoint(starganv2::hpf1(), starganv2::test::engine_config(1.0), 11, true);
  starganv2::test::write_random_checkpoint(starganv2::hpf0(), starganv2::test::engine_config(0.0), 12, false);
  return starganv2::check::run_all(argc, argv);
}
