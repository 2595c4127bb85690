// The arithmetic precision a network runs in: one enum and one parser for the engine, the
// trainer and the tools.
#pragma once

#include <string>
#include <string_view>

namespace starganv2 {

enum class Precision {
  kAuto,      // the engine's choice: fp16 on CUDA, fp32 on the CPU
  kFloat32,
  kFloat16,   // CUDA only
  kBFloat16,  // CUDA only (the trainer: autocast, weights stay float32)
};
// "auto" | "fp32" | "fp16" | "bf16" (and float32, float16/half, bfloat16); throws
// std::invalid_argument listing the valid names.
Precision parse_precision(std::string_view name);
std::string to_string(Precision precision);

}  // namespace starganv2
