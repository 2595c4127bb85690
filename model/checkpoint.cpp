#include "checkpoint.h"

#include <c10/core/ScalarType.h>
#include <torch/csrc/autograd/grad_mode.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <set>
#include <stdexcept>

#include "layout.h"

namespace starganv2 {

namespace {

constexpr const char* kKeyFormatVersion = "format_version";
constexpr const char* kKeyConfig = "config";
constexpr const char* kKeyDomains = "domains";
constexpr const char* kKeyProducer = "producer";
constexpr const char* kKeyStep = "step";

// Long lists of missing tensors usually mean "wrong network or wrong prefix"; the first few
// names and the count say that without flooding the log.
constexpr size_t kMaxListed = 12;

// PyTorch's state_dict order: each module's own parameters, then its own buffers, then its
// children in registration order. Keeps files diffable against official state dicts.
void collect_state(const torch::nn::Module& module, const std::string& prefix,
                   std::vector<std::pair<std::string, at::Tensor>>& out) {
  for (const auto& p : module.named_parameters(/*recurse=*/false)) out.emplace_back(prefix + p.key(), p.value());
  for (const auto& b : module.named_buffers(/*recurse=*/false))
    // The official files never carry BatchNorm's update counter and inference ignores it.
    if (b.key() != "num_batches_tracked") out.emplace_back(prefix + b.key(), b.value());
  for (const auto& child : module.named_children()) collect_state(*child.value(), prefix + child.key() + ".", out);
}

std::string dotted(const std::string& prefix) { return prefix.empty() ? prefix : prefix + "."; }

std::string dtype_text(at::ScalarType t) {
  const char* name = safetensors_dtype_name(t);
  return name ? name : std::string(c10::toString(t));
}


CheckpointMeta parse_meta(const std::string& file, const std::map<std::string, std::string>& metadata) {
  auto fail = [&](const char* key, const std::string& problem) {
    return CheckpointError(file + ": metadata \"" + key + "\" " + problem);
  };
  auto json_of = [&](const char* key) {
    const auto it = metadata.find(key);
    if (it == metadata.end())
      throw fail(key, "is missing (not a StarGAN v2 checkpoint? convert official weights with "
                      "starganv2-convert-official)");
    // Every value here is a number, a flat object or a list of names.
    if (!json_nesting_within(it->second, 1)) throw fail(key, "nests lists or objects (not this format)");
    nlohmann::json j = nlohmann::json::parse(it->second, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) throw fail(key, "is not valid JSON: " + it->second.substr(0, 80));
    return j;
  };

  CheckpointMeta meta;
  const auto version = json_of(kKeyFormatVersion);
  if (!version.is_number_integer()) throw fail(kKeyFormatVersion, "is not an integer");
  if (version.get<int64_t>() < 1 || version.get<int64_t>() > kCheckpointFormatVersion)
    throw fail(kKeyFormatVersion, "is " + version.dump() + "; this build reads version 1 to " +
                                      std::to_string(kCheckpointFormatVersion));
  meta.format_version = version.get<int>();

  try {
    meta.config = ModelConfig::from_json(metadata.at(kKeyConfig));
  } catch (const std::out_of_range&) {
    throw fail(kKeyConfig, "is missing");
  } catch (const std::invalid_argument& e) {
    throw fail(kKeyConfig, std::string("is wrong: ") + e.what());
  }

  const auto domains = json_of(kKeyDomains);
  if (!domains.is_array()) throw fail(kKeyDomains, "is not a JSON array of names");
  std::set<std::string> unique;
  for (const auto& d : domains) {
    if (!d.is_string() || d.get<std::string>().empty())
      throw fail(kKeyDomains, "holds " + (d.is_structured() ? std::string("a list or object") : d.dump()) +
                                  ", not a non-empty name");
    if (!unique.insert(d.get<std::string>()).second) throw fail(kKeyDomains, "names \"" + d.get<std::string>() + "\" twice");
    meta.domains.push_back(d.get<std::string>());
  }
  if (static_cast<int64_t>(meta.domains.size()) != meta.config.num_domains)
    throw fail(kKeyDomains, "has " + std::to_string(meta.domains.size()) + " names but config.num_domains is " +
                                std::to_string(meta.config.num_domains));

  const auto producer = metadata.find(kKeyProducer);
  if (producer == metadata.end()) throw fail(kKeyProducer, "is missing");
  meta.producer = producer->second;

  const auto step = json_of(kKeyStep);
  if (!step.is_number_integer() || step.get<int64_t>() < 0) throw fail(kKeyStep, "is not an integer >= 0");
  meta.step = step.get<int64_t>();
  return meta;
}

}  // namespace

std::vector<std::pair<std::string, at::Tensor>> named_state(const torch::nn::Module& module, const std::string& prefix) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  collect_state(module, dotted(prefix), out);
  return out;
}

