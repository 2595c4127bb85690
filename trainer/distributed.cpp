// The parts of data-parallel training that need only the Communicator interface: torchrun's
// environment, gradient buckets, the replica hash. The process groups are in
// distributed_c10d.cpp (or distributed_none.cpp in a build without -Ddistributed).
#include "distributed.h"

#include <ATen/ATen.h>
#include <torch/autograd.h>

#include <chrono>
#include <cstdlib>
#include <limits>
#include <stdexcept>

namespace starganv2 {

namespace {

std::optional<std::string> env_string(const char* name) {
  const char* v = std::getenv(name);
  if (!v) return std::nullopt;
  return std::string(v);
}

int env_int(const char* name, std::optional<int> fallback, int min, int max) {
  const auto v = env_string(name);
  if (!v || v->empty()) {
    if (fallback) return *fallback;
    throw std::invalid_argument(std::string(name) + " is not set (WORLD_SIZE is: start with torchrun, or set RANK, "
                                                    "WORLD_SIZE, MASTER_ADDR and MASTER_PORT together)");
  }
  size_t used = 0;
  long value = 0;
  try {
    value = std::stol(*v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != v->size() || value < min || value > max)
    throw std::invalid_argument(std::string(name) + "=" + *v + " is not an integer in [" + std::to_string(min) + ", " +
                                std::to_string(max) + "]");
  return static_cast<int>(value);
}

}  // namespace

std::optional<DistributedEnv> distributed_env_from_environment() {
  if (!env_string("WORLD_SIZE")) return std::nullopt;
  DistributedEnv e;
  e.world_size = env_int("WORLD_SIZE", std::nullopt, 1, 1 << 20);
  e.rank = env_int("RANK", std::nullopt, 0, e.world_size - 1);
  e.local_rank = env_int("LOCAL_RANK", e.rank, 0, e.world_size - 1);
  e.local_world_size = env_int("LOCAL_WORLD_SIZE", e.world_size, 1, e.world_size);
  if (e.local_rank >= e.local_world_size)
    throw std::invalid_argument("LOCAL_RANK " + std::to_string(e.local_rank) + " >= LOCAL_WORLD_SIZE " +
                                std::to_string(e.local_world_size));
  if (e.world_size > 1) {
    e.master_addr = env_string("MASTER_ADDR").value_or("");
    if (e.master_addr.empty()) throw std::invalid_argument("MASTER_ADDR is not set (WORLD_SIZE is " + std::to_string(e.world_size) + ")");
    e.master_port = env_int("MASTER_PORT", std::nullopt, 1, 65535);
  } else {
    e.master_addr = env_string("MASTER_ADDR").value_or("127.0.0.1");
    e.master_port = env_int("MASTER_PORT", 29500, 1, 65535);
  }
  e.agent_store = env_string("TORCHELASTIC_USE_AGENT_STORE").value_or("") == "True";
  e.restart_count = env_string("TORCHELASTIC_RESTART_COUNT").value_or("0");
  return e;
}

std::vector<double> Communicator::mean(const std::vector<double>& values, torch::Device device) {
  at::Tensor t = at::tensor(values, at::TensorOptions().dtype(at::kDouble)).to(device);
  allreduce(t, ReduceOp::kSum);
  t = t.cpu() / static_cast<double>(world_size());
  return std::vector<double>(t.data_ptr<double>(), t.data_ptr<double>() + t.numel());
}

std::pair<int64_t, int> Communicator::any(int64_t flag, torch::Device device) {
  at::Tensor t = at::tensor({flag, flag ? static_cast<int64_t>(rank()) : std::numeric_limits<int64_t>::max()},
                            at::TensorOptions().dtype(at::kLong))
                     .to(device);
  at::Tensor first = t.narrow(0, 1, 1).clone();
  at::Tensor value = t.narrow(0, 0, 1).clone();
  allreduce(value, ReduceOp::kMax);
  allreduce(first, ReduceOp::kMin);
  const int64_t v = value.cpu().item<int64_t>(), r = first.cpu().item<int64_t>();
  return {v, v ? static_cast<int>(r) : -1};
}

// ---------------------------------------------------------------------------------------------
// Gradient buckets

struct GradientBuckets::Impl {
  struct Slot {
    at::Tensor param;
    int bucket;
    int64_t offset, numel;
    bool ready = false;
  };
  struct Bucket {
    const torch::nn::Module* net;
    at::Tensor flat;
    std::vector<int> slots;
    int pending = 0;
    bool armed = false, launched = false;
    std::unique_ptr<PendingReduce> work;
  };

