// Where the files that ship with starganv2 are, so that the tools find them from any working
// directory: first in the source tree this build came from (an uninstalled build, as ./setup.sh
// leaves it), then where `meson install` puts them. The paths come from meson
// (starganv2_locations.h in the build root). Header-only and free of LibTorch: the examples
// that use it link GStreamer alone.
#pragma once

#include <filesystem>
#include <string>
#include <system_error>

#include "starganv2_locations.h"

namespace starganv2 {

// The demo model in examples/models (64x64, domains female and male).
inline constexpr const char* kDemoModelName = "demo-faces-64.safetensors";

// The shipped model file `name` (default: the demo model): <source>/examples/models/<name> when
// it is there, else <datadir>/starganv2/models/<name>; empty when neither exists.
inline std::filesystem::path shipped_model(const std::string& name = kDemoModelName) {
  std::error_code ec;
  for (const char* dir : {STARGANV2_SOURCE_MODELS_DIR, STARGANV2_INSTALLED_MODELS_DIR}) {
    const std::filesystem::path p = std::filesystem::path(dir) / name;
    if (std::filesystem::is_regular_file(p, ec)) return p;
  }
  return {};
}

// The official-weights converter as a command the user can type: this build's
// build/model/starganv2-convert-official when it is there, else the installed one by its full
// path when that exists, else the bare name (found on PATH after `meson install`).
inline std::string converter_command() {
  std::error_code ec;
  for (const char* p : {STARGANV2_BUILD_CONVERTER, STARGANV2_INSTALLED_CONVERTER})
    if (std::filesystem::is_regular_file(p, ec)) return p;
  return "starganv2-convert-official";
}

}  // namespace starganv2
