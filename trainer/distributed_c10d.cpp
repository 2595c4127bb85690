// The process groups of data-parallel training: LibTorch's c10d (TCPStore rendezvous,
// ProcessGroupGloo, ProcessGroupNCCL). Built with -DUSE_C10D_GLOO (Debian's libgloo-dev headers)
// and, when the NCCL header is found, -DUSE_C10D_NCCL.
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef USE_C10D_NCCL
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <cstdlib>
#include <stdexcept>

#include "distributed.h"

namespace starganv2 {

bool distributed_available() { return true; }

std::string distributed_backends() {
#ifdef USE_C10D_NCCL
  return "gloo, nccl";
#else
  return "gloo";
#endif
}

namespace {

c10d::ReduceOp to_c10d(ReduceOp op) {
  switch (op) {
    case ReduceOp::kMax:
      return c10d::ReduceOp::MAX;
    case ReduceOp::kMin:
      return c10d::ReduceOp::MIN;
    case ReduceOp::kSum:
    default:
      return c10d::ReduceOp::SUM;
  }
}

// Waits for a collective; any failure (Gloo's connection errors, c10d's timeouts) becomes a
// CommunicationError.
void wait_for(const c10::intrusive_ptr<c10d::Work>& work) {
  try {
    work->wait();
  } catch (const c10::Error& e) {
    throw CommunicationError(e.what_without_backtrace());
  } catch (const std::exception& e) {
    throw CommunicationError(e.what());
  }
}

class Pending : public PendingReduce {
 public:
  explicit Pending(c10::intrusive_ptr<c10d::Work> work) : work_(std::move(work)) {}
  void wait() override { wait_for(work_); }

 private:
  c10::intrusive_ptr<c10d::Work> work_;
};

class C10dCommunicator : public Communicator {
 public:
  C10dCommunicator(const DistributedEnv& env, torch::Device device, std::chrono::milliseconds timeout)
      : env_(env), timeout_(timeout) {
    c10d::TCPStoreOptions so;
    so.port = static_cast<uint16_t>(env.master_port);
    // Under torchrun the agent hosts the store at MASTER_ADDR:MASTER_PORT; launched by hand,
    // rank 0 hosts it (as torch.distributed's env:// rendezvous).
    so.isServer = !env.agent_store && env.rank == 0;
    // Every rank counts itself in; the host waits for all (as torch.distributed's TCPStore).
    so.numWorkers = env.world_size;
    so.waitWorkers = true;
    so.timeout = timeout;
    so.multiTenant = true;
    auto tcp = c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
    store_ = c10::make_intrusive<c10d::PrefixStore>("starganv2/attempt_" + env.restart_count + "/", tcp);

    auto gloo = [&](const c10::intrusive_ptr<c10d::Store>& store) {
      auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
      if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname)
        opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
      else
        opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      return c10::make_intrusive<c10d::ProcessGroupGloo>(store, env.rank, env.world_size, opts);
    };
    if (device.is_cuda()) {
#ifdef USE_C10D_NCCL
      c10::cuda::set_device(static_cast<c10::DeviceIndex>(device.index()));
      auto opts = c10d::ProcessGroupNCCL::Options::create();
      opts->timeout = timeout;
      pg_ = c10::make_intrusive<c10d::ProcessGroupNCCL>(store_, env.rank, env.world_size, opts);
      // Small control messages (stop flags, loss means, hashes) go over Gloo on the CPU, so
      // that they do not make the host wait for the GPU every iteration.
      control_ = gloo(c10::make_intrusive<c10d::PrefixStore>("control/", store_));
      backend_ = "nccl";
#else
      throw std::runtime_error("this starganv2-train was built without NCCL (nccl.h was not found at build time); "
                               "train on CUDA with one process, or rebuild with the nvidia-nccl headers");
#endif
    } else {
      pg_ = gloo(store_);
      control_ = pg_;
      backend_ = "gloo";
    }
  }

  int rank() const override { return env_.rank; }
  int world_size() const override { return env_.world_size; }
  const DistributedEnv& env() const override { return env_; }
  std::string backend() const override { return backend_; }
  std::chrono::milliseconds timeout() const override { return timeout_; }

  void allreduce(at::Tensor& t, ReduceOp op) override {
    std::vector<at::Tensor> v{t};
    c10d::AllreduceOptions o;
    o.reduceOp = to_c10d(op);
    wait_for((t.is_cpu() ? control_ : pg_)->allreduce(v, o));
  }
  std::unique_ptr<PendingReduce> allreduce_async(at::Tensor& t) override {
    std::vector<at::Tensor> v{t};
    return std::make_unique<Pending>(pg_->allreduce(v, c10d::AllreduceOptions()));
  }
  void broadcast(at::Tensor& t, int root) override {
    std::vector<at::Tensor> v{t};
    c10d::BroadcastOptions o;
    o.rootRank = root;
    wait_for(pg_->broadcast(v, o));
  }
  void store_set(const std::string& key, const std::string& value) override {
    store_->set(key, std::vector<uint8_t>(value.begin(), value.end()));
  }
  std::optional<std::string> store_get_nowait(const std::string& key) override {
    if (!store_->check({key})) return std::nullopt;
    const auto bytes = store_->get(key);
    return std::string(bytes.begin(), bytes.end());
  }

 private:
  DistributedEnv env_;
  std::chrono::milliseconds timeout_;
  std::string backend_;
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::Backend> pg_;       // gradients: NCCL on CUDA, else Gloo
  c10::intrusive_ptr<c10d::Backend> control_;  // CPU tensors: Gloo
};

}  // namespace

std::unique_ptr<Communicator> make_communicator(const DistributedEnv& env, torch::Device device,
                                                std::chrono::milliseconds timeout) {
  return std::make_unique<C10dCommunicator>(env, device, timeout);
}

}  // namespace starganv2
