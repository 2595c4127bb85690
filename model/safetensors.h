// Reader and writer for the safetensors format: 8-byte little-endian header length, a JSON
// header {name: {dtype, shape, data_offsets}, "__metadata__": {str: str}}, then raw data.
// Chosen over torch.save because it cannot execute code on load (no pickle).
#pragma once

#include <ATen/core/Tensor.h>

#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace starganv2 {

// Any problem with a model file. what() names the file and the problem.
class CheckpointError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct SafetensorsFile {
  std::map<std::string, std::string> metadata;  // "__metadata__"
  std::map<std::string, at::Tensor> tensors;    // CPU, contiguous, dtype as stored
};

// Reads and validates the whole file: header length and JSON, every dtype known, shapes and
// data offsets in bounds, non-overlapping and matching the byte sizes. Throws CheckpointError.
SafetensorsFile read_safetensors(const std::filesystem::path& path);

// Writes tensors (any device; stored as their own dtype, contiguous) and metadata to a
// temporary file beside `path`, then renames it over `path`, so a crash mid-write leaves the
// previous file intact. Data is laid out by decreasing item size (otherwise in the given
// order) so every tensor is naturally aligned and the data area has no holes. Throws
// CheckpointError (duplicate names, unsupported dtype, missing directory, I/O errors).
void write_safetensors(const std::filesystem::path& path,
                       const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata);

// The safetensors name of a dtype ("F32", "BF16", ...), or nullptr if the format cannot hold it.
const char* safetensors_dtype_name(at::ScalarType type);

}  // namespace starganv2
