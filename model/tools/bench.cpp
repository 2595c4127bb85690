// starganv2-bench: median time per call and per image of the inference engine against a naive
// fp32 eager baseline measured in the same run, for batches of aligned uint8 crops.
//
// The baseline is what a straightforward LibTorch user writes: uint8 -> float conversion on the
// CPU, plain module forward under NoGradGuard, result back to the CPU and converted to uint8
// there. The engine path is Translator::translate on image views, as the GStreamer element
// calls it. Weights are random (he init) unless a checkpoint is given: speed does not depend
// on their values.
//
// LibTorch only (no OpenCV, GStreamer or GoogleTest), so it runs on a bare GPU machine.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/utils.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "model/checkpoint.h"
#include "model/config.h"
#include "model/translator.h"

namespace {

using namespace starganv2;

constexpr const char* kUsage = R"(usage: starganv2-bench [options]

Times the StarGAN v2 inference engine against a naive fp32 eager baseline (same run, same
weights, same inputs) for batches of uint8 RGB crops, and prints the median ms per call and
per image. With w_hpf > 0 the times include the FAN masks (FAN+G), otherwise G alone.

options:
  --config LIST      comma-separated: celeba (official 256^2 CelebA-HQ, w_hpf=1), afhq (official
                     256^2 AFHQ, w_hpf=0), or a checkpoint file (.safetensors)     [celeba,afhq]
  --fan FILE         FAN weights for a w_hpf > 0 checkpoint without fan.* tensors
  --img-size N       override img_size of the built-in configs (e.g. 64 for a quick run)
  --device LIST      comma-separated: cpu, cuda, cuda:N, or all (cpu, and cuda:0 when a GPU
                     is present)                                                       [all]
  --precision LIST   engine precisions on CUDA: fp32,fp16,bf16 or all (the CPU runs fp32)  [all]
  --batches LIST     batch sizes                                                     [1,4,8]
  --iterations N     timed calls per row (median reported)          [CPU: 3, CUDA: 50]
  --warmup N         untimed calls per row before timing            [CPU: 1, CUDA: 10]
  --layout LIST      engine memory layouts: auto (nhwc on CUDA, nchw on the CPU), nchw, nhwc
                     or all (each its own row)                                         [auto]
  --no-graphs        engine on CUDA without CUDA graph replay
  --no-cpu-cache     engine on the CPU without its allocation cache (see model/cpu_cache.h)
  --threads N        CPU threads for LibTorch                          [LibTorch default]
  --csv FILE         also write every row to FILE as CSV (config, device, path, precision,
                     graphs, batch, ms/call, ms/image, vs naive, min ms), e.g. for
                     tests/gpu/check.sh's summary
  -h, --help
)";

struct Args {
  std::vector<std::string> configs{"celeba", "afhq"};
  std::string fan;
  int64_t img_size = 0;
  std::vector<std::string> devices{"all"};
  std::vector<std::string> precisions{"all"};
  std::vector<int64_t> batches{1, 4, 8};
  int iterations = -1;
  int warmup = -1;
  bool graphs = true;
  bool cpu_cache = true;
  int threads = 0;
  std::vector<std::string> layouts{"auto"};
  std::string csv;
};

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

int to_int(const std::string& flag, const std::string& v, int min) {
  try {
    size_t used = 0;
    const long n = std::stol(v, &used);
    if (used != v.size() || n < min || n > 1000000) throw std::invalid_argument("range");
    return static_cast<int>(n);
  } catch (const std::exception&) {
    throw std::invalid_argument(flag + ": expected an integer >= " + std::to_string(min) + ", got \"" + v + "\"");
  }
}

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "-h" || flag == "--help") {
      std::cout << kUsage;
      std::exit(0);
    }
    if (flag == "--no-graphs") {
      a.graphs = false;
      continue;
    }
    if (flag == "--no-cpu-cache") {
      a.cpu_cache = false;
      continue;
    }
    static const char* kWithValue[] = {"--config", "--fan",        "--img-size", "--device", "--precision",
                                       "--batches", "--iterations", "--warmup",   "--threads", "--layout", "--csv"};
    if (std::find(std::begin(kWithValue), std::end(kWithValue), flag) == std::end(kWithValue)) {
      throw std::invalid_argument("unknown option " + flag + " (see --help)");
    }
    if (i + 1 >= argc) throw std::invalid_argument("option " + flag + " needs a value (see --help)");
    const std::string v = argv[++i];
    if (flag == "--config") {
      a.configs = split(v);
    } else if (flag == "--fan") {
      a.fan = v;
    } else if (flag == "--img-size") {
      a.img_size = to_int(flag, v, 32);
    } else if (flag == "--device") {
      a.devices = split(v);
    } else if (flag == "--precision") {
      a.precisions = split(v);
    } else if (flag == "--batches") {
      a.batches.clear();
      for (const auto& b : split(v)) a.batches.push_back(to_int(flag, b, 1));
    } else if (flag == "--iterations") {
      a.iterations = to_int(flag, v, 1);
    } else if (flag == "--warmup") {
      a.warmup = to_int(flag, v, 0);
    } else if (flag == "--layout") {
      a.layouts = split(v);
    } else if (flag == "--csv") {
      a.csv = v;
    } else if (flag == "--threads") {
      a.threads = to_int(flag, v, 1);
    } else {
      throw std::invalid_argument("unknown option " + flag + " (see --help)");
    }
  }
  if (a.configs.empty() || a.devices.empty() || a.batches.empty() || a.precisions.empty()) {
    throw std::invalid_argument("empty --config, --device, --precision or --batches list");
  }
  return a;
}