void write_checkpoint(const std::filesystem::path& path, const CheckpointMeta& meta,
                      const std::vector<std::pair<std::string, const torch::nn::Module*>>& nets) {
  const std::string file = path.string();
  try {
    meta.config.validate();
  } catch (const std::invalid_argument& e) {
    throw CheckpointError(file + ": cannot write: " + e.what());
  }
  if (static_cast<int64_t>(meta.domains.size()) != meta.config.num_domains)
    throw CheckpointError(file + ": cannot write: " + std::to_string(meta.domains.size()) +
                          " domain names for num_domains " + std::to_string(meta.config.num_domains));

  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& [prefix, net] : nets) {
    if (prefix.empty() || net == nullptr) throw CheckpointError(file + ": cannot write: network without prefix or module");
    auto state = named_state(*net, prefix);
    tensors.insert(tensors.end(), std::make_move_iterator(state.begin()), std::make_move_iterator(state.end()));
  }
  std::map<std::string, std::string> metadata;
  metadata[kKeyFormatVersion] = std::to_string(meta.format_version);
  metadata[kKeyConfig] = meta.config.to_json();
  metadata[kKeyDomains] = nlohmann::json(meta.domains).dump();
  metadata[kKeyProducer] = meta.producer;
  metadata[kKeyStep] = std::to_string(meta.step);
  write_safetensors(path, tensors, metadata);
}

Checkpoint Checkpoint::open(const std::filesystem::path& path) {
  Checkpoint c;
  c.path_ = path;
  // The metadata and every network the config determines are checked against the header before
  // any tensor is read, so a small file whose config implies huge networks is refused up front.
  c.file_ = read_safetensors(path, [&](const SafetensorsHeader& header) {
    c.meta_ = parse_meta(path.string(), header.metadata);
    for (const char* net : kLayoutNetworks) {
      const std::string p = dotted(net);
      const auto it = header.tensors.lower_bound(p);
      if (it != header.tensors.end() && it->first.compare(0, p.size(), p) == 0)
        check_layout(header, network_layout(c.meta_.config, net, net), path.string(), net);
    }
  });
  return c;
}

bool Checkpoint::has_network(const std::string& prefix) const {
  const std::string p = dotted(prefix);
  const auto it = file_.tensors.lower_bound(p);
  return it != file_.tensors.end() && it->first.compare(0, p.size(), p) == 0;
}

std::vector<std::string> Checkpoint::load_into(torch::nn::Module& module, const std::string& prefix) const {
  const std::string p = dotted(prefix);
  const auto expected = named_state(module, prefix);

  TensorProblems problems;
  std::vector<std::pair<at::Tensor, const at::Tensor*>> copies;
  std::set<std::string> expected_names;
  for (const auto& [name, dst] : expected) {
    expected_names.insert(name);
    const auto it = file_.tensors.find(name);
    if (it == file_.tensors.end()) {
      problems.missing.push_back(name);
      continue;
    }
    const at::Tensor& src = it->second;
    if (src.sizes() != dst.sizes()) {
      problems.wrong_shape.push_back(name + " (file " + shape_text(src.sizes()) + ", model " + shape_text(dst.sizes()) + ")");
      continue;
    }
    // Weights may be stored in half precision to halve the file; anything else in a float slot
    // (integers, F64) means the file was not written for this network.
    const bool ok = dst.is_floating_point() ? is_accepted_float(src.scalar_type())
                                            : src.scalar_type() == dst.scalar_type();
    if (!ok) {
      problems.wrong_dtype.push_back(name + " (" + dtype_text(src.scalar_type()) + ", expected " +
                            (dst.is_floating_point() ? std::string("F32, F16 or BF16") : dtype_text(dst.scalar_type())) +
                            ")");
      continue;
    }
    copies.emplace_back(dst, &src);
  }
  if (!problems.empty())
    throw CheckpointError(path_.string() + ": cannot load \"" + prefix + "\" (config " + meta_.config.to_json() +
                          "):" + problems.describe(kMaxListed));

  // Only after everything checked out, so a failed load leaves the module untouched.
  {
    torch::NoGradGuard no_grad;
    for (auto& [dst, src] : copies) dst.copy_(*src);
  }

  std::vector<std::string> unexpected;
  for (auto it = file_.tensors.lower_bound(p); it != file_.tensors.end() && it->first.compare(0, p.size(), p) == 0; ++it)
    if (!expected_names.count(it->first)) unexpected.push_back(it->first);
  return unexpected;
}

// ---- Inference networks from a model file ----

