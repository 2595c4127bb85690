// Helpers shared by the engine tests: small random checkpoints and an independent reference
// implementation of the engine's job written with the networks directly.
#pragma once

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "tests/common/model_test_util.h"
#include "model/checkpoint.h"
#include "model/config.h"
#include "model/translator.h"

namespace starganv2::test {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "starganv2-engine-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// The engine's small model (tests/common/model_test_util.h): 3 domains, 64 channels; the FAN
// still runs at its fixed 256 px.
inline ModelConfig engine_config(double w_hpf) { return small_config(w_hpf, /*num_domains=*/3, /*width=*/64); }

inline std::vector<std::string> small_domains() { return {"cat", "dog", "wild"}; }

// Random networks with LibTorch's default init; `with_fan` adds fan.* with the FAN's own
// initialisation (its masks are far from zero, which the tests check).
inline void write_random_checkpoint(const std::filesystem::path& path, const ModelConfig& config, uint64_t seed,
                                    bool with_fan) {
  write_random_model(path, {.config = config, .domains = small_domains(), .seed = seed, .he_init = false,
                            .with_fan = with_fan, .producer = "starganv2 engine tests"});
}

// uint8 NHWC RGB -> float NCHW in [-1,1] the way the official data loader does it.
inline at::Tensor u8_to_float(const at::Tensor& u8) {
  return u8.to(at::kFloat).div(255.0).sub(0.5).div(0.5).permute({0, 3, 1, 2}).contiguous();
}
// float NCHW -> uint8 NHWC as the official save_image (denormalize, *255, +0.5, clamp, truncate).
inline at::Tensor float_to_u8(const at::Tensor& y) {
  return y.add(1.0).div(2.0).clamp(0.0, 1.0).mul(255.0).add(0.5).clamp(0.0, 255.0).to(at::kByte).permute({0, 2, 3, 1}).contiguous();
}

// What the engine must compute, written directly on the networks (CPU, fp32).
inline at::Tensor reference_translate(TranslatorNets& nets, const at::Tensor& u8_rgb, const at::Tensor& styles,
                                      bool use_masks = true) {
  torch::NoGradGuard no_grad;
  nets.generator->eval();
  at::Tensor x = u8_to_float(u8_rgb);
  Masks masks;
  if (use_masks && nets.config.w_hpf > 0) {
    nets.fan->eval();
    masks = nets.fan->get_heatmap(x);
  }
  return float_to_u8(nets.generator->forward(x, styles, masks));
}

inline at::Tensor random_u8(int64_t n, int64_t size, int64_t channels, uint64_t seed) {
  torch::manual_seed(seed);
  // Smooth-ish content (a blurred random field) so the FAN sees something image-like.
  at::Tensor small = at::rand({n, 3, size / 8, size / 8});
  at::Tensor img = at::upsample_bilinear2d(small, {size, size}, /*align_corners=*/false);
  img = (img * 0.8 + 0.2 * at::rand({n, 3, size, size})).clamp(0, 1).mul(255).to(at::kByte);
  img = img.permute({0, 2, 3, 1}).contiguous();
  if (channels == 4) img = at::cat({img, at::full({n, size, size, 1}, 77, at::kByte)}, 3).contiguous();
  return img;
}

// Largest absolute difference of two uint8 tensors, and the fraction of equal elements.
inline int64_t max_u8_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kShort) - b.to(at::kShort)).abs().max().item<int64_t>();
}
inline double equal_fraction(const at::Tensor& a, const at::Tensor& b) {
  return a.eq(b).to(at::kDouble).mean().item<double>();
}

}  // namespace starganv2::test
