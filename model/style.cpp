#include "style.h"

#include <ATen/ATen.h>

#include <cmath>
#include <stdexcept>
#include <string>

#include "safetensors.h"

namespace starganv2 {

void save_style(const std::filesystem::path& path, const at::Tensor& style,
                const std::map<std::string, std::string>& metadata) {
  if (!style.defined() || !at::isFloatingType(style.scalar_type()) ||
      !(style.dim() == 1 || (style.dim() == 2 && style.size(0) == 1)) || style.numel() == 0) {
    throw CheckpointError(path.string() + ": a style must be a float (style_dim) or (1, style_dim) tensor, got " +
                          (style.defined() ? shape_text(style.sizes()) : std::string("none")));
  }
  auto meta = metadata;
  meta["format"] = "starganv2-style";
  write_safetensors(path, {{kStyleTensorName, style.detach().reshape({-1}).to(at::kCPU, at::kFloat).contiguous()}},
                    meta);
}

void save_style(const std::filesystem::path& path, const std::vector<float>& style,
                const std::map<std::string, std::string>& metadata) {
  // from_blob does not copy; save_style converts (copies) before `style` can go away.
  const at::Tensor t = at::from_blob(const_cast<float*>(style.data()), {static_cast<int64_t>(style.size())},
                                     at::TensorOptions().dtype(at::kFloat));
  save_style(path, t, metadata);
}

at::Tensor load_style(const std::filesystem::path& path, int64_t style_dim,
                      std::map<std::string, std::string>* metadata) {
  const std::string file = path.string();
  // The layout of a style file is known before reading it: one float "style" tensor of
  // style_dim elements and nothing else; checked on the header, so a large file is refused
  // without reading (or allocating) its data.
  SafetensorsFile content = read_safetensors(path, [&](const SafetensorsHeader& header) {
    const auto it = header.tensors.find(kStyleTensorName);
    if (it == header.tensors.end()) {
      std::string names;
      for (const auto& [name, t] : header.tensors) {
        if (names.size() > 200) {
          names += ", ...";
          break;
        }
        if (!names.empty()) names += ", ";
        names += name;
      }
      throw CheckpointError(file + ": not a style file: no tensor named \"style\" (it has: " +
                            (names.empty() ? std::string("nothing") : names) + ")");
    }
    const SafetensorsEntry& t = it->second;
    if (!(t.dtype == at::kFloat || t.dtype == at::kHalf || t.dtype == at::kBFloat16))
      throw CheckpointError(file + ": tensor \"style\" must be F32, F16 or BF16");
    const auto& sh = t.shape;
    if (!(sh.size() == 1 || (sh.size() == 2 && sh[0] == 1)) || sh.back() != style_dim)
      throw CheckpointError(file + ": tensor \"style\" has shape " + shape_text(sh) + ", the model needs [" +
                            std::to_string(style_dim) + "]");
    if (header.tensors.size() != 1)
      throw CheckpointError(file + ": a style file holds the tensor \"style\" alone; this one has " +
                            std::to_string(header.tensors.size()) + " tensors");
  });
  const at::Tensor& t = content.tensors.at(kStyleTensorName);
  at::Tensor s = t.to(at::kFloat).reshape({style_dim}).clone();
  if (!at::isfinite(s).all().item<bool>()) {
    throw CheckpointError(file + ": tensor \"style\" holds NaN or infinite values");
  }
  if (metadata) *metadata = content.metadata;
  return s;
}

at::Tensor interpolate_styles(const at::Tensor& a, const at::Tensor& b, double t) {
  if (!(t >= 0.0 && t <= 1.0)) {
    throw std::invalid_argument("style interpolation: t must be in [0, 1], got " + std::to_string(t));
  }
  if (!a.defined() || !b.defined() || a.sizes() != b.sizes()) {
    throw std::invalid_argument("style interpolation: the two styles differ in shape: " +
                                (a.defined() ? shape_text(a.sizes()) : std::string("none")) + " vs " +
                                (b.defined() ? shape_text(b.sizes()) : std::string("none")));
  }
  // lerp's formula is not exact at the ends in floating point for every implementation; the
  // endpoints are promised exactly, so return copies of them.
  if (t == 0.0) return a.clone();
  if (t == 1.0) return b.to(a.options()).clone();
  return at::lerp(a, b.to(a.options()), t);
}

}  // namespace starganv2
