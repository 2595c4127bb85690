// Runs the Translator's device step on CUDA: host crops in, step, result out, replaying a CUDA
// graph of the step per (batch size, channel order) once one is captured, so that a frame's
// hundreds of kernel launches become one.
//
// Requires: a CUDA device (constructing one in a build without CUDA throws std::logic_error);
// a step that is capturable: device work only (no host synchronisation, no host tensors), its
// shapes fixed by the key, its inputs read only from the tensors it is given; one thread at a
// time (not thread-safe).
// Ensures:
//  - every capture of a runner goes into one graph memory pool on one capture stream, so that
//    graphs of different batch sizes reuse each other's freed activations instead of each
//    holding its own. That is safe because replays run one at a time and each replay's output
//    is copied out before the next (run() hands back a view of the graph's output only until
//    the next call);
//  - a failed capture ends the stream's capture, drops the allocator's recording to the pool and
//    the pool references the capture took, clears the CUDA error, records a warning and turns
//    captures off for good: that key and every later one run eagerly;
//  - after seal(), run() never captures: keys without a graph run eagerly. This is how the
//    element keeps captures (hundreds of milliseconds each) off its streaming thread.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <compare>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace starganv2 {

// A CUDA caching-allocator memory pool id (c10::MempoolId_t), kept free of CUDA headers.
using GraphPoolId = std::pair<unsigned long long, unsigned long long>;

class CudaGraphRunner {
 public:
  struct Key {
    int64_t batch = 0;
    bool bgr = false;
    auto operator<=>(const Key&) const = default;
  };
  // (input (N,H,W,C) uint8 on the device, styles (N,style_dim) on the device) -> output on the device.
  using Step = std::function<at::Tensor(const at::Tensor& input, const at::Tensor& styles)>;

  struct Options {
    bool graphs = true;        // false: always eager (the copies and synchronisation stay)
    int warmup_calls = 2;      // unsealed: eager calls of a key before run() captures it
    int64_t max_batch = 16;    // larger batches always run eagerly
    GraphPoolId pool{0, 0};    // a pool to share with other runners on this device; {0,0}: a new one
  };

  struct Result {
    at::Tensor output;  // on the device; a graph's static output is valid until the next call
    bool replayed = false;
  };

  CudaGraphRunner(c10::Device device, const Options& options);
  ~CudaGraphRunner();
  CudaGraphRunner(const CudaGraphRunner&) = delete;
  CudaGraphRunner& operator=(const CudaGraphRunner&) = delete;

  // host_input: (N,...) uint8 on the host (copied asynchronously when pinned); styles on the
  // device. Replays key's graph when there is one; otherwise runs step eagerly and, unless
  // sealed or disabled, captures key's graph after options.warmup_calls eager calls.
  Result run(const Key& key, const at::Tensor& host_input, const at::Tensor& styles, const Step& step);

  // Captures key's graph now (warm-up), unless it has one already or captures are disabled.
  // Returns whether key has a graph afterwards. Allowed after seal().
  bool capture(const Key& key, const at::Tensor& host_input, const at::Tensor& styles, const Step& step);

  void seal() { sealed_ = true; }
  bool sealed() const { return sealed_; }
  bool disabled() const { return disabled_; }  // a capture failed

  bool has_graph(const Key& key) const;
  std::vector<Key> graph_keys() const;
  GraphPoolId pool() const { return pool_; }  // the pool every capture of this runner uses
  c10::Device device() const { return device_; }

  int64_t captures() const { return captures_; }
  int64_t capture_failures() const { return capture_failures_; }
  int64_t replays() const { return replays_; }
  int64_t eager_calls() const { return eager_calls_; }
  const std::vector<std::string>& warnings() const { return warnings_; }

 private:
  struct Graph;
  struct Cuda;  // CUDA-typed state (capture stream), defined only in a CUDA build

  bool capture_into(Graph& g, const at::Tensor& example_in, const at::Tensor& example_styles, const Step& step);
  void abandon_capture(Graph& g, int pool_uses_before, const std::exception& why);

  c10::Device device_;
  Options options_;
  GraphPoolId pool_{0, 0};
  bool sealed_ = false;
  bool disabled_ = false;
  int64_t captures_ = 0;
  int64_t capture_failures_ = 0;
  int64_t replays_ = 0;
  int64_t eager_calls_ = 0;
  std::vector<std::string> warnings_;
  std::vector<std::pair<Key, std::unique_ptr<Graph>>> graphs_;  // few keys: a vector is enough
  std::unique_ptr<Cuda> cuda_;
};

// "NVIDIA H200" for a CUDA device index; "" in a build without CUDA.
std::string cuda_device_name(int index);

}  // namespace starganv2
