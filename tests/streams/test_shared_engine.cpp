// Many streams, one model (issue 25): the batch rule, the shared engine's sharing, batching,
// fairness and error isolation, and the Processor's exactness and independence on it.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "batch_queue.h"
#include "processor.h"
#include "shared_engine.h"
#include "tests/common/model_test_util.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using starganv2::Translator;
using namespace starganv2::plugin;

namespace {

// ---- BatchQueue: the rule alone ----------------------------------------------------------------

using Queue = BatchQueue<int>;  // the job is a sequence number

Queue::Entry entry(int client, bool live, int faces, int seq, std::chrono::microseconds max_wait = {}) {
  return {.client = client, .live = live, .faces = faces, .queued = Queue::Clock::now(), .max_wait = max_wait, .job = seq};
}

// next() as an engine of one lane calls it: the batch is done before the next is taken.
std::vector<Queue::Entry> take(Queue& q, int max_faces = 16) {
  auto batch = q.next(max_faces);
  for (const auto& e : batch) q.done(e.client);
  return batch;
}

std::vector<std::pair<int, int>> ids(const std::vector<Queue::Entry>& batch) {
  std::vector<std::pair<int, int>> out;
  for (const auto& e : batch) out.emplace_back(e.client, e.job);
  return out;
}

TEST(BatchQueue, FilesRunAloneInTheirOrderAndTakeTurns) {
  Queue q;
  for (int i = 0; i < 3; ++i) q.push(entry(0, false, 1, i));
  q.push(entry(1, false, 2, 100));
  // One file job per forward, whatever else is queued; clients in turn; each client's in order.
  std::vector<std::pair<int, int>> order;
  while (!q.empty()) {
    auto batch = take(q);
    ASSERT_EQ(batch.size(), 1u);
    order.push_back(ids(batch).front());
  }
  const std::vector<std::pair<int, int>> want = {{0, 0}, {1, 100}, {0, 1}, {0, 2}};
  EXPECT_EQ(order, want);
}

TEST(BatchQueue, LiveHeadsShareAForwardUpToTheCapAndNoneIsAlwaysLeftOut) {
  Queue q;
  for (int round = 0; round < 4; ++round)
    for (int c = 0; c < 4; ++c) q.push(entry(c, true, 6, round));
  // 6 faces each, 16 at most: two clients per forward, one job of each client at most.
  std::vector<int> served(4, 0);
  for (int b = 0; b < 8; ++b) {
    auto batch = take(q);
    ASSERT_EQ(batch.size(), 2u) << "batch " << b;
    EXPECT_NE(batch[0].client, batch[1].client);
    for (const auto& e : batch) {
      EXPECT_EQ(e.job, served[e.client]) << "client " << e.client << " out of order";
      ++served[e.client];
    }
    // After every two forwards each client has had its turn.
    if (b % 2 == 1) {
      for (int c = 0; c < 4; ++c) EXPECT_EQ(served[c], (b + 1) / 2) << "client " << c << " after batch " << b;
    }
  }
  EXPECT_TRUE(q.empty());
  // A job larger than the cap still runs (alone).
  q.push(entry(0, true, 40, 0));
  EXPECT_EQ(take(q).size(), 1u);
}

TEST(BatchQueue, LiveWaitsForAtMostOneFileFrame) {
  Queue q;
  for (int i = 0; i < 5; ++i) q.push(entry(0, false, 1, i));
  q.push(entry(1, true, 1, 0));
  q.push(entry(1, true, 1, 1));
  q.push(entry(2, true, 1, 0));
  // Both kinds waiting: live batch, file job, live batch, file job, ...
  EXPECT_TRUE(q.next_is_live());
  auto first = take(q);
  EXPECT_EQ(ids(first), (std::vector<std::pair<int, int>>{{1, 0}, {2, 0}}));
  EXPECT_FALSE(q.next_is_live());
  EXPECT_EQ(ids(take(q)), (std::vector<std::pair<int, int>>{{0, 0}}));
  EXPECT_EQ(ids(take(q)), (std::vector<std::pair<int, int>>{{1, 1}}));
  // Only files left: they run back to back.
  for (int i = 1; i < 5; ++i) EXPECT_EQ(ids(take(q)), (std::vector<std::pair<int, int>>{{0, i}}));
  EXPECT_TRUE(q.empty());
  EXPECT_TRUE(take(q).empty());
}

TEST(BatchQueue, AClientRunsOneBatchAtATime) {
  Queue q;
  q.push(entry(0, false, 1, 0));
  q.push(entry(0, false, 1, 1));
  q.push(entry(1, false, 1, 0));
  // Two lanes take batches while the first is still running: the second gets client 1's job,
  // not client 0's next one.
  EXPECT_EQ(ids(q.next(16)), (std::vector<std::pair<int, int>>{{0, 0}}));
  EXPECT_EQ(ids(q.next(16)), (std::vector<std::pair<int, int>>{{1, 0}}));
  EXPECT_FALSE(q.ready());
  EXPECT_TRUE(q.next(16).empty());
  q.done(0);
  EXPECT_TRUE(q.ready());
  EXPECT_EQ(ids(q.next(16)), (std::vector<std::pair<int, int>>{{0, 1}}));
}

TEST(BatchQueue, TheLiveDeadlineIsTheEarliestHeadsWait) {
  Queue q;
  EXPECT_FALSE(q.live_deadline());
  q.push(entry(0, false, 1, 0));
  EXPECT_FALSE(q.live_deadline()) << "files never wait for a batch";
  auto a = entry(1, true, 1, 0, 5000us);
  auto b = entry(2, true, 1, 0, 2000us);
  const auto t_b = b.queued;
  q.push(a);
  q.push(b);
  ASSERT_TRUE(q.live_deadline());
  EXPECT_EQ(*q.live_deadline(), t_b + 2000us);
  EXPECT_EQ(q.live_heads(), 2);
}

// ---- SharedEngine ------------------------------------------------------------------------------

class SharedEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("starganv2-shared-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    model_ = dir_ / "tiny.safetensors";
    starganv2::test::write_random_model(model_, {.seed = 3, .producer = "shared engine tests"});
  }
  void TearDown() override { fs::remove_all(dir_); }

