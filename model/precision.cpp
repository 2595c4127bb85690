#include "precision.h"

#include <stdexcept>

namespace starganv2 {

Precision parse_precision(std::string_view name) {
  if (name == "auto") return Precision::kAuto;
  if (name == "fp32" || name == "float32") return Precision::kFloat32;
  if (name == "fp16" || name == "float16" || name == "half") return Precision::kFloat16;
  if (name == "bf16" || name == "bfloat16") return Precision::kBFloat16;
  throw std::invalid_argument("unknown precision \"" + std::string(name) + "\": use auto, fp32, fp16 or bf16");
}

std::string to_string(Precision precision) {
  switch (precision) {
    case Precision::kAuto: return "auto";
    case Precision::kFloat32: return "fp32";
    case Precision::kFloat16: return "fp16";
    case Precision::kBFloat16: return "bf16";
  }
  return "?";
}

}  // namespace starganv2
