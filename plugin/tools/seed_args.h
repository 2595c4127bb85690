// The "--seed 1 2 3 photo.jpg" convention of starganv2-translate and starganv2-eval: CLI11 reads
// every word after --seed into the seed list, so the list reads on into the inputs; the first word
// that is not a seed starts them.
#pragma once

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace starganv2::plugin {

// Splits `seed_args` (as typed after --seed) into `seeds` (replaced) and the inputs that follow
// them (appended to `inputs`). Returns false, with `bad` set, when the first word is not a seed
// (a whole number from 0 to 2^64-1).
inline bool split_seed_args(const std::vector<std::string>& seed_args, std::vector<uint64_t>& seeds,
                            std::vector<std::string>& inputs, std::string& bad) {
  seeds.clear();
  for (size_t i = 0; i < seed_args.size(); ++i) {
    const std::string& a = seed_args[i];
    uint64_t seed = 0;
    const auto [end, ec] = std::from_chars(a.data(), a.data() + a.size(), seed);
    if (ec == std::errc() && end == a.data() + a.size() && !a.empty()) {
      seeds.push_back(seed);
      continue;
    }
    if (i == 0) {
      bad = a;
      return false;
    }
    inputs.insert(inputs.end(), seed_args.begin() + static_cast<std::ptrdiff_t>(i), seed_args.end());
    break;
  }
  return true;
}

}  // namespace starganv2::plugin
