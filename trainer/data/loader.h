// The two training streams of the official loop (source and reference, core/data_loader.py)
// with the class-balanced sampler, decoded ahead of time by worker threads.
#pragma once

#include <ATen/core/Tensor.h>

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "image_folder.h"
#include "trainer/samples.h"

namespace starganv2 {

// Class-balanced sampling with replacement (official WeightedRandomSampler with weights
// 1/count of the sample's domain): each draw picks a domain uniformly, then one of its images
// uniformly, which is the same distribution. Draw i depends only on (seed, stream, i).
class BalancedSampler {
 public:
  BalancedSampler(std::vector<int64_t> domain_sizes, uint64_t seed, uint64_t stream);
  std::pair<int64_t, int64_t> draw(uint64_t i) const;  // (domain, image index in the domain)

 private:
  std::vector<int64_t> sizes_;
  uint64_t seed_, stream_;
};

struct ImageBatch {
  at::Tensor x_src, y_src;          // (N,3,S,S) in [-1,1], (N) int64
  at::Tensor x_ref, x_ref2, y_ref;  // two images of domain y_ref per sample
};

struct LoaderOptions {
  int64_t img_size = 256;
  int64_t batch_size = 8;
  double randcrop_prob = 0.5;
  uint64_t seed = 777;
  int workers = 4;   // decoding threads; 0 decodes on the caller's thread
  int prefetch = 0;  // batches decoded ahead; 0 = 2 per worker
  // Data-parallel training: rank `rank` of `world_size` gets samples
  // [rank * n, (rank + 1) * n) of every global batch of batch_size, n = batch_size / world_size,
  // so the union over the ranks is exactly the one-process batch and a run can resume with
  // another world size.
  int rank = 0, world_size = 1;
};

class TrainLoader {
 public:
  // Starts at batch `start` (a resumed run passes the position it saved).
  TrainLoader(const ImageFolder& folder, const LoaderOptions& options, int64_t start = 0);
  ~TrainLoader();
  TrainLoader(const TrainLoader&) = delete;
  TrainLoader& operator=(const TrainLoader&) = delete;

  // The next batch; rethrows a worker's DataError (e.g. a file that became unreadable).
  ImageBatch next();
  int64_t position() const { return position_; }  // batches handed out so far

  // Batch `b` of the streams, computed on the calling thread; what next() returns at position b.
  ImageBatch make_batch(int64_t b) const;

  // {"position": b, "fingerprint": ..., "counts": [...]} for the resume file.
  std::string state_json() const;
  // The position stored by state_json(); throws DataError when the folder no longer has the
  // same image lists (the resumed sampler would pick different images).
  static int64_t position_from_state(const std::string& json, const ImageFolder& folder);

 private:
  void worker_loop();

  const ImageFolder& folder_;
  LoaderOptions options_;
  BalancedSampler source_, reference_;
  std::vector<std::vector<int64_t>> partner_;  // fixed second reference of every image
  int64_t position_;

  std::mutex mutex_;
  std::condition_variable ready_, space_;
  std::map<int64_t, std::pair<ImageBatch, std::exception_ptr>> done_;
  int64_t next_to_make_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

// The fixed images of the sample grids (official: a shuffled batch of sources and one of
// references from the validation folder): n of each, chosen by `seed`, resized and normalised.
SampleInputs sample_inputs(const ImageFolder& folder, int64_t img_size, int64_t n, uint64_t seed);

}  // namespace starganv2