  EngineOptions options(bool share = true, int cpu_lanes = 0) const {
    EngineOptions o;
    o.checkpoint = model_.string();
    o.device = "cpu";
    o.share = share;
    o.cpu_lanes = cpu_lanes;
    return o;
  }
  // One lane: every batch in turn, so that tests can see what went into which.
  EngineOptions one_lane() const { return options(true, 1); }

  // img_size crops of random pixels.
  static std::vector<cv::Mat> crops(int n, int size, int seed) {
    cv::RNG rng(seed);
    std::vector<cv::Mat> out;
    for (int i = 0; i < n; ++i) {
      cv::Mat m(size, size, CV_8UC3);
      rng.fill(m, cv::RNG::UNIFORM, 0, 256);
      out.push_back(m);
    }
    return out;
  }

  fs::path dir_, model_;
};

// What a job came back with.
struct Outcome {
  bool failed = false;
  std::string error;
  std::vector<cv::Mat> translated;
  BatchInfo info;
};

// A job of `crops` with the first domain's seed-`seed` latent style, whose outcome goes to `out`
// (and its client id to `order`, in the order the engine finished them).
TranslationJob job(std::vector<cv::Mat> crops, uint64_t seed, std::promise<Outcome>* out, std::vector<int>* order = nullptr,
                   int tag = 0) {
  TranslationJob j;
  const auto n = static_cast<int64_t>(crops.size());
  j.crops = std::move(crops);
  j.styles = [seed, n](Translator& t) { return t.latent_style(0, seed).reshape({1, -1}).expand({n, -1}).contiguous(); };
  j.done = [out, order, tag](std::exception_ptr e, std::vector<cv::Mat>, std::vector<cv::Mat> translated, const BatchInfo& info) {
    Outcome o;
    o.info = info;
    if (e) {
      o.failed = true;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        o.error = x.what();
      }
    }
    o.translated = std::move(translated);
    if (order) order->push_back(tag);
    out->set_value(std::move(o));
  };
  return j;
}

// Holds the engine thread (inside a call()) until release(), so that jobs can be queued together.
class Blocker {
 public:
  explicit Blocker(EngineClient& client) {
    auto entered = std::make_shared<std::promise<void>>();
    auto entered_f = entered->get_future();
    done_ = std::async(std::launch::async, [&client, entered, gate = gate_.get_future().share()]() mutable {
      client.call([&](Translator&) {
        entered->set_value();
        gate.wait();
      });
    });
    entered_f.wait();
  }
  void release() {
    gate_.set_value();
    done_.get();
  }

