#include "align/worker.h"

#ifdef __linux__
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>
#endif

namespace starganv2::align {

namespace {

void lower_this_threads_priority() {
#ifdef __linux__
  // Both are allowed without privileges (they only ever lower the priority); a failure leaves the
  // thread at normal priority, which is merely slower to give way.
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
