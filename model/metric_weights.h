// Loading the weights of the evaluation networks (Inception-v3 for FID, AlexNet + linear layers
// for LPIPS) from the safetensors files model/convert_official.py writes from the files users
// download (torchvision's .pth, the official lpips_weights.ckpt): never a pickle in C++.
#pragma once

#include <torch/nn/module.h>

#include <filesystem>
#include <string>
#include <vector>

namespace starganv2 {

// Copies the file's tensors into `module` by the module's own names (named_state: parameters and
// buffers, BatchNorm's num_batches_tracked left out), F32/F16/BF16 converted to float32. The
// metadata key "contents" must equal `contents` when present, so that an Inception file given for
// LPIPS (or a StarGAN v2 model file) is refused by what it is; `convert_hint` is the converter
// command that makes the right file, quoted in errors. Checks everything before copying, so a
// failed load leaves the module untouched. Throws CheckpointError naming the file and every
// missing, mis-shaped or non-float tensor. Returns the file's tensors the module does not have.
std::vector<std::string> load_metric_weights(const std::filesystem::path& path, torch::nn::Module& module,
                                             const std::string& contents, const std::string& convert_hint);

}  // namespace starganv2
