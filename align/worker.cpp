#include "align/worker.h"

namespace starganv2::align {

SerialWorker::SerialWorker() : thread_([this] { run(); }) {}

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

void SerialWorker::run() {
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
