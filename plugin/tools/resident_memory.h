// This process's resident memory, for the tools and tests that watch it over long runs
// (starganv2-soak, the element's state-cycle test).
#pragma once

#include <fstream>
#include <string>

namespace starganv2::plugin {

// VmRSS of this process in MiB (Linux), or -1 where /proc does not tell it.
inline double resident_mib() {
  std::ifstream status("/proc/self/status");
  std::string key;
  while (status >> key) {
    if (key == "VmRSS:") {
      double kib = 0;
      status >> kib;
      return kib / 1024.0;
    }
    status.ignore(4096, '\n');
  }
  return -1;
}

}  // namespace starganv2::plugin
