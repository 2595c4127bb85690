// Hyper-parameters of a training run, named as the official options (main.py of
// clovaai/stargan-v2). They identify a run: a resume file stores them and a resumed run keeps them.
#pragma once

#include <cstdint>
#include <string>

#include "model/config.h"

namespace starganv2 {

struct TrainOptions {
  ModelConfig model;  // img_size, style_dim, latent_dim, num_domains, max_conv_dim, hidden_dim, w_hpf

  int64_t batch_size = 8;
  int64_t total_iters = 100000;

  double lambda_reg = 1.0;  // R1 on real images
  double lambda_cyc = 1.0;  // cycle consistency
  double lambda_sty = 1.0;  // style reconstruction
  double lambda_ds = 1.0;   // diversity sensitive; decays linearly to 0 over ds_iter iterations
  int64_t ds_iter = 100000;

  double lr = 1e-4;    // G, E and D
  double f_lr = 1e-6;  // F (mapping network)
  double beta1 = 0.0;
  double beta2 = 0.99;
  double weight_decay = 1e-4;  // L2 added to the gradient (torch.optim.Adam), not decoupled
  // The official code hard-codes 0.999; exposed because tiny test runs need a shorter average.
  double ema_beta = 0.999;

  double randcrop_prob = 0.5;
  uint64_t seed = 777;

  // Not in the official code (trainer/diff_augment.h): augmentation of every image D sees, for
  // small datasets. Empty diffaug = off, and the iteration is exactly the official one.
  std::string diffaug;        // DiffAugment policies, "color,translation,cutout" or a subset
  double augment_p = 1.0;     // probability of each policy per sample while ADA is off
  double ada_target = 0;      // > 0: ADA adapts the probability (from 0) towards this mean sign of D on reals
  int64_t ada_interval = 4;   // iterations between ADA adjustments
  double ada_kimg = 20;       // thousands of real images over which p can go from 0 to 1

  // Not in the official code (Solver::train_step): the first recon_warmup iterations train only G
  // and E, to give back each real image from its own style code (L1). On a few dozen images the
  // adversarial start leaves G's nearest-neighbour upsampling visible as a block grid for
  // thousands of iterations; a G that starts as an autoencoder keeps the face's layout (faces
  // found far more often), though not free of the fine 2x seams (measured). 0 = off.
  int64_t recon_warmup = 0;

  // Throws std::invalid_argument naming the first bad value (also validates the model config).
  void validate() const;

  // {"model": {...}, "batch_size": 8, ...}; doubles are written so that they read back exactly.
  std::string to_json() const;
  // Requires every field except the augmentation and warm-up ones (files written before they
  // existed lack them: the defaults, i.e. off); throws std::invalid_argument naming the problem.
  static TrainOptions from_json(const std::string& text);

  bool operator==(const TrainOptions&) const = default;
};

// The official networks are 2^14 / img_size channels wide at full resolution, so every
// full-resolution convolution costs the same at any img_size and even a 32 px model trains at
// seconds per iteration on a CPU. A ModelConfig that has the `base_dim` width field (0 =
// official) lets tests and --base-dim train narrow models; these helpers find out at compile time.
template <class Config>
constexpr bool kHasBaseDim = requires(Config c) { c.base_dim; };
template <class Config>
int64_t* base_dim_of(Config& c) {
  if constexpr (kHasBaseDim<Config>)
    return &c.base_dim;
  else
    return nullptr;
}

// The paper's settings (official expr configs): img_size 256, CelebA-HQ: 2 domains, w_hpf 1,
// lambda_ds 1; AFHQ: 3 domains, w_hpf 0, lambda_ds 2. Throws std::invalid_argument for an
// unknown name.
TrainOptions preset_options(const std::string& name);

// Network-size presets: "official" (the paper's widths: base_dim 0 = 2^14/img_size, max_conv_dim
// 512, hidden_dim 512, style_dim 64, latent_dim 16), "small" (base_dim 32, max_conv_dim 128,
// hidden_dim 256; the demo model's widths) and "tiny" (base_dim 8, max_conv_dim 32, hidden_dim 32,
// style_dim 16, latent_dim 8). small and tiny have a fixed width, so their cost grows with the
// image size instead of staying that of the official network. size_preset returns `config` with
// those widths set (everything else kept); throws std::invalid_argument for an unknown name.
bool is_size_preset(const std::string& name);
ModelConfig size_preset(const std::string& name, ModelConfig config);

}  // namespace starganv2
