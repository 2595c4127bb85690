#include "translator.h"

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <torch/cuda.h>
#include <torch/nn/module.h>

#include <algorithm>
#include <charconv>
#include <functional>
#include <numeric>
#include <optional>
#include <stdexcept>
#include <utility>

#include "cpu_cache.h"
#include "cuda_graph_runner.h"
#include "device.h"
#include "pixels.h"

namespace starganv2 {

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------

namespace {

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


}  // namespace

// ---------------------------------------------------------------------------------------------
// Translator
// ---------------------------------------------------------------------------------------------

struct Translator::Impl {
  ~Impl() {
    graphs.reset();  // before the networks and buffers its graphs point into
    if (cpu_cache_acquired) cpu_cache_release();
  }

  TranslatorNets nets;
  TranslatorOptions options;
  c10::Device device{c10::kCPU};
  Precision precision = Precision::kFloat32;
  at::ScalarType dtype = at::kFloat;  // G's; the FAN, F and E stay float32
  bool channels_last = false;
  bool cpu_cache_acquired = false;
  std::vector<std::string> warnings;
  TranslatorStats stats;
  std::string description;

  std::optional<StyleCache> styles;
  std::unique_ptr<CudaGraphRunner> graphs;  // every CUDA call goes through it; null on the CPU
  size_t graph_warnings_seen = 0;

  at::Tensor host_in;  // staging (max N, img, img, 3) uint8, pinned on CUDA
  at::Tensor host_out;

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

  // The layout G and the FAN were converted to. The permuted uint8 -> float view is
  // channels-last strided already, so on CUDA this is free.
  at::Tensor in_layout(const at::Tensor& x) const {
    return channels_last ? x.contiguous(at::MemoryFormat::ChannelsLast) : x.contiguous();
  }

  // FAN masks in float32 from a float32 x, converted to `out` for G.
  Masks masks_of(const at::Tensor& x32, at::ScalarType out) {
    if (nets.config.w_hpf > 0) return fan_masks(*nets.fan, x32, out);
    return {};
  }

  // The whole device-side step: (N,img,img,3) uint8 + (N,style_dim) fp32 -> (N,img,img,3) uint8.
  // The pixels become float32 once; the FAN reads that, G reads it in its own precision.
  at::Tensor forward_u8(const at::Tensor& u8_nhwc, bool bgr, const at::Tensor& styles) {
    const at::Tensor x32 = in_layout(u8_to_float(u8_nhwc, bgr));
    const Masks masks = masks_of(x32, dtype);
    const at::Tensor x = dtype == at::kFloat ? x32 : x32.to(dtype);
    return float_to_u8(nets.generator->forward(x, styles.to(dtype), masks), bgr);
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
    if (!graphs) {
      ++stats.eager_calls;
      return forward_u8(host_u8, bgr, styles);
    }
    const int64_t n = host_u8.size(0);
    ensure_staging(n);
    at::Tensor out_host = host_out.narrow(0, 0, n);
    const CudaGraphRunner::Result r = graphs->run({n, bgr}, host_u8, styles, step(bgr));
    // Blocking copy into pinned memory: it waits for the step (and must, before a graph's static
    // output is reused) and is as fast as an asynchronous one followed by a synchronisation.
    out_host.copy_(r.output);
    ++(r.replayed ? stats.graph_replays : stats.eager_calls);
    note_graph_warnings();
    return out_host;
  }

  CudaGraphRunner::Step step(bool bgr) {
    return [this, bgr](const at::Tensor& in, const at::Tensor& styles) { return forward_u8(in, bgr, styles); };
  }

  void note_graph_warnings() {
    const auto& w = graphs->warnings();
    for (; graph_warnings_seen < w.size(); ++graph_warnings_seen) warnings.push_back(w[graph_warnings_seen]);
  }

