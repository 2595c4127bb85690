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
  // Under torchrun (WORLD_SIZE set): seconds before a rank waiting for a peer gives up.
  int64_t dist_timeout_s = 300;
};

struct BenchmarkResult {
  Precision precision;
  std::vector<double> seconds;  // per timed iteration
  double median = 0;
  // Data-parallel runs (torchrun): world size, and per iteration the time spent waiting for
  // all-reduces after the backward (communication not hidden by compute), the same all-reduces
  // alone (no compute running), and the bytes each rank all-reduced.
  int world_size = 1;
  double comm_wait = 0, comm_alone = 0;
  int64_t bytes_per_iter = 0;
};

// Runs the iterations (w_hpf > 0 uses a FAN with random weights: its cost does not depend on
// them) and prints a table to `out`. Precisions the device cannot run are skipped with a note.
// Started by torchrun, every rank trains its share (batch_size / world size) of the global
// batch with gradients all-reduced as in training, on cuda:LOCAL_RANK or the CPU, and rank 0
// prints.
std::vector<BenchmarkResult> run_benchmark(const BenchmarkOptions& options, std::ostream& out);

}  // namespace starganv2
