// A tiny synthetic two-domain image set for trainer tests: "cool" and "warm" images of one
// filled circle or square (content: shape, size, position) on a dark noisy background; the
// domain decides the hue (blue-dominant or red-dominant), brightness and green vary per image
// (style).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/common/cli_test_util.h"  // make_temp_dir

namespace starganv2::test {

inline const std::vector<std::string> kSyntheticDomains = {"cool", "warm"};  // sorted: cool = 0

// Writes root/cool/NNN.png and root/warm/NNN.png (per_domain each, size x size px).
void write_synthetic_set(const std::filesystem::path& root, int per_domain, int size, uint64_t seed);

// The domain statistic: mean(R) - mean(B) of (N,3,H,W) images in [-1,1], per image (N).
// Positive for warm images, negative for cool ones.
at::Tensor warmth(const at::Tensor& images);

}  // namespace starganv2::test
