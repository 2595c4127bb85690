#include "translator.h"

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <torch/cuda.h>
#include <torch/nn/module.h>

#ifdef STARGANV2_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#endif

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <optional>
#include <stdexcept>
#include <utility>

#include "checkpoint.h"
#include "cpu_cache.h"
#include "safetensors.h"
#include "seed_rng.h"

namespace starganv2 {

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------

Precision parse_precision(std::string_view name) {
  if (name == "auto") return Precision::kAuto;
  if (name == "fp32" || name == "float32") return Precision::kFloat32;
  if (name == "fp16" || name == "float16" || name == "half") return Precision::kFloat16;
  if (name == "bf16" || name == "bfloat16") return Precision::kBFloat16;
  throw std::invalid_argument("unknown precision \"" + std::string(name) + "\": use auto, fp32, fp16 or bf16");
}

std::string to_string(Precision precision) {
  switch (precision) {
    case Precision::kAuto: return "auto";
    case Precision::kFloat32: return "fp32";
    case Precision::kFloat16: return "fp16";
    case Precision::kBFloat16: return "bf16";
  }
  return "?";
}

namespace {

c10::Device resolve_device(const std::string& name) {
  if (name == "auto" || name.empty()) {
    return torch::cuda::is_available() ? c10::Device(c10::kCUDA, 0) : c10::Device(c10::kCPU);
  }
  if (name == "cpu") return c10::Device(c10::kCPU);
  if (name.rfind("cuda", 0) == 0) {
    int index = 0;
    if (name.size() > 4) {
      const char* first = name.data() + 5;
      const char* last = name.data() + name.size();
      auto [ptr, ec] = std::from_chars(first, last, index);
      if (name[4] != ':' || first == last || ec != std::errc() || ptr != last || index < 0) {
        throw std::invalid_argument("invalid device \"" + name + "\": use auto, cpu, cuda or cuda:N");
      }
    }
#ifdef STARGANV2_WITH_CUDA
    const bool built_with_cuda = true;
#else
    const bool built_with_cuda = false;
#endif
    if (!built_with_cuda || !torch::cuda::is_available()) {
      throw std::runtime_error("CUDA requested but not available (device \"" + name + "\"): " +
                               (built_with_cuda ? "no CUDA device or driver was found"
                                                : "this build of starganv2 has no CUDA support"));
    }
    const int count = static_cast<int>(torch::cuda::device_count());
    if (index >= count) {
      throw std::runtime_error("no GPU " + std::to_string(index) + " (device \"" + name + "\"): this machine has " +
                               std::to_string(count) + " CUDA device" + (count == 1 ? "" : "s") +
                               ", cuda:0 to cuda:" + std::to_string(count - 1));
    }
    return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  throw std::invalid_argument("invalid device \"" + name + "\": use auto, cpu, cuda or cuda:N");
}

Precision resolve_precision(Precision requested, const c10::Device& device) {
  if (requested == Precision::kAuto) return device.is_cuda() ? Precision::kFloat16 : Precision::kFloat32;
  if (!device.is_cuda() && requested != Precision::kFloat32) {
    throw std::invalid_argument("precision " + to_string(requested) +
                                " needs a CUDA device; on the CPU only fp32 is supported");
  }
  return requested;
}

at::ScalarType scalar_type(Precision p) {
  switch (p) {
    case Precision::kFloat16: return at::kHalf;
    case Precision::kBFloat16: return at::kBFloat16;
    default: return at::kFloat;
  }
}

std::string shape_string(at::IntArrayRef sizes) {
  std::string s = "(";
  for (size_t i = 0; i < sizes.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(sizes[i]);
  }
  return s + ")";
}

// Copies the FAN weights of a separate file: "fan.*" names, or the FAN's own names without a
// prefix (a bare state dict such as one converted from the authors' wing.ckpt).
void load_fan_file(const std::filesystem::path& path, FANImpl& fan, std::vector<std::string>& warnings) {
  SafetensorsFile file = read_safetensors(path);
  std::string prefix;
  for (const auto& [name, t] : file.tensors) {
    if (name.rfind("fan.", 0) == 0) {
      prefix = "fan.";
      break;
    }
  }
  std::vector<std::string> problems;
  std::map<std::string, bool> used;
  at::NoGradGuard no_grad;
  for (auto& [name, target] : named_state(fan)) {
    auto it = file.tensors.find(prefix + name);
    if (it == file.tensors.end()) {
      problems.push_back("missing " + prefix + name);
      continue;
    }
    used[it->first] = true;
    const at::Tensor& src = it->second;
    if (!at::isFloatingType(src.scalar_type())) {
      problems.push_back(prefix + name + " is not a float tensor");
    } else if (src.sizes() != target.sizes()) {
      problems.push_back(prefix + name + " has shape " + shape_string(src.sizes()) + ", expected " +
                         shape_string(target.sizes()));
    } else {
      target.copy_(src.to(target.scalar_type()));
    }
  }
  if (!problems.empty()) {
    std::string msg = path.string() + ": not a usable FAN weight file: ";
    const size_t shown = std::min<size_t>(problems.size(), 8);
    for (size_t i = 0; i < shown; ++i) {
      if (i) msg += "; ";
      msg += problems[i];
    }
    if (problems.size() > shown) msg += "; and " + std::to_string(problems.size() - shown) + " more";
    throw CheckpointError(msg);
  }
  for (const auto& [name, t] : file.tensors) {
    if (name.rfind(prefix, 0) == 0 && !used.count(name) && name.find("num_batches_tracked") == std::string::npos) {
      warnings.push_back(path.string() + ": unexpected tensor " + name + " ignored");
    }
  }
}

}  // namespace

TranslatorNets load_translator_nets(const std::filesystem::path& checkpoint,
                                    const std::filesystem::path& fan_checkpoint) {
  Checkpoint ckpt = Checkpoint::open(checkpoint);
  const CheckpointMeta& meta = ckpt.meta();
  TranslatorNets nets;
  nets.config = meta.config;
  try {
    nets.config.validate();
  } catch (const std::invalid_argument& e) {
    throw CheckpointError(checkpoint.string() + ": " + e.what());
  }
  nets.domains = meta.domains;
  if (static_cast<int64_t>(nets.domains.size()) != nets.config.num_domains) {
    throw CheckpointError(checkpoint.string() + ": the metadata names " + std::to_string(nets.domains.size()) +
                          " domains but the config has num_domains = " + std::to_string(nets.config.num_domains));
  }
  for (const char* net : {"generator", "mapping_network", "style_encoder"}) {
    if (!ckpt.has_network(net)) {
      throw CheckpointError(checkpoint.string() + ": no " + net + ".* tensors: not a StarGAN v2 inference checkpoint");
    }
  }
  nets.generator = Generator(nets.config);
  nets.mapping_network = MappingNetwork(nets.config);
  nets.style_encoder = StyleEncoder(nets.config);
  auto note_unexpected = [&](const std::vector<std::string>& names, const std::filesystem::path& file) {
    for (const auto& n : names) nets.warnings.push_back(file.string() + ": unexpected tensor " + n + " ignored");
  };
  note_unexpected(ckpt.load_into(*nets.generator, "generator"), checkpoint);
  note_unexpected(ckpt.load_into(*nets.mapping_network, "mapping_network"), checkpoint);
  note_unexpected(ckpt.load_into(*nets.style_encoder, "style_encoder"), checkpoint);

  if (nets.config.w_hpf > 0) {
    nets.fan = FAN();
    if (!fan_checkpoint.empty()) {
      load_fan_file(fan_checkpoint, *nets.fan, nets.warnings);
    } else if (ckpt.has_network("fan")) {
      note_unexpected(ckpt.load_into(*nets.fan, "fan"), checkpoint);
    } else {
      throw CheckpointError(checkpoint.string() + ": the model has w_hpf = " + std::to_string(nets.config.w_hpf) +
                            " and needs the FAN face-mask network, but the file has no fan.* tensors; "
                            "give the FAN weights as a separate file (fan checkpoint)");
    }
  } else if (!fan_checkpoint.empty()) {
    nets.warnings.push_back(fan_checkpoint.string() + ": ignored, the model has w_hpf = 0 and uses no FAN masks");
  }
  return nets;
}

// ---------------------------------------------------------------------------------------------
// Translator
// ---------------------------------------------------------------------------------------------

struct Translator::Impl {
  ~Impl() {
    if (cpu_cache_acquired) cpu_cache_release();
  }

