// The one factory of small random model files for tests (engine, element, translate, layout):
// a small config and networks with random weights, written through model/ as the trainer writes
// them. Needs model/ (LibTorch); header-only so that every suite can use it.
#pragma once

#include <torch/nn/module.h>
#include <torch/utils.h>  // torch::manual_seed

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "model/checkpoint.h"
#include "model/fan.h"
#include "model/generator.h"
#include "model/inception.h"
#include "model/init.h"
#include "model/lpips.h"
#include "model/mapping_network.h"
#include "model/safetensors.h"
#include "model/style_encoder.h"

namespace starganv2::test {

// Small enough for a 2-core machine: img_size px crops, style 16, latent 8, `width` channels at
// most (max_conv_dim and hidden_dim), base_dim 0 = the official full-resolution width.
inline ModelConfig small_config(double w_hpf, int64_t num_domains = 2, int64_t width = 32, int64_t img_size = 64,
                                int64_t base_dim = 0) {
  ModelConfig c;
  c.img_size = img_size;
  c.style_dim = 16;
  c.latent_dim = 8;
  c.num_domains = num_domains;
  c.max_conv_dim = width;
  c.hidden_dim = width;
  c.w_hpf = w_hpf;
  c.base_dim = base_dim;
  return c;
}

struct RandomModel {
  ModelConfig config = small_config(0.0);
  std::vector<std::string> domains = {"female", "male"};  // config.num_domains names
  uint64_t seed = 1;
  bool he_init = true;  // the trainer's initialisation; false keeps LibTorch's default init
  bool with_generator = true;
  bool with_fan = false;  // fan.* with the FAN's own initialisation (masks far from zero)
  std::string producer = "starganv2 tests";
};

// Writes G, F, E (and the FAN) of `m` with random weights drawn after torch::manual_seed(seed).
inline void write_random_model(const std::filesystem::path& path, const RandomModel& m) {
  torch::manual_seed(m.seed);
  Generator g(m.config);
  MappingNetwork f(m.config);
  StyleEncoder e(m.config);
  if (m.he_init) {
    he_init(*g);
    he_init(*f);
    he_init(*e);
  }
  std::vector<std::pair<std::string, const torch::nn::Module*>> nets = {{"mapping_network", f.get()},
                                                                       {"style_encoder", e.get()}};
  if (m.with_generator) nets.insert(nets.begin(), {"generator", g.get()});
  FAN fan{nullptr};
  if (m.with_fan) {
    fan = FAN();
    nets.emplace_back("fan", fan.get());
  }
  CheckpointMeta meta;
  meta.config = m.config;
  meta.domains = m.domains;
  meta.producer = m.producer;
  write_checkpoint(path, meta, nets);
}

// Inception and LPIPS weight files as the converter writes them, with LibTorch's default
// initialisation (drawn after torch::manual_seed(seed)) standing in for the downloaded weights;
// the LPIPS linear weights made >= 0, as the official ones are.
inline void write_random_metric_weights(const std::filesystem::path& inception, const std::filesystem::path& lpips,
                                        uint64_t seed = 1) {
  torch::manual_seed(seed);
  write_safetensors(inception, named_state(*InceptionV3()), {{"contents", kInceptionContents}});
  auto lpips_state = named_state(*LPIPS());
  for (auto& [name, t] : lpips_state)
    if (name.rfind("lpips_weights.", 0) == 0) t = t.detach().abs();
  write_safetensors(lpips, lpips_state, {{"contents", kLpipsContents}});
}

}  // namespace starganv2::test
