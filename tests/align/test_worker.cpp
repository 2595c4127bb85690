// SerialWorker (align/worker.h): jobs in order, and how a background worker competes for a core.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <future>
#include <stdexcept>
#include <string>
#include <vector>

#include <sched.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "align/worker.h"

namespace starganv2::align::test {
namespace {

struct ThreadSettings {
  int policy = -1;
  int nice = 0;
  long long slice_ns = -1;  // -1: the kernel does not show one
};

// Read on the worker thread itself.
ThreadSettings this_threads_settings() {
  ThreadSettings s;
  s.policy = sched_getscheduler(0);
  s.nice = getpriority(PRIO_PROCESS, static_cast<id_t>(gettid()));
  std::ifstream in("/proc/thread-self/sched");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("se.slice", 0) == 0) s.slice_ns = std::stoll(line.substr(line.find(':') + 1));
  return s;
}

// Per-thread slices (sched_attr's sched_runtime for the fair classes) came with Linux 6.12.
bool kernel_has_custom_slices() {
  utsname u{};
  if (uname(&u) != 0) return false;
  int major = 0, minor = 0;
  if (std::sscanf(u.release, "%d.%d", &major, &minor) != 2) return false;
  return major > 6 || (major == 6 && minor >= 12);
}

TEST(SerialWorker, RunsJobsInOrderAndPassesResultsAndErrors) {
  SerialWorker worker;
  std::vector<int> order;
  std::vector<std::future<int>> results;
  for (int i = 0; i < 20; ++i) results.push_back(worker.submit([i, &order] {
    order.push_back(i);
    return i * i;
  }));
  auto failing = worker.submit([]() -> int { throw std::runtime_error("job failed"); });
  for (int i = 0; i < 20; ++i) EXPECT_EQ(results[i].get(), i * i);
  EXPECT_THROW(failing.get(), std::runtime_error);
  worker.wait_idle();
  ASSERT_EQ(order.size(), 20u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(order[i], i);
}

// A background worker (live detection and its confirmations) runs at nice 10 as SCHED_BATCH and,
// where the kernel takes per-thread slices, with a 20 ms one, so that the streaming and engine
// threads (default slice) preempt it as soon as they wake. A normal worker keeps the defaults.
TEST(SerialWorker, BackgroundWorkerGivesWayToOtherThreads) {
  SerialWorker background(SerialWorker::Priority::kBackground), normal;
  const ThreadSettings b = background.submit(this_threads_settings).get();
  const ThreadSettings n = normal.submit(this_threads_settings).get();
  EXPECT_EQ(b.policy, SCHED_BATCH);
  EXPECT_EQ(b.nice, 10);
  EXPECT_EQ(n.policy, SCHED_OTHER);
  EXPECT_EQ(n.nice, getpriority(PRIO_PROCESS, static_cast<id_t>(gettid())));
  if (kernel_has_custom_slices() && b.slice_ns >= 0) {
    EXPECT_EQ(b.slice_ns, 20'000'000);
    EXPECT_LT(n.slice_ns, b.slice_ns);
  } else {
    std::printf("this kernel shows no per-thread slice: only policy and nice checked\n");
  }
}

}  // namespace
}  // namespace starganv2::align::test