 private:
  std::promise<void> gate_;
  std::future<void> done_;
};

bool same_bytes(const cv::Mat& a, const cv::Mat& b) {
  return a.size() == b.size() && a.type() == b.type() && cv::norm(a, b, cv::NORM_INF) == 0;
}

TEST_F(SharedEngineTest, OneModelPerFileDeviceAndPrecisionFreedWithItsLastStream) {
  const int alive_before = SharedEngine::engines_alive();
  const long loaded = SharedEngine::models_loaded();
  auto a = SharedEngine::acquire(options());
  auto b = SharedEngine::acquire(options());
  EXPECT_EQ(a.get(), b.get());
  EXPECT_EQ(SharedEngine::models_loaded(), loaded + 1);
  // Opting out, another file (same bytes): models of their own.
  auto own = SharedEngine::acquire(options(/*share=*/false));
  EXPECT_NE(own.get(), a.get());
  fs::copy_file(model_, dir_ / "copy.safetensors");
  EngineOptions other = options();
  other.checkpoint = (dir_ / "copy.safetensors").string();
  auto c = SharedEngine::acquire(other);
  EXPECT_NE(c.get(), a.get());
  EXPECT_EQ(SharedEngine::models_loaded(), loaded + 3);
  EXPECT_EQ(SharedEngine::engines_alive(), alive_before + 2);  // the unshared one is in no registry
  // A model file rewritten in place is a new model.
  starganv2::test::write_random_model(model_, {.seed = 4, .producer = "shared engine tests, rewritten"});
  auto e = SharedEngine::acquire(options());
  EXPECT_NE(e.get(), a.get());
  a.reset();
  EXPECT_EQ(SharedEngine::engines_alive(), alive_before + 3) << "b still holds the first engine";
  b.reset();
  c.reset();
  e.reset();
  own.reset();
  EXPECT_EQ(SharedEngine::engines_alive(), alive_before) << "engines go with their last stream";
  // A model that fails to load fails alone and leaves nothing behind.
  EngineOptions missing = options();
  missing.checkpoint = (dir_ / "missing.safetensors").string();
  EXPECT_THROW(SharedEngine::acquire(missing), ProcessorError);
  EXPECT_EQ(SharedEngine::engines_alive(), alive_before);
}

TEST_F(SharedEngineTest, LiveStreamsShareAForwardFilesRunAloneAndExact) {
  auto engine = SharedEngine::acquire(one_lane());
  const int size = static_cast<int>(engine->config().img_size);
  EngineClient a(engine), b(engine), c(engine), f(engine);
  std::promise<Outcome> ra, rb, rf;
  const auto ca = crops(1, size, 1), cb = crops(2, size, 2), cf = crops(1, size, 3);
  Blocker hold(a);
  b.submit(job(ca, 11, &ra), /*live=*/true);
  c.submit(job(cb, 12, &rb), /*live=*/true);
  f.submit(job(cf, 13, &rf), /*live=*/false);
  hold.release();
  const Outcome oa = ra.get_future().get(), ob = rb.get_future().get(), of = rf.get_future().get();
  ASSERT_FALSE(oa.failed || ob.failed || of.failed) << oa.error << ob.error << of.error;
  EXPECT_EQ(oa.info.streams, 2);
  EXPECT_EQ(oa.info.faces, 3);
  EXPECT_EQ(ob.info.streams, 2);
  EXPECT_EQ(of.info.streams, 1) << "a file is never batched with other streams";
  EXPECT_EQ(of.info.faces, 1);
  EXPECT_GT(of.info.queued_ms, 0.0);

  // Against an engine of its own running each job alone: the file's bytes are the same; the
  // live crops within a level (a batch may change the last bit on the CPU).
  auto alone = SharedEngine::acquire(options(/*share=*/false));
  EngineClient solo(alone);
  std::promise<Outcome> sa, sb, sf;
  solo.submit(job(ca, 11, &sa), false);
  solo.submit(job(cb, 12, &sb), false);
  solo.submit(job(cf, 13, &sf), false);
  const Outcome xa = sa.get_future().get(), xb = sb.get_future().get(), xf = sf.get_future().get();
  ASSERT_EQ(of.translated.size(), 1u);
  EXPECT_TRUE(same_bytes(of.translated[0], xf.translated[0]));
  EXPECT_LE(cv::norm(oa.translated[0], xa.translated[0], cv::NORM_INF), 1.0);
  for (int i = 0; i < 2; ++i) EXPECT_LE(cv::norm(ob.translated[i], xb.translated[i], cv::NORM_INF), 1.0);
  // Different styles gave different pictures (the styles were not mixed up in the batch).
  EXPECT_GT(cv::norm(oa.translated[0], ob.translated[0], cv::NORM_L1), 0.0);
}

