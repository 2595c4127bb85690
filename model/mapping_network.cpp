#include "mapping_network.h"

#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>

#include <vector>

#include "layers.h"

namespace starganv2 {

struct MappingNetworkImpl::Parts {
  torch::nn::Sequential shared{nullptr};
  torch::nn::ModuleList unshared_list{nullptr};
  std::vector<torch::nn::Sequential> unshared;
  int64_t latent_dim = 0;
};

MappingNetworkImpl::MappingNetworkImpl(const ModelConfig& config) : parts_(std::make_shared<Parts>()) {
  config.validate();
  Parts& p = *parts_;
  p.latent_dim = config.latent_dim;
  const int64_t hidden = config.hidden_dim;
  p.shared = torch::nn::Sequential(torch::nn::Linear(config.latent_dim, hidden), torch::nn::ReLU());
  for (int i = 0; i < 3; ++i) {
    p.shared->push_back(torch::nn::Linear(hidden, hidden));
    p.shared->push_back(torch::nn::ReLU());
  }
  register_module("shared", p.shared);

  p.unshared_list = register_module("unshared", torch::nn::ModuleList());
  for (int64_t d = 0; d < config.num_domains; ++d) {
    torch::nn::Sequential branch(torch::nn::Linear(hidden, hidden), torch::nn::ReLU(),
                                 torch::nn::Linear(hidden, hidden), torch::nn::ReLU(),
                                 torch::nn::Linear(hidden, hidden), torch::nn::ReLU(),
                                 torch::nn::Linear(hidden, config.style_dim));
    p.unshared.push_back(branch);
    p.unshared_list->push_back(branch);
  }
}

torch::Tensor MappingNetworkImpl::forward_all(const torch::Tensor& z) {
  Parts& p = *parts_;
  TORCH_CHECK(z.dim() == 2 && z.size(1) == p.latent_dim, "MappingNetwork: z must be (N,", p.latent_dim, "), got ",
              z.sizes());
  torch::Tensor h = p.shared->forward(z);
  std::vector<torch::Tensor> out;
  out.reserve(p.unshared.size());
  for (auto& branch : p.unshared) out.push_back(branch->forward(h));
  return torch::stack(out, /*dim=*/1);
}

torch::Tensor MappingNetworkImpl::forward(const torch::Tensor& z, const torch::Tensor& y) {
  return select_domain(forward_all(z), y, "MappingNetwork");
}

}  // namespace starganv2