  TranslatorNets nets;
  TranslatorOptions options;
  c10::Device device{c10::kCPU};
  Precision precision = Precision::kFloat32;
  at::ScalarType dtype = at::kFloat;
  bool channels_last = false;
  bool cpu_cache_acquired = false;
  std::vector<std::string> warnings;
  TranslatorStats stats;
  std::string description;

  at::Tensor average_styles;  // (num_domains, style_dim) fp32 on the device, lazily

  struct LatentKey {
    int64_t domain;
    uint64_t seed;
    double psi;
    bool operator==(const LatentKey&) const = default;
  };
  std::optional<LatentKey> latent_key;
  at::Tensor latent_cached;  // (style_dim) fp32 CPU
  int64_t reference_domain = -1;
  at::Tensor reference_pixels;  // (img,img,3) uint8 RGB CPU
  at::Tensor reference_cached;

  at::Tensor current_cpu;  // (style_dim) fp32
  at::Tensor current_dev;  // (1, style_dim) fp32 on the device

  at::Tensor host_in;  // staging (max N, img, img, 3) uint8, pinned on CUDA
  at::Tensor host_out;

#ifdef STARGANV2_WITH_CUDA
  struct Graph {
    int eager_calls = 0;
    bool failed = false;
    std::unique_ptr<at::cuda::CUDAGraph> graph;
    at::Tensor in, style, out;  // static buffers the graph reads and writes
  };
  std::map<std::pair<int64_t, bool>, Graph> graphs;
  bool graphs_disabled = false;
#endif

