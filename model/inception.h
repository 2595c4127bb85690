// The Inception-v3 feature path of the official StarGAN v2 FID (clovaai/stargan-v2
// metrics/fid.py InceptionV3): torchvision's inception_v3 blocks called one after another —
// Conv2d_1a..2b, max pool, Conv2d_3b..4a, max pool, Mixed_5b..6e, Mixed_7a..7c, global average
// pool — without torchvision's transform_input and without the auxiliary and fc heads, giving
// the 2048-d pool features. Submodules carry torchvision's attribute names, so the state dict of
// torchvision's inception_v3_google-0cc3c7bd.pth (converted by model/convert_official.py
// --inception) maps 1:1 onto this module.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <filesystem>
#include <memory>

namespace starganv2 {

class InceptionV3Impl : public torch::nn::Module {
 public:
  static constexpr int64_t kFeatureDim = 2048;
  static constexpr int64_t kInputSize = 299;  // the size the official loader resizes to

  InceptionV3Impl();

  // x: (N,3,H,W) float, ImageNet-normalised (mean 0.485/0.456/0.406, std 0.229/0.224/0.225),
  // H = W = 299 in the official protocol (any size >= 75 runs) -> (N,2048) pool features.
  torch::Tensor forward(const torch::Tensor& x);

 private:
  struct Parts;  // Conv2d_1a_3x3 ... Mixed_7c, as torchvision names them
  std::shared_ptr<Parts> parts_;
};
TORCH_MODULE(InceptionV3);

// What the metadata key "contents" of a converted Inception file says.
inline constexpr const char* kInceptionContents = "inception_v3";

// Builds the network and loads a file written by convert_official.py --inception (tensors named as
// torchvision's state dict, F32/F16/BF16). Ensures a float32 CPU module in eval mode. Throws
// CheckpointError naming the file and every missing or mis-shaped tensor.
InceptionV3 load_inception(const std::filesystem::path& path);

}  // namespace starganv2
