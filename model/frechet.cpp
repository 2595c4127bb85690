#include "frechet.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace starganv2 {

GaussianStats gaussian_stats(const at::Tensor& features) {
  if (features.dim() != 2 || features.size(0) < 2)
    throw std::invalid_argument("gaussian_stats: expected (N,D) features with N >= 2, got " +
                                std::to_string(features.dim()) + " dimensions" +
                                (features.dim() >= 1 ? ", N = " + std::to_string(features.size(0)) : std::string()));
  const at::Tensor f = features.to(at::kCPU, at::kDouble);
  GaussianStats s;
  s.count = f.size(0);
  s.mean = f.mean(0);
  const at::Tensor centred = f - s.mean;
  s.cov = at::matmul(centred.t(), centred) / static_cast<double>(s.count - 1);
  return s;
}

double frechet_distance(const GaussianStats& a, const GaussianStats& b) {
  if (!a.mean.defined() || !b.mean.defined() || a.mean.sizes() != b.mean.sizes() || a.cov.sizes() != b.cov.sizes())
    throw std::invalid_argument("frechet_distance: statistics of different dimensions");
  const at::Tensor mu1 = a.mean.to(at::kDouble), mu2 = b.mean.to(at::kDouble);
  const at::Tensor c1 = a.cov.to(at::kDouble), c2 = b.cov.to(at::kDouble);
  // LAPACK's eigenvalue routines fail (and MKL prints to stderr) on NaN or infinity: say so
  // first. Non-finite features come from broken weights (e.g. a negative BatchNorm variance).
  for (const at::Tensor* t : {&mu1, &mu2, &c1, &c2})
    if (!at::isfinite(*t).all().item<bool>())
      throw std::invalid_argument("frechet_distance: the features are not finite (NaN or infinity): broken weights?");
  const at::Tensor eig = at::real(at::linalg_eigvals(at::matmul(c1, c2)));
  const double tr_sqrt = at::sqrt(at::clamp_min(eig, 0.0)).sum().item<double>();
  const double diff = (mu1 - mu2).pow(2).sum().item<double>();
  return diff + c1.trace().item<double>() + c2.trace().item<double>() - 2.0 * tr_sqrt;
}

}  // namespace starganv2
