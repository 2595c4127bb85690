// The tensors a network holds for a config (names, shapes), computed without building it, so that
// a model or resume file can be compared with what its config implies before anything of that
// size is allocated. Mirrors the constructors of generator.cpp, mapping_network.cpp,
// style_encoder.cpp, discriminator.cpp and layers.cpp; tests/model/test_layout.cpp proves the
// two agree for every network over a spread of configs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config.h"
#include "safetensors.h"

namespace starganv2 {

struct TensorSpec {
  std::string name;            // prefixed official name, e.g. "generator.from_rgb.weight"
  std::vector<int64_t> shape;
};

// Every network the config determines, under its prefix in a model file.
inline constexpr const char* kLayoutNetworks[] = {"generator", "mapping_network", "style_encoder", "discriminator"};

// The state (parameters and buffers, named_state order) of `network` (one of kLayoutNetworks) for
// a valid config, named "<prefix>.<official name>". Throws std::invalid_argument for an unknown
// network or an invalid config.
std::vector<TensorSpec> network_layout(const ModelConfig& config, const std::string& network,
                                       const std::string& prefix);

// Elements of a layout; saturates at INT64_MAX.
int64_t layout_numel(const std::vector<TensorSpec>& layout);

// Upper bound on the elements of one network (2^31, 8 GiB as float32: the official 256 px
// generator has 3.4e7). A config beyond it is refused before any comparison or allocation.
inline constexpr int64_t kMaxNetworkNumel = int64_t{1} << 31;

// Compares `layout` with the file's header: every tensor present, with its shape and a float
// dtype (F32, F16 or BF16). Throws CheckpointError "<source>: does not hold the <what> its
// config implies: ..." naming the counts and the first differences. Tensors the layout lacks
// are not checked here (callers report them).
void check_layout(const SafetensorsHeader& header, const std::vector<TensorSpec>& layout,
                  const std::string& source, const std::string& what);

// The float dtypes a model file may store a tensor in (F32, F16, BF16; loading converts them).
bool is_accepted_float(at::ScalarType t);

// "a, b, c, ... (N more)": the first `max_listed` items, for error messages.
std::string join_capped(const std::vector<std::string>& items, size_t max_listed);

// What a check of a network's tensors against what they must be found wrong, by kind.
struct TensorProblems {
  std::vector<std::string> missing, wrong_shape, wrong_dtype;

  bool empty() const { return missing.empty() && wrong_shape.empty() && wrong_dtype.empty(); }
  // " N missing: a, b; M with wrong shape: ...; K with wrong dtype: ..." for the kinds found, each
  // list capped at `max_listed` (join_capped); "" when there are none.
  std::string describe(size_t max_listed) const;
};

}  // namespace starganv2
