// One loaded model and its engine threads for every stream of the process that uses the same model
// file, FAN, device and precision (issue 25): N elements on one model cost one model's memory, and
// live streams' faces that are ready together are translated in one forward.
//
// A SharedEngine owns the model and the threads that run it ("lanes"), each with a Translator of
// its own on the same weights (Translator::sibling: no copy). Each Processor is a client of one
// (EngineClient): it queues its frames' translations in order and makes its style computations
// through call(); per-stream state (styles shown, temporal history) stays in the Processor and
// is only touched by its own jobs, which run in its frame order, one at a time. What runs next
// is BatchQueue's rule (batch_queue.h): live streams are batched with each other, files never
// are, so a file's bytes are those it gets alone.
//
// Lanes: on the CPU with a small model (below 256 px), one per stream, so that N streams run as
// many forwards at once as N elements with models of their own would — files cannot be batched,
// and one thread's forwards alone were measured 15-19 % slower in total than 4-8 engines of their
// own with the demo model. A lane costs the activations of its forward while it runs, not a copy
// of the weights; with the official 256 px model that is about 200 MB, and one forward already
// keeps the cores busy, so such models get one lane (EngineOptions::cpu_lanes overrides). On a GPU
// one lane: its work is queued on one device, where batching live streams pays.
// The engine lives as long as its last client.
//
// Loading and errors stay per stream: a model that fails to load fails the element that asked
// for it and leaves nothing behind; a job's error (its styles, its forward, its post-processing)
// reaches only that job's stream — a batch whose forward fails is run again one stream at a time,
// so that only the stream at fault gets the error.
#pragma once

#include <opencv2/core.hpp>

#include <ATen/core/Tensor.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "batch_queue.h"
#include "model/translator.h"
#include "processor.h"

namespace starganv2::plugin {

// How a job's forward went, for the stream's report.
struct BatchInfo {
  double queued_ms = 0;   // from submit() to the start of its batch
  double network_ms = 0;  // the batch's forward (shared by every job in it)
  int faces = 0;          // faces in the forward
  int streams = 0;        // streams in the forward
};

// One frame's translation: its crops (img_size, RGB), the style of each (computed on the engine
// thread: a stream's style book is engine-thread state), and what to do with the result, also on
// the engine thread (the stream's temporal stabilisation), called exactly once with the crops
// back, and the translations or the error. `done` must not throw.
struct TranslationJob {
  std::vector<cv::Mat> crops;
  std::function<at::Tensor(Translator&)> styles;  // (N, style_dim) float32
  std::function<void(std::exception_ptr error, std::vector<cv::Mat> crops, std::vector<cv::Mat> translated,
                     const BatchInfo& info)>
      done;
};

class SharedEngine {
 public:
  // The engine of these options: the one already loaded in this process when `options.share` and
  // one was loaded for the same file (the same path, size and modification time), FAN, device and
  // precision, else a new one. Throws ProcessorError when the model cannot be loaded.
  static std::shared_ptr<SharedEngine> acquire(const EngineOptions& options);

  // Process-wide counts, for tests and the benchmark.
  static long models_loaded();  // Translators opened since the process started
  static int engines_alive();

  ~SharedEngine();
  SharedEngine(const SharedEngine&) = delete;
  SharedEngine& operator=(const SharedEngine&) = delete;

  // Immutable once loaded: readable from any thread.
  const ModelConfig& config() const { return config_; }
  const std::vector<std::string>& domains() const { return domains_; }
  const std::string& device() const { return device_; }
  bool is_cuda() const { return is_cuda_; }
  int clients() const;
  int lanes() const;

 private:
  friend class EngineClient;
  struct Private {};

 public:
  SharedEngine(Private, Translator translator, std::string key, int max_lanes);

 private:
  using Queue = BatchQueue<TranslationJob>;

  struct Lane {
    std::unique_ptr<Translator> translator;  // this lane's thread only
    std::thread thread;
  };

  int attach();
  void detach(int client);
  void submit(int client, TranslationJob job, bool live, std::chrono::microseconds max_wait);
  void call(std::function<void(Translator&)> fn);
  void wait_idle(int client);
  void add_lane(std::unique_ptr<Translator> translator);  // under lock_
  void run(Lane& lane, bool first);
  void run_batch(Translator& translator, std::vector<Queue::Entry>& batch);

  const std::string key_;
  const int max_lanes_;
  const ModelConfig config_;
  const std::vector<std::string> domains_;
  const std::string device_;
  const bool is_cuda_;

  mutable std::mutex lock_;
  std::condition_variable wake_, idle_;
  Queue queue_;
  std::deque<std::function<void()>> calls_;  // call(): ahead of the next batch
  std::map<int, int> outstanding_;           // client -> jobs queued or running
  std::map<int, bool> live_;                 // client -> whether its last job was live
  int next_client_ = 0;
  bool stop_ = false;
  std::vector<std::unique_ptr<Lane>> lanes_;  // lanes_[0] also runs call()s
  Translator* main_ = nullptr;                // lanes_[0]'s, for call()s
};

// A stream's handle on a SharedEngine. Not thread-safe: one Processor owns it.
class EngineClient {
 public:
  explicit EngineClient(std::shared_ptr<SharedEngine> engine);
  // Waits for this stream's queued jobs (they use the stream's state), then leaves the engine.
  ~EngineClient();
  EngineClient(const EngineClient&) = delete;
  EngineClient& operator=(const EngineClient&) = delete;

  const SharedEngine& engine() const { return *engine_; }

  // Queues a frame's translation behind this stream's earlier ones. `live`: may share a forward
  // with other live streams; `max_wait`: how long the engine may hold it for them (0: none).
  void submit(TranslationJob job, bool live, std::chrono::microseconds max_wait = {});
  // Runs fn(translator) on the engine thread, before the next batch, and returns its result (or
  // rethrows its exception): styles, warm-up, still images.
  template <typename F>
  auto call(F&& fn) -> std::invoke_result_t<F, Translator&> {
    using R = std::invoke_result_t<F, Translator&>;
    std::packaged_task<R(Translator&)> task(std::forward<F>(fn));
    std::future<R> result = task.get_future();
    engine_->call([&task](Translator& t) { task(t); });
    return result.get();
  }
  // Blocks until every job this stream submitted has finished.
  void wait_idle();

 private:
  std::shared_ptr<SharedEngine> engine_;
  int id_;
};

}  // namespace starganv2::plugin
