#include "style_encoder.h"

#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>

#include <vector>

#include "layers.h"

namespace starganv2 {

struct StyleEncoderImpl::Parts {
  torch::nn::Sequential shared{nullptr};
  torch::nn::ModuleList unshared_list{nullptr};
  std::vector<torch::nn::Linear> unshared;
  int64_t img_size = 0;
};

StyleEncoderImpl::StyleEncoderImpl(const ModelConfig& config) : parts_(std::make_shared<Parts>()) {
  config.validate();
  Parts& p = *parts_;
  p.img_size = config.img_size;
  p.shared = register_module("shared", torch::nn::Sequential());
  const int64_t dim_out = build_image_trunk(p.shared, config);
  p.unshared_list = register_module("unshared", torch::nn::ModuleList());
  for (int64_t d = 0; d < config.num_domains; ++d) {
    p.unshared.push_back(torch::nn::Linear(dim_out, config.style_dim));
    p.unshared_list->push_back(p.unshared.back());
  }
}

torch::Tensor StyleEncoderImpl::forward_all(const torch::Tensor& x) {
  Parts& p = *parts_;
  TORCH_CHECK(x.dim() == 4 && x.size(1) == 3 && x.size(2) == p.img_size && x.size(3) == p.img_size,
              "StyleEncoder: x must be (N,3,", p.img_size, ",", p.img_size, "), got ", x.sizes());
  torch::Tensor h = p.shared->forward(x);
  h = h.view({h.size(0), -1});
  std::vector<torch::Tensor> out;
  out.reserve(p.unshared.size());
  for (auto& layer : p.unshared) out.push_back(layer(h));
  return torch::stack(out, /*dim=*/1);
}

torch::Tensor StyleEncoderImpl::forward(const torch::Tensor& x, const torch::Tensor& y) {
  return select_domain(forward_all(x), y, "StyleEncoder");
}

}  // namespace starganv2
