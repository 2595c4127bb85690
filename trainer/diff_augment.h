// Augmentation of everything the discriminator sees, for training on small datasets, where D
// otherwise memorises the few real images within a few thousand iterations:
//  - DiffAugment (Zhao et al., NeurIPS 2020): colour, translation and cutout, written with
//    differentiable tensor operations so that the G step's gradient reaches G through them;
//  - the adaptive probability of ADA (Karras et al., NeurIPS 2020): each policy is applied to a
//    sample with probability p, and p follows the sign of D's output on (augmented) reals.
// The official StarGAN v2 code has neither; with no policy chosen the solver never calls this,
// so the official iteration is unchanged. LibTorch only.
#pragma once

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace starganv2 {

// Policies as bit flags, applied in this order.
enum DiffAugmentPolicy : unsigned {
  kAugmentColor = 1u << 0,        // brightness ±0.5, saturation ×[0, 2), contrast ×[0.5, 1.5)
  kAugmentTranslation = 1u << 1,  // integer shift of up to 1/8 of the size, zero (grey) filled
  kAugmentCutout = 1u << 2,       // a zeroed (grey) square of half the size at a random centre
};
inline constexpr unsigned kAugmentAll = kAugmentColor | kAugmentTranslation | kAugmentCutout;

// "color,translation,cutout" (any subset, any order) -> flags; "" or "none" -> 0. Throws
// std::invalid_argument naming an unknown or repeated word.
unsigned parse_diff_augment(std::string_view text);
// Flags -> the canonical text ("color,translation,cutout" order; "" for none).
std::string diff_augment_name(unsigned policies);

// Applies `policies` to x (N, C, H, W), images in [-1, 1]: each policy, independently per sample,
// with probability p. Every draw comes from `gen` (a CPU generator) in a fixed order, the same on
// any device, so a seed fixes the augmentation. Draws are made for `total` samples of which x is
// the slice starting at `offset` (data-parallel replicas take their share of one global batch; a
// single process passes total = N, offset = 0). Differentiable with respect to x; the output keeps
// x's shape, dtype, device and range [-1, 1]; p = 0 returns x's values unchanged (the draws are
// still made, so later draws do not depend on p).
at::Tensor diff_augment(const at::Tensor& x, unsigned policies, double p, at::Generator& gen, int64_t total,
                        int64_t offset);
inline at::Tensor diff_augment(const at::Tensor& x, unsigned policies, double p, at::Generator& gen) {
  return diff_augment(x, policies, p, gen, x.size(0), 0);
}

// ADA's controller: every `interval` iterations, r_t = mean sign of D's logits on reals over that
// interval, and p moves by ±(global batch × interval) / (kimg × 1000) towards r_t == target,
// clamped to [0, 1]. So p can go from 0 to 1 within `kimg` thousand real images.
struct AdaState {
  double p = 0;           // current probability
  double sign_sum = 0;    // sum of sign(D(real)) since the last adjustment
  double sign_count = 0;  // logits counted since the last adjustment
  double last_rt = 0;     // r_t of the last adjustment (for the log)
};

// One adjustment, made every `interval` iterations: r_t from the signs counted since the last one,
// p moved and clamped, the counts cleared. Nothing changes when no sign was counted.
void ada_adjust(AdaState& state, double target, int64_t batch_size, int64_t interval, double kimg);

}  // namespace starganv2