namespace {

// Copies the FAN weights of a separate file: "fan.*" names, or the FAN's own names without a
// prefix (a bare state dict such as one converted from the authors' wing.ckpt).
void load_fan_file(const std::filesystem::path& path, FANImpl& fan, std::vector<std::string>& warnings) {
  SafetensorsFile file = read_safetensors(path);
  std::string prefix;
  for (const auto& [name, t] : file.tensors) {
    if (name.rfind("fan.", 0) == 0) {
      prefix = "fan.";
      break;
    }
  }
  std::vector<std::string> problems;
  std::map<std::string, bool> used;
  at::NoGradGuard no_grad;
  for (auto& [name, target] : named_state(fan)) {
    auto it = file.tensors.find(prefix + name);
    if (it == file.tensors.end()) {
      problems.push_back("missing " + prefix + name);
      continue;
    }
    used[it->first] = true;
    const at::Tensor& src = it->second;
    if (!at::isFloatingType(src.scalar_type())) {
      problems.push_back(prefix + name + " is not a float tensor");
    } else if (src.sizes() != target.sizes()) {
      problems.push_back(prefix + name + " has shape " + shape_text(src.sizes()) + ", expected " +
                         shape_text(target.sizes()));
    } else {
      target.copy_(src.to(target.scalar_type()));
    }
  }
  if (!problems.empty()) {
    std::string msg = path.string() + ": not a usable FAN weight file: ";
    const size_t shown = std::min<size_t>(problems.size(), 8);
    for (size_t i = 0; i < shown; ++i) {
      if (i) msg += "; ";
      msg += problems[i];
    }
    if (problems.size() > shown) msg += "; and " + std::to_string(problems.size() - shown) + " more";
    throw CheckpointError(msg);
  }
  for (const auto& [name, t] : file.tensors) {
    if (name.rfind(prefix, 0) == 0 && !used.count(name) && name.find("num_batches_tracked") == std::string::npos) {
      warnings.push_back(path.string() + ": unexpected tensor " + name + " ignored");
    }
  }
}

}  // namespace

TranslatorNets load_translator_nets(const std::filesystem::path& checkpoint,
                                    const std::filesystem::path& fan_checkpoint) {
  Checkpoint ckpt = Checkpoint::open(checkpoint);
  const CheckpointMeta& meta = ckpt.meta();
  TranslatorNets nets;
  nets.config = meta.config;
  try {
    nets.config.validate();
  } catch (const std::invalid_argument& e) {
    throw CheckpointError(checkpoint.string() + ": " + e.what());
  }
  nets.domains = meta.domains;
  if (static_cast<int64_t>(nets.domains.size()) != nets.config.num_domains) {
    throw CheckpointError(checkpoint.string() + ": the metadata names " + std::to_string(nets.domains.size()) +
                          " domains but the config has num_domains = " + std::to_string(nets.config.num_domains));
  }
  for (const char* net : {"generator", "mapping_network", "style_encoder"}) {
    if (!ckpt.has_network(net)) {
      throw CheckpointError(checkpoint.string() + ": no " + net + ".* tensors: not a StarGAN v2 inference checkpoint");
    }
  }
  nets.generator = Generator(nets.config);
  nets.mapping_network = MappingNetwork(nets.config);
  nets.style_encoder = StyleEncoder(nets.config);
  auto note_unexpected = [&](const std::vector<std::string>& names, const std::filesystem::path& file) {
    for (const auto& n : names) nets.warnings.push_back(file.string() + ": unexpected tensor " + n + " ignored");
  };
  note_unexpected(ckpt.load_into(*nets.generator, "generator"), checkpoint);
  note_unexpected(ckpt.load_into(*nets.mapping_network, "mapping_network"), checkpoint);
  note_unexpected(ckpt.load_into(*nets.style_encoder, "style_encoder"), checkpoint);

  if (nets.config.w_hpf > 0) {
    if (!fan_checkpoint.empty()) {
      nets.fan = FAN();
      load_fan_file(fan_checkpoint, *nets.fan, nets.warnings);
    } else if (ckpt.has_network("fan")) {
      nets.fan = FAN();
      note_unexpected(ckpt.load_into(*nets.fan, "fan"), checkpoint);
    } else {
      throw CheckpointError(checkpoint.string() + ": the model has w_hpf = " + std::to_string(nets.config.w_hpf) +
                            " and needs the FAN face-mask network, but the file has no fan.* tensors; "
                            "give the FAN weights as a separate file (fan checkpoint)");
    }
  } else if (!fan_checkpoint.empty()) {
    nets.warnings.push_back("the FAN file " + fan_checkpoint.string() + " is not used: the model " + checkpoint.string() +
                            " has w_hpf = 0 and needs no FAN face masks");
  }
  return nets;
}

}  // namespace starganv2