TEST_F(SharedEngineTest, AJobThatFailsFailsOnlyItsStream) {
  auto engine = SharedEngine::acquire(one_lane());
  const int size = static_cast<int>(engine->config().img_size);
  EngineClient a(engine), b(engine), c(engine);
  std::promise<Outcome> rb, rc, rc2;
  Blocker hold(a);
  // b's styles are of the wrong shape; c's crop is of the wrong size (its forward fails).
  TranslationJob bad_styles = job(crops(1, size, 1), 1, &rb);
  bad_styles.styles = [](Translator&) { return at::zeros({3, 7}); };
  b.submit(std::move(bad_styles), true);
  c.submit(job(crops(1, size / 2, 2), 2, &rc), true);
  std::promise<Outcome> ra;
  a.submit(job(crops(1, size, 3), 3, &ra), true);
  hold.release();
  const Outcome ob = rb.get_future().get(), oc = rc.get_future().get(), oa = ra.get_future().get();
  EXPECT_TRUE(ob.failed);
  EXPECT_TRUE(oc.failed);
  EXPECT_NE(oc.error.find("size"), std::string::npos) << oc.error;
  ASSERT_FALSE(oa.failed) << oa.error;
  EXPECT_EQ(oa.translated.size(), 1u);
  // The engine goes on for everyone.
  c.submit(job(crops(1, size, 4), 4, &rc2), true);
  EXPECT_FALSE(rc2.get_future().get().failed);
}

TEST_F(SharedEngineTest, StreamsTakeTurnsAndLiveNeverWaitsBehindAFilesBacklog) {
  auto engine = SharedEngine::acquire(one_lane());
  const int size = static_cast<int>(engine->config().img_size);
  EngineClient a(engine), b(engine), l(engine);
  std::vector<int> order;  // written by the engine thread only
  std::vector<std::promise<Outcome>> results(9);
  {
    Blocker hold(a);
    for (int i = 0; i < 6; ++i) a.submit(job(crops(1, size, i), 1, &results[i], &order, 10 + i), false);
    for (int i = 0; i < 2; ++i) b.submit(job(crops(1, size, 20 + i), 2, &results[6 + i], &order, 20 + i), false);
    l.submit(job(crops(1, size, 30), 3, &results[8], &order, 30), true);
    hold.release();
  }
  a.wait_idle();
  b.wait_idle();
  l.wait_idle();
  ASSERT_EQ(order.size(), 9u);
  auto position = [&](int tag) { return std::find(order.begin(), order.end(), tag) - order.begin(); };
  EXPECT_EQ(position(30), 0) << "the live frame goes first, before any of the files' backlog";
  EXPECT_LE(position(20), 2) << "b's first frame waits for one of a's at most";
  EXPECT_LE(position(21), 4);
  for (int i = 0; i + 1 < 6; ++i) EXPECT_LT(position(10 + i), position(11 + i)) << "a's frames in order";
}

