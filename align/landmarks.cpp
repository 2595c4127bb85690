#include "align/landmarks.h"

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <new>

#include <sys/mman.h>

#include <dlib/image_processing/shape_predictor.h>
#include <dlib/opencv/cv_image.h>
#include <dlib/serialize.h>
#include <opencv2/imgproc.hpp>

namespace starganv2::align {

namespace {

// Memory in 2 MB pages where the system offers them (Linux transparent huge pages, on request):
// a fit reads one leaf in each of 7500 trees spread over 64 MB, and with 4 kB pages nearly every
// one of those reads also misses the TLB.
template <typename T>
struct HugePageAllocator {
  using value_type = T;
  static constexpr std::size_t kPage = std::size_t{2} << 20;
  HugePageAllocator() = default;
  template <typename U>
  HugePageAllocator(const HugePageAllocator<U>&) {}
  T* allocate(std::size_t n) {
    const std::size_t bytes = (n * sizeof(T) + kPage - 1) / kPage * kPage;
    void* p = std::aligned_alloc(kPage, bytes);
    if (!p) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
    madvise(p, bytes, MADV_HUGEPAGE);  // advice only: without it the memory is simply in small pages
#endif
    return static_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t) { std::free(p); }
  template <typename U>
  bool operator==(const HugePageAllocator<U>&) const { return true; }
};

}  // namespace

// dlib's shape_predictor, evaluated from a packed copy of its cascades. dlib keeps every tree's
// splits and each of its leaves in separate heap blocks, and adds a leaf before it walks the next
// tree; the 68-point model's leaves take 64 MB, so nearly every tree costs two cache misses
// waited for one after the other (~75 % of a fit's time, measured with perf). Here each cascade's
// splits are one contiguous array and all leaves another (in 2 MB pages: HugePageAllocator);
// since a cascade's feature pixels are read before its trees are walked, all its trees are walked
// first and their leaves then added in the same order with the next ones prefetched. Same float
// operations in the same order: the landmarks are identical to dlib's
// (tests/align/test_detector.cpp compares them).
struct ShapeModel::Impl {
  struct Split {
    std::uint32_t idx1, idx2;
    float thresh;
  };
  struct Cascade {
    std::vector<unsigned long> anchor_idx;
    std::vector<dlib::vector<float, 2>> deltas;
    int depth = 0;                // every tree is complete: 2^depth leaves
    std::vector<Split> splits;    // tree t's splits at t * (2^depth - 1)
    std::size_t leaves = 0;       // where its leaves start in Impl::leaves: tree t's leaf l at
                                  // leaves + (t * 2^depth + l) * num_values
    int num_trees = 0;
  };
  dlib::matrix<float, 0, 1> initial_shape;
  std::vector<Cascade> cascades;
  std::vector<float, HugePageAllocator<float>> leaves;  // every cascade's, one after another

