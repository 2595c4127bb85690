// Reproducible latent codes: a 64-bit seed -> z ~ N(0, I), computed on the CPU in double
// precision so that a seed gives bit-identical z on every machine and on CPU or GPU alike
// (torch's own generators differ between devices and versions).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace starganv2 {

// SplitMix64 (Steele, Lea, Flood 2014; Vigna's reference constants): state += 0x9E3779B97F4A7C15,
// then the output is state mixed by xor-shift 30/27/31 and multiplications by 0xBF58476D1CE4E5B9
// and 0x94D049BB133111EB. The first state is the seed itself.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next();
  // Uniform in the open interval (0, 1): ((next() >> 11) + 0.5) / 2^53.
  double next_open01();

 private:
  uint64_t state_;
};

// rows x cols standard normal float32 values on the CPU, row-major, from one SplitMix64 stream
// seeded with `seed`. Pairs of uniforms (u1, u2) go through Box-Muller in double,
// r = sqrt(-2 ln u1): first r*cos(2 pi u2), then r*sin(2 pi u2); each value is rounded to float.
// Requires rows >= 0, cols >= 0.
at::Tensor seeded_normal(uint64_t seed, int64_t rows, int64_t cols);

}  // namespace starganv2
