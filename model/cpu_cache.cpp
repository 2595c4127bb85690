#include "cpu_cache.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <unordered_map>

namespace starganv2 {

namespace {

thread_local bool t_in_scope = false;

// Freed blocks stay cached up to this total; beyond it they go back to the system, so a burst
// of unusual sizes cannot pin memory without bound.
constexpr size_t kMaxCachedBytes = size_t{4} << 30;

class CachingCpuAllocator final : public c10::Allocator {
 public:
  explicit CachingCpuAllocator(c10::Allocator* fallback) : fallback_(fallback) {}

  c10::DataPtr allocate(size_t n) override {
    if (!t_in_scope || n < CpuCacheScope::kMinBytes) return fallback_->allocate(n);
    void* p = nullptr;
    size_t size = n;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      // The smallest cached block that fits without wasting more than a quarter of it.
      auto it = free_.lower_bound(n);
      if (it != free_.end() && it->first <= n + n / 4) {
        p = it->second;
        size = it->first;
        cached_bytes_ -= size;
        free_.erase(it);
      }
    }
    if (p == nullptr) p = c10::alloc_cpu(size);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      live_[p] = size;
    }
    return {p, p, &CachingCpuAllocator::deleter, c10::Device(c10::DeviceType::CPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &CachingCpuAllocator::deleter; }

  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }

  void give_back(void* p) {
    bool ours = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = live_.find(p);
      if (it != live_.end()) {
        ours = true;
        const size_t size = it->second;
        live_.erase(it);
        if (users_ > 0 && cached_bytes_ + size <= kMaxCachedBytes) {
          free_.emplace(size, p);
          cached_bytes_ += size;
          return;
        }
      }
    }
    if (ours) {
      c10::free_cpu(p);
    } else if (auto d = fallback_->raw_deleter()) {
      d(p);  // not ours: a raw_allocate() that the fallback served
    } else {
      c10::free_cpu(p);
    }
  }

  void acquire() {
    std::lock_guard<std::mutex> lock(mutex_);
    ++users_;
  }

  void release() {
    std::multimap<size_t, void*> drop;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (--users_ > 0) return;
      drop.swap(free_);
      cached_bytes_ = 0;
    }
    for (auto& [size, p] : drop) c10::free_cpu(p);
  }

  size_t cached_bytes() {
    std::lock_guard<std::mutex> lock(mutex_);
    return cached_bytes_;
  }

  static CachingCpuAllocator& instance() {
    // Immortal: tensors anywhere in the process may still hold our deleter at exit.
    static CachingCpuAllocator* self = [] {
      auto* a = new CachingCpuAllocator(c10::GetCPUAllocator());
      c10::SetCPUAllocator(a, /*priority=*/UINT8_MAX);
      return a;
    }();
    return *self;
  }

 private:
  static void deleter(void* p) { instance().give_back(p); }

  c10::Allocator* fallback_;
  std::mutex mutex_;
  std::multimap<size_t, void*> free_;
  std::unordered_map<void*, size_t> live_;
  size_t cached_bytes_ = 0;
  int users_ = 0;
};

}  // namespace

CpuCacheScope::CpuCacheScope() : previous_(t_in_scope) { t_in_scope = true; }
CpuCacheScope::~CpuCacheScope() { t_in_scope = previous_; }

void cpu_cache_acquire() { CachingCpuAllocator::instance().acquire(); }
void cpu_cache_release() { CachingCpuAllocator::instance().release(); }
size_t cpu_cache_bytes() { return CachingCpuAllocator::instance().cached_bytes(); }

}  // namespace starganv2
