#include "init.h"

#include <torch/nn/init.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

namespace starganv2 {

namespace {

void init_weight_and_bias(torch::Tensor& weight, torch::Tensor& bias) {
  torch::nn::init::kaiming_normal_(weight, /*a=*/0, torch::kFanIn, torch::kReLU);
  if (bias.defined()) torch::nn::init::constant_(bias, 0);
}

}  // namespace

void he_init(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  module.apply([](torch::nn::Module& m) {
    if (auto* conv = m.as<torch::nn::Conv2d>()) {
      init_weight_and_bias(conv->weight, conv->bias);
    } else if (auto* linear = m.as<torch::nn::Linear>()) {
      init_weight_and_bias(linear->weight, linear->bias);
    }
  });
}

}  // namespace starganv2