  int64_t img() const { return nets.config.img_size; }
  int64_t style_dim() const { return nets.config.style_dim; }

  void check_domain(int64_t domain) const {
    if (domain < 0 || domain >= nets.config.num_domains) {
      std::string names;
      for (size_t i = 0; i < nets.domains.size(); ++i) {
        if (i) names += ", ";
        names += std::to_string(i) + " = " + nets.domains[i];
      }
      throw std::invalid_argument("domain index " + std::to_string(domain) + " out of range; valid domains: " + names);
    }
  }

  // y: one domain (scalar or 1 element) or one per sample -> (n) int64 CPU, each checked.
  at::Tensor domains_for(const at::Tensor& y, int64_t n) const {
    if (!y.defined()) throw std::invalid_argument("no domain given");
    at::Tensor yy = y.to(at::kCPU, at::kLong).reshape({-1});
    if (yy.numel() == 1) yy = yy.expand({n}).contiguous();
    if (yy.numel() != n) {
      throw std::invalid_argument("need one domain per sample: " + std::to_string(yy.numel()) + " domains for " +
                                  std::to_string(n) + " samples");
    }
    for (int64_t i = 0; i < n; ++i) check_domain(yy[i].item<int64_t>());
    return yy;
  }

  // uint8 NHWC (any order) on the device -> float NCHW in [-1,1] of the given dtype. The
  // permuted view is channels-last strided, which the convolutions use directly when the
  // weights are channels-last too. The arithmetic is the official ToTensor + Normalize(0.5,0.5)
  // in float32, whatever the compute dtype.
  at::Tensor to_float(const at::Tensor& u8_nhwc, bool bgr, at::ScalarType type) const {
    at::Tensor x = bgr ? u8_nhwc.flip({3}) : u8_nhwc;
    x = x.permute({0, 3, 1, 2}).to(at::kFloat).div(255.0).sub(0.5).div(0.5);
    x = x.to(type);
    return channels_last ? x.contiguous(at::MemoryFormat::ChannelsLast) : x.contiguous();
  }

  // float NCHW -> uint8 NHWC as the official save_image: clamp((y+1)/2, 0, 1) * 255 + 0.5, truncated.
  static at::Tensor to_u8(const at::Tensor& y, bool bgr) {
    at::Tensor u = y.to(at::kFloat).add(1.0).div(2.0).clamp(0.0, 1.0).mul(255.0).add(0.5).to(at::kByte);
    u = u.permute({0, 2, 3, 1});
    if (bgr) u = u.flip({3});
    return u.contiguous();
  }

  Masks masks_of(const at::Tensor& x) {
    if (nets.config.w_hpf > 0) return nets.fan->get_heatmap(x);
    return {};
  }

  // The whole device-side step: (N,img,img,3) uint8 + (N,style_dim) fp32 -> (N,img,img,3) uint8.
  at::Tensor forward_u8(const at::Tensor& u8_nhwc, bool bgr, const at::Tensor& styles) {
    at::Tensor x = to_float(u8_nhwc, bgr, dtype);
    Masks masks = masks_of(x);
    at::Tensor y = nets.generator->forward(x, styles.to(dtype), masks);
    return to_u8(y, bgr);
  }

  void ensure_staging(int64_t n) {
    if (host_in.defined() && host_in.size(0) >= n) return;
    auto opts = at::TensorOptions().dtype(at::kByte).pinned_memory(device.is_cuda());
    host_in = at::empty({n, img(), img(), 3}, opts);
    host_out = at::empty({n, img(), img(), 3}, opts);
  }

