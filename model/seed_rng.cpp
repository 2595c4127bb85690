#include "seed_rng.h"

#include <ATen/ops/empty.h>

#include <cmath>
#include <numbers>
#include <stdexcept>
#include <string>

namespace starganv2 {

uint64_t SplitMix64::next() {
  state_ += 0x9E3779B97F4A7C15ULL;
  uint64_t z = state_;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

double SplitMix64::next_open01() {
  // 53 random bits centred in their bucket: never exactly 0 (log would be -inf) nor 1.
  return (static_cast<double>(next() >> 11) + 0.5) * 0x1.0p-53;
}

at::Tensor seeded_normal(uint64_t seed, int64_t rows, int64_t cols) {
  if (rows < 0 || cols < 0) {
    throw std::invalid_argument("seeded_normal: negative size " + std::to_string(rows) + "x" +
                                std::to_string(cols));
  }
  at::Tensor out = at::empty({rows, cols}, at::kFloat);
  float* p = out.data_ptr<float>();
  const int64_t n = rows * cols;
  SplitMix64 rng(seed);
  for (int64_t i = 0; i < n; i += 2) {
    const double u1 = rng.next_open01();
    const double u2 = rng.next_open01();
    const double r = std::sqrt(-2.0 * std::log(u1));
    const double theta = 2.0 * std::numbers::pi * u2;
    p[i] = static_cast<float>(r * std::cos(theta));
    if (i + 1 < n) p[i + 1] = static_cast<float>(r * std::sin(theta));
  }
  return out;
}

}  // namespace starganv2
