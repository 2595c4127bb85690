// D: multi-task discriminator, one real/fake logit per domain (official core/model.py).
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include "config.h"

namespace starganv2 {

class DiscriminatorImpl : public torch::nn::Module {
 public:
  explicit DiscriminatorImpl(const ModelConfig& config);

  // x: (N,3,img,img), y: (N) int64 -> (N) logits of domain y.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& y);

 private:
  struct Parts;  // main (Sequential)
  std::shared_ptr<Parts> parts_;
};
TORCH_MODULE(Discriminator);

}  // namespace starganv2