  // host_u8: (N,img,img,3) contiguous CPU; styles: (N,style_dim) fp32 on the device. Returns
  // (N,img,img,3) uint8 on the CPU, possibly a view of host_out (valid until the next call).
  at::Tensor run_batch(const at::Tensor& host_u8, bool bgr, const at::Tensor& styles) {
    if (!device.is_cuda()) {
      ++stats.eager_calls;
      return forward_u8(host_u8, bgr, styles);
    }
#ifdef STARGANV2_WITH_CUDA
    const int64_t n = host_u8.size(0);
    c10::cuda::CUDAGuard guard(device);
    auto stream = c10::cuda::getCurrentCUDAStream(device.index());
    ensure_staging(n);
    at::Tensor out_host = host_out.narrow(0, 0, n);
    Graph* g = nullptr;
    if (options.cuda_graphs && n <= options.max_graph_batch) {
      auto it = graphs.find({n, bgr});
      if (it != graphs.end()) {
        g = &it->second;
      } else if (!graphs_disabled) {
        g = &graphs[{n, bgr}];
      }
    }
    if (g && g->graph) {
      g->in.copy_(host_u8, /*non_blocking=*/host_u8.is_pinned());
      g->style.copy_(styles);
      g->graph->replay();
      out_host.copy_(g->out, /*non_blocking=*/true);
      stream.synchronize();
      ++stats.graph_replays;
      return out_host;
    }
    at::Tensor in_dev = host_u8.to(device, /*non_blocking=*/host_u8.is_pinned());
    at::Tensor out_dev = forward_u8(in_dev, bgr, styles);
    out_host.copy_(out_dev, /*non_blocking=*/true);
    stream.synchronize();
    ++stats.eager_calls;
    if (g && !g->failed && !graphs_disabled && ++g->eager_calls >= std::max(1, options.warmup_calls)) {
      capture(*g, in_dev, bgr, styles);
    }
    return out_host;
#else
    throw std::logic_error("CUDA device without CUDA support");
#endif
  }

#ifdef STARGANV2_WITH_CUDA
  // Records the step into a CUDA graph on a side stream (capture must not run on the default
  // stream). A failure (an op that cannot be captured) leaves this shape running eagerly.
  void capture(Graph& g, const at::Tensor& example_in, bool bgr, const at::Tensor& example_styles) {
    const int64_t n = example_in.size(0);
    g.in = example_in.clone();
    g.style = example_styles.contiguous().clone();
    c10::cuda::device_synchronize();
    auto side = c10::cuda::getStreamFromPool(/*isHighPriority=*/false, device.index());
    auto graph = std::make_unique<at::cuda::CUDAGraph>();
    // The guard outlives the try block: a failed capture must be ended on the stream it began on.
    c10::cuda::CUDAStreamGuard stream_guard(side);
    bool capturing = false;
    try {
      // A run on the side stream first, so that lazy initialisation (cuDNN autotuning,
      // workspaces) happens outside the capture.
      forward_u8(g.in, bgr, g.style);
      side.synchronize();
      graph->capture_begin({0, 0}, cudaStreamCaptureModeThreadLocal);
      capturing = true;
      g.out = forward_u8(g.in, bgr, g.style);
      capturing = false;
      graph->capture_end();
      side.synchronize();
    } catch (const std::exception& e) {
      if (capturing) {
        try {
          graph->capture_end();
        } catch (...) {
        }
      }
      (void)cudaGetLastError();  // clear a capture error so that later eager work is unaffected
      graph.reset();
      c10::cuda::device_synchronize();
      g.failed = true;
      g.in = g.style = g.out = at::Tensor();
      // Whatever broke this capture (an op that synchronises with the host, say) breaks the
      // others too; one try is enough.
      graphs_disabled = true;
      warnings.push_back("CUDA graph capture failed (batch " + std::to_string(n) +
                         "); translating eagerly from now on: " + e.what());
      return;
    }
    g.graph = std::move(graph);
    ++stats.graph_captures;
  }
#endif

  at::Tensor styles_for(int64_t n, const at::Tensor& styles) {
    if (styles.defined()) {
      if (styles.dim() != 2 || styles.size(0) != n || styles.size(1) != style_dim()) {
        throw std::invalid_argument("styles must be (" + std::to_string(n) + "," + std::to_string(style_dim()) +
                                    "), got " + shape_string(styles.sizes()));
      }
      return styles.to(device, at::kFloat).contiguous();
    }
    if (!current_dev.defined()) {
      throw std::invalid_argument("no style chosen: call use_latent_style, use_reference_style or use_style first");
    }
    return current_dev.expand({n, style_dim()}).contiguous();
  }

  void check_view(const ImageView& v, size_t i, const char* what) const {
    if (v.data == nullptr) throw std::invalid_argument(std::string(what) + " " + std::to_string(i) + " has no pixels");
    if (v.width != img() || v.height != img()) {
      throw std::invalid_argument("wrong crop size: " + std::string(what) + " " + std::to_string(i) + " is " +
                                  std::to_string(v.width) + "x" + std::to_string(v.height) + ", the model needs " +
                                  std::to_string(img()) + "x" + std::to_string(img()));
    }
    const int bpp = bytes_per_pixel(v.format);
    if (v.row_stride < v.width * bpp) {
      throw std::invalid_argument(std::string(what) + " " + std::to_string(i) + ": row stride " +
                                  std::to_string(v.row_stride) + " is less than width * " + std::to_string(bpp));
    }
  }

