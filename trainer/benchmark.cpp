#include "benchmark.h"

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <torch/cuda.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "random.h"

namespace starganv2 {

namespace {

void sync(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.has_index() ? device.index() : -1);
}

Batch synthetic_batch(const TrainOptions& o, const torch::Device& device, int64_t step) {
  const ModelConfig& c = o.model;
  const int64_t n = o.batch_size, s = c.img_size;
  auto images = [&] { return (at::rand({n, 3, s, s}) * 2 - 1).to(device); };
  auto labels = [&] { return at::randint(c.num_domains, {n}, at::TensorOptions().dtype(at::kLong)).to(device); };
  Batch b;
  b.x_real = images();
  b.y_org = labels();
  b.x_ref = images();
  b.x_ref2 = images();
  b.y_trg = labels();
  auto [z, z2] = sample_latents(o.seed, step, n, c.latent_dim);
  b.z_trg = z.to(device);
  b.z_trg2 = z2.to(device);
  return b;
}

}  // namespace

std::vector<BenchmarkResult> run_benchmark(const BenchmarkOptions& options, std::ostream& out) {
  const TrainOptions& o = options.train;
  char line[256];
  std::snprintf(line, sizeof line, "starganv2-train benchmark: %s, img_size %lld, batch %lld, w_hpf %g, max_conv_dim %lld, %d domains\n",
                options.device.str().c_str(), static_cast<long long>(o.model.img_size), static_cast<long long>(o.batch_size),
                o.model.w_hpf, static_cast<long long>(o.model.max_conv_dim), static_cast<int>(o.model.num_domains));
  out << line;
  if (options.device.is_cuda()) at::globalContext().setBenchmarkCuDNN(true);  // as the official main.py

  std::vector<BenchmarkResult> results;
  for (Precision p : options.precisions) {
    if (p == Precision::kBFloat16 && !options.device.is_cuda()) {
      out << "  bf16: skipped (autocast bf16 is a CUDA mode; no CUDA device)\n";
      continue;
    }
    Solver solver(o, options.device, p, o.model.w_hpf > 0 ? FAN() : FAN(nullptr));
    BenchmarkResult r{p, {}, 0};
    for (int i = 0; i < options.warmup + options.iters; ++i) {
      const Batch batch = synthetic_batch(o, options.device, i);
      sync(options.device);
      const auto start = std::chrono::steady_clock::now();
      solver.train_step(batch);
      sync(options.device);
      const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (i >= options.warmup) r.seconds.push_back(sec);
    }
    std::vector<double> sorted = r.seconds;
    std::sort(sorted.begin(), sorted.end());
    if (!sorted.empty())
      r.median = sorted.size() % 2 ? sorted[sorted.size() / 2]
                                   : 0.5 * (sorted[sorted.size() / 2 - 1] + sorted[sorted.size() / 2]);
    std::snprintf(line, sizeof line, "  %-5s median %.4f s/iter  (min %.4f, max %.4f, %d timed after %d warm-up)\n",
                  to_string(p).c_str(), r.median, sorted.empty() ? 0.0 : sorted.front(), sorted.empty() ? 0.0 : sorted.back(),
                  options.iters, options.warmup);
    out << line;
    results.push_back(r);
  }
  if (results.size() == 2 && results[0].median > 0) {
    std::snprintf(line, sizeof line, "  bf16 / fp32 (same run): %.2fx\n", results[1].median / results[0].median);
    out << line;
  }
  out << "  reference: the official PyTorch code takes 0.56 s/iter on an H200 at 256², batch 8, w_hpf 1 (issue 4); "
         "goal <= 0.25\n";
  out.flush();
  return results;
}

}  // namespace starganv2
