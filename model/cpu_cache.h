// A cache for the engine's large CPU tensor allocations.
//
// Why: a 256 px generator forward allocates and frees activations of 16-130 MB each, and glibc
// serves blocks that large with fresh mmap()s, so every call page-faults all of them in again.
// Measured with starganv2-bench's model on this 2-core machine (batch 4): 808,000 minor page
// faults per call and a quarter of the CPU time. Reusing freed blocks of the same size removes
// almost all of them.
//
// How: a wrapper around LibTorch's CPU allocator, installed once per process. It caches only
// blocks allocated on a thread inside a CpuCacheScope (the engine's calls), so other LibTorch
// users in the process keep the allocator they had; everything else goes straight through.
#pragma once

#include <cstddef>

namespace starganv2 {

// While alive, CPU tensor allocations of at least kMinBytes made by this thread reuse freed
// blocks of (nearly) the same size. Nests.
class CpuCacheScope {
 public:
  static constexpr size_t kMinBytes = size_t{1} << 20;
  CpuCacheScope();
  ~CpuCacheScope();
  CpuCacheScope(const CpuCacheScope&) = delete;
  CpuCacheScope& operator=(const CpuCacheScope&) = delete;

 private:
  bool previous_;
};

// Users of the cache (the CPU Translators) register themselves; when the last one goes, the
// cached blocks are returned to the system. The first acquire installs the allocator.
void cpu_cache_acquire();
void cpu_cache_release();
// Bytes held in the cache right now (freed blocks waiting for reuse).
size_t cpu_cache_bytes();

}  // namespace starganv2
