#include "layout.h"

#include <algorithm>
#include <stdexcept>

namespace starganv2 {

namespace {

// Collects specs under a growing dotted prefix, as named_state walks the module tree.
class Builder {
 public:
  explicit Builder(std::vector<TensorSpec>& out) : out_(out) {}

  void add(const std::string& name, std::vector<int64_t> shape) { out_.push_back({name, std::move(shape)}); }

  // torch::nn::Conv2d as make_conv builds it: weight (out, in, k, k), bias (out).
  void conv(const std::string& p, int64_t in, int64_t out, int64_t kernel, bool bias = true) {
    add(p + ".weight", {out, in, kernel, kernel});
    if (bias) add(p + ".bias", {out});
  }
  void linear(const std::string& p, int64_t in, int64_t out) {
    add(p + ".weight", {out, in});
    add(p + ".bias", {out});
  }
  // InstanceNorm2d(affine) without running statistics.
  void instance_norm(const std::string& p, int64_t features) {
    add(p + ".weight", {features});
    add(p + ".bias", {features});
  }
  // layers.cpp ResBlkImpl: conv1, conv2, (norm1, norm2), (conv1x1 without bias).
  void res_blk(const std::string& p, int64_t dim_in, int64_t dim_out, bool normalize) {
    conv(p + ".conv1", dim_in, dim_in, 3);
    conv(p + ".conv2", dim_in, dim_out, 3);
    if (normalize) {
      instance_norm(p + ".norm1", dim_in);
      instance_norm(p + ".norm2", dim_in);
    }
    if (dim_in != dim_out) conv(p + ".conv1x1", dim_in, dim_out, 1, /*bias=*/false);
  }
  // layers.cpp AdainResBlkImpl: conv1, conv2, norm1.fc, norm2.fc, (conv1x1).
  void adain_res_blk(const std::string& p, int64_t dim_in, int64_t dim_out, int64_t style_dim) {
    conv(p + ".conv1", dim_in, dim_out, 3);
    conv(p + ".conv2", dim_out, dim_out, 3);
    linear(p + ".norm1.fc", style_dim, dim_in * 2);
    linear(p + ".norm2.fc", style_dim, dim_out * 2);
    if (dim_in != dim_out) conv(p + ".conv1x1", dim_in, dim_out, 1, /*bias=*/false);
  }
  // layers.cpp build_image_trunk: returns the index after the trunk and its channel count.
  std::pair<int64_t, int64_t> image_trunk(const std::string& p, const ModelConfig& c) {
    int64_t dim_in = c.full_res_dim(), dim_out = dim_in, index = 0;
    conv(p + "." + std::to_string(index++), 3, dim_in, 3);
    for (int64_t size = c.img_size; size > 4; size /= 2) {
      dim_out = std::min(dim_in * 2, c.max_conv_dim);
      res_blk(p + "." + std::to_string(index++), dim_in, dim_out, /*normalize=*/false);
      dim_in = dim_out;
    }
    ++index;  // LeakyReLU
    conv(p + "." + std::to_string(index++), dim_out, dim_out, 4);
    ++index;  // LeakyReLU
    return {index, dim_out};
  }

