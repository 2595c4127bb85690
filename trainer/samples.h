// The official debug images (core/utils.py debug_image) as image tensors: reference-guided
// translation and reconstruction, latent-guided synthesis at psi 0.5/0.7/1.0, and the
// reference grid. Computed with the EMA networks.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

#include "solver.h"

namespace starganv2 {

struct SampleInputs {
  at::Tensor x_src, y_src;  // (N,3,H,W) in [-1,1], (N) int64
  at::Tensor x_ref, y_ref;
};

struct SampleGrid {
  std::string name;  // "cycle_consistency", "latent_psi_0.5", ..., "reference"
  at::Tensor image;  // (3, rows*H, cols*W) float in [0,1] on the CPU
};

// Official layouts: one row per batch of N images. cycle_consistency rows: sources,
// references, translations, reconstructions. latent_psi_*: sources, then for each domain (at
// most 5) `outs_per_domain` rows translated with the truncated style lerp(s_avg, F(z,y), psi),
// s_avg over 10000 latents. reference: a white cell and the sources, then per reference image
// the reference followed by the sources translated to its style. Latents come from `seed`, so
// grids of different steps are comparable.
std::vector<SampleGrid> debug_grids(Solver& solver, const SampleInputs& in, uint64_t seed, int64_t outs_per_domain = 10);

// Tiles (K,3,H,W) images into `ncol` columns without padding (torchvision make_grid, padding 0).
at::Tensor make_grid(const at::Tensor& images, int64_t ncol);

}  // namespace starganv2
