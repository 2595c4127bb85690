// The inference engine: a loaded StarGAN v2 model that turns batches of aligned face crops into
// a chosen domain and style, on the CPU or a CUDA GPU. Used by the GStreamer element and tools.
// Its parts: the model file (checkpoint.h, load_translator_nets), the styles (style_cache.h),
// the CUDA step with its graphs (cuda_graph_runner.h); this file ties them to the networks.
//
// Not thread-safe: one Translator is used by one thread at a time (the element's streaming
// thread). Every call runs under c10::InferenceMode itself, so callers need no guards.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "checkpoint.h"  // TranslatorNets, load_translator_nets: the model file
#include "config.h"
#include "image_view.h"
#include "masks.h"
#include "precision.h"  // Precision, parse_precision
#include "style_cache.h"  // kAverageStyleSeed, kAverageStyleSamples

namespace starganv2 {

// Memory layout of G's and the FAN's activations and weights.
enum class Layout {
  kAuto,          // channels-last on CUDA (cuDNN tensor cores), NCHW on the CPU (measured)
  kContiguous,    // NCHW
  kChannelsLast,  // NHWC
};

struct TranslatorOptions {
  std::string device = "auto";  // "auto" (CUDA when available) | "cpu" | "cuda" | "cuda:N"
  Precision precision = Precision::kAuto;
  Layout layout = Layout::kAuto;
  // CPU only: reuse the engine's large freed tensor blocks instead of page-faulting fresh ones
  // in on every call (see cpu_cache.h); memory stays cached while a CPU Translator lives.
  bool cpu_allocation_cache = true;
  // CUDA only: replay a CUDA graph per (batch size, channel order). Until warm_up() is called, a
  // shape is captured after `warmup_calls` eager calls of it; warm_up() captures the sizes it is
  // given and from then on nothing else is captured (see warm_up). All graphs share one memory
  // pool. Batches larger than max_graph_batch always run eagerly.
  bool cuda_graphs = true;
  int warmup_calls = 2;
  int64_t max_graph_batch = 16;
};

struct TranslatorStats {
  int64_t style_computations = 0;  // mapping/style encoder runs for the current style
  int64_t average_style_computations = 0;
  int64_t graph_captures = 0;          // successful CUDA graph captures, warm-up included
  int64_t graph_capture_failures = 0;  // a failure turns graphs off (see warnings())
  int64_t graph_replays = 0;
  int64_t eager_calls = 0;
};

class Translator {
 public:
  // Loads (load_translator_nets) and prepares the model on the chosen device.
  // Throws CheckpointError for file problems and std::invalid_argument / std::runtime_error
  // for a bad device or precision ("CUDA requested but not available", "no GPU N", ...).
  static Translator open(const std::filesystem::path& checkpoint, const TranslatorOptions& options = {},
                         const std::filesystem::path& fan_checkpoint = {});
  // Takes over built networks (moved to the device, converted, put in eval mode).
  explicit Translator(TranslatorNets nets, const TranslatorOptions& options = {});
  // Another Translator on this one's weights, without copying them: its networks' parameters and
  // buffers are this one's tensors. It has state of its own (styles, staging, CUDA graphs), so a
  // second thread can translate with it while this one does: the weights are only read. Building
  // it allocates the networks once before pointing them at the shared tensors (freed at once).
  Translator sibling() const;
  ~Translator();
  Translator(Translator&&) noexcept;
  Translator& operator=(Translator&&) noexcept;

  const ModelConfig& config() const;
  const std::vector<std::string>& domains() const;
  c10::Device device() const;
  Precision precision() const;  // resolved: never kAuto
  // e.g. "cpu (2 threads), fp32" or "cuda:0 (NVIDIA H100 80GB HBM3), fp16, CUDA graphs".
  std::string description() const;
  const std::vector<std::string>& warnings() const;
  const TranslatorStats& stats() const;

  // A domain by name or by decimal index. Throws std::invalid_argument listing the valid names.
  int64_t domain_index(std::string_view name_or_index) const;