TEST_F(SharedEngineTest, BatchTimeoutWaitsForTheOtherLiveStreamsOnly) {
  auto engine = SharedEngine::acquire(one_lane());
  const int size = static_cast<int>(engine->config().img_size);
  EngineClient a(engine), b(engine);
  // Both streams are known to be live.
  for (EngineClient* c : {&a, &b}) {
    std::promise<Outcome> r;
    c->submit(job(crops(1, size, 0), 1, &r), true);
    r.get_future().get();
  }
  // a's frame may wait 3 s for b's: b comes 100 ms later and they share a forward.
  std::promise<Outcome> ra, rb;
  a.submit(job(crops(1, size, 1), 1, &ra), true, 3s);
  std::this_thread::sleep_for(100ms);
  b.submit(job(crops(1, size, 2), 2, &rb), true, 3s);
  const Outcome oa = ra.get_future().get(), ob = rb.get_future().get();
  EXPECT_EQ(oa.info.streams, 2);
  EXPECT_GE(oa.info.queued_ms, 90.0);
  EXPECT_LT(oa.info.queued_ms, 2500.0) << "the batch ran when b's frame came, not at the deadline";
  // Nothing comes from b: a's frame runs alone at its deadline.
  std::promise<Outcome> rc;
  a.submit(job(crops(1, size, 3), 1, &rc), true, 150ms);
  const Outcome oc = rc.get_future().get();
  EXPECT_EQ(oc.info.streams, 1);
  EXPECT_GE(oc.info.queued_ms, 140.0);
  // Without a timeout, nothing waits.
  std::promise<Outcome> rd;
  a.submit(job(crops(1, size, 4), 1, &rd), true);
  EXPECT_LT(rd.get_future().get().info.queued_ms, 100.0);
}

TEST_F(SharedEngineTest, FilesOfSeveralStreamsRunAtOnceOnLanesAndStayExact) {
  auto engine = SharedEngine::acquire(options());
  const int size = static_cast<int>(engine->config().img_size);
  EngineClient a(engine), b(engine), c(engine);
  EXPECT_EQ(engine->lanes(), 3) << "a lane per stream on the CPU";
  // Each job's styles take 100 ms (on its lane, before the forward): with lanes, jobs of
  // different streams overlap in time; a stream's own never do.
  struct Span {
    int client;
    std::chrono::steady_clock::time_point begin, end;
  };
  std::mutex lock;
  std::vector<Span> spans;
  std::vector<std::promise<Outcome>> results(6);
  EngineClient* clients[] = {&a, &b, &c};
  for (int k = 0; k < 6; ++k) {
    TranslationJob j = job(crops(1, size, k), 7 + k, &results[k]);
    auto styles = j.styles;
    const int client = k % 3;
    j.styles = [&, styles, client](Translator& t) {
      const auto begin = std::chrono::steady_clock::now();
      std::this_thread::sleep_for(100ms);
      at::Tensor s = styles(t);
      std::lock_guard<std::mutex> lk(lock);
      spans.push_back({client, begin, std::chrono::steady_clock::now()});
      return s;
    };
    clients[client]->submit(std::move(j), /*live=*/false);
  }
  std::vector<Outcome> got;
  for (auto& r : results) got.push_back(r.get_future().get());
  auto overlap = [](const Span& x, const Span& y) { return x.begin < y.end && y.begin < x.end; };
  int across = 0;
  for (size_t i = 0; i < spans.size(); ++i)
    for (size_t j = i + 1; j < spans.size(); ++j) {
      if (spans[i].client == spans[j].client) EXPECT_FALSE(overlap(spans[i], spans[j])) << "a stream's jobs ran at once";
      else across += overlap(spans[i], spans[j]);
    }
  EXPECT_GT(across, 0) << "no two streams' jobs ran at once";
  // The same bytes as one lane gives.
  auto single = SharedEngine::acquire(options(/*share=*/false, /*cpu_lanes=*/1));
  EngineClient solo(single);
  for (int k = 0; k < 6; ++k) {
    std::promise<Outcome> r;
    solo.submit(job(crops(1, size, k), 7 + k, &r), false);
    const Outcome o = r.get_future().get();
    ASSERT_FALSE(got[k].failed) << got[k].error;
    EXPECT_TRUE(same_bytes(got[k].translated[0], o.translated[0])) << "job " << k;
  }
}

// ---- Processors on a shared engine ---------------------------------------------------------------

StyleOptions latent(const std::string& domain, uint64_t seed, bool per_face = false) {
  StyleOptions o;
  o.domain = domain;
  o.seed = seed;
  o.per_face = per_face;
  return o;
}

std::vector<cv::Mat> megamind_frames(int count) {
  const std::string path = "/usr/share/doc/opencv-doc/examples/data/Megamind.avi";
  std::vector<cv::Mat> frames;
  if (!fs::exists(path)) return frames;
  cv::VideoCapture cap(path);
  cv::Mat bgr;
  while (static_cast<int>(frames.size()) < count && cap.read(bgr)) {
    cv::Mat rgb;
    cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
    frames.push_back(rgb);
  }
  return frames;
}

