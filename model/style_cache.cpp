#include "style_cache.h"

#include <ATen/ATen.h>

#include <utility>

#include "pixels.h"
#include "seed_rng.h"

namespace starganv2 {

StyleCache::StyleCache(const ModelConfig& config, MappingNetwork mapping_network, StyleEncoder style_encoder,
                       c10::Device device)
    : config_(config),
      mapping_network_(std::move(mapping_network)),
      style_encoder_(std::move(style_encoder)),
      device_(device) {}

const at::Tensor& StyleCache::average_styles() {
  if (!average_styles_.defined()) {
    at::Tensor z = seeded_normal(kAverageStyleSeed, kAverageStyleSamples, config_.latent_dim).to(device_);
    average_styles_ = mapping_network_->forward_all(z).mean(0);
    ++average_style_computations_;
  }
  return average_styles_;
}

const at::Tensor& StyleCache::latent(int64_t domain, uint64_t seed, double psi) {
  const LatentKey key{domain, seed, psi};
  if (latent_key_ && *latent_key_ == key) return latent_cached_;
  at::Tensor z = seeded_normal(seed, 1, config_.latent_dim).to(device_);
  at::Tensor y = at::full({1}, domain, at::TensorOptions().dtype(at::kLong).device(device_));
  at::Tensor s = mapping_network_->forward(z, y)[0];
  if (psi != 1.0) {
    // Official truncation: torch.lerp(s_avg, s, psi); lerp returns s_avg exactly at psi = 0.
    s = at::lerp(average_styles()[domain], s, psi);
  }
  ++style_computations_;
  latent_key_ = key;
  latent_cached_ = s.to(at::kCPU).contiguous();
  return latent_cached_;
}

const at::Tensor& StyleCache::reference(int64_t domain, const at::Tensor& pixels_rgb) {
  if (reference_cached_.defined() && reference_domain_ == domain && at::equal(reference_pixels_, pixels_rgb)) {
    return reference_cached_;
  }
  // E's weights stay NCHW whatever G's layout, so its input is made plainly contiguous.
  at::Tensor x = u8_to_float(pixels_rgb.unsqueeze(0).to(device_), /*bgr=*/false).contiguous();
  at::Tensor y = at::full({1}, domain, at::TensorOptions().dtype(at::kLong).device(device_));
  at::Tensor s = style_encoder_->forward(x, y)[0];
  ++style_computations_;
  reference_domain_ = domain;
  reference_pixels_ = pixels_rgb;
  reference_cached_ = s.to(at::kCPU).contiguous();
  return reference_cached_;
}

void StyleCache::set_current(const at::Tensor& style_cpu) {
  current_cpu_ = style_cpu;
  current_dev_ = style_cpu.reshape({1, config_.style_dim}).to(device_);
}

bool StyleCache::is_current(const at::Tensor& style) const {
  return current_cpu_.defined() && current_cpu_.is_same(style);
}

}  // namespace starganv2