  // ---- Styles: (style_dim) float32 CPU tensors, computed in fp32 whatever the precision ----
  // z = seeded_normal(seed, 1, latent_dim) -> F(z, domain), moved towards the domain's average
  // style: avg + psi * (s - avg). Requires psi in [0, 1].
  at::Tensor latent_style(int64_t domain, uint64_t seed, double psi = 1.0);
  // Mean of F over kAverageStyleSamples codes from kAverageStyleSeed; computed for every domain
  // on first use and cached.
  at::Tensor average_style(int64_t domain);
  // The style encoder's code of an aligned crop (img_size x img_size, 3 or 4 channels).
  at::Tensor reference_style(int64_t domain, const ImageView& crop);
  // Same from float images: x (N,3,img,img) in [-1,1] -> (N,style_dim); y: one domain or (N).
  at::Tensor reference_style(const at::Tensor& x, const at::Tensor& y);
  // F for given latent codes z (N,latent_dim) -> (N,style_dim); y: (N) int64.
  at::Tensor mapping_style(const at::Tensor& z, const at::Tensor& y);

  // ---- The current style used by translate(); each is recomputed only when its inputs change ----
  void use_latent_style(int64_t domain, uint64_t seed, double psi = 1.0);
  void use_reference_style(int64_t domain, const ImageView& crop);
  // An explicit style code ((style_dim) or (1,style_dim)), e.g. from load_style or
  // interpolate_styles.
  void use_style(const at::Tensor& style);
  at::Tensor current_style() const;  // undefined until one of the use_* calls

  // ---- Translation ----
  // Runs a throw-away batch of each size so that real frames do not pay for cuDNN autotuning,
  // and on CUDA with cuda_graphs captures each size's graph (in the given channel order; largest
  // first, so the smaller captures fit into the shared pool's freed memory). Afterwards no call
  // other than warm_up captures: a shape without a graph runs eagerly, so captures (hundreds of
  // ms each) happen where warm_up is called, never on the thread that translates frames. Uses
  // the current style, or the first domain's average style when none is chosen yet (and leaves
  // none chosen). Requires every size >= 1; throws std::invalid_argument otherwise.
  void warm_up(std::span<const int64_t> batch_sizes, PixelFormat format = PixelFormat::kRGB);
  // warm_up for every batch size 1..max_batch (e.g. the element's max-faces).
  void warm_up_to(int64_t max_batch, PixelFormat format = PixelFormat::kRGB);
  // Batch sizes with a captured CUDA graph for the given channel order, ascending (empty on
  // the CPU, without cuda_graphs, or after a failed capture).
  std::vector<int64_t> graph_batch_sizes(PixelFormat format = PixelFormat::kRGB) const;

  // Translates in[i] into out[i] with the current style (in place when they alias), or with
  // styles[i] when `styles` ((N,style_dim) float) is given: one batch, a style per crop. Every view
  // must be img_size x img_size with 3 or 4 bytes per pixel; out[i] gets in[i]'s channel order.
  // Throws std::invalid_argument for an empty batch, a wrong size or format, styles of the wrong
  // shape, or no style chosen.
  void translate(std::span<const ImageView> in, std::span<const MutableImageView> out,
                 const at::Tensor& styles = {});
  // images: (N,img,img,3) uint8 CPU, RGB or BGR (format kRGB/kBGR) -> same layout and order.
  // styles: optional (N,style_dim) per-image styles instead of the current style.
  at::Tensor translate(const at::Tensor& images, PixelFormat format = PixelFormat::kRGB,
                       const at::Tensor& styles = {});
  // The float path, for tests and tools: x (N,3,img,img) in [-1,1], s (N,style_dim) or
  // (style_dim); masks from the FAN of x when w_hpf > 0 unless given. Returns float32 CPU
  // (N,3,img,img), eagerly in the translator's precision.
  at::Tensor generate(const at::Tensor& x, const at::Tensor& s, const Masks& masks = {});
  // The FAN masks G gets for x ((N,3,img,img) in [-1,1]), as the engine computes them: in
  // float32 whatever the precision (see fan_masks in fan.h). Returned as float32 on the CPU
  // ((N,1,256,256) each); empty when w_hpf == 0.
  Masks masks(const at::Tensor& x);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace starganv2
