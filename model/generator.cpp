#include "generator.h"

#include <torch/nn/functional/upsampling.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>

#include <algorithm>
#include <map>
#include <vector>

#include "layers.h"

namespace starganv2 {

namespace F = torch::nn::functional;

namespace {

// Resolutions whose encoder features return through the high-pass skips. The official code
// lists these pixel sizes (not encoder depths), whatever img_size is.
bool is_skip_size(int64_t size) { return size == 32 || size == 64 || size == 128; }

int64_t log2_exact(int64_t v) {
  int64_t n = 0;
  while ((int64_t{1} << (n + 1)) <= v) ++n;
  return n;
}

}  // namespace

struct GeneratorImpl::Parts {
  torch::nn::Conv2d from_rgb{nullptr};
  torch::nn::ModuleList encode_list{nullptr}, decode_list{nullptr};
  std::vector<ResBlk> encode;
  std::vector<AdainResBlk> decode;
  torch::nn::Sequential to_rgb{nullptr};
  HighPass hpf{nullptr};
};

GeneratorImpl::GeneratorImpl(const ModelConfig& config) : config_(config), parts_(std::make_shared<Parts>()) {
  config_.validate();
  Parts& p = *parts_;
  int64_t dim_in = config_.full_res_dim();
  p.from_rgb = register_module("from_rgb", make_conv(3, dim_in, /*kernel=*/3, /*stride=*/1, /*padding=*/1));
  p.encode_list = register_module("encode", torch::nn::ModuleList());
  p.decode_list = register_module("decode", torch::nn::ModuleList());
  p.to_rgb = register_module(
      "to_rgb",
      torch::nn::Sequential(torch::nn::InstanceNorm2d(torch::nn::InstanceNorm2dOptions(dim_in).affine(true)),
                            torch::nn::LeakyReLU(torch::nn::LeakyReLUOptions().negative_slope(kLeakySlope)),
                            make_conv(dim_in, 3, 1, 1, 0)));

  // The decoder mirrors the encoder and runs deepest block first, so it is built back to front.
  int64_t repeat_num = log2_exact(config_.img_size) - 4;
  if (config_.w_hpf > 0) repeat_num += 1;
  int64_t dim_out = dim_in;
  std::vector<AdainResBlk> decode_reversed;
  for (int64_t i = 0; i < repeat_num; ++i) {
    dim_out = std::min(dim_in * 2, config_.max_conv_dim);
    p.encode.push_back(ResBlk(dim_in, dim_out, /*normalize=*/true, /*downsample=*/true));
    decode_reversed.push_back(AdainResBlk(dim_out, dim_in, config_.style_dim, config_.w_hpf, /*upsample=*/true));
    dim_in = dim_out;
  }
  for (int i = 0; i < 2; ++i) {  // bottleneck
    p.encode.push_back(ResBlk(dim_out, dim_out, /*normalize=*/true, /*downsample=*/false));
    decode_reversed.push_back(AdainResBlk(dim_out, dim_out, config_.style_dim, config_.w_hpf, /*upsample=*/false));
  }
  p.decode.assign(decode_reversed.rbegin(), decode_reversed.rend());
  for (auto& block : p.encode) p.encode_list->push_back(block);
  for (auto& block : p.decode) p.decode_list->push_back(block);

  if (config_.w_hpf > 0) p.hpf = register_module("hpf", HighPass(config_.w_hpf));
}

torch::Tensor GeneratorImpl::forward(const torch::Tensor& x_in, const torch::Tensor& s, const Masks& masks) {
  TORCH_CHECK(x_in.dim() == 4 && x_in.size(1) == 3, "Generator: x must be (N,3,H,W), got ", x_in.sizes());
  TORCH_CHECK(s.dim() == 2 && s.size(0) == x_in.size(0) && s.size(1) == config_.style_dim,
              "Generator: s must be (N,", config_.style_dim, ") with N = ", x_in.size(0), ", got ", s.sizes());
  Parts& p = *parts_;
  const bool use_masks = masks.defined() && !p.hpf.is_empty();
  if (use_masks) {
    TORCH_CHECK(masks.coarse.dim() == 4 && masks.fine.dim() == 4 && masks.coarse.size(0) == x_in.size(0) &&
                    masks.fine.size(0) == x_in.size(0),
                "Generator: masks must be (N,1,H,W), got ", masks.coarse.sizes(), " and ", masks.fine.sizes());
  }

  torch::Tensor x = p.from_rgb(x_in);
  std::map<int64_t, torch::Tensor> cache;
  for (auto& block : p.encode) {
    if (use_masks && is_skip_size(x.size(2))) cache[x.size(2)] = x;
    x = block(x);
  }
  for (auto& block : p.decode) {
    x = block(x, s);
    const int64_t size = x.size(2);
    if (use_masks && is_skip_size(size)) {
      const torch::Tensor& mask = size == 32 ? masks.coarse : masks.fine;
      // Masks may come from a FAN running in another dtype than G (e.g. float32 FAN, half G).
      torch::Tensor resized = F::interpolate(
          mask.to(x.options()), F::InterpolateFuncOptions().size(std::vector<int64_t>{size, size}).mode(torch::kBilinear).align_corners(false));
      x = x + p.hpf(resized * cache.at(size));
    }
  }
  return p.to_rgb->forward(x);
}

}  // namespace starganv2