  static at::Tensor rgb_view(const ImageView& v) {
    const int64_t bpp = bytes_per_pixel(v.format);
    at::Tensor t = at::from_blob(const_cast<uint8_t*>(v.data), {v.height, v.width, bpp}, {v.row_stride, bpp, 1},
                                 at::TensorOptions().dtype(at::kByte));
    return bpp == 3 ? t : t.narrow(2, 0, 3);
  }

  void set_current(const at::Tensor& style_cpu) {
    current_cpu = style_cpu;
    current_dev = style_cpu.reshape({1, style_dim()}).to(device);
  }

  at::Tensor compute_average_styles() {
    if (!average_styles.defined()) {
      at::Tensor z = seeded_normal(kAverageStyleSeed, kAverageStyleSamples, nets.config.latent_dim).to(device);
      average_styles = nets.mapping_network->forward_all(z).mean(0);
      ++stats.average_style_computations;
    }
    return average_styles;
  }
};

Translator Translator::open(const std::filesystem::path& checkpoint, const TranslatorOptions& options,
                            const std::filesystem::path& fan_checkpoint) {
  // Resolve the device first: a bad device string should not cost a model load.
  (void)resolve_precision(options.precision, resolve_device(options.device));
  return Translator(load_translator_nets(checkpoint, fan_checkpoint), options);
}

Translator::Translator(TranslatorNets nets, const TranslatorOptions& options) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.device = resolve_device(options.device);
  m.precision = resolve_precision(options.precision, m.device);
  m.dtype = scalar_type(m.precision);
  m.options = options;
  if (!nets.generator || !nets.mapping_network || !nets.style_encoder) {
    throw std::invalid_argument("Translator: generator, mapping_network and style_encoder are required");
  }
  nets.config.validate();
  if (nets.config.w_hpf > 0 && !nets.fan) {
    throw std::invalid_argument("Translator: the model has w_hpf > 0 and needs the FAN, but none was given");
  }
  if (static_cast<int64_t>(nets.domains.size()) != nets.config.num_domains) {
    throw std::invalid_argument("Translator: " + std::to_string(nets.domains.size()) + " domain names for " +
                                std::to_string(nets.config.num_domains) + " domains");
  }
  m.nets = std::move(nets);
  m.warnings = m.nets.warnings;

  // Not InferenceMode: parameters must stay normal tensors (set_data refuses inference tensors).
  at::NoGradGuard no_grad;
  // F and E run rarely (when the style changes) and stay fp32, so a style is the same number
  // whatever the precision; G and the FAN run per frame in the chosen precision.
  m.nets.mapping_network->to(m.device, at::kFloat);
  m.nets.style_encoder->to(m.device, at::kFloat);
  m.nets.generator->to(m.device, m.dtype);
  if (m.nets.fan) m.nets.fan->to(m.device, m.dtype);
  m.nets.generator->eval();
  m.nets.mapping_network->eval();
  m.nets.style_encoder->eval();
  if (m.nets.fan) m.nets.fan->eval();

  // Channels-last (NHWC) is the layout cuDNN's tensor-core kernels want; the input crops are
  // interleaved already, so the conversion to float keeps that layout for free. On the CPU,
  // starganv2-bench --layout all measured NCHW as fast or faster once the allocation cache is on
  // (NHWC pays for copies around every instance norm), and NCHW matches the plain networks bit
  // for bit.
  m.channels_last = options.layout == Layout::kAuto ? m.device.is_cuda() : options.layout == Layout::kChannelsLast;
  if (m.channels_last) {
    auto to_nhwc = [](torch::nn::Module& module) {
      for (auto& p : module.parameters()) {
        if (p.dim() == 4) p.set_data(p.data().contiguous(at::MemoryFormat::ChannelsLast));
      }
      for (auto& b : module.buffers()) {
        if (b.dim() == 4) b.set_data(b.data().contiguous(at::MemoryFormat::ChannelsLast));
      }
    };
    to_nhwc(*m.nets.generator);
    if (m.nets.fan) to_nhwc(*m.nets.fan);
  }

