#include "shared_engine.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <atomic>
#include <limits>
#include <filesystem>
#include <stdexcept>
#include <utility>

#include "processor_impl.h"  // require_file, to_engine_precision, view_of

namespace starganv2::plugin {

namespace fs = std::filesystem;
using Kind = ProcessorError::Kind;
using Clock = std::chrono::steady_clock;

namespace {

// The largest forward the engine makes of live streams' faces: the size up to which the CUDA
// graphs of TranslatorOptions::max_graph_batch are kept, and on the CPU well past the batch size
// where a forward stops getting cheaper per face.
constexpr int kMaxBatchFaces = 16;

// CPU lanes by default (EngineOptions::cpu_lanes 0), from measurements on the 2-core VM
// (starganv2-streams-bench): the 64 px demo model's forward is too small to keep both cores busy,
// and one lane for 4-8 file streams gave 15-19 % less in total than engines of their own, a lane
// per stream the same as they; the official 256 px model's forward keeps the cores busy alone
// (one lane: the same total as engines of their own at 2-8 streams), while each more lane running
// holds about 200 MB of activations. So: a lane per stream below 256 px, one from 256 px up.
constexpr int64_t kLargeModelSize = 256;

std::atomic<long> g_models_loaded{0};

std::mutex& registry_lock() {
  static std::mutex m;
  return m;
}

// key -> the engine of that key while some stream uses it.
std::map<std::string, std::weak_ptr<SharedEngine>>& registry() {
  static std::map<std::string, std::weak_ptr<SharedEngine>> r;
  return r;
}

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// A file as the key knows it: where it really is, and its size and time, so that a model file
// rewritten since the engine loaded it gives a new engine rather than the old weights.
std::string file_identity(const std::string& path) {
  if (path.empty()) return "-";
  std::error_code ec;
  const fs::path canonical = fs::weakly_canonical(path, ec);
  std::string id = ec ? path : canonical.string();
  const auto size = fs::file_size(path, ec);
  if (!ec) id.append(1, '|').append(std::to_string(size));
  const auto time = fs::last_write_time(path, ec);
  if (!ec) id.append(1, '|').append(std::to_string(time.time_since_epoch().count()));
  return id;
}

std::string engine_key(const EngineOptions& o) {
  return file_identity(o.checkpoint) + "\n" + file_identity(o.fan_checkpoint) + "\n" + o.device + "\n" +
         std::to_string(static_cast<int>(o.precision)) + "\n" + std::to_string(o.cpu_lanes);
}

Translator open_translator(const EngineOptions& options) {
  require_file(options.checkpoint, "checkpoint");
  if (!options.fan_checkpoint.empty()) require_file(options.fan_checkpoint, "FAN checkpoint");
  TranslatorOptions t;
  t.device = options.device;
  t.precision = to_engine_precision(options.precision);
  try {
    Translator translator = Translator::open(options.checkpoint, t, options.fan_checkpoint);
    ++g_models_loaded;
    return translator;
  } catch (const CheckpointError& e) {
    throw ProcessorError(Kind::kRead, e.what());
  } catch (const std::invalid_argument& e) {
    // Bad device or precision strings, or a model the engine cannot take.
    const std::string what = e.what();
    const bool model_problem = what.rfind("Translator:", 0) == 0;
    throw ProcessorError(model_problem ? Kind::kRead : Kind::kSettings,
                         model_problem ? options.checkpoint + ": " + what : what);
  } catch (const std::runtime_error& e) {
    if (options.device.rfind("cuda", 0) == 0)
      throw ProcessorError(Kind::kDevice, "device " + options.device + ": " + e.what());
    throw ProcessorError(Kind::kFailed, options.checkpoint + ": " + e.what());
  }
}

}  // namespace

// ---- SharedEngine ------------------------------------------------------------------------------

std::shared_ptr<SharedEngine> SharedEngine::acquire(const EngineOptions& options) {
  const int max_lanes = options.cpu_lanes;  // 0: chosen by the model (see the constructor)
  if (!options.share)
    return std::make_shared<SharedEngine>(Private{}, open_translator(options), std::string(), max_lanes);
  const std::string key = engine_key(options);
  // Held while a model loads, so that elements starting together with the same model load it
  // once (the others wait for it rather than loading a copy).
  std::lock_guard<std::mutex> lk(registry_lock());
  auto& r = registry();
  if (auto it = r.find(key); it != r.end()) {
    if (auto engine = it->second.lock()) return engine;
  }
  auto engine = std::make_shared<SharedEngine>(Private{}, open_translator(options), key, max_lanes);
  r[key] = engine;
  return engine;
}

long SharedEngine::models_loaded() { return g_models_loaded.load(); }

int SharedEngine::engines_alive() {
  std::lock_guard<std::mutex> lk(registry_lock());
  int n = 0;
  for (const auto& [key, engine] : registry()) n += engine.expired() ? 0 : 1;
  return n;
}

SharedEngine::SharedEngine(Private, Translator translator, std::string key, int max_lanes)
    : key_(std::move(key)),
      max_lanes_(translator.device().is_cuda() ? 1
                 : max_lanes > 0                  ? max_lanes
                 : translator.config().img_size < kLargeModelSize ? std::numeric_limits<int>::max()
                                                                  : 1),
      config_(translator.config()),
      domains_(translator.domains()),
      device_(translator.device().str()),
      is_cuda_(translator.device().is_cuda()) {
  std::lock_guard<std::mutex> lk(lock_);
  add_lane(std::make_unique<Translator>(std::move(translator)));
  main_ = lanes_.front()->translator.get();
}

void SharedEngine::add_lane(std::unique_ptr<Translator> translator) {
  auto lane = std::make_unique<Lane>();
  lane->translator = std::move(translator);
  Lane& l = *lane;
  const bool first = lanes_.empty();
  lanes_.push_back(std::move(lane));
  l.thread = std::thread([this, &l, first] { run(l, first); });
}

int SharedEngine::lanes() const {
  std::lock_guard<std::mutex> lk(lock_);
  return static_cast<int>(lanes_.size());
}

SharedEngine::~SharedEngine() {
  {
    std::lock_guard<std::mutex> lk(lock_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& lane : lanes_) lane->thread.join();
  if (!key_.empty()) {
    std::lock_guard<std::mutex> lk(registry_lock());
    auto& r = registry();
    // Only this engine's entry: a newer engine of a rewritten file has its own key.
    if (auto it = r.find(key_); it != r.end() && it->second.expired()) r.erase(it);
  }
}

int SharedEngine::clients() const {
  std::lock_guard<std::mutex> lk(lock_);
  return static_cast<int>(outstanding_.size());
}

int SharedEngine::attach() {
  std::unique_lock<std::mutex> lk(lock_);
  const int id = next_client_++;
  outstanding_[id] = 0;
  const size_t want = std::min<size_t>(outstanding_.size(), static_cast<size_t>(max_lanes_));
  if (lanes_.size() < want) {
    // The sibling is built outside the lock (it allocates networks) from lane 0's Translator,
    // whose weights are only read, and only by forwards: safe beside a running one.
    const Translator& first = *main_;
    lk.unlock();
    auto sibling = std::make_unique<Translator>(first.sibling());
    lk.lock();
    if (lanes_.size() < want && !stop_) add_lane(std::move(sibling));
  }
  return id;
}

void SharedEngine::detach(int client) {
  wait_idle(client);
  std::lock_guard<std::mutex> lk(lock_);
  outstanding_.erase(client);
  live_.erase(client);
  queue_.forget(client);
}

void SharedEngine::submit(int client, TranslationJob job, bool live, std::chrono::microseconds max_wait) {
  {
    std::lock_guard<std::mutex> lk(lock_);
    const int faces = static_cast<int>(job.crops.size());
    queue_.push({.client = client, .live = live, .faces = faces, .queued = Clock::now(),
                 .max_wait = max_wait, .job = std::move(job)});
    ++outstanding_[client];
    live_[client] = live;
  }
  wake_.notify_all();
}

void SharedEngine::call(std::function<void(Translator&)> fn) {
  std::promise<void> ran;
  std::future<void> done = ran.get_future();
  {
    std::lock_guard<std::mutex> lk(lock_);
    calls_.push_back([this, &fn, &ran] {
      fn(*main_);  // packaged by EngineClient::call: never throws
      ran.set_value();
    });
  }
  wake_.notify_all();
  done.wait();
}

void SharedEngine::wait_idle(int client) {
  std::unique_lock<std::mutex> lk(lock_);
  idle_.wait(lk, [&] {
    auto it = outstanding_.find(client);
    return it == outstanding_.end() || it->second == 0;
  });
}

void SharedEngine::run(Lane& lane, bool first) {
  std::unique_lock<std::mutex> lk(lock_);
  for (;;) {
    wake_.wait(lk, [&] { return stop_ || (first && !calls_.empty()) || queue_.ready(); });
    if (first && !calls_.empty()) {
      auto fn = std::move(calls_.front());
      calls_.pop_front();
      lk.unlock();
      fn();
      lk.lock();
      continue;
    }
    if (!queue_.ready()) {
      if (stop_) return;
      continue;
    }
    // A live batch may wait (each job's max_wait at most) for the other live streams' faces.
    if (auto deadline = queue_.live_deadline()) {
      const auto live_clients = static_cast<int>(std::count_if(live_.begin(), live_.end(), [](auto& c) { return c.second; }));
      wake_.wait_until(lk, *deadline, [&] {
        return stop_ || (first && !calls_.empty()) || !queue_.ready() || queue_.live_heads() >= live_clients ||
               !queue_.next_is_live();
      });
      if ((first && !calls_.empty()) || !queue_.ready()) continue;
    }
    std::vector<Queue::Entry> batch = queue_.next(kMaxBatchFaces);
    lk.unlock();
    run_batch(*lane.translator, batch);  // hands each job's crops and result on; entries keep their client
    lk.lock();
    for (const auto& e : batch) {
      queue_.done(e.client);
      --outstanding_[e.client];
    }
    idle_.notify_all();
    wake_.notify_all();  // those clients' next jobs may run now, on any lane
  }
}

namespace {

// A job's end: its crops go back with the outcome. `done` is the stream's and must not throw; if
// it does anyway, the error stays with that stream's job, not the engine thread.
template <typename Entry>
void finish(Entry& e, std::exception_ptr error, std::vector<cv::Mat> translated, const BatchInfo& info) {
  try {
    e.job.done(std::move(error), std::move(e.job.crops), std::move(translated), info);
  } catch (...) {
  }
}

}  // namespace

void SharedEngine::run_batch(Translator& translator, std::vector<Queue::Entry>& batch) {
  const auto start = Clock::now();
  // Each job's styles; a job whose styles fail fails alone.
  std::vector<Queue::Entry*> ready;
  std::vector<at::Tensor> styles;
  for (auto& e : batch) {
    try {
      at::Tensor s = e.job.styles(translator);
      if (!s.defined() || s.dim() != 2 || s.size(0) != static_cast<int64_t>(e.job.crops.size()))
        throw std::logic_error("a job's styles do not match its crops");
      styles.push_back(std::move(s));
      ready.push_back(&e);
    } catch (...) {
      finish(e, std::current_exception(), {}, BatchInfo{ms_between(e.queued, start), 0, 0, 0});
    }
  }
  if (ready.empty()) return;

  auto forward = [&](const std::vector<Queue::Entry*>& jobs, const std::vector<at::Tensor>& codes) {
    std::vector<ImageView> in;
    std::vector<MutableImageView> out_views;
    std::vector<std::vector<cv::Mat>> out(jobs.size());
    for (size_t j = 0; j < jobs.size(); ++j) {
      for (const cv::Mat& crop : jobs[j]->job.crops) {
        in.push_back(view_of(crop));
        out_views.push_back(mutable_view_of(out[j].emplace_back(crop.rows, crop.cols, CV_8UC3)));
      }
    }
    translator.translate(in, out_views, codes.size() == 1 ? codes.front() : at::cat(codes));
    return out;
  };

  std::vector<std::vector<cv::Mat>> out;
  std::exception_ptr failure;
  const auto t0 = Clock::now();
  try {
    out = forward(ready, styles);
  } catch (...) {
    failure = std::current_exception();
  }
  const double network_ms = ms_between(t0, Clock::now());
  if (!failure) {
    int faces = 0;
    for (auto* e : ready) faces += static_cast<int>(e->job.crops.size());
    for (size_t j = 0; j < ready.size(); ++j) {
      const BatchInfo info{ms_between(ready[j]->queued, start), network_ms, faces, static_cast<int>(ready.size())};
      finish(*ready[j], nullptr, std::move(out[j]), info);
    }
    return;
  }
  if (ready.size() == 1) {
    finish(*ready.front(), failure, {}, BatchInfo{ms_between(ready.front()->queued, start), network_ms, 0, 1});
    return;
  }
  // One stream's crops or styles broke the batch: run each alone, so that only that one fails.
  for (size_t j = 0; j < ready.size(); ++j) {
    const auto tj = Clock::now();
    try {
      auto alone = forward({ready[j]}, {styles[j]});
      const BatchInfo info{ms_between(ready[j]->queued, start), ms_between(tj, Clock::now()),
                           static_cast<int>(ready[j]->job.crops.size()), 1};
      finish(*ready[j], nullptr, std::move(alone.front()), info);
    } catch (...) {
      finish(*ready[j], std::current_exception(), {}, BatchInfo{ms_between(ready[j]->queued, start), 0, 0, 1});
    }
  }
}

// ---- EngineClient ------------------------------------------------------------------------------

EngineClient::EngineClient(std::shared_ptr<SharedEngine> engine) : engine_(std::move(engine)), id_(engine_->attach()) {}

EngineClient::~EngineClient() { engine_->detach(id_); }

void EngineClient::submit(TranslationJob job, bool live, std::chrono::microseconds max_wait) {
  engine_->submit(id_, std::move(job), live, max_wait);
}

void EngineClient::wait_idle() { engine_->wait_idle(id_); }

}  // namespace starganv2::plugin
