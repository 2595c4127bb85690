#include "lpips.h"

#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/pooling.h>

#include <stdexcept>
#include <string>

#include "metric_weights.h"

namespace starganv2 {

namespace {

// The official LPIPS normalisation for inputs in [-1,1] (LPIPS' ScalingLayer).
constexpr float kShift[3] = {-0.030f, -0.088f, -0.188f};
constexpr float kScale[3] = {0.458f, 0.448f, 0.450f};
// official normalize(): eps inside the square root.
constexpr double kNormEps = 1e-10;

torch::nn::Conv2d conv(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t pad) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, k).stride(stride).padding(pad));
}
torch::nn::MaxPool2d pool() { return torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(3).stride(2)); }

// Official Conv1x1: Dropout(0.5) (identity in eval) then a bias-free 1x1 convolution to one channel.
class Conv1x1Impl : public torch::nn::Module {
 public:
  explicit Conv1x1Impl(int64_t channels) {
    main = register_module(
        "main", torch::nn::Sequential(torch::nn::Dropout(0.5),
                                      torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, 1, 1).bias(false))));
  }
  torch::Tensor forward(const torch::Tensor& x) { return main->forward(x); }
  torch::nn::Sequential main{nullptr};
};
TORCH_MODULE(Conv1x1);

class AlexNetImpl : public torch::nn::Module {
 public:
  AlexNetImpl() {
    // torchvision's alexnet().features, index for index.
    layers = register_module(
        "layers", torch::nn::Sequential(conv(3, 64, 11, 4, 2), torch::nn::ReLU(), pool(), conv(64, 192, 5, 1, 2),
                                        torch::nn::ReLU(), pool(), conv(192, 384, 3, 1, 1), torch::nn::ReLU(),
                                        conv(384, 256, 3, 1, 1), torch::nn::ReLU(), conv(256, 256, 3, 1, 1),
                                        torch::nn::ReLU(), pool()));
  }
  torch::nn::Sequential layers{nullptr};
};
TORCH_MODULE(AlexNet);

constexpr int64_t kChannels[5] = {64, 192, 384, 256, 256};

torch::Tensor unit_normalize(const torch::Tensor& x) {
  return x * torch::rsqrt(torch::sum(x * x, /*dim=*/1, /*keepdim=*/true) + kNormEps);
}

}  // namespace

struct LPIPSImpl::Parts {
  AlexNet alexnet{nullptr};
  torch::nn::ModuleList lpips_weights{nullptr};
};

LPIPSImpl::LPIPSImpl() : parts_(std::make_shared<Parts>()) {
  parts_->alexnet = register_module("alexnet", AlexNet());
  parts_->lpips_weights = register_module("lpips_weights", torch::nn::ModuleList());
  for (int64_t c : kChannels) parts_->lpips_weights->push_back(Conv1x1(c));
  mu_ = torch::tensor({kShift[0], kShift[1], kShift[2]}).view({1, 3, 1, 1});
  sigma_ = torch::tensor({kScale[0], kScale[1], kScale[2]}).view({1, 3, 1, 1});
}

std::vector<torch::Tensor> LPIPSImpl::features(const torch::Tensor& x) {
  torch::Tensor h = (x - mu_.to(x.device(), x.scalar_type())) / sigma_.to(x.device(), x.scalar_type());
  std::vector<torch::Tensor> fmaps;
  for (auto& layer : *parts_->alexnet->layers) {
    h = layer.forward(h);
    if (layer.ptr()->as<torch::nn::ReLUImpl>() != nullptr) fmaps.push_back(h);
  }
  return fmaps;
}

torch::Tensor LPIPSImpl::distance_per_image(const torch::Tensor& x, const torch::Tensor& y) {
  if (x.dim() != 4 || x.size(1) != 3 || x.sizes() != y.sizes())
    throw std::invalid_argument("LPIPS: expected two (N,3,H,W) batches of the same shape");
  const auto xf = features(x), yf = features(y);
  torch::Tensor total;
  for (size_t k = 0; k < xf.size(); ++k) {
    torch::Tensor d = unit_normalize(xf[k]) - unit_normalize(yf[k]);
    torch::Tensor weighted = parts_->lpips_weights[k]->as<Conv1x1Impl>()->forward(d * d);  // (N,1,h,w)
    torch::Tensor per_image = weighted.mean({1, 2, 3});
    total = total.defined() ? total + per_image : per_image;
  }
  return total;
}

torch::Tensor LPIPSImpl::forward(const torch::Tensor& x, const torch::Tensor& y) {
  return distance_per_image(x, y).mean();
}

torch::Tensor lpips_of_group(LPIPSImpl& lpips, const std::vector<torch::Tensor>& outputs) {
  if (outputs.size() < 2) throw std::invalid_argument("LPIPS of a group needs at least two outputs per source");
  torch::Tensor sum;
  int64_t pairs = 0;
  for (size_t i = 0; i + 1 < outputs.size(); ++i)
    for (size_t j = i + 1; j < outputs.size(); ++j) {
      torch::Tensor d = lpips.distance_per_image(outputs[i], outputs[j]);
      sum = sum.defined() ? sum + d : d;
      ++pairs;
    }
  return sum / static_cast<double>(pairs);
}

LPIPS load_lpips(const std::filesystem::path& path) {
  LPIPS net;
  load_metric_weights(path, *net, kLpipsContents,
                      "starganv2-convert-official --alexnet alexnet-owt-7be5be79.pth --lpips lpips_weights.ckpt "
                      "--out lpips.safetensors");
  net->eval();
  return net;
}

}  // namespace starganv2
