// The one parser of device strings, for the engine, the element, the trainer and the tools.
#pragma once

#include <c10/core/Device.h>

#include <string>

namespace starganv2 {

// "auto" or "" (cuda:0 when CUDA is usable, else the CPU), "cpu", "cuda", "cuda:N". Throws
// std::invalid_argument for a string that is no such device, std::runtime_error for a CUDA device
// this build or machine does not have (naming what there is).
c10::Device resolve_device(const std::string& name);

}  // namespace starganv2
