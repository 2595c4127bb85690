// Network sizes shared by every StarGAN v2 network, named as the official options.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace starganv2 {

// A config is a flat object of eight numbers, ~150 bytes; longer text is not a config.
inline constexpr size_t kMaxConfigJsonBytes = 4096;

// Bounds (validate()): img_size a power of two in [32, 2048]; style_dim, latent_dim in [1, 4096];
// num_domains in [1, 1024]; max_conv_dim, hidden_dim in [1, 8192]; base_dim in [0, 8192];
// w_hpf in [0, 1e6]. They keep every size computed from a config far from overflow; what a
// config may cost in memory is bounded by the file that must hold it (model/layout.h).
struct ModelConfig {
  int64_t img_size = 256;     // square crop size; a power of two, >= 32
  int64_t style_dim = 64;     // length of a style code s
  int64_t latent_dim = 16;    // length of a latent code z
  int64_t num_domains = 2;    // number of domains y
  int64_t max_conv_dim = 512; // channel cap of G, E and D
  int64_t hidden_dim = 512;   // width of the mapping network's layers
  double w_hpf = 1.0;         // weight of the high-pass skips; 0 = no skips and no FAN masks
  // Channels of G, E and D at full resolution. 0 = the official 2^14 / img_size (64 at 256 px),
  // which makes every full-resolution convolution cost the same at any img_size; a smaller
  // value gives the narrow models used by tests and the shipped demo checkpoint.
  int64_t base_dim = 0;

  // The width actually used: base_dim, or 2^14 / img_size when base_dim is 0.
  int64_t full_res_dim() const { return base_dim > 0 ? base_dim : (int64_t{1} << 14) / img_size; }

  // Throws std::invalid_argument naming the first bad field.
  void validate() const;

  // {"img_size": 256, ...} with the official option names.
  std::string to_json() const;
  // Requires every field above (base_dim and hidden_dim may be absent: 0 and 512) as integers,
  // or integral floats, within validate()'s bounds; text at most kMaxConfigJsonBytes, one flat
  // object. Throws std::invalid_argument naming the problem.
  static ModelConfig from_json(const std::string& text);

  bool operator==(const ModelConfig&) const = default;
};

// The official 256x256 configurations (paper, Table 5 / expr configs).
ModelConfig celeba_hq_config();  // 2 domains, w_hpf 1
ModelConfig afhq_config();       // 3 domains, w_hpf 0

}  // namespace starganv2