// A model to benchmark: a name and a way to build fresh, identical networks (the engine takes
// its networks over and converts them, so each path gets its own copy).
struct ModelSource {
  std::string name;
  std::string short_name;  // e.g. "celeba_hq-256" (CSV)
  ModelConfig config;
  std::function<TranslatorNets()> build;
};

ModelSource builtin(const std::string& name, ModelConfig config, int64_t img_size) {
  if (img_size > 0) config.img_size = img_size;
  config.validate();
  ModelSource src;
  src.name = name + "-" + std::to_string(config.img_size) + " (w_hpf=" + (config.w_hpf > 0 ? "1: FAN+G" : "0: G") +
             ", random weights)";
  src.short_name = name + "-" + std::to_string(config.img_size);
  src.config = config;
  src.build = [config] {
    torch::manual_seed(20200101);  // the same he-init weights for every copy
    TranslatorNets nets;
    nets.config = config;
    for (int64_t d = 0; d < config.num_domains; ++d) nets.domains.push_back("domain" + std::to_string(d));
    nets.generator = Generator(config);
    nets.mapping_network = MappingNetwork(config);
    nets.style_encoder = StyleEncoder(config);
    if (config.w_hpf > 0) nets.fan = FAN();
    return nets;
  };
  return src;
}

ModelSource from_file(const std::string& path, const std::string& fan) {
  ModelSource src;
  src.build = [path, fan] { return load_translator_nets(path, fan); };
  src.config = Checkpoint::open(path).meta().config;
  src.short_name = std::filesystem::path(path).filename().string();
  std::replace(src.short_name.begin(), src.short_name.end(), ',', '_');  // a CSV field
  src.name = path + " (w_hpf=" + std::string(src.config.w_hpf > 0 ? "1: FAN+G" : "0: G") + ")";
  return src;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

struct Timing {
  double wall_ms;
  double cpu_ms;  // CPU time of this whole process (all threads) during the call
};

double process_cpu_ms() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

Timing time_call(const std::function<void()>& f) {
  const double c0 = process_cpu_ms();
  const auto t0 = std::chrono::steady_clock::now();
  f();
  const double wall = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return {wall, process_cpu_ms() - c0};
}

Layout parse_layout(const std::string& v) {
  if (v == "auto") return Layout::kAuto;
  if (v == "nchw") return Layout::kContiguous;
  if (v == "nhwc") return Layout::kChannelsLast;
  throw std::invalid_argument("--layout: expected auto, nchw, nhwc or all, got \"" + v + "\"");
}

// The naive user's call: everything in NCHW float on the CPU first, then the device.
at::Tensor naive_translate(TranslatorNets& nets, const c10::Device& device, const at::Tensor& u8_nhwc,
                           const at::Tensor& style) {
  torch::NoGradGuard no_grad;
  at::Tensor x = u8_nhwc.to(at::kFloat).div(255.0).sub(0.5).div(0.5).permute({0, 3, 1, 2}).contiguous();
  x = x.to(device);
  Masks masks;
  if (nets.config.w_hpf > 0) masks = nets.fan->get_heatmap(x);
  at::Tensor s = style.reshape({1, -1}).expand({x.size(0), style.numel()}).to(device);
  at::Tensor y = nets.generator->forward(x, s, masks).to(at::kCPU);
  return y.add(1.0).div(2.0).clamp(0.0, 1.0).mul(255.0).add(0.5).to(at::kByte).permute({0, 2, 3, 1}).contiguous();
}

struct Row {
  std::string path;
  std::string precision;  // fp32 | fp16 | bf16
  std::string graphs;     // "on" (every timed call a replay), "off", or "-" (CPU, naive)
  int64_t batch;
  std::vector<Timing> t;
  double speedup;  // naive median ms / this median ms, same batch
  std::string note;
};

double median_of(const std::vector<Timing>& t, double Timing::*field) {
  std::vector<double> v;
  for (const Timing& x : t) v.push_back(x.*field);
  return median(v);
}

void print_rows(const std::vector<Row>& rows) {
  std::printf("  %-28s %5s %14s %11s %9s %10s %13s  %s\n", "path", "batch", "ms/call (med)", "ms/image", "vs naive",
              "min ms", "cpu-ms (med)", "");
  for (const Row& r : rows) {
    const double med = median_of(r.t, &Timing::wall_ms);
    double min = med;
    for (const Timing& x : r.t) min = std::min(min, x.wall_ms);
    std::printf("  %-28s %5lld %14.3f %11.3f %8.2fx %10.3f %13.1f  %s\n", r.path.c_str(),
                static_cast<long long>(r.batch), med, med / r.batch, r.speedup, min, median_of(r.t, &Timing::cpu_ms),
                r.note.c_str());
  }
  std::fflush(stdout);
}

void write_csv(std::ofstream& csv, const ModelSource& src, const std::string& device, const std::vector<Row>& rows) {
  for (const Row& r : rows) {
    const double med = median_of(r.t, &Timing::wall_ms);
    double min = med;
    for (const Timing& x : r.t) min = std::min(min, x.wall_ms);
    // The long model names hold commas; the short one and what runs per frame are enough here.
    csv << src.short_name << (src.config.w_hpf > 0 ? " FAN+G" : " G") << ',' << device << ',' << r.path << ','
        << r.precision << ',' << r.graphs << ',' << r.batch << ',' << med << ',' << med / r.batch << ',' << r.speedup
        << ',' << min << '\n';
  }
  csv.flush();
}

void bench_device(const ModelSource& src, const std::string& device_name, const Args& args, std::ofstream* csv) {
  const c10::Device device(device_name);
  const bool cuda = device.is_cuda();
  const int iterations = args.iterations > 0 ? args.iterations : (cuda ? 50 : 3);
  const int warmup = args.warmup >= 0 ? args.warmup : (cuda ? 10 : 1);
  const int64_t s = src.config.img_size;

  std::vector<std::string> precisions;
  if (!cuda) {
    precisions = {"fp32"};
  } else {
    for (const auto& p : args.precisions) {
      if (p == "all") {
        precisions.insert(precisions.end(), {"fp32", "fp16", "bf16"});
      } else {
        precisions.push_back(to_string(parse_precision(p)));
      }
    }
  }
  std::vector<std::string> layouts;
  for (const auto& l : args.layouts) {
    if (l == "all") {
      layouts.insert(layouts.end(), {"nchw", "nhwc"});
    } else {
      (void)parse_layout(l);
      layouts.push_back(l);
    }
  }

  std::printf("\n%s on %s: %d timed calls per row after %d warm-up; paths take turns call by call\n",
              src.name.c_str(), device_name.c_str(), iterations, warmup);
  std::vector<Row> rows;
  std::vector<std::optional<Translator>> engines;
  std::vector<std::string> labels;
  for (const auto& p : precisions) {
    for (const auto& l : layouts) {
      TranslatorOptions opts;
      opts.device = device_name;
      opts.precision = parse_precision(p);
      opts.cuda_graphs = args.graphs;
      opts.cpu_allocation_cache = args.cpu_cache;
      opts.layout = parse_layout(l);
      opts.max_graph_batch = std::max<int64_t>(16, *std::max_element(args.batches.begin(), args.batches.end()));
      engines.emplace_back(Translator(src.build(), opts));
      engines.back()->use_latent_style(/*domain=*/0, /*seed=*/7, /*psi=*/1.0);
      labels.push_back("engine " + to_string(engines.back()->precision()) + (l == "auto" ? "" : " " + l));
      std::printf("  %s: %s\n", labels.back().c_str(), engines.back()->description().c_str());
    }
  }
  const at::Tensor style = engines.front()->current_style();

  // Baseline networks, fp32 on the device, eval mode.
  TranslatorNets naive = src.build();
  naive.generator->to(device);
  naive.generator->eval();
  naive.mapping_network->to(device);
  naive.mapping_network->eval();
  if (naive.fan) {
    naive.fan->to(device);
    naive.fan->eval();
  }


  for (int64_t batch : args.batches) {
    torch::manual_seed(batch);
    const at::Tensor input = at::randint(0, 256, {batch, s, s, 3}, at::TensorOptions().dtype(at::kByte));
    at::Tensor naive_out;
    std::vector<at::Tensor> outputs;
    std::vector<std::vector<ImageView>> in(engines.size(), std::vector<ImageView>(batch));
    std::vector<std::vector<MutableImageView>> out(engines.size(), std::vector<MutableImageView>(batch));
    for (size_t e = 0; e < engines.size(); ++e) {
      outputs.push_back(at::empty_like(input));
      for (int64_t i = 0; i < batch; ++i) {
        in[e][i] = {input[i].data_ptr<uint8_t>(), s, s, s * 3, PixelFormat::kRGB};
        out[e][i] = {outputs[e][i].data_ptr<uint8_t>(), s, s, s * 3, PixelFormat::kRGB};
      }
    }
    // The engine captures its CUDA graphs after its own warm-up calls (2 by default): all timed
    // calls must be replays.
    const int rounds_warmup = cuda && args.graphs ? std::max(warmup, 3) : warmup;
    // Paths take turns call by call, so that load from other processes hits them alike.
    std::vector<Timing> naive_t;
    std::vector<std::vector<Timing>> engine_t(engines.size());
    std::vector<int64_t> replays_before(engines.size(), 0);
    for (int round = 0; round < rounds_warmup + iterations; ++round) {
      const bool timed = round >= rounds_warmup;
      const Timing t = time_call([&] { naive_out = naive_translate(naive, device, input, style); });
      if (timed) naive_t.push_back(t);
      for (size_t e = 0; e < engines.size(); ++e) {
        if (round == rounds_warmup) replays_before[e] = engines[e]->stats().graph_replays;
        const Timing te = time_call([&] { engines[e]->translate(in[e], out[e]); });
        if (timed) engine_t[e].push_back(te);
      }
    }
    const double naive_ms = median_of(naive_t, &Timing::wall_ms);
    rows.push_back({"naive fp32 eager", "fp32", "-", batch, naive_t, 1.0, ""});
    for (size_t e = 0; e < engines.size(); ++e) {
      Translator& engine = *engines[e];
      std::string note;
      if (engine.precision() == Precision::kFloat32) {
        const int64_t max_diff = (outputs[e].to(at::kShort) - naive_out.to(at::kShort)).abs().max().item<int64_t>();
        note = "max |engine - naive| = " + std::to_string(max_diff) + "/255";
      }
      std::string label = labels[e];
      std::string graphs = "-";
      if (cuda) graphs = "off";
      if (cuda && args.graphs) {
        const bool all_replays = engine.stats().graph_replays - replays_before[e] == iterations;
        label += all_replays ? " + graph" : " (no graph)";
        graphs = all_replays ? "on" : "failed";
      }
      rows.push_back({label, to_string(engine.precision()), graphs, batch, engine_t[e],
                      naive_ms / median_of(engine_t[e], &Timing::wall_ms), note});
    }
  }
  print_rows(rows);
  if (csv) write_csv(*csv, src, device_name, rows);
  for (auto& e : engines) {
    for (const auto& w : e->warnings()) std::printf("  warning: %s\n", w.c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Args args = parse_args(argc, argv);
    if (args.threads > 0) at::set_num_threads(args.threads);

    std::vector<ModelSource> sources;
    for (const auto& c : args.configs) {
      if (c == "celeba") {
        sources.push_back(builtin("celeba_hq", celeba_hq_config(), args.img_size));
      } else if (c == "afhq") {
        sources.push_back(builtin("afhq", afhq_config(), args.img_size));
      } else {
        sources.push_back(from_file(c, args.fan));
      }
    }
    std::vector<std::string> devices;
    for (const auto& d : args.devices) {
      if (d == "all") {
        devices.push_back("cpu");
        if (torch::cuda::is_available()) devices.push_back("cuda:0");
      } else {
        devices.push_back(d);
      }
    }
    std::printf("starganv2-bench: LibTorch threads %d, CUDA %s\n", at::get_num_threads(),
                torch::cuda::is_available() ? "available" : "not available (no GPU figures)");
    std::ofstream csv;
    if (!args.csv.empty()) {
      csv.open(args.csv);
      if (!csv) throw std::runtime_error("--csv: cannot write " + args.csv);
      csv << "config,device,path,precision,graphs,batch,ms_per_call,ms_per_image,vs_naive,min_ms\n";
    }
    for (const auto& src : sources) {
      for (const auto& d : devices) {
        bench_device(src, d, args, csv.is_open() ? &csv : nullptr);
      }
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "starganv2-bench: %s\n", e.what());
    return 1;
  }
}
