// StarGAN v2 model files: safetensors with network-prefixed official parameter names
// (generator.*, mapping_network.*, style_encoder.*, discriminator.*, fan.*) and metadata.
#pragma once

#include <torch/nn/module.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "config.h"
#include "fan.h"
#include "generator.h"
#include "mapping_network.h"
#include "safetensors.h"
#include "style_encoder.h"

namespace starganv2 {

inline constexpr int kCheckpointFormatVersion = 1;

struct CheckpointMeta {
  int format_version = kCheckpointFormatVersion;
  ModelConfig config;
  std::vector<std::string> domains;  // domain names in index order, e.g. {"female", "male"}
  std::string producer;              // who wrote the file, e.g. "starganv2-train 0.1.0"
  int64_t step = 0;                  // training iteration the weights come from
};

// The state of a module as official names: parameters and buffers, without BatchNorm's
// num_batches_tracked (the official files do not carry it).
std::vector<std::pair<std::string, at::Tensor>> named_state(const torch::nn::Module& module,
                                                            const std::string& prefix = "");

// Writes the given networks under their prefixes (e.g. {"generator", G}) and the metadata:
// format_version, config, domains and step as JSON texts (1, {"img_size": 256, ...},
// ["female","male"], 100000) and producer as plain text. Atomic. Throws CheckpointError if
// the config is invalid or the domain count differs from config.num_domains.
void write_checkpoint(const std::filesystem::path& path, const CheckpointMeta& meta,
                      const std::vector<std::pair<std::string, const torch::nn::Module*>>& nets);

class Checkpoint {
 public:
  // Reads and validates the file and its metadata (all five keys present and well-formed,
  // format_version supported, one unique name per domain). Throws CheckpointError naming the
  // file and the key.
  static Checkpoint open(const std::filesystem::path& path);

  const CheckpointMeta& meta() const { return meta_; }
  const std::filesystem::path& path() const { return path_; }
  bool has_network(const std::string& prefix) const;  // any tensor named "<prefix>.*"

  // Copies "<prefix>.*" into module (F32/F16/BF16 accepted, converted to the module's dtype).
  // Throws CheckpointError naming the file and every missing tensor or wrong shape. Returns the
  // names under the prefix that the module does not have (callers report them as warnings).
  std::vector<std::string> load_into(torch::nn::Module& module, const std::string& prefix) const;

 private:
  std::filesystem::path path_;
  CheckpointMeta meta_;
  SafetensorsFile file_;
};

// The networks inference runs, built and loaded from a model file (fan is empty when w_hpf == 0).
struct TranslatorNets {
  ModelConfig config;
  std::vector<std::string> domains;  // config.num_domains names, in index order
  Generator generator{nullptr};
  MappingNetwork mapping_network{nullptr};
  StyleEncoder style_encoder{nullptr};
  FAN fan{nullptr};
  std::vector<std::string> warnings;  // e.g. unexpected tensors found while loading
};

// Loads generator, mapping_network and style_encoder from a checkpoint written by
// write_checkpoint, and the FAN when config.w_hpf > 0: from fan_checkpoint when given (tensors
// "fan.*", or the bare FAN names), else from the checkpoint's own "fan.*". Requires nothing of
// the caller; ensures float32 CPU networks in their constructors' mode, or throws
// CheckpointError naming the file and what is wrong or missing.
TranslatorNets load_translator_nets(const std::filesystem::path& checkpoint,
                                    const std::filesystem::path& fan_checkpoint = {});

}  // namespace starganv2