  std::string where;
  if (m.device.is_cuda()) {
#ifdef STARGANV2_WITH_CUDA
    at::globalContext().setBenchmarkCuDNN(true);  // fixed shapes per batch size: autotune once
    where = m.device.str() + " (" + at::cuda::getDeviceProperties(m.device.index())->name + ")";
#endif
  } else {
    where = "cpu (" + std::to_string(at::get_num_threads()) + " threads)";
  }
  if (m.device.is_cpu() && options.cpu_allocation_cache) {
    cpu_cache_acquire();
    m.cpu_cache_acquired = true;
  }
  m.description = where + ", " + to_string(m.precision) +
                  (m.device.is_cuda() && options.cuda_graphs ? ", CUDA graphs" : "");
}

Translator::~Translator() = default;
Translator::Translator(Translator&&) noexcept = default;
Translator& Translator::operator=(Translator&&) noexcept = default;

const ModelConfig& Translator::config() const { return impl_->nets.config; }
const std::vector<std::string>& Translator::domains() const { return impl_->nets.domains; }
c10::Device Translator::device() const { return impl_->device; }
Precision Translator::precision() const { return impl_->precision; }
std::string Translator::description() const { return impl_->description; }
const std::vector<std::string>& Translator::warnings() const { return impl_->warnings; }
const TranslatorStats& Translator::stats() const { return impl_->stats; }

int64_t Translator::domain_index(std::string_view name_or_index) const {
  const auto& names = impl_->nets.domains;
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == name_or_index) return static_cast<int64_t>(i);
  }
  int64_t index = -1;
  auto [ptr, ec] = std::from_chars(name_or_index.data(), name_or_index.data() + name_or_index.size(), index);
  if (!name_or_index.empty() && ec == std::errc() && ptr == name_or_index.data() + name_or_index.size() &&
      index >= 0 && index < static_cast<int64_t>(names.size())) {
    return index;
  }
  std::string valid;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i) valid += ", ";
    valid += names[i];
  }
  throw std::invalid_argument("unknown domain \"" + std::string(name_or_index) + "\"; valid domains: " + valid +
                              " (or an index 0.." + std::to_string(names.size() - 1) + ")");
}

// ---- styles ----
// Public results are cloned outside InferenceMode so that callers get ordinary tensors they may
// modify in place or use with autograd.

namespace {
// Every engine call: InferenceMode, plus the CPU allocation cache when this translator uses it.
struct CallScope {
  explicit CallScope(bool cpu_cache) {
    if (cpu_cache) cache.emplace();
  }
  std::optional<CpuCacheScope> cache;
  c10::InferenceMode inference;
};

template <typename F>
at::Tensor outside_inference_mode(bool cpu_cache, F&& f) {
  at::Tensor t;
  {
    CallScope scope(cpu_cache);
    t = f();
  }
  return t.clone();
}
}  // namespace

at::Tensor Translator::mapping_style(const at::Tensor& z, const at::Tensor& y) {
  Impl& m = *impl_;
  if (!z.defined() || z.dim() != 2 || z.size(1) != m.nets.config.latent_dim || z.size(0) == 0) {
    throw std::invalid_argument("latent codes must be (N," + std::to_string(m.nets.config.latent_dim) + "), got " +
                                (z.defined() ? shape_string(z.sizes()) : std::string("none")));
  }
  return outside_inference_mode(m.cpu_cache_acquired, [&] {
    at::Tensor yy = m.domains_for(y, z.size(0));
    return m.nets.mapping_network->forward(z.to(m.device, at::kFloat), yy.to(m.device)).to(at::kCPU);
  });
}

at::Tensor Translator::average_style(int64_t domain) {
  Impl& m = *impl_;
  m.check_domain(domain);
  return outside_inference_mode(m.cpu_cache_acquired, [&] { return m.compute_average_styles()[domain].to(at::kCPU); });
}

at::Tensor Translator::latent_style(int64_t domain, uint64_t seed, double psi) {
  Impl& m = *impl_;
  m.check_domain(domain);
  if (!(psi >= 0.0 && psi <= 1.0)) {
    throw std::invalid_argument("psi must be in [0, 1], got " + std::to_string(psi));
  }
  const Impl::LatentKey key{domain, seed, psi};
  if (m.latent_key && *m.latent_key == key) return m.latent_cached.clone();
  return outside_inference_mode(m.cpu_cache_acquired, [&] {
    at::Tensor z = seeded_normal(seed, 1, m.nets.config.latent_dim).to(m.device);
    at::Tensor y = at::full({1}, domain, at::TensorOptions().dtype(at::kLong).device(m.device));
    at::Tensor s = m.nets.mapping_network->forward(z, y)[0];
    if (psi != 1.0) {
      // Official truncation: torch.lerp(s_avg, s, psi); lerp returns s_avg exactly at psi = 0.
      s = at::lerp(m.compute_average_styles()[domain], s, psi);
    }
    ++m.stats.style_computations;
    m.latent_key = key;
    m.latent_cached = s.to(at::kCPU).contiguous();
    return m.latent_cached;
  });
}

