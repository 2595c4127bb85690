// A training image folder: one sub-folder per domain (domain names = sorted sub-folder names),
// images found recursively (jpg, jpeg, png, any case), as the official ImageFolder/listdir.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace starganv2 {

// Bad training data; what() names the folder or file and the problem.
class DataError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ImageFolder {
  std::filesystem::path root;
  std::vector<std::string> domains;                       // sorted sub-folder names
  std::vector<std::vector<std::filesystem::path>> files;  // per domain, sorted; readable ones only
  std::vector<std::filesystem::path> skipped;             // images that could not be decoded

  int64_t num_images() const;
  std::vector<int64_t> counts() const;  // images per domain
  // Identifies the image lists (domain names, relative paths), so that a resumed run can tell
  // that its folder changed: hex of a 64-bit hash.
  std::string fingerprint() const;
};

struct ScanOptions {
  bool verify = true;  // decode every image once (at 1/8 scale where the codec allows) and skip bad ones
  int workers = 4;     // threads for the verification
};

// Throws DataError before any training when: the folder is missing or not a directory, it has
// no sub-folders, or a domain has no readable image. Unreadable images are skipped: `warn` gets
// one line per file, and they are listed in `skipped`.
ImageFolder scan_image_folder(const std::filesystem::path& root, const ScanOptions& options,
                              const std::function<void(const std::string&)>& warn);

}  // namespace starganv2
