#include "discriminator.h"

#include <torch/nn/modules/container/sequential.h>

#include "layers.h"

namespace starganv2 {

struct DiscriminatorImpl::Parts {
  torch::nn::Sequential main{nullptr};
  int64_t img_size = 0;
};

DiscriminatorImpl::DiscriminatorImpl(const ModelConfig& config) : parts_(std::make_shared<Parts>()) {
  config.validate();
  Parts& p = *parts_;
  p.img_size = config.img_size;
  p.main = register_module("main", torch::nn::Sequential());
  const int64_t dim_out = build_image_trunk(p.main, config);
  p.main->push_back(make_conv(dim_out, config.num_domains, /*kernel=*/1, /*stride=*/1, /*padding=*/0));
}

torch::Tensor DiscriminatorImpl::forward(const torch::Tensor& x, const torch::Tensor& y) {
  Parts& p = *parts_;
  TORCH_CHECK(x.dim() == 4 && x.size(1) == 3 && x.size(2) == p.img_size && x.size(3) == p.img_size,
              "Discriminator: x must be (N,3,", p.img_size, ",", p.img_size, "), got ", x.sizes());
  torch::Tensor out = p.main->forward(x);
  return select_domain(out.view({out.size(0), -1}), y, "Discriminator");
}

}  // namespace starganv2
