#include "samples.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <algorithm>
#include <cstdio>

#include "random.h"

namespace starganv2 {

namespace {

at::Tensor denormalize(const at::Tensor& x) { return ((x + 1) / 2).clamp(0, 1); }

}  // namespace

at::Tensor make_grid(const at::Tensor& images, int64_t ncol) {
  const int64_t k = images.size(0), c = images.size(1), h = images.size(2), w = images.size(3);
  const int64_t rows = (k + ncol - 1) / ncol;
  at::Tensor padded = images;
  if (rows * ncol != k) padded = at::cat({images, at::zeros({rows * ncol - k, c, h, w}, images.options())});
  // (rows, ncol, c, h, w) -> (c, rows, h, ncol, w)
  return padded.reshape({rows, ncol, c, h, w}).permute({2, 0, 3, 1, 4}).reshape({c, rows * h, ncol * w}).contiguous();
}

std::vector<SampleGrid> debug_grids(Solver& solver, const SampleInputs& in, uint64_t seed, int64_t outs_per_domain) {
  torch::NoGradGuard no_grad;
  Networks& nets = solver.nets_ema();
  const torch::Device device = solver.device();
  const at::Tensor x_src = in.x_src.to(device), y_src = in.y_src.to(device);
  const at::Tensor x_ref = in.x_ref.to(device), y_ref = in.y_ref.to(device);
  const int64_t n = x_src.size(0);
  const ModelConfig& c = solver.options().model;
  std::vector<SampleGrid> grids;
  auto emit = [&](const std::string& name, const std::vector<at::Tensor>& rows, int64_t ncol) {
    grids.push_back({name, make_grid(denormalize(at::cat(rows)).to(at::kCPU, at::kFloat), ncol)});
  };

  const Masks masks = solver.masks_for(x_src);
  {
    const at::Tensor s_ref = nets.style_encoder(x_ref, y_ref);
    const at::Tensor x_fake = nets.generator(x_src, s_ref, masks);
    const at::Tensor s_src = nets.style_encoder(x_src, y_src);
    const at::Tensor x_rec = nets.generator(x_fake, s_src, solver.masks_for(x_fake));
    emit("cycle_consistency", {x_src, x_ref, x_fake, x_rec}, n);
  }
  {
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(derive_seed(seed, RandomStream::kSampleZ, 0));
    const at::Tensor z_list =
        at::randn({outs_per_domain, 1, c.latent_dim}, gen, at::TensorOptions().dtype(at::kFloat)).repeat({1, n, 1}).to(device);
    const int64_t domains = std::min<int64_t>(c.num_domains, 5);
    std::vector<at::Tensor> s_avg(domains);
    for (int64_t y = 0; y < domains; ++y) {
      const at::Tensor z_many = at::randn({10000, c.latent_dim}, gen, at::TensorOptions().dtype(at::kFloat)).to(device);
      const at::Tensor y_many = at::full({10000}, y, at::TensorOptions().dtype(at::kLong).device(device));
      s_avg[y] = nets.mapping_network(z_many, y_many).mean(0, /*keepdim=*/true).repeat({n, 1});
    }
    for (double psi : {0.5, 0.7, 1.0}) {
      std::vector<at::Tensor> rows = {x_src};
      for (int64_t y = 0; y < domains; ++y) {
        const at::Tensor y_trg = at::full({n}, y, at::TensorOptions().dtype(at::kLong).device(device));
        for (int64_t k = 0; k < outs_per_domain; ++k) {
          const at::Tensor s_trg = at::lerp(s_avg[y], nets.mapping_network(z_list[k], y_trg), psi);
          rows.push_back(nets.generator(x_src, s_trg, masks));
        }
      }
      char name[32];
      std::snprintf(name, sizeof name, "latent_psi_%.1f", psi);
      emit(name, rows, n);
    }
  }
  {
    const at::Tensor white = at::ones({1, 3, x_src.size(2), x_src.size(3)}, x_src.options());
    std::vector<at::Tensor> rows = {white, x_src};
    const at::Tensor s_ref = nets.style_encoder(x_ref, y_ref);
    for (int64_t i = 0; i < x_ref.size(0); ++i) {
      rows.push_back(x_ref.slice(0, i, i + 1));
      rows.push_back(nets.generator(x_src, s_ref.slice(0, i, i + 1).repeat({n, 1}), masks));
    }
    emit("reference", rows, n + 1);
  }
  return grids;
}

}  // namespace starganv2
