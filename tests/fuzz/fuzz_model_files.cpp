// libFuzzer target: the bytes of one file, read as every kind of file the product opens
// (safetensors, model file: config + layout + tensors + networks, style file). Each reader must
// accept the file or refuse it with CheckpointError; any other exception, a crash, a sanitizer
// report, a leak, an allocation beyond the run's -malloc_limit_mb or a hang is a finding.
// Built with clang -fsanitize=fuzzer,address,undefined by tests/fuzz/meson.build; run by
// tests/fuzz/run_fuzz.sh (see the README, "Fuzzing").
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

#include "model/checkpoint.h"
#include "model/safetensors.h"
#include "model/style.h"

namespace {

// The readers take paths (they read with pread, never the whole file), so each input goes to a
// file of this process; a RAM-backed directory keeps that cheap.
const std::string& input_path() {
  static const std::string path = [] {
    const std::filesystem::path dir = std::filesystem::exists("/dev/shm") ? std::filesystem::path("/dev/shm")
                                                                            : std::filesystem::temp_directory_path();
    return (dir / ("starganv2-fuzz-" + std::to_string(::getpid()) + ".safetensors")).string();
  }();
  return path;
}

template <class F>
void expect_accepted_or_refused(F&& read) {
  try {
    read();
  } catch (const starganv2::CheckpointError&) {
    // The one kind of refusal a reader may give.
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = input_path();
  {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) return 0;
    if (size > 0) std::fwrite(data, 1, size, f);
    std::fclose(f);
  }
  expect_accepted_or_refused([&] { starganv2::read_safetensors(path); });
  expect_accepted_or_refused([&] { starganv2::Checkpoint::open(path); });
  expect_accepted_or_refused([&] { starganv2::load_translator_nets(path); });
  // style_dim of the seed corpus's model (2) and the official one (64).
  expect_accepted_or_refused([&] { starganv2::load_style(path, 2); });
  expect_accepted_or_refused([&] { starganv2::load_style(path, 64); });
  return 0;
}