 private:
  std::vector<TensorSpec>& out_;
};

void generator(Builder& b, const std::string& p, const ModelConfig& c) {
  int64_t dim_in = c.full_res_dim();
  b.conv(p + "from_rgb", 3, dim_in, 3);
  int64_t repeat_num = 0;
  while ((int64_t{1} << (repeat_num + 1)) <= c.img_size) ++repeat_num;
  repeat_num -= 4;
  if (c.w_hpf > 0) repeat_num += 1;
  // (dim_in, dim_out) of each encoder block; decoder block i mirrors encoder block n-1-i.
  std::vector<std::pair<int64_t, int64_t>> enc;
  int64_t dim_out = dim_in;
  for (int64_t i = 0; i < repeat_num; ++i) {
    dim_out = std::min(dim_in * 2, c.max_conv_dim);
    enc.emplace_back(dim_in, dim_out);
    dim_in = dim_out;
  }
  for (int i = 0; i < 2; ++i) enc.emplace_back(dim_out, dim_out);
  for (size_t i = 0; i < enc.size(); ++i)
    b.res_blk(p + "encode." + std::to_string(i), enc[i].first, enc[i].second, /*normalize=*/true);
  for (size_t i = 0; i < enc.size(); ++i) {
    const auto& [in, out] = enc[enc.size() - 1 - i];
    b.adain_res_blk(p + "decode." + std::to_string(i), out, in, c.style_dim);
  }
  b.instance_norm(p + "to_rgb.0", c.full_res_dim());
  b.conv(p + "to_rgb.2", c.full_res_dim(), 3, 1);
  if (c.w_hpf > 0) b.add(p + "hpf.filter", {3, 3});
}

void mapping_network(Builder& b, const std::string& p, const ModelConfig& c) {
  b.linear(p + "shared.0", c.latent_dim, c.hidden_dim);
  for (int i = 1; i < 4; ++i) b.linear(p + "shared." + std::to_string(2 * i), c.hidden_dim, c.hidden_dim);
  for (int64_t d = 0; d < c.num_domains; ++d) {
    const std::string u = p + "unshared." + std::to_string(d) + ".";
    for (int i = 0; i < 3; ++i) b.linear(u + std::to_string(2 * i), c.hidden_dim, c.hidden_dim);
    b.linear(u + "6", c.hidden_dim, c.style_dim);
  }
}

void style_encoder(Builder& b, const std::string& p, const ModelConfig& c) {
  const int64_t dim_out = b.image_trunk(p + "shared", c).second;
  for (int64_t d = 0; d < c.num_domains; ++d) b.linear(p + "unshared." + std::to_string(d), dim_out, c.style_dim);
}

void discriminator(Builder& b, const std::string& p, const ModelConfig& c) {
  const auto [index, dim_out] = b.image_trunk(p + "main", c);
  b.conv(p + "main." + std::to_string(index), dim_out, c.num_domains, 1);
}


// Long lists usually mean "wrong network or wrong config"; the first few say that.
constexpr size_t kMaxListed = 6;

}  // namespace

bool is_accepted_float(at::ScalarType t) { return t == at::kFloat || t == at::kHalf || t == at::kBFloat16; }

std::string join_capped(const std::vector<std::string>& items, size_t max_listed) {
  std::string s;
  for (size_t i = 0; i < items.size() && i < max_listed; ++i) {
    if (i) s += ", ";
    s += items[i];
  }
  if (items.size() > max_listed) s += ", ... (" + std::to_string(items.size() - max_listed) + " more)";
  return s;
}

std::string TensorProblems::describe(size_t max_listed) const {
  std::string out;
  for (const auto& [items, kind] : {std::pair{&missing, "missing"}, std::pair{&wrong_shape, "with wrong shape"},
                                    std::pair{&wrong_dtype, "with wrong dtype"}})
    if (!items->empty())
      out += std::string(out.empty() ? " " : "; ") + std::to_string(items->size()) + " " + kind + ": " +
             join_capped(*items, max_listed);
  return out;
}

std::vector<TensorSpec> network_layout(const ModelConfig& config, const std::string& network,
                                       const std::string& prefix) {
  config.validate();
  std::vector<TensorSpec> out;
  Builder b(out);
  const std::string p = prefix.empty() ? prefix : prefix + ".";
  if (network == "generator")
    generator(b, p, config);
  else if (network == "mapping_network")
    mapping_network(b, p, config);
  else if (network == "style_encoder")
    style_encoder(b, p, config);
  else if (network == "discriminator")
    discriminator(b, p, config);
  else
    throw std::invalid_argument("no layout for network \"" + network + "\"");
  return out;
}

int64_t layout_numel(const std::vector<TensorSpec>& layout) {
  int64_t total = 0;
  for (const auto& t : layout) {
    int64_t n = 1;
    for (int64_t d : t.shape)
      if (__builtin_mul_overflow(n, d, &n)) return INT64_MAX;
    if (__builtin_add_overflow(total, n, &total)) return INT64_MAX;
  }
  return total;
}

void check_layout(const SafetensorsHeader& header, const std::vector<TensorSpec>& layout, const std::string& source,
                  const std::string& what) {
  const int64_t numel = layout_numel(layout);
  if (numel > kMaxNetworkNumel)
    throw CheckpointError(source + ": the config implies a " + what + " of " + std::to_string(numel) +
                          " parameters, more than the limit of " + std::to_string(kMaxNetworkNumel));
  TensorProblems problems;
  for (const auto& spec : layout) {
    const auto it = header.tensors.find(spec.name);
    if (it == header.tensors.end()) {
      problems.missing.push_back(spec.name);
    } else if (it->second.shape != spec.shape) {
      problems.wrong_shape.push_back(spec.name + " (file " + shape_text(it->second.shape) + ", config " +
                            shape_text(spec.shape) + ")");
    } else if (!is_accepted_float(it->second.dtype)) {
      const char* name = safetensors_dtype_name(it->second.dtype);
      problems.wrong_dtype.push_back(spec.name + " (" + (name ? name : "?") + ", expected F32, F16 or BF16)");
    }
  }
  if (problems.empty()) return;
  throw CheckpointError(source + ": does not hold the " + what + " its config implies (" + std::to_string(layout.size()) +
                        " tensors, " + std::to_string(numel) + " parameters):" + problems.describe(kMaxListed));
}

}  // namespace starganv2
