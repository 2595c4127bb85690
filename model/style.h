// Style codes as values: files that hold one, and interpolation between two.
#pragma once

#include <ATen/core/Tensor.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace starganv2 {

// Style files are safetensors files (no pickle) with one F32 tensor named "style" of shape
// (style_dim) and free-form string metadata (save_style adds "format": "starganv2-style").
inline constexpr const char* kStyleTensorName = "style";

// Writes `style` ((style_dim) or (1, style_dim), any device and float dtype) as F32. Atomic.
// Throws CheckpointError naming the file.
void save_style(const std::filesystem::path& path, const at::Tensor& style,
                const std::map<std::string, std::string>& metadata = {});
// The same from plain values (style_dim of them), for code that holds no tensors.
void save_style(const std::filesystem::path& path, const std::vector<float>& style,
                const std::map<std::string, std::string>& metadata = {});

// Reads a style file: requires a "style" tensor with style_dim elements ((style_dim) or
// (1, style_dim); F32/F16/BF16) and finite values. Returns (style_dim) float32 on the CPU, and
// the file's metadata in `metadata` when given (e.g. "domain", which starganv2-translate
// --save-style writes). Throws CheckpointError naming the file and the problem.
at::Tensor load_style(const std::filesystem::path& path, int64_t style_dim,
                      std::map<std::string, std::string>* metadata = nullptr);

// (1 - t) * a + t * b, as torch.lerp (the official interpolation). Requires equal shapes and
// t in [0, 1]; throws std::invalid_argument otherwise. t = 0 returns a, t = 1 returns b exactly.
at::Tensor interpolate_styles(const at::Tensor& a, const at::Tensor& b, double t);

}  // namespace starganv2
