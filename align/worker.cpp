#include "align/worker.h"

#ifdef __linux__
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#endif

namespace starganv2::align {

namespace {

void lower_this_threads_priority() {
#ifdef __linux__
#ifdef SYS_sched_setattr
  // One call sets the policy (SCHED_BATCH), nice 10 and, on Linux 6.12 and later, a time slice
  // per thread (sched_attr's sched_runtime for the fair classes). A thread that wakes with a
  // shorter slice than the one running preempts it at once (EEVDF's PREEMPT_SHORT) instead of
  // waiting for that one's slice to run out, which on a busy 2-core machine held the streaming
  // and engine threads up for 1.5 to 4 ms. So the workers take a long slice, 20 ms, leaving every
  // default-slice thread able to preempt them. Kernels that do not know per-thread slices ignore
  // the field (the glibc of Debian 12 has no wrapper, hence the raw call and the kernel's layout).
  struct {
    std::uint32_t size, sched_policy;
    std::uint64_t sched_flags;
    std::int32_t sched_nice;
    std::uint32_t sched_priority;
    std::uint64_t sched_runtime, sched_deadline, sched_period;
  } attr{};
  attr.size = sizeof attr;
  attr.sched_policy = SCHED_BATCH;
  attr.sched_nice = 10;
  attr.sched_runtime = 20'000'000;  // ns
  if (syscall(SYS_sched_setattr, 0, &attr, 0) == 0) return;
#endif
  // Where that call is refused: policy and nice alone. Both are allowed without privileges (they
  // only ever lower the priority); a failure leaves the thread at normal priority, which is merely
  // slower to give way.
  const sched_param param{};
  pthread_setschedparam(pthread_self(), SCHED_BATCH, &param);
  setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), 10);
#endif
}

}  // namespace

SerialWorker::SerialWorker(Priority priority) : thread_([this, priority] { run(priority); }) {}

SerialWorker::~SerialWorker() {
  {
    std::lock_guard<std::mutex> lk(lock_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void SerialWorker::enqueue(std::function<void()> job) {
  {
    std::lock_guard<std::mutex> lk(lock_);
    jobs_.push_back(std::move(job));
  }
  wake_.notify_one();
}

void SerialWorker::wait_idle() {
  std::unique_lock<std::mutex> lk(lock_);
  idle_.wait(lk, [this] { return jobs_.empty() && !busy_; });
}

void SerialWorker::run(Priority priority) {
  if (priority == Priority::kBackground) lower_this_threads_priority();
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock<std::mutex> lk(lock_);
      wake_.wait(lk, [this] { return stop_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // stopping, and nothing left to run
      job = std::move(jobs_.front());
      jobs_.pop_front();
      busy_ = true;
    }
    job();  // a packaged_task: exceptions land in its future
    {
      std::lock_guard<std::mutex> lk(lock_);
      busy_ = false;
    }
    idle_.notify_all();
  }
}

}  // namespace starganv2::align