at::Tensor Translator::reference_style(const at::Tensor& x, const at::Tensor& y) {
  Impl& m = *impl_;
  const int64_t s = m.img();
  if (!x.defined() || x.dim() != 4 || x.size(0) == 0 || x.size(1) != 3 || x.size(2) != s || x.size(3) != s) {
    throw std::invalid_argument("reference images must be (N,3," + std::to_string(s) + "," + std::to_string(s) +
                                "), got " + (x.defined() ? shape_string(x.sizes()) : std::string("none")));
  }
  return outside_inference_mode(m.cpu_cache_acquired, [&] {
    at::Tensor yy = m.domains_for(y, x.size(0));
    return m.nets.style_encoder->forward(x.to(m.device, at::kFloat), yy.to(m.device)).to(at::kCPU);
  });
}

at::Tensor Translator::reference_style(int64_t domain, const ImageView& crop) {
  Impl& m = *impl_;
  m.check_domain(domain);
  m.check_view(crop, 0, "reference");
  return outside_inference_mode(m.cpu_cache_acquired, [&] {
    at::Tensor pixels = Impl::rgb_view(crop);
    // A copy, not a view of the caller's pixels: the cache must notice when they change.
    pixels = is_bgr(crop.format) ? pixels.flip({2}).contiguous() : pixels.clone(at::MemoryFormat::Contiguous);
    if (m.reference_cached.defined() && m.reference_domain == domain && at::equal(m.reference_pixels, pixels)) {
      return m.reference_cached;
    }
    at::Tensor x = m.to_float(pixels.unsqueeze(0).to(m.device), /*bgr=*/false, at::kFloat);
    at::Tensor y = at::full({1}, domain, at::TensorOptions().dtype(at::kLong).device(m.device));
    at::Tensor s = m.nets.style_encoder->forward(x.contiguous(), y)[0];
    ++m.stats.style_computations;
    m.reference_domain = domain;
    m.reference_pixels = pixels;
    m.reference_cached = s.to(at::kCPU).contiguous();
    return m.reference_cached;
  });
}

void Translator::use_latent_style(int64_t domain, uint64_t seed, double psi) {
  Impl& m = *impl_;
  latent_style(domain, seed, psi);  // cached: no work when the key is unchanged
  if (m.current_cpu.defined() && m.current_cpu.is_same(m.latent_cached)) return;
  CallScope guard(m.cpu_cache_acquired);
  m.set_current(m.latent_cached);
}

void Translator::use_reference_style(int64_t domain, const ImageView& crop) {
  Impl& m = *impl_;
  reference_style(domain, crop);
  if (m.current_cpu.defined() && m.current_cpu.is_same(m.reference_cached)) return;
  CallScope guard(m.cpu_cache_acquired);
  m.set_current(m.reference_cached);
}

void Translator::use_style(const at::Tensor& style) {
  Impl& m = *impl_;
  if (!style.defined() || !at::isFloatingType(style.scalar_type()) || style.numel() != m.style_dim() ||
      !(style.dim() == 1 || (style.dim() == 2 && style.size(0) == 1))) {
    throw std::invalid_argument("a style must be a float (" + std::to_string(m.style_dim()) + ") or (1," +
                                std::to_string(m.style_dim()) + ") tensor, got " +
                                (style.defined() ? shape_string(style.sizes()) : std::string("none")));
  }
  CallScope guard(m.cpu_cache_acquired);
  at::Tensor s = style.detach().to(at::kCPU, at::kFloat).reshape({m.style_dim()}).clone();
  if (!at::isfinite(s).all().item<bool>()) throw std::invalid_argument("the style holds NaN or infinite values");
  if (m.current_cpu.defined() && at::equal(m.current_cpu, s)) return;
  m.set_current(s);
}

at::Tensor Translator::current_style() const {
  return impl_->current_cpu.defined() ? impl_->current_cpu.clone() : at::Tensor();
}

// ---- translation ----

void Translator::translate(std::span<const ImageView> in, std::span<const MutableImageView> out) {
  Impl& m = *impl_;
  if (in.empty()) throw std::invalid_argument("empty batch: no crops to translate");
  if (out.size() != in.size()) {
    throw std::invalid_argument("translate: " + std::to_string(in.size()) + " inputs but " +
                                std::to_string(out.size()) + " outputs");
  }
  const bool bgr = is_bgr(in[0].format);
  for (size_t i = 0; i < in.size(); ++i) {
    m.check_view(in[i], i, "crop");
    m.check_view(out[i], i, "output");
    if (is_bgr(in[i].format) != bgr || is_bgr(out[i].format) != bgr) {
      throw std::invalid_argument("translate: crop " + std::to_string(i) +
                                  " mixes RGB and BGR channel order; one batch must use one order");
    }
  }
  CallScope guard(m.cpu_cache_acquired);
  const int64_t n = static_cast<int64_t>(in.size());
  at::Tensor styles = m.styles_for(n, {});
  m.ensure_staging(n);
  at::Tensor batch = m.host_in.narrow(0, 0, n);
  for (int64_t i = 0; i < n; ++i) batch[i].copy_(Impl::rgb_view(in[i]));
  at::Tensor result = m.run_batch(batch, bgr, styles);
  for (int64_t i = 0; i < n; ++i) Impl::rgb_view(out[i]).copy_(result[i]);
}

