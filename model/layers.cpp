#include "layers.h"

#include <torch/nn/functional/activation.h>
#include <torch/nn/functional/conv.h>
#include <torch/nn/functional/instancenorm.h>
#include <torch/nn/functional/pooling.h>
#include <torch/nn/functional/upsampling.h>
#include <torch/nn/modules/activation.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace starganv2 {

namespace F = torch::nn::functional;

namespace {

torch::Tensor leaky(const torch::Tensor& x) {
  return F::leaky_relu(x, F::LeakyReLUFuncOptions().negative_slope(kLeakySlope));
}

torch::Tensor halve(const torch::Tensor& x) { return F::avg_pool2d(x, F::AvgPool2dFuncOptions(2)); }

torch::Tensor double_nearest(const torch::Tensor& x) {
  return F::interpolate(
      x, F::InterpolateFuncOptions().scale_factor(std::vector<double>{2.0, 2.0}).mode(torch::kNearest));
}

}  // namespace

torch::nn::Conv2d make_conv(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding,
                            bool bias) {
  return torch::nn::Conv2d(
      torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding).bias(bias));
}

int64_t build_image_trunk(torch::nn::Sequential& trunk, const ModelConfig& config) {
  int64_t dim_in = config.full_res_dim();
  trunk->push_back(make_conv(3, dim_in, /*kernel=*/3, /*stride=*/1, /*padding=*/1));
  int64_t dim_out = dim_in;
  // img_size halves down to 4 px, then a 4x4 valid convolution reaches 1 px.
  for (int64_t size = config.img_size; size > 4; size /= 2) {
    dim_out = std::min(dim_in * 2, config.max_conv_dim);
    trunk->push_back(ResBlk(dim_in, dim_out, /*normalize=*/false, /*downsample=*/true));
    dim_in = dim_out;
  }
  trunk->push_back(torch::nn::LeakyReLU(torch::nn::LeakyReLUOptions().negative_slope(kLeakySlope)));
  trunk->push_back(make_conv(dim_out, dim_out, 4, 1, 0));
  trunk->push_back(torch::nn::LeakyReLU(torch::nn::LeakyReLUOptions().negative_slope(kLeakySlope)));
  return dim_out;
}

torch::Tensor select_domain(const torch::Tensor& out, const torch::Tensor& y, const char* who) {
  TORCH_CHECK(y.dim() == 1 && y.size(0) == out.size(0) && y.scalar_type() == torch::kLong, who,
              ": y must be int64 domain indices of shape (", out.size(0), "), got ", y.scalar_type(), " ",
              y.sizes());
  std::vector<int64_t> index_shape(out.dim(), 1);
  index_shape[0] = out.size(0);
  std::vector<int64_t> picked_shape = out.sizes().vec();
  picked_shape[1] = 1;
  // A pure copy, so gather gives exactly the official advanced-indexing result.
  return out.gather(1, y.view(index_shape).expand(picked_shape)).squeeze(1);
}

// ---------------------------------------------------------------------------------------------
ResBlkImpl::ResBlkImpl(int64_t dim_in, int64_t dim_out, bool normalize, bool downsample)
    : normalize_(normalize), downsample_(downsample), learned_sc_(dim_in != dim_out) {
  conv1 = register_module("conv1", make_conv(dim_in, dim_in, /*kernel=*/3, /*stride=*/1, /*padding=*/1));
  conv2 = register_module("conv2", make_conv(dim_in, dim_out, 3, 1, 1));
  if (normalize_) {
    norm1 = register_module("norm1", torch::nn::InstanceNorm2d(torch::nn::InstanceNorm2dOptions(dim_in).affine(true)));
    norm2 = register_module("norm2", torch::nn::InstanceNorm2d(torch::nn::InstanceNorm2dOptions(dim_in).affine(true)));
  }
  if (learned_sc_) conv1x1 = register_module("conv1x1", make_conv(dim_in, dim_out, 1, 1, 0, /*bias=*/false));
}

torch::Tensor ResBlkImpl::shortcut(torch::Tensor x) {
  if (learned_sc_) x = conv1x1(x);
  if (downsample_) x = halve(x);
  return x;
}

torch::Tensor ResBlkImpl::residual(torch::Tensor x) {
  if (normalize_) x = norm1(x);
  x = conv1(leaky(x));
  if (downsample_) x = halve(x);
  if (normalize_) x = norm2(x);
  return conv2(leaky(x));
}

torch::Tensor ResBlkImpl::forward(const torch::Tensor& x) {
  return (shortcut(x) + residual(x)) / std::sqrt(2.0);
}

// ---------------------------------------------------------------------------------------------
AdaINImpl::AdaINImpl(int64_t style_dim, int64_t num_features) {
  fc = register_module("fc", torch::nn::Linear(style_dim, num_features * 2));
}

torch::Tensor AdaINImpl::forward(const torch::Tensor& x, const torch::Tensor& s) {
  torch::Tensor h = fc(s);
  h = h.view({h.size(0), h.size(1), 1, 1});
  auto gamma_beta = h.chunk(2, /*dim=*/1);
  return (1 + gamma_beta[0]) * F::instance_norm(x) + gamma_beta[1];
}

// ---------------------------------------------------------------------------------------------
AdainResBlkImpl::AdainResBlkImpl(int64_t dim_in, int64_t dim_out, int64_t style_dim, double w_hpf,
                                 bool upsample)
    : w_hpf_(w_hpf), upsample_(upsample), learned_sc_(dim_in != dim_out) {
  conv1 = register_module("conv1", make_conv(dim_in, dim_out, 3, 1, 1));
  conv2 = register_module("conv2", make_conv(dim_out, dim_out, 3, 1, 1));
  norm1 = register_module("norm1", AdaIN(style_dim, dim_in));
  norm2 = register_module("norm2", AdaIN(style_dim, dim_out));
  if (learned_sc_) conv1x1 = register_module("conv1x1", make_conv(dim_in, dim_out, 1, 1, 0, /*bias=*/false));
}

torch::Tensor AdainResBlkImpl::shortcut(torch::Tensor x) {
  if (upsample_) x = double_nearest(x);
  if (learned_sc_) x = conv1x1(x);
  return x;
}

torch::Tensor AdainResBlkImpl::residual(torch::Tensor x, const torch::Tensor& s) {
  x = leaky(norm1(x, s));
  if (upsample_) x = double_nearest(x);
  x = conv1(x);
  x = leaky(norm2(x, s));
  return conv2(x);
}

torch::Tensor AdainResBlkImpl::forward(const torch::Tensor& x, const torch::Tensor& s) {
  torch::Tensor out = residual(x, s);
  if (w_hpf_ == 0) out = (out + shortcut(x)) / std::sqrt(2.0);
  return out;
}

// ---------------------------------------------------------------------------------------------
HighPassImpl::HighPassImpl(double w_hpf) {
  // Built in float32 and divided like the official buffer, so a loaded hpf.filter matches bit for bit.
  torch::Tensor kernel = torch::tensor({-1.0f, -1.0f, -1.0f, -1.0f, 8.0f, -1.0f, -1.0f, -1.0f, -1.0f}).view({3, 3});
  filter = register_buffer("filter", kernel / w_hpf);
}

torch::Tensor HighPassImpl::forward(const torch::Tensor& x) {
  const int64_t channels = x.size(1);
  torch::Tensor weight = filter.to(x.scalar_type()).unsqueeze(0).unsqueeze(1).repeat({channels, 1, 1, 1});
  return F::conv2d(x, weight, F::Conv2dFuncOptions().padding(1).groups(channels));
}

}  // namespace starganv2
