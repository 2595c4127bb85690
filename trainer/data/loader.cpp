#include "loader.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include <algorithm>
#include <numeric>

#include "augment.h"
#include "trainer/random.h"

namespace starganv2 {

namespace {

// Per draw, separate seeds for the pick and for each image's augmentation.
constexpr uint64_t kSlots = 4;
enum Slot : uint64_t { kPick = 0, kImage1 = 1, kImage2 = 2 };

uint64_t slot_seed(uint64_t seed, RandomStream stream, uint64_t draw, Slot slot) {
  return derive_seed(seed, stream, draw * kSlots + slot);
}

}  // namespace

BalancedSampler::BalancedSampler(std::vector<int64_t> domain_sizes, uint64_t seed, uint64_t stream)
    : sizes_(std::move(domain_sizes)), seed_(seed), stream_(stream) {}

std::pair<int64_t, int64_t> BalancedSampler::draw(uint64_t i) const {
  AugmentRng rng(slot_seed(seed_, static_cast<RandomStream>(stream_), i, kPick));
  const int64_t d = rng.integer(0, static_cast<int64_t>(sizes_.size()));
  return {d, rng.integer(0, sizes_[d])};
}

TrainLoader::TrainLoader(const ImageFolder& folder, const LoaderOptions& options, int64_t start)
    : folder_(folder), options_(options),
      source_(folder.counts(), options.seed, static_cast<uint64_t>(RandomStream::kSource)),
      reference_(folder.counts(), options.seed, static_cast<uint64_t>(RandomStream::kReference)),
      position_(start), next_to_make_(start) {
  // Official ReferenceDataset: every image gets a fixed partner from a random permutation of
  // its domain, and the reference stream yields (image, partner).
  for (size_t d = 0; d < folder.files.size(); ++d) {
    std::vector<int64_t> perm(folder.files[d].size());
    std::iota(perm.begin(), perm.end(), 0);
    AugmentRng rng(derive_seed(options.seed, RandomStream::kPairs, d));
    for (size_t i = perm.size(); i > 1; --i) std::swap(perm[i - 1], perm[rng.integer(0, static_cast<int64_t>(i))]);
    partner_.push_back(std::move(perm));
  }
  if (options_.world_size < 1 || options_.rank < 0 || options_.rank >= options_.world_size ||
      options_.batch_size % options_.world_size != 0)
    throw std::invalid_argument("TrainLoader: batch size " + std::to_string(options_.batch_size) +
                                " is not split evenly over " + std::to_string(options_.world_size) + " ranks");
  if (options_.prefetch <= 0) options_.prefetch = 2 * std::max(1, options_.workers);
  for (int t = 0; t < options_.workers; ++t) threads_.emplace_back([this] { worker_loop(); });
}

TrainLoader::~TrainLoader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  space_.notify_all();
  ready_.notify_all();
  for (auto& t : threads_) t.join();
}

ImageBatch TrainLoader::make_batch(int64_t b) const {
  const int64_t global = options_.batch_size, s = options_.img_size;
  const int64_t n = global / options_.world_size, first = n * options_.rank;
  ImageBatch out;
  out.x_src = at::empty({n, 3, s, s}, at::kFloat);
  out.x_ref = at::empty({n, 3, s, s}, at::kFloat);
  out.x_ref2 = at::empty({n, 3, s, s}, at::kFloat);
  out.y_src = at::empty({n}, at::kLong);
  out.y_ref = at::empty({n}, at::kLong);
  const int size = static_cast<int>(s);
  for (int64_t k = 0; k < n; ++k) {
    const uint64_t draw = static_cast<uint64_t>(b * global + first + k);
    {
      const auto [d, i] = source_.draw(draw);
      AugmentRng rng(slot_seed(options_.seed, RandomStream::kSource, draw, kImage1));
      out.x_src[k].copy_(augment(decode_rgb(folder_.files[d][i]), size, options_.randcrop_prob, rng));
      out.y_src[k] = d;
    }
    {
      const auto [d, i] = reference_.draw(draw);
      AugmentRng rng1(slot_seed(options_.seed, RandomStream::kReference, draw, kImage1));
      AugmentRng rng2(slot_seed(options_.seed, RandomStream::kReference, draw, kImage2));
      out.x_ref[k].copy_(augment(decode_rgb(folder_.files[d][i]), size, options_.randcrop_prob, rng1));
      out.x_ref2[k].copy_(augment(decode_rgb(folder_.files[d][partner_[d][i]]), size, options_.randcrop_prob, rng2));
      out.y_ref[k] = d;
    }
  }
  return out;
}

