// Data-parallel training on torch.distributed's C++ engine (c10d): one process per GPU (or per
// CPU replica), started by torchrun, which sets RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR and
// MASTER_PORT (and hosts the rendezvous store). ProcessGroupNCCL on CUDA devices,
// ProcessGroupGloo on the CPU. This header needs LibTorch only; the c10d parts live in
// distributed.cpp, built with -Ddistributed (without it, make_communicator throws).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <torch/nn/module.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "solver.h"

namespace starganv2 {

// True when this build has the c10d process groups (meson -Ddistributed).
bool distributed_available();
// "gloo" or "gloo, nccl" (what this build can use), or "" without -Ddistributed.
std::string distributed_backends();

// torchrun's view of this process.
struct DistributedEnv {
  int rank = 0, world_size = 1;
  int local_rank = 0, local_world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  bool agent_store = false;     // TORCHELASTIC_USE_AGENT_STORE=True: torchrun's agent hosts the store
  std::string restart_count = "0";  // TORCHELASTIC_RESTART_COUNT
};

// Reads RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT,
// TORCHELASTIC_USE_AGENT_STORE, TORCHELASTIC_RESTART_COUNT. nullopt when WORLD_SIZE is not set
// (a plain run). Throws std::invalid_argument for missing or inconsistent values.
std::optional<DistributedEnv> distributed_env_from_environment();

enum class ReduceOp { kSum, kMax, kMin };

// A collective failed: a peer stopped, crashed or did not answer within the timeout.
struct CommunicationError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// An all-reduce in flight.
class PendingReduce {
 public:
  virtual ~PendingReduce() = default;
  virtual void wait() = 0;  // throws on a failed or timed-out collective
};

// One rank's handle on the process group and its store.
class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  virtual const DistributedEnv& env() const = 0;
  virtual std::string backend() const = 0;  // "gloo" or "nccl"
  virtual std::chrono::milliseconds timeout() const = 0;

  // Collectives: every rank calls them in the same order. In place. allreduce_async and
  // broadcast take tensors on the training device (NCCL: CUDA); allreduce also takes CPU
  // tensors, which go over a Gloo group (no wait for the GPU). Throw (c10::Error) when a peer
  // is gone or the timeout passes.
  virtual void allreduce(at::Tensor& t, ReduceOp op = ReduceOp::kSum) = 0;
  virtual std::unique_ptr<PendingReduce> allreduce_async(at::Tensor& t) = 0;  // sum
  virtual void broadcast(at::Tensor& t, int root) = 0;

  // The rendezvous key-value store: for messages that must reach every rank even when the
  // collectives cannot (the first error).
  virtual void store_set(const std::string& key, const std::string& value) = 0;
  // The value, or nullopt when the key is not set (does not wait).
  virtual std::optional<std::string> store_get_nowait(const std::string& key) = 0;

  // Helpers on top of the collectives.
  // Mean over ranks of a few numbers (loss values for the log).
  std::vector<double> mean(const std::vector<double>& values, torch::Device device);
  // max over ranks of an integer flag, and the smallest rank that set it (or -1).
  std::pair<int64_t, int> any(int64_t flag, torch::Device device);
};

// Joins the process group described by `env`: TCPStore rendezvous at MASTER_ADDR:MASTER_PORT
// (the agent's store under torchrun, else rank 0 hosts it), NCCL when `device` is CUDA (device
// must be cuda:LOCAL_RANK), Gloo on the CPU. `timeout` bounds rendezvous and every collective.
// Throws std::runtime_error when the build has no c10d process groups.
std::unique_ptr<Communicator> make_communicator(const DistributedEnv& env, torch::Device device,
                                                std::chrono::milliseconds timeout);

// Averages the gradients of the trained networks across ranks, DDP-style: the parameters of
// each network are packed, in reverse order (the order the backward produces them), into flat
// buckets of about `bucket_bytes`; a hook on every parameter copies its gradient into its
// bucket as soon as autograd has it, and a full bucket is all-reduced asynchronously while the
// backward goes on. finish() waits for the rest and writes the means back into .grad.
class GradientBuckets : public GradientSync {
 public:
  GradientBuckets(Communicator& comm, const Networks& nets, int64_t bucket_bytes = 25 << 20);
  ~GradientBuckets() override;
  void begin(const std::vector<torch::nn::Module*>& stepping) override;
  void finish() override;

  struct Stats {
    int64_t backwards = 0;       // backward passes synchronised
    int64_t bytes = 0;           // bytes all-reduced (payload, per rank)
    int64_t buckets = 0;         // all-reduces started
    int64_t early = 0;           // of which started before the backward ended
    double wait_s = 0;           // time finish() waited for communication (not hidden by compute)
  };
  const Stats& stats() const { return stats_; }
  void reset_stats() { stats_ = {}; }
  // Bytes of all buckets of `net` (for the byte counts per iteration).
  int64_t bytes_of(const torch::nn::Module* net) const;
  int num_buckets() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  Stats stats_;
};

// A hash of every trained parameter (bit patterns), equal across ranks exactly when the
// replicas are bit-identical.
int64_t parameter_hash(const Networks& nets);

// Throws std::runtime_error naming the step when the replicas' parameters differ.
void check_replicas(Communicator& comm, const Networks& nets, int64_t step, torch::Device device);

}  // namespace starganv2
