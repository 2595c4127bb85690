// What the shared engine (shared_engine.h) runs next, as a rule apart from LibTorch so that it can
// be tested on made-up jobs.
//
// Every stream of the engine (a "client") queues its translation jobs in frame order; a job is a
// frame's faces. The engine takes at most the oldest job of each client into a batch, so a
// stream's frames are translated in their order, and:
//   - Live jobs are batchable: the oldest job of every client with a live job goes into one
//     forward (up to max_faces faces), taken round-robin from the client after the last one served
//     last time, so that when the cap cuts a batch short, no live stream is always the one
//     left out.
//   - File jobs run alone, one frame's faces per forward, exactly as an element with an engine of
//     its own runs them: the bytes of a file must not depend on what other streams do, and on the
//     CPU a crop's output can differ in the last bit with the batch around it (measured: 1 byte of
//     a 64 px crop between batches of 7 and 8). Files are served round-robin among themselves.
//   - When both kinds wait, live batches and file jobs alternate: a live stream waits at most for
//     one file frame's forward, however far behind a file stream is, and files still get every
//     second forward, so neither kind starves the other.
//   - An engine with several lanes (threads running forwards at once, shared_engine.h) takes
//     batches for each; a client whose previous batch is still running waits (its frames run in
//     order, one at a time), so next() skips it until done(client).
#pragma once

#include <chrono>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <utility>
#include <vector>

namespace starganv2::plugin {

template <typename Job>
class BatchQueue {
 public:
  using Clock = std::chrono::steady_clock;

  struct Entry {
    int client = 0;
    bool live = false;  // batchable with other live jobs
    int faces = 0;
    Clock::time_point queued;
    // How long the engine may hold this job back for other live streams' faces to join its batch.
    std::chrono::microseconds max_wait{0};
    Job job;
  };

  void push(Entry entry) { queues_[entry.client].push_back(std::move(entry)); }

  bool empty() const {
    for (const auto& [client, q] : queues_)
      if (!q.empty()) return false;
    return true;
  }

  // Whether next() would give a batch now (some client with a job is not running).
  bool ready() const {
    for (const auto& [client, q] : queues_)
      if (eligible(client, q)) return true;
    return false;
  }

  // A batch of `client` taken by next() has finished: its next job may run.
  void done(int client) { running_.erase(client); }

  // Whether the next batch will be a live one.
  bool next_is_live() const {
    const bool live = any_head(true), file = any_head(false);
    return live && (!file || !last_was_live_);
  }

  // Clients whose oldest job is live.
  int live_heads() const {
    int n = 0;
    for (const auto& [client, q] : queues_)
      if (eligible(client, q) && q.front().live) ++n;
    return n;
  }

  // The earliest time by which the next live batch must run: the first of its heads' queued +
  // max_wait. Empty when the next batch is not live.
  std::optional<Clock::time_point> live_deadline() const {
    if (!next_is_live()) return std::nullopt;
    std::optional<Clock::time_point> deadline;
    for (const auto& [client, q] : queues_) {
      if (!eligible(client, q) || !q.front().live) continue;
      const Clock::time_point t = q.front().queued + q.front().max_wait;
      if (!deadline || t < *deadline) deadline = t;
    }
    return deadline;
  }

  // Takes the next batch out of the queue (see the rules above): one file job, or the oldest job
  // of as many live clients as fit into max_faces (always at least one); its clients count as
  // running until done(). Empty when nothing is ready.
  std::vector<Entry> next(int max_faces) {
    std::vector<Entry> batch;
    if (!ready()) return batch;
    const bool live = next_is_live();
    int& last = live ? last_live_client_ : last_file_client_;
    int faces = 0;
    for (int client : round_robin(last)) {
      auto& q = queues_[client];
      if (!eligible(client, q) || q.front().live != live) continue;
      if (!batch.empty() && (!live || faces + q.front().faces > max_faces)) continue;
      faces += q.front().faces;
      batch.push_back(std::move(q.front()));
      q.pop_front();
    }
    last = batch.back().client;  // the next batch starts with the client after the last served
    last_was_live_ = live;
    for (const Entry& e : batch) running_.insert(e.client);
    return batch;
  }

  // Drops a client's queue when it leaves (it has none left normally: it waits for its jobs).
  void forget(int client) {
    queues_.erase(client);
    running_.erase(client);
  }

 private:
  bool eligible(int client, const std::deque<Entry>& q) const { return !q.empty() && !running_.contains(client); }

  bool any_head(bool live) const {
    for (const auto& [client, q] : queues_)
      if (eligible(client, q) && q.front().live == live) return true;
    return false;
  }

  // Every client once, starting with the first after `last` (clients are numbered in the order
  // they came, so this is fair over time).
  std::vector<int> round_robin(int last) const {
    std::vector<int> order;
    auto start = queues_.upper_bound(last);
    for (auto it = start; it != queues_.end(); ++it) order.push_back(it->first);
    for (auto it = queues_.begin(); it != start; ++it) order.push_back(it->first);
    return order;
  }

  std::map<int, std::deque<Entry>> queues_;
  std::set<int> running_;
  int last_live_client_ = -1;
  int last_file_client_ = -1;
  bool last_was_live_ = false;
};

}  // namespace starganv2::plugin
