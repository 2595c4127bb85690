// starganv2-inspect: shows what a model file holds and whether our networks can load it, and
// prints the tensor layout our networks expect for a configuration (the converter test builds
// official-layout files from it). LibTorch only.

#include <ATen/ATen.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <exception>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "model/checkpoint.h"
#include "model/config.h"
#include "model/discriminator.h"
#include "model/fan.h"
#include "model/generator.h"
#include "model/mapping_network.h"
#include "model/style_encoder.h"

namespace {

using namespace starganv2;

constexpr const char* kUsage = R"(usage: starganv2-inspect [--tensors] [--json] [--load] FILE.safetensors
       starganv2-inspect --layout CONFIG_JSON

Shows a safetensors file's metadata and tensors per network prefix. For a StarGAN v2 model file
(metadata format_version, config, domains, producer, step) the metadata is validated too.

  --tensors   list every tensor (name, dtype, shape) instead of a summary per prefix
  --json      print {"metadata": {...}, "tensors": [[name, dtype, [shape]], ...]} instead
  --load      build the networks from the file's config and load every network present
              (generator, mapping_network, style_encoder, discriminator, fan); exit 1 if any
              tensor is missing or has the wrong shape, and list tensors no network uses
  --layout C  print, as --json does, the tensors our networks have for the model config C
              (JSON as in the metadata, e.g. '{"img_size":256,"style_dim":64,...}');
              no file is read
)";

const char* kNetworks[] = {"generator", "mapping_network", "style_encoder", "discriminator", "fan"};

std::shared_ptr<torch::nn::Module> build(const std::string& name, const ModelConfig& config) {
  if (name == "generator") return Generator(config).ptr();
  if (name == "mapping_network") return MappingNetwork(config).ptr();
  if (name == "style_encoder") return StyleEncoder(config).ptr();
  if (name == "discriminator") return Discriminator(config).ptr();
  if (name == "fan") return FAN().ptr();
  return nullptr;
}

std::string shape_text(at::IntArrayRef shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

std::string dtype_text(const at::Tensor& t) {
  const char* n = safetensors_dtype_name(t.scalar_type());
  return n ? n : "?";
}

nlohmann::ordered_json tensor_list(const std::vector<std::pair<std::string, at::Tensor>>& tensors) {
  auto list = nlohmann::ordered_json::array();
  for (const auto& [name, t] : tensors) list.push_back({name, dtype_text(t), t.sizes().vec()});
  return list;
}

int print_layout(const std::string& config_json) {
  const ModelConfig config = ModelConfig::from_json(config_json);
  std::vector<std::pair<std::string, at::Tensor>> all;
  for (const char* net : kNetworks) {
    const auto module = build(net, config);
    for (auto& entry : named_state(*module, net)) all.push_back(std::move(entry));
  }
  nlohmann::ordered_json out;
  out["metadata"] = {{"config", config.to_json()}};
  out["tensors"] = tensor_list(all);
  std::cout << out.dump() << "\n";
  return 0;
}

int inspect(const std::string& path, bool list_tensors, bool json, bool load) {
  const SafetensorsFile file = read_safetensors(path);
  std::vector<std::pair<std::string, at::Tensor>> tensors(file.tensors.begin(), file.tensors.end());
  // Only model files carry format_version; others (e.g. the test fixtures) are plain safetensors.
  const bool is_model = file.metadata.count("format_version") > 0;
  std::unique_ptr<Checkpoint> ckpt;
  if (is_model || load) ckpt = std::make_unique<Checkpoint>(Checkpoint::open(path));

  if (json) {
    nlohmann::ordered_json out;
    out["metadata"] = file.metadata;
    out["tensors"] = tensor_list(tensors);
    std::cout << out.dump() << "\n";
  } else {
    std::cout << path << "\n";
    for (const auto& [k, v] : file.metadata) std::cout << "  " << k << ": " << v << "\n";
    if (ckpt) std::cout << "  (valid StarGAN v2 model file, format_version " << ckpt->meta().format_version << ")\n";
    if (list_tensors) {
      for (const auto& [name, t] : tensors) std::cout << name << " " << dtype_text(t) << " " << shape_text(t.sizes()) << "\n";
    } else {
      struct Sum {
        int64_t count = 0, elements = 0;
        std::map<std::string, int64_t> dtypes;
      };
      std::map<std::string, Sum> by_prefix;
      for (const auto& [name, t] : tensors) {
        auto& s = by_prefix[name.substr(0, name.find('.'))];
        ++s.count;
        s.elements += t.numel();
        ++s.dtypes[dtype_text(t)];
      }
      for (const auto& [prefix, s] : by_prefix) {
        std::cout << "  " << prefix << ": " << s.count << " tensors, " << s.elements << " elements (";
        bool first = true;
        for (const auto& [d, n] : s.dtypes) {
          std::cout << (first ? "" : ", ") << n << " " << d;
          first = false;
        }
        std::cout << ")\n";
      }
    }
  }

  if (!load) return 0;
  int64_t used = 0;
  for (const char* net : kNetworks) {
    if (!ckpt->has_network(net)) continue;
    const auto module = build(net, ckpt->meta().config);
    const auto unexpected = ckpt->load_into(*module, net);
    const auto n = static_cast<int64_t>(named_state(*module).size());
    used += n;
    std::cerr << "loaded " << net << ": " << n << " tensors";
    if (!unexpected.empty()) std::cerr << "; " << unexpected.size() << " unused: " << unexpected.front() << " ...";
    std::cerr << "\n";
  }
  if (used == 0) {
    std::cerr << path << ": no network found (expected names starting with generator., mapping_network., ...)\n";
    return 1;
  }
  for (const auto& [name, t] : tensors) {
    const std::string prefix = name.substr(0, name.find('.'));
    bool known = false;
    for (const char* net : kNetworks) known = known || prefix == net;
    if (!known) std::cerr << "unused: " << name << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  bool list_tensors = false, json = false, load = false;
  std::string path, layout;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--tensors") {
      list_tensors = true;
    } else if (a == "--json") {
      json = true;
    } else if (a == "--load") {
      load = true;
    } else if (a == "--layout" && i + 1 < argc) {
      layout = argv[++i];
    } else if (a == "-h" || a == "--help") {
      std::cout << kUsage;
      return 0;
    } else if (!a.empty() && a[0] != '-' && path.empty()) {
      path = a;
    } else {
      std::cerr << "starganv2-inspect: unexpected argument '" << a << "'\n" << kUsage;
      return 2;
    }
  }
  if (path.empty() == layout.empty()) {
    std::cerr << kUsage;
    return 2;
  }
  try {
    return layout.empty() ? inspect(path, list_tensors, json, load) : print_layout(layout);
  } catch (const std::exception& e) {
    std::cerr << "starganv2-inspect: " << e.what() << "\n";
    return 1;
  }
}
