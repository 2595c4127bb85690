// LPIPS as the official StarGAN v2 code computes it (clovaai/stargan-v2 metrics/lpips.py): both
// images normalised from [-1,1] with the LPIPS shift and scale, torchvision's AlexNet features
// taken after each of its 5 ReLUs, each unit-normalised along channels, the squared difference
// weighted per channel by the official 1x1 linear layers (lpips_weights.ckpt, the same values as
// LPIPS v0.1 alex.pth), averaged over space and summed over the layers. Submodules carry the
// official names (alexnet.layers.N, lpips_weights.K.main.1), so the official state dict maps 1:1.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <filesystem>
#include <memory>
#include <vector>

namespace starganv2 {

class LPIPSImpl : public torch::nn::Module {
 public:
  LPIPSImpl();

  // x, y: (N,3,H,W) float in [-1,1] (raw generator outputs) -> (N) distances: per image, the sum
  // over layers of the spatial mean of the weighted squared differences.
  torch::Tensor distance_per_image(const torch::Tensor& x, const torch::Tensor& y);
  // The official forward: the mean of distance_per_image over the batch, a 0-d tensor.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& y);

  // The 5 feature maps (after each ReLU) of the normalised input, for tests.
  std::vector<torch::Tensor> features(const torch::Tensor& x);

 private:
  struct Parts;  // alexnet.layers (torchvision's alexnet.features), lpips_weights
  std::shared_ptr<Parts> parts_;
  torch::Tensor mu_, sigma_;  // not state: fixed constants of the official code
};
TORCH_MODULE(LPIPS);

// The official calculate_lpips_given_images for a group of outputs of the same sources
// (num_outs_per_domain tensors (N,3,H,W)): per source image, the mean over all pairs (i < j) of
// distance_per_image -> (N). The official value of the group is the mean of this over the batch.
// Requires at least two outputs of the same shape.
torch::Tensor lpips_of_group(LPIPSImpl& lpips, const std::vector<torch::Tensor>& outputs);

inline constexpr const char* kLpipsContents = "lpips_alexnet";

// Builds the network and loads a file written by convert_official.py --alexnet --lpips. Ensures a
// float32 CPU module in eval mode. Throws CheckpointError naming the file and the problem.
LPIPS load_lpips(const std::filesystem::path& path);

}  // namespace starganv2
