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
#include "model/inception.h"
#include "model/lpips.h"
#include "model/mapping_network.h"
#include "model/style_encoder.h"

namespace {

using namespace starganv2;

constexpr const char* kUsage = R"(usage: starganv2-inspect [--tensors] [--json] [--load] FILE.safetensors
       starganv2-inspect --layout CONFIG_JSON|inception|lpips

Shows a safetensors file's metadata and tensors per network prefix. For a StarGAN v2 model file
(metadata format_version, config, domains, producer, step) the metadata is validated too.

  --tensors   list every tensor (name, dtype, shape) instead of a summary per prefix
  --json      print {"metadata": {...}, "tensors": [[name, dtype, [shape]], ...]} instead
  --load      build the networks from the file's config and load every network present
              (generator, mapping_network, style_encoder, discriminator, fan); exit 1 if any
              tensor is missing or has the wrong shape, and list tensors no network uses.
              A FAN file (fan.* only, e.g. from the converter's --wing alone) is checked
              against the FAN.
  --layout C  print, as --json does, the tensors our networks have for the model config C
              (JSON as in the metadata, e.g. '{"img_size":256,"style_dim":64,...}');
              no file is read. `--layout inception` and `--layout lpips` print the
              evaluation networks' tensors (FID's Inception-v3, LPIPS' AlexNet and linear
              layers) under their own names.
              --load of an evaluation file (the converter's --inception, --alexnet/--lpips)
              loads it into that network.

Exit codes: 0 shown (and loaded); 1 bad input (options, an unreadable or invalid file).
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
  std::vector<std::pair<std::string, at::Tensor>> all;
  nlohmann::ordered_json out;
  if (config_json == "inception" || config_json == "lpips") {
    all = config_json == "inception" ? named_state(*InceptionV3()) : named_state(*LPIPS());
    out["metadata"] = {{"contents", config_json == "inception" ? kInceptionContents : kLpipsContents}};
    out["tensors"] = tensor_list(all);
    std::cout << out.dump() << "\n";
    return 0;
  }
  const ModelConfig config = ModelConfig::from_json(config_json);
  for (const char* net : kNetworks) {
    const auto module = build(net, config);
    for (auto& entry : named_state(*module, net)) all.push_back(std::move(entry));
  }
  out["metadata"] = {{"config", config.to_json()}};
  out["tensors"] = tensor_list(all);
  std::cout << out.dump() << "\n";
  return 0;
}

// The FAN of a FAN file: every tensor our FAN has, present with its shape and a float dtype.
int load_fan_file(const SafetensorsFile& file, const std::string& path) {
  FAN fan;
  std::vector<std::string> problems;
  size_t used = 0;
  for (const auto& [name, target] : named_state(*fan, "fan")) {
    const auto it = file.tensors.find(name);
    if (it == file.tensors.end())
      problems.push_back("missing " + name);
    else if (!at::isFloatingType(it->second.scalar_type()))
      problems.push_back(name + " is not a float tensor");
    else if (it->second.sizes() != target.sizes())
      problems.push_back(name + " has shape " + shape_text(it->second.sizes()) + ", expected " +
                         shape_text(target.sizes()));
    else
      ++used;
  }
  if (!problems.empty()) {
    std::cerr << path << ": not a usable FAN file: " << problems.size() << " problem(s), first: " << problems.front()
              << "\n";
    return 1;
  }
  std::cerr << "loaded fan: " << used << " tensors\n";
  if (file.tensors.size() > used) std::cerr << "unused: " << file.tensors.size() - used << " fan.* tensors\n";
  return 0;
}

int inspect(const std::string& path, bool list_tensors, bool json, bool load) {
  const SafetensorsFile file = read_safetensors(path);
  std::vector<std::pair<std::string, at::Tensor>> tensors(file.tensors.begin(), file.tensors.end());
  // Only model files carry format_version; others (e.g. the test fixtures) are plain safetensors.
  const bool is_model = file.metadata.count("format_version") > 0;
  // A FAN file (the converter's --wing alone): fan.* tensors without a model config.
  bool fan_only = !is_model && !tensors.empty();
  for (const auto& [name, t] : tensors) fan_only = fan_only && name.rfind("fan.", 0) == 0;
  // An evaluation network's file (the converter's --inception or --alexnet/--lpips).
  const auto contents = file.metadata.find("contents");
  const bool metric = !is_model && contents != file.metadata.end() &&
                      (contents->second == kInceptionContents || contents->second == kLpipsContents);
  std::unique_ptr<Checkpoint> ckpt;
  if (is_model || (load && !fan_only && !metric)) ckpt = std::make_unique<Checkpoint>(Checkpoint::open(path));

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
  if (fan_only) return load_fan_file(file, path);
  if (metric) {
    // Loaded as starganv2-eval loads them.
    const bool inception = contents->second == kInceptionContents;
    const size_t n = inception ? named_state(*load_inception(path)).size() : named_state(*load_lpips(path)).size();
    std::cerr << "loaded " << (inception ? "inception" : "lpips") << ": " << n << " tensors\n";
    if (file.tensors.size() > n) std::cerr << "unused: " << file.tensors.size() - n << " tensors\n";
    return 0;
  }
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
      std::cerr << "starganv2-inspect: error: unexpected argument '" << a << "'\n" << kUsage;
      return 1;
    }
  }
  if (path.empty() == layout.empty()) {
    std::cerr << "starganv2-inspect: error: give one FILE, or --layout CONFIG\n" << kUsage;
    return 1;
  }
  try {
    return layout.empty() ? inspect(path, list_tensors, json, load) : print_layout(layout);
  } catch (const std::exception& e) {
    std::cerr << "starganv2-inspect: " << e.what() << "\n";
    return 1;
  }
}
