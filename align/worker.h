// A thread that runs jobs one after another, in the order they were submitted. The face pipeline
// gives detection and detector confirmations to such workers so that the streaming thread never
// waits for a full-frame detection in a live pipeline, and the element runs the networks of one
// frame on one while the next frame is aligned.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>

namespace starganv2::align {

class SerialWorker {
 public:
  // How the thread competes for a core with the others of the process.
  enum class Priority {
    kNormal,
    // Work whose results may come late (detection and its checks in a live stream): the thread
    // runs at a lower priority, does not preempt others when it wakes, and is preempted at once
    // when they wake (Linux: nice 10, SCHED_BATCH and, from 6.12, a 20 ms time slice), so that
    // on a machine with fewer cores than busy threads a job handed over by the streaming thread
    // does not take the core from under it.
    kBackground,
  };
  explicit SerialWorker(Priority priority = Priority::kNormal);
  // Runs the jobs still queued, then joins the thread.
  ~SerialWorker();
  SerialWorker(const SerialWorker&) = delete;
  SerialWorker& operator=(const SerialWorker&) = delete;

  // Queues `job`; its result (or exception) arrives through the future. Jobs run one at a time,
  // so state that only jobs touch (a dlib detector, the inference engine) needs no lock.
  template <typename F>
  auto submit(F&& job) -> std::future<std::invoke_result_t<F>> {
    using R = std::invoke_result_t<F>;
    auto task = std::make_shared<std::packaged_task<R()>>(std::forward<F>(job));
    std::future<R> result = task->get_future();
    enqueue([task] { (*task)(); });
    return result;
  }

  // Blocks until every job submitted so far has run.
  void wait_idle();

 private:
  void enqueue(std::function<void()> job);
  void run(Priority priority);

  std::mutex lock_;
  std::condition_variable wake_, idle_;
  std::deque<std::function<void()>> jobs_;
  bool busy_ = false;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace starganv2::align
