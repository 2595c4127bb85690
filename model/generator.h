// G: encoder-decoder with AdaIN residual blocks (official core/model.py Generator).
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include "config.h"
#include "masks.h"

namespace starganv2 {

class GeneratorImpl : public torch::nn::Module {
 public:
  explicit GeneratorImpl(const ModelConfig& config);

  // x: (N,3,img,img) in [-1,1]; s: (N,style_dim). With masks (only when w_hpf > 0) the
  // encoder features at 32/64/128 px are cached, masked and added back through the high-pass
  // filter, as the official code does for CelebA-HQ. Returns (N,3,img,img).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& s, const Masks& masks = {});

  const ModelConfig& config() const { return config_; }

 private:
  ModelConfig config_;
  // Submodules are registered under the official attribute names: from_rgb, encode.N,
  // decode.N, to_rgb, hpf (buffer hpf.filter).
  struct Parts;
  std::shared_ptr<Parts> parts_;
};
TORCH_MODULE(Generator);

}  // namespace starganv2
