// E: image -> style code s for each domain (official core/model.py StyleEncoder).
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include "config.h"

namespace starganv2 {

class StyleEncoderImpl : public torch::nn::Module {
 public:
  explicit StyleEncoderImpl(const ModelConfig& config);

  // x: (N,3,img,img) in [-1,1], y: (N) int64 -> s: (N,style_dim).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& y);
  // (N,num_domains,style_dim).
  torch::Tensor forward_all(const torch::Tensor& x);

 private:
  struct Parts;  // shared (Sequential), unshared (ModuleList of Linear)
  std::shared_ptr<Parts> parts_;
};
TORCH_MODULE(StyleEncoder);

}  // namespace starganv2