  // dlib::shape_predictor::operator() with the packed cascades.
  std::array<dlib::point, kNumLandmarks> predict(const dlib::cv_image<unsigned char>& img,
                                                 const dlib::rectangle& rect) const;
};

ShapeModel::ShapeModel() : impl_(std::make_unique<Impl>()) {}
ShapeModel::~ShapeModel() = default;

namespace {

bool is_power_of_two(std::size_t n) { return n != 0 && (n & (n - 1)) == 0; }

}  // namespace

std::shared_ptr<const ShapeModel> ShapeModel::load(const std::string& path) {
  const std::string where = "shape model " + path;
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw AlignError(where + ": cannot open it (missing? Debian's libdlib-data installs " + kDefaultShapeModel + ")");

  // The parts of dlib's format are read one by one rather than through
  // deserialize(shape_predictor&), so that every index can be checked before use: dlib itself
  // trusts them, and a damaged file would otherwise read out of bounds during fit().
  int version = 0;
  dlib::matrix<float, 0, 1> initial_shape;
  std::vector<std::vector<dlib::impl::regression_tree>> forests;
  std::vector<std::vector<unsigned long>> anchor_idx;
  std::vector<std::vector<dlib::vector<float, 2>>> deltas;
  try {
    dlib::deserialize(version, in);
    if (version != 1)
      throw AlignError(where + ": not a dlib shape predictor (format version " + std::to_string(version) +
                       ", expected 1)");
    dlib::deserialize(initial_shape, in);
    dlib::deserialize(forests, in);
    dlib::deserialize(anchor_idx, in);
    dlib::deserialize(deltas, in);
  } catch (const AlignError&) {
    throw;
  } catch (const std::bad_alloc&) {
    throw AlignError(where + ": corrupt (a size field asks for more memory than exists)");
  } catch (const std::exception& e) {
    throw AlignError(where + ": not a valid dlib shape predictor (" + e.what() + ")");
  }

  const auto parts = static_cast<std::size_t>(initial_shape.size());
  if (parts != 2 * kNumLandmarks)
    throw AlignError(where + ": predicts " + std::to_string(parts / 2) + " points; 68 are needed");
  if (forests.empty() || forests.size() != anchor_idx.size() || forests.size() != deltas.size())
    throw AlignError(where + ": corrupt (cascade counts disagree)");
  std::vector<std::vector<dlib::vector<float, 2>>> pixel_coordinates(forests.size());
  for (std::size_t c = 0; c < forests.size(); ++c) {
    const std::size_t num_features = anchor_idx[c].size();
    if (num_features == 0 || deltas[c].size() != num_features)
      throw AlignError(where + ": corrupt (feature tables of cascade " + std::to_string(c) + ")");
    for (const dlib::impl::regression_tree& tree : forests[c]) {
      if (!is_power_of_two(tree.leaf_values.size()) || tree.leaf_values.size() != tree.splits.size() + 1)
        throw AlignError(where + ": corrupt (a tree of cascade " + std::to_string(c) + " is not complete)");
      for (const dlib::impl::split_feature& s : tree.splits)
        if (s.idx1 >= num_features || s.idx2 >= num_features)
          throw AlignError(where + ": corrupt (a split reads feature " + std::to_string(std::max(s.idx1, s.idx2)) +
                           " of " + std::to_string(num_features) + ")");
      for (const auto& leaf : tree.leaf_values)
        if (static_cast<std::size_t>(leaf.size()) != parts) throw AlignError(where + ": corrupt (leaf size)");
    }
    // dlib's public constructor takes feature pixels relative to the mean shape and derives the
    // (anchor, delta) encoding that the file stores; rebuild those pixels from the encoding.
    pixel_coordinates[c].resize(num_features);
    for (std::size_t f = 0; f < num_features; ++f) {
      const unsigned long a = anchor_idx[c][f];
      if (a >= static_cast<unsigned long>(kNumLandmarks)) throw AlignError(where + ": corrupt (anchor index)");
      pixel_coordinates[c][f] = dlib::vector<float, 2>(initial_shape(2 * a), initial_shape(2 * a + 1)) + deltas[c][f];
    }
  }

  std::shared_ptr<ShapeModel> model(new ShapeModel());
  Impl& impl = *model->impl_;
  impl.initial_shape = initial_shape;
  impl.cascades.resize(forests.size());
  std::size_t num_leaf_values = 0;
  for (const auto& forest : forests)
    for (const dlib::impl::regression_tree& tree : forest) num_leaf_values += tree.leaf_values.size() * parts;
  impl.leaves.reserve(num_leaf_values);
  for (std::size_t c = 0; c < forests.size(); ++c) {
    Impl::Cascade& cascade = impl.cascades[c];
    // The encoding dlib's constructor derives from the pixels (not the file's), as dlib uses it.
    dlib::impl::create_shape_relative_encoding(initial_shape, pixel_coordinates[c], cascade.anchor_idx,
                                               cascade.deltas);
    const std::size_t leaves_per_tree = forests[c].empty() ? 1 : forests[c][0].leaf_values.size();
    for (const dlib::impl::regression_tree& tree : forests[c])
      if (tree.leaf_values.size() != leaves_per_tree)
        throw AlignError(where + ": corrupt (trees of one cascade differ in depth)");
    while ((std::size_t{1} << cascade.depth) < leaves_per_tree) ++cascade.depth;
    cascade.num_trees = static_cast<int>(forests[c].size());
    cascade.splits.reserve(forests[c].size() * (leaves_per_tree - 1));
    cascade.leaves = impl.leaves.size();
    for (const dlib::impl::regression_tree& tree : forests[c]) {
      for (const dlib::impl::split_feature& sf : tree.splits)
        cascade.splits.push_back({static_cast<std::uint32_t>(sf.idx1), static_cast<std::uint32_t>(sf.idx2), sf.thresh});
      for (const auto& leaf : tree.leaf_values) impl.leaves.insert(impl.leaves.end(), leaf.begin(), leaf.end());
    }
  }

  model->path_ = path;
  return model;
}

std::array<dlib::point, kNumLandmarks> ShapeModel::Impl::predict(const dlib::cv_image<unsigned char>& img,
                                                                 const dlib::rectangle& rect) const {
  dlib::matrix<float, 0, 1> current_shape = initial_shape;
  const long num_values = current_shape.size();
  std::vector<float> feature_pixel_values;
  std::vector<const float*> chosen;
  for (const Cascade& cascade : cascades) {
    dlib::impl::extract_feature_pixel_values(img, rect, current_shape, initial_shape, cascade.anchor_idx,
                                             cascade.deltas, feature_pixel_values);
    // Walk every tree (they read only the feature pixels)...
    const std::size_t splits_per_tree = (std::size_t{1} << cascade.depth) - 1;
    chosen.resize(cascade.num_trees);
    for (int t = 0; t < cascade.num_trees; ++t) {
      const Split* split = cascade.splits.data() + t * splits_per_tree;
      std::size_t i = 0;
      while (i < splits_per_tree) {
        const Split& sf = split[i];
        i = feature_pixel_values[sf.idx1] - feature_pixel_values[sf.idx2] > sf.thresh ? 2 * i + 1 : 2 * i + 2;
      }
      chosen[t] = leaves.data() + cascade.leaves + ((t << cascade.depth) + (i - splits_per_tree)) * num_values;
      // Its leaf starts on its way now, while the next trees are walked: a cascade's chosen leaves
      // (500 x 544 bytes) fit in L2, and the adding below then mostly finds them there.
      const char* leaf = reinterpret_cast<const char*>(chosen[t]);
      for (long b = 0; b < num_values * static_cast<long>(sizeof(float)); b += 64) __builtin_prefetch(leaf + b);
    }
    // ... then add their leaves in tree order, fetching a few trees ahead.
    constexpr int kAhead = 6;
    float* shape = &current_shape(0);
    for (int t = 0; t < cascade.num_trees; ++t) {
      if (t + kAhead < cascade.num_trees) {
        const char* next = reinterpret_cast<const char*>(chosen[t + kAhead]);
        for (long b = 0; b < num_values * static_cast<long>(sizeof(float)); b += 64) __builtin_prefetch(next + b);
      }
      const float* leaf = chosen[t];
      for (long v = 0; v < num_values; ++v) shape[v] += leaf[v];
    }
  }
  const dlib::point_transform_affine tform_to_img = dlib::impl::unnormalizing_tform(rect);
  std::array<dlib::point, kNumLandmarks> parts;
  for (int i = 0; i < kNumLandmarks; ++i) parts[i] = tform_to_img(dlib::impl::location(current_shape, i));
  return parts;
}

std::array<cv::Point, kNumLandmarks> ShapeModel::predict(const cv::Mat& gray, const cv::Rect& box) const {
  if (gray.empty() || gray.type() != CV_8UC1) throw AlignError("ShapeModel::predict: needs a CV_8UC1 image");
  if (box.width < 1 || box.height < 1) throw AlignError("ShapeModel::predict: empty box");
  const dlib::rectangle rect(box.x, box.y, box.x + box.width - 1, box.y + box.height - 1);
  const auto parts = impl_->predict(dlib::cv_image<unsigned char>(gray), rect);
  std::array<cv::Point, kNumLandmarks> out;
  for (int i = 0; i < kNumLandmarks; ++i) out[i] = {static_cast<int>(parts[i].x()), static_cast<int>(parts[i].y())};
  return out;
}

Landmarks ShapeModel::fit(const cv::Mat& frame, PixelFormat format, const FaceBox& box, FitPatch* patch) const {
  check_frame(frame, format);
  if (frame.empty()) throw AlignError("ShapeModel::fit: empty frame");
  if (!(box.size > 1e-3) || !std::isfinite(box.size) || !std::isfinite(box.center.x) ||
      !std::isfinite(box.center.y) || !std::isfinite(box.angle_deg))
    throw AlignError("ShapeModel::fit: degenerate face box");

  // The predictor samples single pixels around its shape estimate, so it needs the whole face
  // plus the margin its features reach into: 1.8 boxes. Single-pixel features also make it
  // sensitive to how the patch was resampled; a slight blur (sigma 0.8 px at a 200 px box) makes
  // two views of one face (different scale, rotation, position) fit alike: in the round-trip test
  // it halves the alignment difference between them.
  constexpr int kBox = 200, kPatch = 360;
  constexpr double kBlurSigma = 0.8;
  cv::Matx23d M = cv::getRotationMatrix2D(box.center, -box.angle_deg, kBox / box.size);
  M(0, 2) += 0.5 * (kPatch - 1) - box.center.x;
  M(1, 2) += 0.5 * (kPatch - 1) - box.center.y;
  const cv::Mat sharp = warp_gray(frame, format, M, {kPatch, kPatch}, cv::BORDER_REFLECT_101);
  cv::Mat gray;
  cv::GaussianBlur(sharp, gray, {0, 0}, kBlurSigma);
  if (patch) *patch = FitPatch{sharp, M};

  const long left = (kPatch - kBox) / 2;
  const dlib::rectangle rect(left, left, left + kBox - 1, left + kBox - 1);
  const auto parts = impl_->predict(dlib::cv_image<unsigned char>(gray), rect);
  const cv::Matx23d back = invert_affine(M);
  Landmarks out;
  for (int i = 0; i < kNumLandmarks; ++i) {
    const dlib::point p = parts[i];
    out[i] = apply(back, {static_cast<double>(p.x()), static_cast<double>(p.y())});
  }
  return out;
}

}  // namespace starganv2::align