  Communicator& comm;
  Stats* stats;
  std::vector<Slot> slots;
  std::vector<Bucket> buckets;
  std::vector<int> order;  // armed buckets in launch order (the same on every rank)
  size_t next_launch = 0;
  bool active = false;
  std::vector<std::pair<at::Tensor, unsigned>> hooks;

  Impl(Communicator& c, Stats* s) : comm(c), stats(s) {}

  void launch(Bucket& b, bool early) {
    b.launched = true;
    b.work = comm.allreduce_async(b.flat);
    ++stats->buckets;
    if (early) ++stats->early;
    stats->bytes += b.flat.numel() * static_cast<int64_t>(b.flat.element_size());
  }

  // Starts the all-reduces of full buckets, strictly in `order` so that every rank issues the
  // collectives in the same sequence whatever order autograd finishes the gradients in.
  void launch_ready(bool early) {
    while (next_launch < order.size() && buckets[order[next_launch]].pending == 0) {
      launch(buckets[order[next_launch]], early);
      ++next_launch;
    }
  }

  void on_grad(int s, const at::Tensor& grad) {
    if (!active) return;
    Slot& slot = slots[s];
    Bucket& b = buckets[slot.bucket];
    if (!b.armed) return;
    TORCH_CHECK(!b.launched, "gradient bucket: a gradient arrived after its bucket was sent");
    at::Tensor dst = b.flat.narrow(0, slot.offset, slot.numel);
    if (slot.ready) {
      dst.add_(grad.reshape({-1}));  // cannot happen for a leaf (autograd sums first); kept exact anyway
      return;
    }
    dst.copy_(grad.reshape({-1}));
    slot.ready = true;
    --b.pending;
    launch_ready(/*early=*/true);
  }
};

GradientBuckets::GradientBuckets(Communicator& comm, const Networks& nets, int64_t bucket_bytes)
    : impl_(std::make_unique<Impl>(comm, &stats_)) {
  Impl& m = *impl_;
  for (const auto& [name, net] : nets.named()) {
    std::vector<at::Tensor> params;
    for (const auto& p : net->parameters(/*recurse=*/true))
      if (p.requires_grad()) params.push_back(p);
    // Reverse registration order ~ the order the backward produces the gradients; the first
    // bucket small so that communication starts early (as DDP's 1 MB first bucket).
    int64_t cap = std::min<int64_t>(bucket_bytes, 1 << 20), filled = 0;
    int current = -1;
    for (auto it = params.rbegin(); it != params.rend(); ++it) {
      const int64_t bytes = it->numel() * static_cast<int64_t>(it->element_size());
      if (current < 0 || (filled > 0 && filled + bytes > cap) ||
          m.buckets[current].flat.scalar_type() != it->scalar_type()) {
        if (current >= 0) cap = bucket_bytes;
        m.buckets.push_back(Impl::Bucket{net, at::Tensor(), {}, 0, false, false, nullptr});
        current = static_cast<int>(m.buckets.size()) - 1;
        m.buckets[current].flat = at::empty({0}, it->options());
        filled = 0;
      }
      Impl::Slot slot{*it, current, filled / static_cast<int64_t>(it->element_size()), it->numel()};
      m.buckets[current].slots.push_back(static_cast<int>(m.slots.size()));
      m.slots.push_back(slot);
      filled += bytes;
      m.buckets[current].flat = at::empty({filled / static_cast<int64_t>(it->element_size())}, it->options());
    }
  }
  for (size_t s = 0; s < m.slots.size(); ++s) {
    Impl* impl = impl_.get();
    const int index = static_cast<int>(s);
    const unsigned h = m.slots[s].param.register_hook([impl, index](const at::Tensor& grad) { impl->on_grad(index, grad); });
    m.hooks.emplace_back(m.slots[s].param, h);
  }
}

GradientBuckets::~GradientBuckets() {
  for (auto& [param, h] : impl_->hooks) {
    try {
      param.remove_hook(h);
    } catch (...) {
    }
  }
}

void GradientBuckets::begin(const std::vector<torch::nn::Module*>& stepping) {
  Impl& m = *impl_;
  m.order.clear();
  m.next_launch = 0;
  for (auto& b : m.buckets) {
    b.armed = false;
    b.launched = false;
    b.work.reset();
  }
  for (const torch::nn::Module* net : stepping)
    for (size_t i = 0; i < m.buckets.size(); ++i) {
      Impl::Bucket& b = m.buckets[i];
      if (b.net != net) continue;
      b.armed = true;
      b.pending = static_cast<int>(b.slots.size());
      for (int s : b.slots) m.slots[s].ready = false;
      m.order.push_back(static_cast<int>(i));
    }
  m.active = true;
}

void GradientBuckets::finish() {
  Impl& m = *impl_;
  m.active = false;
  // Parameters that got no gradient (none in the official networks) count as zero here and
  // keep no gradient afterwards, as without synchronisation.
  for (size_t k = m.next_launch; k < m.order.size(); ++k) {
    Impl::Bucket& b = m.buckets[m.order[k]];
    for (int s : b.slots)
      if (!m.slots[s].ready) b.flat.narrow(0, m.slots[s].offset, m.slots[s].numel).zero_();
    b.pending = 0;
  }
  m.launch_ready(/*early=*/false);
  const auto start = std::chrono::steady_clock::now();
  const double scale = 1.0 / static_cast<double>(m.comm.world_size());
  for (int i : m.order) {
    Impl::Bucket& b = m.buckets[i];
    b.work->wait();
    b.work.reset();
    b.flat.mul_(scale);
  }
  stats_.wait_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  torch::NoGradGuard no_grad;
  for (int i : m.order) {
    Impl::Bucket& b = m.buckets[i];
    for (int s : b.slots) {
      Impl::Slot& slot = m.slots[s];
      if (!slot.ready) continue;
      at::Tensor grad = slot.param.mutable_grad();
      const at::Tensor mean = b.flat.narrow(0, slot.offset, slot.numel).view(slot.param.sizes());
      if (grad.defined()) grad.copy_(mean);
      else slot.param.mutable_grad() = mean.clone();
    }
    b.armed = false;
  }
  ++stats_.backwards;
}

int64_t GradientBuckets::bytes_of(const torch::nn::Module* net) const {
  int64_t bytes = 0;
  for (const auto& b : impl_->buckets)
    if (b.net == net) bytes += b.flat.numel() * static_cast<int64_t>(b.flat.element_size());
  return bytes;
}

int GradientBuckets::num_buckets() const { return static_cast<int>(impl_->buckets.size()); }

// ---------------------------------------------------------------------------------------------

int64_t parameter_hash(const Networks& nets) {
  torch::NoGradGuard no_grad;
  uint64_t h = 1469598103934665603ULL;
  for (const auto& [name, net] : nets.named())
    for (const auto& p : net->parameters(/*recurse=*/true)) {
      const at::Tensor flat = p.detach().contiguous().reshape({-1});
      at::Tensor bits;
      if (flat.element_size() == 4) bits = flat.view(at::kInt).to(at::kLong);
      else if (flat.element_size() == 2) bits = flat.view(at::kShort).to(at::kLong);
      else bits = flat.view(at::kLong);
      // Position-weighted sum of the bit patterns (integer sums wrap and do not depend on order).
      const at::Tensor weight = at::arange(flat.numel(), bits.options()).remainder(65521).add_(1);
      const uint64_t v = static_cast<uint64_t>(bits.mul(weight).sum().item<int64_t>());
      h = (h ^ v) * 1099511628211ULL;
    }
  return static_cast<int64_t>(h);
}

void check_replicas(Communicator& comm, const Networks& nets, int64_t step, torch::Device device) {
  const int64_t h = parameter_hash(nets);
  at::Tensor hi = at::tensor({h}, at::TensorOptions().dtype(at::kLong)).to(device);
  at::Tensor lo = hi.clone();
  comm.allreduce(hi, ReduceOp::kMax);
  comm.allreduce(lo, ReduceOp::kMin);
  const int64_t a = hi.cpu().item<int64_t>(), b = lo.cpu().item<int64_t>();
  if (a != b)
    throw std::runtime_error("the replicas' weights differ at iteration " + std::to_string(step) +
                             " (parameter hashes " + std::to_string(b) + " .. " + std::to_string(a) +
                             "; this rank " + std::to_string(h) + "): a non-deterministic kernel or a bug");
}

}  // namespace starganv2
