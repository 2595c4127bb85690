#include "device.h"

#include <torch/cuda.h>

#include <charconv>
#include <stdexcept>

namespace starganv2 {

c10::Device resolve_device(const std::string& name) {
  if (name == "auto" || name.empty()) {
    return torch::cuda::is_available() ? c10::Device(c10::kCUDA, 0) : c10::Device(c10::kCPU);
  }
  if (name == "cpu") return c10::Device(c10::kCPU);
  if (name.rfind("cuda", 0) == 0) {
    int index = 0;
    if (name.size() > 4) {
      const char* first = name.data() + 5;
      const char* last = name.data() + name.size();
      auto [ptr, ec] = std::from_chars(first, last, index);
      if (name[4] != ':' || first == last || ec != std::errc() || ptr != last || index < 0) {
        throw std::invalid_argument("invalid device \"" + name + "\": use auto, cpu, cuda or cuda:N");
      }
    }
#ifdef STARGANV2_WITH_CUDA
    const bool built_with_cuda = true;
#else
    const bool built_with_cuda = false;
#endif
    if (!built_with_cuda || !torch::cuda::is_available()) {
      throw std::runtime_error("CUDA requested but not available (device \"" + name + "\"): " +
                               (built_with_cuda ? "no CUDA device or driver was found"
                                                : "this build of starganv2 has no CUDA support"));
    }
    const int count = static_cast<int>(torch::cuda::device_count());
    if (index >= count) {
      throw std::runtime_error("no GPU " + std::to_string(index) + " (device \"" + name + "\"): this machine has " +
                               std::to_string(count) + " CUDA device" + (count == 1 ? "" : "s") +
                               ", cuda:0 to cuda:" + std::to_string(count - 1));
    }
    return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  throw std::invalid_argument("invalid device \"" + name + "\": use auto, cpu, cuda or cuda:N");
}

}  // namespace starganv2
