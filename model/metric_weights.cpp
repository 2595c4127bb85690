#include "metric_weights.h"

#include <torch/types.h>
#include <torch/utils.h>

#include <map>
#include <set>

#include "checkpoint.h"
#include "layout.h"
#include "safetensors.h"

namespace starganv2 {

namespace {
constexpr size_t kMaxListed = 12;
}  // namespace

std::vector<std::string> load_metric_weights(const std::filesystem::path& path, torch::nn::Module& module,
                                             const std::string& contents, const std::string& convert_hint) {
  const std::string file = path.string();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    throw CheckpointError(file + ": no such file (the " + contents + " weights; make them with `" + convert_hint +
                          "`)");
  const auto expected = named_state(module);
  std::map<std::string, at::Tensor> by_name(expected.begin(), expected.end());

  // The header is checked before any tensor is read: a wrong file fails without loading ~100 MB.
  SafetensorsFile loaded = read_safetensors(path, [&](const SafetensorsHeader& header) {
    const auto it = header.metadata.find("contents");
    if (it != header.metadata.end() && it->second != contents)
      throw CheckpointError(file + ": holds \"" + it->second + "\", not the " + contents +
                            " weights (make them with `" + convert_hint + "`)");
    if (it == header.metadata.end() && header.metadata.count("config"))
      throw CheckpointError(file + ": is a StarGAN v2 model file, not the " + contents + " weights (make them with `" +
                            convert_hint + "`)");
    TensorProblems problems;
    for (const auto& [name, dst] : expected) {
      const auto t = header.tensors.find(name);
      if (t == header.tensors.end()) {
        problems.missing.push_back(name);
      } else if (at::IntArrayRef(t->second.shape) != dst.sizes()) {
        problems.wrong_shape.push_back(name + " (file " + shape_text(t->second.shape) + ", network " +
                                       shape_text(dst.sizes()) + ")");
      } else if (!is_accepted_float(t->second.dtype)) {
        problems.wrong_dtype.push_back(name);
      }
    }
    if (!problems.empty())
      throw CheckpointError(file + ": not the " + contents + " weights this network needs:" +
                            problems.describe(kMaxListed) + " (make the file with `" + convert_hint + "`)");
  });

  std::vector<std::string> unexpected;
  torch::NoGradGuard no_grad;
  for (const auto& [name, src] : loaded.tensors) {
    const auto it = by_name.find(name);
    if (it == by_name.end()) {
      unexpected.push_back(name);
      continue;
    }
    it->second.copy_(src);
  }
  return unexpected;
}

}  // namespace starganv2