  at::Tensor styles_for(int64_t n, const at::Tensor& given) {
    if (given.defined()) {
      if (given.dim() != 2 || given.size(0) != n || given.size(1) != style_dim()) {
        throw std::invalid_argument("styles must be (" + std::to_string(n) + "," + std::to_string(style_dim()) +
                                    "), got " + shape_text(given.sizes()));
      }
      return given.to(device, at::kFloat).contiguous();
    }
    if (!styles->current_device().defined()) {
      throw std::invalid_argument("no style chosen: call use_latent_style, use_reference_style or use_style first");
    }
    return styles->current_device().expand({n, style_dim()}).contiguous();
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
  // whatever the precision. The FAN stays fp32 too: its masks are thresholded and normalised
  // (see fan_masks). G runs per frame in the chosen precision.
  m.nets.mapping_network->to(m.device, at::kFloat);
  m.nets.style_encoder->to(m.device, at::kFloat);
  m.nets.generator->to(m.device, m.dtype);
  if (m.nets.fan) m.nets.fan->to(m.device, at::kFloat);
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
  m.styles.emplace(m.nets.config, m.nets.mapping_network, m.nets.style_encoder, m.device);

  std::string where;
  if (m.device.is_cuda()) {
    at::globalContext().setBenchmarkCuDNN(true);  // fixed shapes per batch size: autotune once
    where = m.device.str() + " (" + cuda_device_name(m.device.index()) + ")";
    CudaGraphRunner::Options g;
    g.graphs = options.cuda_graphs;
    g.warmup_calls = options.warmup_calls;
    g.max_batch = options.max_graph_batch;
    m.graphs = std::make_unique<CudaGraphRunner>(m.device, g);
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

namespace {

// dst's parameters and buffers become src's tensors (same names: the same network and config).
void share_weights(torch::nn::Module& dst, const torch::nn::Module& src) {
  const auto params = src.named_parameters(/*recurse=*/true);
  for (auto& p : dst.named_parameters(/*recurse=*/true)) p.value().set_data(params[p.key()]);
  const auto buffers = src.named_buffers(/*recurse=*/true);
  for (auto& b : dst.named_buffers(/*recurse=*/true)) b.value().set_data(buffers[b.key()]);
}

}  // namespace

Translator Translator::sibling() const {
  const Impl& m = *impl_;
  at::NoGradGuard no_grad;
  TranslatorNets nets;
  nets.config = m.nets.config;
  nets.domains = m.nets.domains;
  nets.warnings = m.nets.warnings;
  nets.generator = Generator(m.nets.config);
  share_weights(*nets.generator, *m.nets.generator);
  nets.mapping_network = MappingNetwork(m.nets.config);
  share_weights(*nets.mapping_network, *m.nets.mapping_network);
  nets.style_encoder = StyleEncoder(m.nets.config);
  share_weights(*nets.style_encoder, *m.nets.style_encoder);
  if (m.nets.fan) {
    nets.fan = FAN();
    share_weights(*nets.fan, *m.nets.fan);
  }
  // Already on the device, in the precision and layout: the constructor's conversions keep them.
  return Translator(std::move(nets), m.options);
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

const TranslatorStats& Translator::stats() const {
  Impl& m = *impl_;
  m.stats.style_computations = m.styles->style_computations();
  m.stats.average_style_computations = m.styles->average_style_computations();
  if (m.graphs) {
    m.stats.graph_captures = m.graphs->captures();
    m.stats.graph_capture_failures = m.graphs->capture_failures();
  }
  return m.stats;
}

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
                                (z.defined() ? shape_text(z.sizes()) : std::string("none")));
  }
  return outside_inference_mode(m.cpu_cache_acquired, [&] {
    at::Tensor yy = m.domains_for(y, z.size(0));
    return m.nets.mapping_network->forward(z.to(m.device, at::kFloat), yy.to(m.device)).to(at::kCPU);
  });
}

at::Tensor Translator::average_style(int64_t domain) {
  Impl& m = *impl_;
  m.check_domain(domain);
  return outside_inference_mode(m.cpu_cache_acquired, [&] { return m.styles->average_styles()[domain].to(at::kCPU); });
}

at::Tensor Translator::latent_style(int64_t domain, uint64_t seed, double psi) {
  Impl& m = *impl_;
  m.check_domain(domain);
  if (!(psi >= 0.0 && psi <= 1.0)) {
    throw std::invalid_argument("psi must be in [0, 1], got " + std::to_string(psi));
  }
  return outside_inference_mode(m.cpu_cache_acquired, [&] { return m.styles->latent(domain, seed, psi); });
}

at::Tensor Translator::reference_style(const at::Tensor& x, const at::Tensor& y) {
  Impl& m = *impl_;
  const int64_t s = m.img();
  if (!x.defined() || x.dim() != 4 || x.size(0) == 0 || x.size(1) != 3 || x.size(2) != s || x.size(3) != s) {
    throw std::invalid_argument("reference images must be (N,3," + std::to_string(s) + "," + std::to_string(s) +
                                "), got " + (x.defined() ? shape_text(x.sizes()) : std::string("none")));
  }
  return outside_inference_mode(m.cpu_cache_acquired, [&] {
    at::Tensor yy = m.domains_for(y, x.size(0));
    return m.nets.style_encoder->forward(x.to(m.device, at::kFloat), yy.to(m.device)).to(at::kCPU);
  });
}

namespace {
// A copy of a crop's pixels as (img,img,3) RGB, not a view: the style cache must notice when the
// caller's pixels change.
at::Tensor rgb_copy(const at::Tensor& view, bool bgr) {
  return bgr ? view.flip({2}).contiguous() : view.clone(at::MemoryFormat::Contiguous);
}
}  // namespace

at::Tensor Translator::reference_style(int64_t domain, const ImageView& crop) {
  Impl& m = *impl_;
  m.check_domain(domain);
  m.check_view(crop, 0, "reference");
  return outside_inference_mode(m.cpu_cache_acquired, [&] {
    return m.styles->reference(domain, rgb_copy(Impl::rgb_view(crop), is_bgr(crop.format)));
  });
}

void Translator::use_latent_style(int64_t domain, uint64_t seed, double psi) {
  Impl& m = *impl_;
  latent_style(domain, seed, psi);  // checks the arguments; cached: no work when the key is unchanged
  CallScope guard(m.cpu_cache_acquired);
  const at::Tensor& s = m.styles->latent(domain, seed, psi);
  if (!m.styles->is_current(s)) m.styles->set_current(s);
}

void Translator::use_reference_style(int64_t domain, const ImageView& crop) {
  Impl& m = *impl_;
  m.check_domain(domain);
  m.check_view(crop, 0, "reference");
  CallScope guard(m.cpu_cache_acquired);
  const at::Tensor& s = m.styles->reference(domain, rgb_copy(Impl::rgb_view(crop), is_bgr(crop.format)));
  if (!m.styles->is_current(s)) m.styles->set_current(s);
}

void Translator::use_style(const at::Tensor& style) {
  Impl& m = *impl_;
  if (!style.defined() || !at::isFloatingType(style.scalar_type()) || style.numel() != m.style_dim() ||
      !(style.dim() == 1 || (style.dim() == 2 && style.size(0) == 1))) {
    throw std::invalid_argument("a style must be a float (" + std::to_string(m.style_dim()) + ") or (1," +
                                std::to_string(m.style_dim()) + ") tensor, got " +
                                (style.defined() ? shape_text(style.sizes()) : std::string("none")));
  }
  CallScope guard(m.cpu_cache_acquired);
  at::Tensor s = style.detach().to(at::kCPU, at::kFloat).reshape({m.style_dim()}).clone();
  if (!at::isfinite(s).all().item<bool>()) throw std::invalid_argument("the style holds NaN or infinite values");
  const at::Tensor& current = m.styles->current_cpu();
  if (current.defined() && at::equal(current, s)) return;
  m.styles->set_current(s);
}

at::Tensor Translator::current_style() const {
  const at::Tensor& current = impl_->styles->current_cpu();
  return current.defined() ? current.clone() : at::Tensor();
}

// ---- translation ----

void Translator::translate(std::span<const ImageView> in, std::span<const MutableImageView> out,
                           const at::Tensor& given_styles) {
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
  at::Tensor styles = m.styles_for(n, given_styles);
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
                                (images.defined() ? shape_text(images.sizes()) : std::string("none")));
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
  for (int64_t n : batch_sizes) {
    if (n < 1) throw std::invalid_argument("warm_up: batch sizes must be >= 1, got " + std::to_string(n));
  }
  const bool bgr = is_bgr(format);
  const at::Tensor style = m.styles->current_cpu().defined() ? m.styles->current_cpu() : average_style(0);
  std::vector<int64_t> sizes(batch_sizes.begin(), batch_sizes.end());
  std::sort(sizes.begin(), sizes.end(), std::greater<>());
  sizes.erase(std::unique(sizes.begin(), sizes.end()), sizes.end());
  for (int64_t n : sizes) {
    const at::Tensor images = at::zeros({n, m.img(), m.img(), 3}, at::kByte);
    const at::Tensor styles = style.reshape({1, -1}).expand({n, m.style_dim()});
    // One eager call first: cuDNN autotuning for this shape, and the CPU's warm-up.
    translate(images, bgr ? PixelFormat::kBGR : PixelFormat::kRGB, styles);
    if (m.graphs) {
      CallScope scope(m.cpu_cache_acquired);
      m.graphs->capture({n, bgr}, images, styles.to(m.device, at::kFloat).contiguous(), m.step(bgr));
      m.note_graph_warnings();
    }
  }
  if (m.graphs) m.graphs->seal();
}

void Translator::warm_up_to(int64_t max_batch, PixelFormat format) {
  if (max_batch < 1) throw std::invalid_argument("warm_up_to: the largest batch must be >= 1, got " + std::to_string(max_batch));
  std::vector<int64_t> sizes(static_cast<size_t>(max_batch));
  std::iota(sizes.begin(), sizes.end(), int64_t{1});
  warm_up(sizes, format);
}

std::vector<int64_t> Translator::graph_batch_sizes(PixelFormat format) const {
  std::vector<int64_t> sizes;
  if (!impl_->graphs) return sizes;
  for (const auto& key : impl_->graphs->graph_keys()) {
    if (key.bgr == is_bgr(format)) sizes.push_back(key.batch);
  }
  return sizes;
}

at::Tensor Translator::generate(const at::Tensor& x, const at::Tensor& s, const Masks& masks) {
  Impl& m = *impl_;
  const int64_t size = m.img();
  if (!x.defined() || x.dim() != 4 || x.size(0) == 0 || x.size(1) != 3 || x.size(2) != size || x.size(3) != size) {
    throw std::invalid_argument("images must be (N,3," + std::to_string(size) + "," + std::to_string(size) +
                                "), got " + (x.defined() ? shape_text(x.sizes()) : std::string("none")));
  }
  if (!s.defined()) throw std::invalid_argument("generate: no style given");
  return outside_inference_mode(m.cpu_cache_acquired, [&] {
    const int64_t n = x.size(0);
    at::Tensor ss = s.dim() == 1 ? s.unsqueeze(0).expand({n, s.size(0)}) : s;
    at::Tensor styles = m.styles_for(n, ss);
    const at::Tensor x32 = m.in_layout(x.to(m.device, at::kFloat));
    Masks mk;
    if (masks.defined()) {
      mk.coarse = masks.coarse.to(m.device, m.dtype);
      mk.fine = masks.fine.to(m.device, m.dtype);
    } else {
      mk = m.masks_of(x32, m.dtype);
    }
    ++m.stats.eager_calls;
    const at::Tensor xd = m.dtype == at::kFloat ? x32 : x32.to(m.dtype);
    return m.nets.generator->forward(xd, styles.to(m.dtype), mk).to(at::kCPU, at::kFloat);
  });
}

Masks Translator::masks(const at::Tensor& x) {
  Impl& m = *impl_;
  const int64_t size = m.img();
  if (!x.defined() || x.dim() != 4 || x.size(0) == 0 || x.size(1) != 3 || x.size(2) != size || x.size(3) != size) {
    throw std::invalid_argument("images must be (N,3," + std::to_string(size) + "," + std::to_string(size) +
                                "), got " + (x.defined() ? shape_text(x.sizes()) : std::string("none")));
  }
  Masks out;
  if (m.nets.config.w_hpf <= 0) return out;
  Masks mk;
  {
    CallScope scope(m.cpu_cache_acquired);
    mk = m.masks_of(m.in_layout(x.to(m.device, at::kFloat)), at::kFloat);
    mk.coarse = mk.coarse.to(at::kCPU);
    mk.fine = mk.fine.to(at::kCPU);
  }
  out.coarse = mk.coarse.clone();
  out.fine = mk.fine.clone();
  return out;
}

}  // namespace starganv2
