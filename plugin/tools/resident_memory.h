// This process's resident memory, for the tools and tests that watch it over long runs
// (starganv2-soak, the element's state-cycle test).
#pragma once

#include <fstream>
#include <string>

namespace starganv2::plugin {

// A memory figure of this process's /proc/self/status in MiB (Linux), e.g. "VmRSS:" (resident
// now) or "VmHWM:" (the peak), or -1 where /proc does not tell it.
inline double status_mib(const std::string& field) {
  std::ifstream status("/proc/self/status");
  std::string key;
  while (status >> key) {
    if (key == field) {
      double kib = 0;
      status >> kib;
      return kib / 1024.0;
    }
    status.ignore(4096, '\n');
  }
  return -1;
}

// VmRSS of this process in MiB (Linux), or -1 where /proc does not tell it.
inline double resident_mib() { return status_mib("VmRSS:"); }

}  // namespace starganv2::plugin
