// starganv2-train-bench: the training benchmark of starganv2-train --benchmark, built from the
// LibTorch-only training core so that it runs on a GPU machine without OpenCV or CLI11.
#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include <torch/cuda.h>

#include "trainer/benchmark.h"

namespace {

const char* kUsage =
    "usage: starganv2-train-bench [--device auto|cpu|cuda[:N]] [--img-size 256] [--batch-size 8]\n"
    "         [--w-hpf 1] [--max-conv-dim 512] [--style-dim 64] [--num-domains 2] [--iters 10]\n"
    "         [--warmup 3] [--precision fp32|bf16|both (default both)] [--csv FILE]\n"
    "Times official StarGAN v2 training iterations on synthetic data and prints the median s/iter;\n"
    "--csv also writes precision,median_s,min_s,max_s per precision to FILE.\n";

}  // namespace

int main(int argc, char** argv) {
  starganv2::BenchmarkOptions b;  // defaults: official 256², batch 8, w_hpf 1, 2 domains
  std::string device = "auto", precision = "both", csv_path;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      if (arg == "--help" || arg == "-h") {
        std::cout << kUsage;
        return 0;
      }
      if (i + 1 >= argc) throw std::invalid_argument("option " + arg + " needs a value");
      const std::string v = argv[++i];
      if (arg == "--device") device = v;
      else if (arg == "--img-size") b.train.model.img_size = std::stoll(v);
      else if (arg == "--batch-size") b.train.batch_size = std::stoll(v);
      else if (arg == "--w-hpf") b.train.model.w_hpf = std::stod(v);
      else if (arg == "--max-conv-dim") b.train.model.max_conv_dim = std::stoll(v);
      else if (arg == "--style-dim") b.train.model.style_dim = std::stoll(v);
      else if (arg == "--num-domains") b.train.model.num_domains = std::stoll(v);
      else if (arg == "--iters") b.iters = std::stoi(v);
      else if (arg == "--warmup") b.warmup = std::stoi(v);
      else if (arg == "--precision") precision = v;
      else if (arg == "--csv") csv_path = v;
      else throw std::invalid_argument("unknown option " + arg);
    }
    if (device == "auto")
      b.device = torch::cuda::is_available() ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
    else
      b.device = torch::Device(device);
    if (b.device.is_cuda() && !torch::cuda::is_available()) throw std::invalid_argument("CUDA is not available");
    if (precision == "both") b.precisions = {starganv2::Precision::kFloat32, starganv2::Precision::kBFloat16};
    else b.precisions = {starganv2::parse_training_precision(precision)};
    b.train.validate();
    const auto results = starganv2::run_benchmark(b, std::cout);
    if (!csv_path.empty()) {
      std::ofstream csv(csv_path);
      if (!csv) throw std::invalid_argument("--csv: cannot write " + csv_path);
      csv << "precision,median_s,min_s,max_s\n";
      for (const auto& r : results) {
        const auto [lo, hi] = std::minmax_element(r.seconds.begin(), r.seconds.end());
        csv << starganv2::to_string(r.precision) << ',' << r.median << ',' << (r.seconds.empty() ? 0.0 : *lo)
            << ',' << (r.seconds.empty() ? 0.0 : *hi) << '\n';
      }
      if (!csv) throw std::runtime_error("--csv: writing " + csv_path + " failed");
    }
  } catch (const std::exception& e) {
    std::cerr << "starganv2-train-bench: error: " << e.what() << "\n" << kUsage;
    return 1;
  }
  return 0;
}
