// Reader and writer for the safetensors format: 8-byte little-endian header length, a JSON
// header {name: {dtype, shape, data_offsets}, "__metadata__": {str: str}}, then raw data.
// Chosen over torch.save because it cannot execute code on load (no pickle).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
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

// One tensor as the header describes it (nothing read yet).
struct SafetensorsEntry {
  at::ScalarType dtype;
  std::vector<int64_t> shape;
  uint64_t nbytes = 0;  // bytes in the file
};

// The validated header: what a file holds, before any tensor is allocated.
struct SafetensorsHeader {
  std::map<std::string, std::string> metadata;       // "__metadata__"
  std::map<std::string, SafetensorsEntry> tensors;
};

// Called with the validated header before any tensor storage exists; throws (CheckpointError) to
// refuse the file, so a caller can compare what the file holds with what it will build first.
using SafetensorsCheck = std::function<void(const SafetensorsHeader&)>;

// Limits of the JSON header. A real header is a few hundred bytes per tensor and nested three
// deep ({name: {"shape": [..]}}); the caps keep a hostile file from making the parser allocate
// gigabytes or recurse without end before it can fail.
inline constexpr uint64_t kMaxHeaderBytes = 100ull * 1024 * 1024;
inline constexpr int kMaxHeaderNesting = 8;

// Reads and validates the whole file: header length (<= kMaxHeaderBytes) and JSON (nesting <=
// kMaxHeaderNesting), every dtype known, shapes and data offsets in bounds, non-overlapping and
// matching the byte sizes; then runs `check` on the header; then reads the tensors, so nothing
// larger than the header is allocated before `check` accepted the file. Throws CheckpointError.
SafetensorsFile read_safetensors(const std::filesystem::path& path, const SafetensorsCheck& check = {});

// The header alone (validated as above; no tensor data read). Throws CheckpointError.
SafetensorsHeader read_safetensors_header(const std::filesystem::path& path);

// Whether `text` nests arrays and objects at most `max_depth` deep (strings skipped). Run before
// parsing JSON from a file, so that depth is refused before the parser builds anything.
bool json_nesting_within(std::string_view text, int max_depth);

// Writes tensors (any device; stored as their own dtype, contiguous) and metadata to a
// temporary file beside `path`, then renames it over `path`, so a crash mid-write leaves the
// previous file intact. Data is laid out by decreasing item size (otherwise in the given
// order) so every tensor is naturally aligned and the data area has no holes. Throws
// CheckpointError (duplicate names, unsupported dtype, missing directory, I/O errors).
void write_safetensors(const std::filesystem::path& path,
                       const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata);

// "[1,2,3]": the one text of a shape in the messages of model/, trainer/ and the tools.
std::string shape_text(at::IntArrayRef shape);

// The safetensors name of a dtype ("F32", "BF16", ...), or nullptr if the format cannot hold it.
const char* safetensors_dtype_name(at::ScalarType type);

}  // namespace starganv2