void TrainLoader::worker_loop() {
  for (;;) {
    int64_t b;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      space_.wait(lock, [&] { return stop_ || next_to_make_ < position_ + options_.prefetch; });
      if (stop_) return;
      b = next_to_make_++;
    }
    std::pair<ImageBatch, std::exception_ptr> result;
    try {
      result.first = make_batch(b);
    } catch (...) {
      result.second = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_[b] = std::move(result);
    }
    ready_.notify_all();
  }
}

ImageBatch TrainLoader::next() {
  if (threads_.empty()) return make_batch(position_++);
  std::pair<ImageBatch, std::exception_ptr> result;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    ready_.wait(lock, [&] { return done_.count(position_) > 0; });
    auto node = done_.extract(position_);
    result = std::move(node.mapped());
    ++position_;
  }
  space_.notify_all();
  if (result.second) std::rethrow_exception(result.second);
  return std::move(result.first);
}

std::string TrainLoader::state_json() const {
  nlohmann::ordered_json j;
  j["position"] = position_;
  j["fingerprint"] = folder_.fingerprint();
  j["domains"] = folder_.domains;
  j["counts"] = folder_.counts();
  return j.dump();
}

int64_t TrainLoader::position_from_state(const std::string& text, const ImageFolder& folder) {
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("position") || !j["position"].is_number_integer() || !j.contains("fingerprint") ||
      !j["fingerprint"].is_string())
    throw DataError("the resume file's sampler state is not valid: " + text.substr(0, 120));
  if (j.contains("domains") && j["domains"] != nlohmann::json(folder.domains))
    throw DataError(folder.root.string() + ": its domains " + nlohmann::json(folder.domains).dump() +
                    " differ from the resumed run's " + j["domains"].dump());
  if (j["fingerprint"].get<std::string>() != folder.fingerprint()) {
    std::string counts = j.contains("counts") ? j["counts"].dump() : std::string("?");
    throw DataError(folder.root.string() + ": its image lists differ from the resumed run's (images per domain now " +
                    nlohmann::json(folder.counts()).dump() + ", then " + counts +
                    "); resuming would not continue the same sampling. Restore the folder or start a new run");
  }
  return j["position"].get<int64_t>();
}

SampleInputs sample_inputs(const ImageFolder& folder, int64_t img_size, int64_t n, uint64_t seed) {
  std::vector<std::pair<int64_t, int64_t>> all;
  for (size_t d = 0; d < folder.files.size(); ++d)
    for (size_t i = 0; i < folder.files[d].size(); ++i) all.emplace_back(d, i);
  AugmentRng rng(derive_seed(seed, RandomStream::kValidation, 0));
  for (size_t i = all.size(); i > 1; --i) std::swap(all[i - 1], all[rng.integer(0, static_cast<int64_t>(i))]);
  auto take = [&](int64_t offset, at::Tensor& x, at::Tensor& y) {
    std::vector<at::Tensor> images;
    std::vector<int64_t> labels;
    for (int64_t k = 0; k < n; ++k) {
      const auto [d, i] = all[static_cast<size_t>(offset + k) % all.size()];
      images.push_back(resize_normalise(decode_rgb(folder.files[d][i]), static_cast<int>(img_size)));
      labels.push_back(d);
    }
    x = at::stack(images);
    y = at::tensor(labels, at::kLong);
  };
  SampleInputs in;
  take(0, in.x_src, in.y_src);
  take(n, in.x_ref, in.y_ref);
  return in;
}

}  // namespace starganv2
