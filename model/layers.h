// Building blocks of G, E and D (official core/model.py: ResBlk, AdaIN, AdainResBlk, HighPass).
// Private to model/: attribute names mirror the official ones so state dicts map 1:1.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/instancenorm.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include "config.h"

namespace starganv2 {

// Negative slope of every LeakyReLU in G, E and D.
inline constexpr double kLeakySlope = 0.2;

// Pre-activation residual block; the sum is divided by sqrt(2) to keep unit variance.
// normalize: InstanceNorm2d(affine) before each activation (G's encoder).
// downsample: 2x2 average pooling after conv1 and on the shortcut.
class ResBlkImpl : public torch::nn::Module {
 public:
  ResBlkImpl(int64_t dim_in, int64_t dim_out, bool normalize = false, bool downsample = false);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::Tensor shortcut(torch::Tensor x);
  torch::Tensor residual(torch::Tensor x);

  bool normalize_;
  bool downsample_;
  bool learned_sc_;
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv1x1{nullptr};
  torch::nn::InstanceNorm2d norm1{nullptr}, norm2{nullptr};
};
TORCH_MODULE(ResBlk);

// Adaptive instance normalisation: (1 + gamma(s)) * instance_norm(x) + beta(s).
class AdaINImpl : public torch::nn::Module {
 public:
  AdaINImpl(int64_t style_dim, int64_t num_features);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& s);

 private:
  torch::nn::Linear fc{nullptr};
};
TORCH_MODULE(AdaIN);

// Decoder block of G. With w_hpf > 0 the official block returns the residual branch alone (the
// high-pass skips carry the identity), so the shortcut is skipped, though conv1x1 still exists.
class AdainResBlkImpl : public torch::nn::Module {
 public:
  AdainResBlkImpl(int64_t dim_in, int64_t dim_out, int64_t style_dim, double w_hpf, bool upsample);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& s);

 private:
  torch::Tensor shortcut(torch::Tensor x);
  torch::Tensor residual(torch::Tensor x, const torch::Tensor& s);

  double w_hpf_;
  bool upsample_;
  bool learned_sc_;
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv1x1{nullptr};
  AdaIN norm1{nullptr}, norm2{nullptr};
};
TORCH_MODULE(AdainResBlk);

// Depthwise 3x3 Laplacian-like high-pass filter; buffer `filter` holds the kernel / w_hpf.
class HighPassImpl : public torch::nn::Module {
 public:
  explicit HighPassImpl(double w_hpf);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::Tensor filter;
};
TORCH_MODULE(HighPass);

// Conv2d(in, out, kernel, stride, padding) with a bias, as nn.Conv2d's defaults.
torch::nn::Conv2d make_conv(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding,
                            bool bias = true);

// Appends the image trunk shared by E and D (official StyleEncoder.shared / Discriminator.main up
// to the last LeakyReLU): conv, ResBlks halving img_size down to 4 px, LeakyReLU, 4x4 conv to
// 1 px, LeakyReLU. Returns its channel count.
int64_t build_image_trunk(torch::nn::Sequential& trunk, const ModelConfig& config);

// out[i, y[i]] for every sample i (the official out[arange(N), y]); out is (N, num_domains, ...),
// y (N) int64. `who` names the network in the error for a wrong y.
torch::Tensor select_domain(const torch::Tensor& out, const torch::Tensor& y, const char* who);

}  // namespace starganv2
