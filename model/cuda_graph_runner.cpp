#include "cuda_graph_runner.h"

#include <ATen/ATen.h>

#ifdef STARGANV2_WITH_CUDA
#include <ATen/core/CachingHostAllocator.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#endif

#include <algorithm>
#include <stdexcept>

namespace starganv2 {

struct CudaGraphRunner::Graph {
  int eager_calls = 0;
  at::Tensor in, style, out;  // static buffers the graph reads and writes
#ifdef STARGANV2_WITH_CUDA
  std::unique_ptr<at::cuda::CUDAGraph> graph;
#endif
  bool ready() const {
#ifdef STARGANV2_WITH_CUDA
    return graph != nullptr;
#else
    return false;
#endif
  }
};

bool CudaGraphRunner::has_graph(const Key& key) const {
  for (const auto& [k, g] : graphs_) {
    if (k == key) return g->ready();
  }
  return false;
}

std::vector<CudaGraphRunner::Key> CudaGraphRunner::graph_keys() const {
  std::vector<Key> keys;
  for (const auto& [k, g] : graphs_) {
    if (g->ready()) keys.push_back(k);
  }
  std::sort(keys.begin(), keys.end());
  return keys;
}

#ifdef STARGANV2_WITH_CUDA

namespace alloc = c10::cuda::CUDACachingAllocator;

struct CudaGraphRunner::Cuda {
  // One stream for every capture: the caching allocator hands a freed block only to later
  // allocations on the stream it was allocated on, so captures on different streams could not
  // share the pool's memory at all.
  c10::cuda::CUDAStream capture_stream;
  bool pool_ref_held = false;
};

CudaGraphRunner::CudaGraphRunner(c10::Device device, const Options& options) : device_(device), options_(options) {
  if (!device.is_cuda()) throw std::invalid_argument("CudaGraphRunner needs a CUDA device, got " + device.str());
  if (!device_.has_index()) device_ = c10::Device(c10::kCUDA, c10::cuda::current_device());
  c10::cuda::CUDAGuard guard(device_);
  cuda_ = std::make_unique<Cuda>(Cuda{c10::cuda::getStreamFromPool(/*isHighPriority=*/false, device_.index())});
  if (!options_.graphs) return;
  pool_ = options_.pool != GraphPoolId{0, 0} ? options_.pool : at::cuda::graph_pool_handle();
  // A reference of the runner's own keeps the pool's use count defined between captures, which
  // the clean-up after a failed capture reads. Allocator back ends without pool counting
  // (cudaMallocAsync) refuse; the captures then manage the pool alone.
  try {
    alloc::createOrIncrefPool(device_.index(), pool_);
    cuda_->pool_ref_held = true;
  } catch (const std::exception&) {
  }
}

CudaGraphRunner::~CudaGraphRunner() {
  // Each graph's destruction releases its own reference on the pool; then the runner's.
  graphs_.clear();
  if (cuda_ && cuda_->pool_ref_held) {
    try {
      alloc::releasePool(device_.index(), pool_);
    } catch (const std::exception&) {
    }
  }
}

CudaGraphRunner::Result CudaGraphRunner::run(const Key& key, const at::Tensor& host_input, const at::Tensor& styles,
                                             const Step& step) {
  c10::cuda::CUDAGuard guard(device_);
  Graph* g = nullptr;
  for (auto& [k, graph] : graphs_) {
    if (k == key) g = graph.get();
  }
  if (g && g->ready()) {
    g->in.copy_(host_input, /*non_blocking=*/host_input.is_pinned());
    g->style.copy_(styles);
    g->graph->replay();
    ++replays_;
    return {g->out, true};
  }
  at::Tensor in_dev = host_input.to(device_, /*non_blocking=*/host_input.is_pinned());
  at::Tensor out = step(in_dev, styles);
  ++eager_calls_;
  if (options_.graphs && !sealed_ && !disabled_ && key.batch <= options_.max_batch) {
    if (!g) g = graphs_.emplace_back(key, std::make_unique<Graph>()).second.get();
    if (++g->eager_calls >= std::max(1, options_.warmup_calls)) capture_into(*g, in_dev, styles, step);
  }
  return {out, false};
}

bool CudaGraphRunner::capture(const Key& key, const at::Tensor& host_input, const at::Tensor& styles,
                              const Step& step) {
  if (!options_.graphs || disabled_ || key.batch > options_.max_batch) return false;
  if (has_graph(key)) return true;
  c10::cuda::CUDAGuard guard(device_);
  Graph* g = nullptr;
  for (auto& [k, graph] : graphs_) {
    if (k == key) g = graph.get();
  }
  if (!g) g = graphs_.emplace_back(key, std::make_unique<Graph>()).second.get();
  return capture_into(*g, host_input.to(device_), styles, step);
}

bool CudaGraphRunner::capture_into(Graph& g, const at::Tensor& example_in, const at::Tensor& example_styles,
                                   const Step& step) {
  // Static buffers outside the pool (allocated before capture_begin, on the caller's stream).
  g.in = example_in.clone();
  g.style = example_styles.contiguous().clone();
  c10::cuda::device_synchronize();
  int pool_uses_before = 0;
  if (cuda_->pool_ref_held) pool_uses_before = alloc::getPoolUseCount(device_.index(), pool_);
  auto graph = std::make_unique<at::cuda::CUDAGraph>();
  // The guard outlives the try block: a failed capture must be ended on the stream it began on.
  c10::cuda::CUDAStreamGuard stream_guard(cuda_->capture_stream);
  try {
    // One run on the capture stream first, so that lazy initialisation (cuDNN autotuning,
    // workspaces, this stream's first allocations) happens outside the capture.
    (void)step(g.in, g.style);
    cuda_->capture_stream.synchronize();
    // Thread-local mode: other threads' CUDA calls (another element, the host allocator) do not
    // invalidate this capture, and this thread's illegal calls still do.
    graph->capture_begin(pool_, cudaStreamCaptureModeThreadLocal);
    g.out = step(g.in, g.style);
    graph->capture_end();
    cuda_->capture_stream.synchronize();
  } catch (const std::exception& e) {
    g.graph = std::move(graph);
    abandon_capture(g, pool_uses_before, e);
    return false;
  }
  g.graph = std::move(graph);
  ++captures_;
  return true;
}

void CudaGraphRunner::abandon_capture(Graph& g, int pool_uses_before, const std::exception& why) {
  const c10::DeviceIndex dev = device_.index();
  const cudaStream_t stream = cuda_->capture_stream.stream();
  // A step that threw mid-capture leaves the stream capturing; CUDAGraph::capture_end would
  // throw before it tells the allocator to stop recording, so end the capture here directly.
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(stream, &status) == cudaSuccess && status != cudaStreamCaptureStatusNone) {
    cudaGraph_t partial = nullptr;
    if (cudaStreamEndCapture(stream, &partial) == cudaSuccess && partial != nullptr) (void)cudaGraphDestroy(partial);
  }
  (void)cudaGetLastError();  // capture errors are not sticky; clear the last one for later work
  // Stop the allocators recording to the pool, unless capture_end already did (then these
  // throw "not currently recording", which is the state wanted).
  try {
    alloc::endAllocateToPool(dev, pool_);
  } catch (const std::exception&) {
  }
  try {
    at::getHostAllocator(at::kCUDA)->end_allocate_to_pool(pool_);
  } catch (const std::exception&) {
  }
  // A graph whose capture ended releases its pool reference itself; one that did not never
  // will, so release what capture_begin took (device and host allocator alike).
  g.graph.reset();
  if (cuda_->pool_ref_held) {
    try {
      for (int extra = alloc::getPoolUseCount(dev, pool_) - pool_uses_before; extra > 0; --extra) {
        alloc::releasePool(dev, pool_);
        try {
          at::getHostAllocator(at::kCUDA)->release_pool(pool_);
        } catch (const std::exception&) {
        }
      }
    } catch (const std::exception&) {
    }
  }
  g.in = g.style = g.out = at::Tensor();
  try {
    c10::cuda::device_synchronize();
  } catch (const std::exception&) {
  }
  (void)cudaGetLastError();
  // Whatever broke this capture (an op that synchronises with the host, say) breaks the others
  // too; one try is enough.
  disabled_ = true;
  ++capture_failures_;
  warnings_.push_back("CUDA graph capture failed; translating eagerly from now on: " + std::string(why.what()));
}

std::string cuda_device_name(int index) { return at::cuda::getDeviceProperties(index)->name; }

#else  // no CUDA in this build

struct CudaGraphRunner::Cuda {};

CudaGraphRunner::CudaGraphRunner(c10::Device device, const Options& options) : device_(device), options_(options) {
  throw std::logic_error("CudaGraphRunner: this build of starganv2 has no CUDA support");
}
CudaGraphRunner::~CudaGraphRunner() = default;
CudaGraphRunner::Result CudaGraphRunner::run(const Key&, const at::Tensor&, const at::Tensor&, const Step&) {
  throw std::logic_error("CudaGraphRunner: this build of starganv2 has no CUDA support");
}
bool CudaGraphRunner::capture(const Key&, const at::Tensor&, const at::Tensor&, const Step&) { return false; }
bool CudaGraphRunner::capture_into(Graph&, const at::Tensor&, const at::Tensor&, const Step&) { return false; }
void CudaGraphRunner::abandon_capture(Graph&, int, const std::exception&) {}
std::string cuda_device_name(int) { return ""; }

#endif

}  // namespace starganv2
