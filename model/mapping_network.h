// F: latent code z -> style code s for each domain (official core/model.py MappingNetwork).
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include "config.h"

namespace starganv2 {

class MappingNetworkImpl : public torch::nn::Module {
 public:
  explicit MappingNetworkImpl(const ModelConfig& config);

  // z: (N,latent_dim), y: (N) int64 domain indices -> s: (N,style_dim).
  torch::Tensor forward(const torch::Tensor& z, const torch::Tensor& y);
  // Every domain's style at once: (N,num_domains,style_dim).
  torch::Tensor forward_all(const torch::Tensor& z);

 private:
  struct Parts;  // shared (Sequential), unshared (ModuleList of Sequential)
  std::shared_ptr<Parts> parts_;
};
TORCH_MODULE(MappingNetwork);

}  // namespace starganv2
