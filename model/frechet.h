// The Fréchet distance between two Gaussians fitted to feature sets (FID when the features are
// Inception pool features), in float64.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace starganv2 {

// Mean (D) and covariance (D,D) of N feature vectors, float64 CPU; the covariance with N-1 in the
// denominator, as numpy.cov(rowvar=False) that the official fid.py uses.
struct GaussianStats {
  at::Tensor mean;
  at::Tensor cov;
  int64_t count = 0;
};

// features: (N,D) of any float dtype and device, N >= 2. Two passes (mean first, then the centred
// products) in float64. Throws std::invalid_argument for another shape or N < 2.
GaussianStats gaussian_stats(const at::Tensor& features);

// |mu1 - mu2|^2 + tr(C1) + tr(C2) - 2 tr(sqrt(C1 C2)). The official code takes scipy's sqrtm of
// C1 C2; here tr(sqrt(C1 C2)) is the sum of the square roots of the eigenvalues of C1 C2 (as
// torch-fidelity computes it): they are real and >= 0 in exact arithmetic (C1 C2 is similar to
// C1^1/2 C2 C1^1/2, which is symmetric positive semi-definite), so only their real parts count
// and rounding below zero is clamped to 0. Requires stats of the same dimension; throws
// std::invalid_argument otherwise or when they are not finite.
double frechet_distance(const GaussianStats& a, const GaussianStats& b);

}  // namespace starganv2