// The frames through `p` as a file stream (copies; pushed and popped with overlap).
std::vector<cv::Mat> convert(Processor& p, const std::vector<cv::Mat>& frames, bool live = false) {
  std::vector<cv::Mat> out;
  for (const cv::Mat& f : frames) out.push_back(f.clone());
  StreamOptions s;
  s.live = live;
  p.set_stream(s);
  int popped = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    FrameView v{out[i].data, out[i].cols, out[i].rows, static_cast<int>(out[i].step[0]), PixelLayout::kRGB};
    p.push(v, FrameSettings{.timestamp_s = static_cast<double>(i) / 25}, i);
    while (auto done = p.pop(false)) ++popped;
  }
  while (auto done = p.pop(true)) ++popped;
  EXPECT_EQ(popped, static_cast<int>(out.size()));
  return out;
}

TEST_F(SharedEngineTest, AFileBesideOtherStreamsGivesTheBytesItGivesAlone) {
  const std::vector<cv::Mat> frames = megamind_frames(10);
  if (frames.empty()) GTEST_SKIP() << "Megamind.avi (Debian package opencv-doc) is not installed";
  AlignOptions align;
  const StyleOptions style = latent("male", 5);
  std::vector<cv::Mat> alone;
  {
    Processor p(options(/*share=*/false), align);
    p.set_style(style);
    alone = convert(p, frames);
  }
  const long loaded = SharedEngine::models_loaded();
  Processor x(options(), align), y(options(), align), z(options(), align);
  EXPECT_EQ(SharedEngine::models_loaded(), loaded + 1) << "three streams, one model";
  EXPECT_EQ(x.counters().engine_streams, 3);
  x.set_style(style);
  y.set_style(latent("female", 9));
  z.set_style(latent("female", 1, true));
  auto other_file = std::async(std::launch::async, [&] { return convert(y, frames); });
  auto live = std::async(std::launch::async, [&] { return convert(z, frames, /*live=*/true); });
  const std::vector<cv::Mat> shared = convert(x, frames);
  const std::vector<cv::Mat> y_out = other_file.get();
  live.get();
  int changed = 0;
  for (size_t i = 0; i < frames.size(); ++i) {
    EXPECT_TRUE(same_bytes(shared[i], alone[i])) << "frame " << i;
    changed += same_bytes(shared[i], frames[i]) ? 0 : 1;
  }
  EXPECT_GT(changed, 5) << "the faces were translated";
  EXPECT_FALSE(same_bytes(y_out[5], shared[5])) << "each stream keeps its own style";
}

TEST_F(SharedEngineTest, OneStreamsBadSettingOrEndLeavesTheOthersRunning) {
  const std::vector<cv::Mat> frames = megamind_frames(6);
  if (frames.empty()) GTEST_SKIP() << "Megamind.avi (Debian package opencv-doc) is not installed";
  AlignOptions align;
  auto x = std::make_unique<Processor>(options(), align);
  Processor y(options(), align);
  x->set_style(latent("female", 1));
  y.set_style(latent("male", 2));
  EXPECT_THROW(x->set_style(latent("cat", 0)), ProcessorError);
  // x stops with frames inside while y goes on.
  std::vector<cv::Mat> x_frames;
  for (const auto& f : frames) x_frames.push_back(f.clone());
  for (size_t i = 0; i < 3; ++i) {
    FrameView v{x_frames[i].data, x_frames[i].cols, x_frames[i].rows, static_cast<int>(x_frames[i].step[0]), PixelLayout::kRGB};
    x->push(v, FrameSettings{}, i);
  }
  auto y_run = std::async(std::launch::async, [&] { return convert(y, frames); });
  x->discard();
  x.reset();
  const std::vector<cv::Mat> y_out = y_run.get();
  int changed = 0;
  for (size_t i = 0; i < frames.size(); ++i) changed += same_bytes(y_out[i], frames[i]) ? 0 : 1;
  EXPECT_GT(changed, 3);
  EXPECT_EQ(y.domains().size(), 2u);
}

}  // namespace