at::Tensor Translator::translate(const at::Tensor& images, PixelFormat format, const at::Tensor& styles) {
  Impl& m = *impl_;
  if (!images.defined() || images.dim() != 4) {
    throw std::invalid_argument("images must be a (N,H,W,3) uint8 tensor, got " +
                                (images.defined() ? shape_string(images.sizes()) : std::string("none")));
  }
  if (images.size(0) == 0) throw std::invalid_argument("empty batch: no crops to translate");
  if (images.scalar_type() != at::kByte) throw std::invalid_argument("images must be uint8");
  if (format != PixelFormat::kRGB && format != PixelFormat::kBGR) {
    throw std::invalid_argument("translate(tensor) takes kRGB or kBGR; use the image-view overload for 4-byte pixels");
  }
  if (images.size(3) != 3) {
    throw std::invalid_argument("wrong channel count: images have " + std::to_string(images.size(3)) +
                                " channels, need 3 (RGB or BGR)");
  }
  if (images.size(1) != m.img() || images.size(2) != m.img()) {
    throw std::invalid_argument("wrong crop size: images are " + std::to_string(images.size(2)) + "x" +
                                std::to_string(images.size(1)) + ", the model needs " + std::to_string(m.img()) + "x" +
                                std::to_string(m.img()));
  }
  // The clone also detaches the result from the staging buffer that the next call overwrites.
  return outside_inference_mode(m.cpu_cache_acquired, [&] {
    at::Tensor styles_dev = m.styles_for(images.size(0), styles);
    return m.run_batch(images.to(at::kCPU).contiguous(), is_bgr(format), styles_dev);
  });
}

void Translator::warm_up(std::span<const int64_t> batch_sizes, PixelFormat format) {
  Impl& m = *impl_;
  if (format != PixelFormat::kRGB && format != PixelFormat::kBGR) format = is_bgr(format) ? PixelFormat::kBGR : PixelFormat::kRGB;
  at::Tensor style = m.current_cpu.defined() ? m.current_cpu : average_style(0);
  const int calls = m.device.is_cuda() && m.options.cuda_graphs ? std::max(1, m.options.warmup_calls) + 1 : 1;
  for (int64_t n : batch_sizes) {
    if (n < 1) throw std::invalid_argument("warm_up: batch sizes must be >= 1, got " + std::to_string(n));
    at::Tensor images = at::zeros({n, m.img(), m.img(), 3}, at::kByte);
    at::Tensor styles = style.reshape({1, -1}).expand({n, m.style_dim()});
    for (int i = 0; i < calls; ++i) translate(images, format, styles);
  }
}

at::Tensor Translator::generate(const at::Tensor& x, const at::Tensor& s, const Masks& masks) {
  Impl& m = *impl_;
  const int64_t size = m.img();
  if (!x.defined() || x.dim() != 4 || x.size(0) == 0 || x.size(1) != 3 || x.size(2) != size || x.size(3) != size) {
    throw std::invalid_argument("images must be (N,3," + std::to_string(size) + "," + std::to_string(size) +
                                "), got " + (x.defined() ? shape_string(x.sizes()) : std::string("none")));
  }
  if (!s.defined()) throw std::invalid_argument("generate: no style given");
  return outside_inference_mode(m.cpu_cache_acquired, [&] {
    const int64_t n = x.size(0);
    at::Tensor ss = s.dim() == 1 ? s.unsqueeze(0).expand({n, s.size(0)}) : s;
    at::Tensor styles = m.styles_for(n, ss);
    at::Tensor xd = x.to(m.device, m.dtype);
    xd = m.channels_last ? xd.contiguous(at::MemoryFormat::ChannelsLast) : xd.contiguous();
    Masks mk;
    if (masks.defined()) {
      mk.coarse = masks.coarse.to(m.device, m.dtype);
      mk.fine = masks.fine.to(m.device, m.dtype);
    } else {
      mk = m.masks_of(xd);
    }
    ++m.stats.eager_calls;
    return m.nets.generator->forward(xd, styles.to(m.dtype), mk).to(at::kCPU, at::kFloat);
  });
}

}  // namespace starganv2
