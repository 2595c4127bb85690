// CudaGraphRunner, the Translator's CUDA step, on steps this test writes: replays equal eager
// runs, one memory pool for every capture, seal() keeps captures off later calls, and a capture
// that fails (a step that synchronises with the host, or one that throws mid-capture) falls back
// to eager cleanly: right results, no stream left capturing, no CUDA error pending, the pool's
// references back where they were, and the pool usable by the next capture. A plain check
// program (tests/common/check.h). Exits 77 (skipped) without a CUDA device.

#include <ATen/ATen.h>
#include <torch/cuda.h>

#ifdef STARGANV2_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#endif

#include <cstdio>
#include <stdexcept>
#include <string>

#include "../common/check.h"
#include "model/cuda_graph_runner.h"

#ifdef STARGANV2_WITH_CUDA
namespace starganv2 {
namespace {

const c10::Device kCuda(c10::kCUDA, 0);
namespace alloc = c10::cuda::CUDACachingAllocator;

// A small capturable step with several kernels and temporaries: uint8 (N,8,8,3) -> float.
at::Tensor good_step(const at::Tensor& in, const at::Tensor& styles) {
  at::Tensor x = in.to(at::kFloat).div(255.0);
  x = (x * styles.reshape({-1, 1, 1, 1})).sin() + x.sqrt();
  return x.sum({1, 2});
}

at::Tensor host_input(int64_t n, int seed) {
  return at::arange(n * 8 * 8 * 3, at::kLong).add(seed).remainder(256).to(at::kByte).reshape({n, 8, 8, 3});
}
at::Tensor styles_for(int64_t n) { return at::linspace(0.5, 1.5, n, at::TensorOptions().device(kCuda)); }

at::Tensor expected(const at::Tensor& host, const at::Tensor& styles) {
  return good_step(host.to(kCuda), styles).to(at::kCPU);
}

int pool_uses(const CudaGraphRunner& r) { return alloc::getPoolUseCount(r.device().index(), r.pool()); }

// The CUDA state a failed capture must leave behind: nothing capturing, no error pending.
void expect_clean_cuda_state(const std::string& what) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  EXPECT_EQ(cudaStreamIsCapturing(c10::cuda::getCurrentCUDAStream(0).stream(), &status), cudaSuccess) << what;
  EXPECT_TRUE(status == cudaStreamCaptureStatusNone) << what << ": the current stream is still capturing";
  EXPECT_EQ(cudaGetLastError(), cudaSuccess) << what << ": a CUDA error is pending";
  // Ordinary eager work still runs.
  const at::Tensor t = at::ones({1024}, at::TensorOptions().device(kCuda)) * 3;
  EXPECT_EQ(t.sum().item<double>(), 3072.0) << what;
}

CHECK_CASE(GraphRunner, ReplaysEqualEagerAndCapturesShareOnePool) {
  CudaGraphRunner::Options o;
  o.warmup_calls = 2;
  CudaGraphRunner runner(kCuda, o);
  EXPECT_EQ(pool_uses(runner), 1) << "the runner's own reference";
  for (int round = 0; round < 4; ++round) {
    for (int64_t n : {1, 3, 2}) {
      const at::Tensor host = host_input(n, round);
      const at::Tensor styles = styles_for(n) + round;
      const auto r = runner.run({n, false}, host, styles, good_step);
      EXPECT_EQ(r.replayed, round >= 2) << "batch " << n << " round " << round;
      EXPECT_LE((r.output.to(at::kCPU) - expected(host, styles)).abs().max().item<double>(), 1e-5)
          << "batch " << n << " round " << round;
    }
  }
  EXPECT_EQ(runner.captures(), 3);
  EXPECT_EQ(runner.replays(), 6);
  EXPECT_EQ(runner.graph_keys().size(), size_t{3});
  // Every capture took its reference on the one pool.
  EXPECT_EQ(pool_uses(runner), 1 + 3);
}

CHECK_CASE(GraphRunner, SealedRunsCaptureOnlyWhenAsked) {
  CudaGraphRunner runner(kCuda, {});
  runner.seal();
  for (int i = 0; i < 5; ++i) {
    const auto r = runner.run({2, false}, host_input(2, i), styles_for(2), good_step);
    EXPECT_FALSE(r.replayed);
  }
  EXPECT_EQ(runner.captures(), 0) << "sealed: run() must not capture";
  EXPECT_TRUE(runner.capture({2, false}, host_input(2, 0), styles_for(2), good_step));
  const at::Tensor host = host_input(2, 9);
  const auto r = runner.run({2, false}, host, styles_for(2), good_step);
  EXPECT_TRUE(r.replayed);
  EXPECT_LE((r.output.to(at::kCPU) - expected(host, styles_for(2))).abs().max().item<double>(), 1e-5);
  EXPECT_FALSE(runner.has_graph({2, true})) << "another channel order is another key";
}

CHECK_CASE(GraphRunner, NoGraphsMeansNoCaptures) {
  CudaGraphRunner::Options o;
  o.graphs = false;
  CudaGraphRunner runner(kCuda, o);
  for (int i = 0; i < 4; ++i) EXPECT_FALSE(runner.run({1, false}, host_input(1, i), styles_for(1), good_step).replayed);
  EXPECT_FALSE(runner.capture({1, false}, host_input(1, 0), styles_for(1), good_step));
  EXPECT_EQ(runner.captures(), 0);
}

// A failed capture must fall back to eager and leave CUDA and the allocator as they were.
void capture_failure_falls_back_cleanly(const CudaGraphRunner::Step& bad_step, const std::string& what) {
  CudaGraphRunner::Options o;
  o.warmup_calls = 1;  // the first call captures
  CudaGraphRunner runner(kCuda, o);
  const int uses_before = pool_uses(runner);
  for (int i = 0; i < 3; ++i) {
    const at::Tensor host = host_input(2, i);
    const auto r = runner.run({2, false}, host, styles_for(2), bad_step);
    EXPECT_FALSE(r.replayed) << what;
    EXPECT_LE((r.output.to(at::kCPU) - expected(host, styles_for(2))).abs().max().item<double>(), 1e-5)
        << what << ": the eager result after the failed capture, call " << i;
  }
  EXPECT_TRUE(runner.disabled()) << what;
  EXPECT_EQ(runner.capture_failures(), 1) << what << ": one try, then eager for good";
  EXPECT_EQ(runner.captures(), 0) << what;
  ASSERT_EQ(runner.warnings().size(), size_t{1}) << what;
  std::printf("  %s: %s\n", what.c_str(), runner.warnings().front().c_str());
  EXPECT_NE(runner.warnings().front().find("capture failed"), std::string::npos) << what;
  // Other keys run eagerly too, without a second attempt.
  EXPECT_FALSE(runner.run({3, false}, host_input(3, 0), styles_for(3), good_step).replayed) << what;
  EXPECT_FALSE(runner.capture({3, false}, host_input(3, 0), styles_for(3), good_step)) << what;
  EXPECT_EQ(runner.capture_failures(), 1) << what;
  expect_clean_cuda_state(what);
  EXPECT_EQ(pool_uses(runner), uses_before) << what << ": the failed capture's pool references were released";

  // The same pool takes a new capture: the allocators stopped recording to it.
  CudaGraphRunner::Options shared;
  shared.pool = runner.pool();
  CudaGraphRunner next(kCuda, shared);
  EXPECT_TRUE(next.capture({2, false}, host_input(2, 0), styles_for(2), good_step)) << what;
  const at::Tensor host = host_input(2, 7);
  const auto r = next.run({2, false}, host, styles_for(2), good_step);
  EXPECT_TRUE(r.replayed) << what;
  EXPECT_LE((r.output.to(at::kCPU) - expected(host, styles_for(2))).abs().max().item<double>(), 1e-5) << what;
  EXPECT_TRUE(next.warnings().empty()) << what;
}

CHECK_CASE(GraphRunner, CaptureFailureFromAHostSyncFallsBackCleanly) {
  // .item() copies to the host and waits: not allowed while the stream is capturing.
  capture_failure_falls_back_cleanly(
      [](const at::Tensor& in, const at::Tensor& styles) {
        at::Tensor y = good_step(in, styles);
        if (y.abs().max().item<double>() < 0) y = y.neg();  // never true; the read is the point
        return y;
      },
      "host sync");
}

CHECK_CASE(GraphRunner, CaptureFailureFromAnExceptionMidCaptureFallsBackCleanly) {
  // Throws after launching work, but only while capturing: eager calls succeed.
  capture_failure_falls_back_cleanly(
      [](const at::Tensor& in, const at::Tensor& styles) {
        at::Tensor y = good_step(in, styles);
        cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
        if (cudaStreamIsCapturing(c10::cuda::getCurrentCUDAStream().stream(), &status) == cudaSuccess &&
            status == cudaStreamCaptureStatusActive) {
          throw std::runtime_error("step failed during capture (test)");
        }
        return y;
      },
      "exception mid-capture");
}

}  // namespace
}  // namespace starganv2
#endif

int main(int argc, char** argv) {
#ifndef STARGANV2_WITH_CUDA
  (void)argc;
  (void)argv;
  std::printf("SKIP: this build of starganv2 has no CUDA support\n");
  return 77;
#else
  if (!torch::cuda::is_available()) {
    std::printf("SKIP: no CUDA device available (torch::cuda::is_available() is false)\n");
    return 77;
  }
  return starganv2::check::run_all(argc, argv);
#endif
}
