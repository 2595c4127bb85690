// The styles a Translator works with: codes from the mapping network F (a seed and a domain),
// from the style encoder E (a reference crop and a domain), each domain's average style (the
// ψ-truncation target), and the current style that translation uses. Each is computed once per
// distinct input and cached, because the element asks for the same style every frame.
//
// Requires: F and E in float32 and eval mode on `device` (styles are computed in fp32 whatever
// G's precision, so a style is the same number on every device and precision); calls from one
// thread at a time, under c10::InferenceMode (the Translator's call scope provides it).
// Ensures: returned codes are (style_dim) float32 CPU tensors owned by the cache; callers clone
// them before handing them out.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <optional>

#include "config.h"
#include "mapping_network.h"
#include "style_encoder.h"

namespace starganv2 {

// Seed of the 10,000 latent codes whose mean style is a domain's average style (the official
// ψ-truncation target): SplitMix64 stream of seeded_normal(kAverageStyleSeed, 10000, latent_dim).
inline constexpr uint64_t kAverageStyleSeed = 0x5354415247414E32ULL;  // "STARGAN2"
inline constexpr int64_t kAverageStyleSamples = 10000;

class StyleCache {
 public:
  StyleCache(const ModelConfig& config, MappingNetwork mapping_network, StyleEncoder style_encoder,
             c10::Device device);

  // (num_domains, style_dim) float32 on the device: the mean of F over kAverageStyleSamples
  // codes from kAverageStyleSeed, for every domain at once; computed on first use.
  const at::Tensor& average_styles();

  // F(seeded_normal(seed), domain), moved towards the domain's average style by
  // torch.lerp(avg, s, psi) when psi != 1. Requires a valid domain and psi in [0, 1] (the
  // Translator checks both). Recomputed only when (domain, seed, psi) changes.
  const at::Tensor& latent(int64_t domain, uint64_t seed, double psi);

  // E(pixels, domain); pixels: (img,img,3) uint8 RGB on the CPU, owned by the caller's copy (the
  // cache keeps it to notice when the pixels change). Recomputed only when domain or pixels change.
  const at::Tensor& reference(int64_t domain, const at::Tensor& pixels_rgb);

  // The current style; set_current takes a (style_dim) float32 CPU tensor and keeps a
  // (1, style_dim) copy on the device for translation.
  void set_current(const at::Tensor& style_cpu);
  const at::Tensor& current_cpu() const { return current_cpu_; }     // undefined until set
  const at::Tensor& current_device() const { return current_dev_; }  // (1, style_dim)
  // True when `style` is the very tensor last returned by latent() / reference() and is current.
  bool is_current(const at::Tensor& style) const;

  int64_t style_computations() const { return style_computations_; }
  int64_t average_style_computations() const { return average_style_computations_; }

 private:
  struct LatentKey {
    int64_t domain;
    uint64_t seed;
    double psi;
    bool operator==(const LatentKey&) const = default;
  };

  ModelConfig config_;
  MappingNetwork mapping_network_;
  StyleEncoder style_encoder_;
  c10::Device device_;

  at::Tensor average_styles_;
  std::optional<LatentKey> latent_key_;
  at::Tensor latent_cached_;
  int64_t reference_domain_ = -1;
  at::Tensor reference_pixels_;
  at::Tensor reference_cached_;
  at::Tensor current_cpu_;
  at::Tensor current_dev_;
  int64_t style_computations_ = 0;
  int64_t average_style_computations_ = 0;
};

}  // namespace starganv2
