#include "random.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/ops/randn.h>

namespace starganv2 {

std::pair<at::Tensor, at::Tensor> sample_latents(uint64_t seed, int64_t step, int64_t n, int64_t dim) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(
      derive_seed(seed, RandomStream::kLatent, static_cast<uint64_t>(step)));
  at::Tensor z = at::randn({n, dim}, gen, at::TensorOptions().dtype(at::kFloat));
  at::Tensor z2 = at::randn({n, dim}, gen, at::TensorOptions().dtype(at::kFloat));
  return {z, z2};
}

}  // namespace starganv2
