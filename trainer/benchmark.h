// Times training iterations on synthetic data (no decoding, no disk): the device-side cost of
// one official iteration at a given config, for fp32 and bf16 autocast.
#pragma once

#include <torch/types.h>

#include <ostream>
#include <vector>

#include "options.h"
#include "solver.h"

namespace starganv2 {

struct BenchmarkOptions {
  TrainOptions train;  // model config, batch size, hyper-parameters (defaults: official 256², batch 8)
  torch::Device device{torch::kCPU};
  std::vector<Precision> precisions{Precision::kFloat32};
  int warmup = 3;  // untimed iterations first (cuDNN autotuning, allocator growth)
  int iters = 10;  // timed iterations; the median is reported
};

struct BenchmarkResult {
  Precision precision;
  std::vector<double> seconds;  // per timed iteration
  double median = 0;
};

// Runs the iterations (w_hpf > 0 uses a FAN with random weights: its cost does not depend on
// them) and prints a table to `out`. Precisions the device cannot run are skipped with a note.
std::vector<BenchmarkResult> run_benchmark(const BenchmarkOptions& options, std::ostream& out);

}  // namespace starganv2
