// Counter-based randomness for training. Every random draw after initialisation (latent codes,
// the sampler's picks, augmentation parameters) is seeded from (run seed, stream, index), so the
// state of all randomness is just the run seed and the position, which a resume file stores;
// results also do not depend on how many worker threads decode images.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <utility>

namespace starganv2 {

enum class RandomStream : uint64_t {
  kLatent = 1,     // z_trg, z_trg2 of an iteration
  kSource = 2,     // source stream: sampler picks and augmentation
  kReference = 3,  // reference stream: sampler picks and augmentation
  kPairs = 4,      // the fixed second reference of every image
  kValidation = 5, // images shown in the sample grids
  kSampleZ = 6,    // latent codes of the sample grids
  kDiffAugment = 7, // augmentation of D's inputs (trainer/diff_augment.h) in an iteration
  kEvalStyle = 8,   // latent styles of --eval-every (trainer/evaluation.h)
};

// SplitMix64 finaliser: a bijective 64-bit mix with good avalanche.
constexpr uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// An independent seed for draw `index` of `stream` in a run seeded with `seed`.
constexpr uint64_t derive_seed(uint64_t seed, RandomStream stream, uint64_t index) {
  return splitmix64(splitmix64(splitmix64(seed) ^ static_cast<uint64_t>(stream)) + index);
}

// z_trg and z_trg2 of iteration `step` (official InputFetcher: two N(0, I) draws of shape
// (n, dim)), float32 on the CPU.
std::pair<at::Tensor, at::Tensor> sample_latents(uint64_t seed, int64_t step, int64_t n, int64_t dim);

}  // namespace starganv2
