#include "align/landmarks.h"

#include <cmath>
#include <fstream>

#include <dlib/image_processing/shape_predictor.h>
#include <dlib/opencv/cv_image.h>
#include <dlib/serialize.h>
#include <opencv2/imgproc.hpp>

namespace starganv2::align {

struct ShapeModel::Impl {
  dlib::shape_predictor predictor;
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
  model->impl_->predictor = dlib::shape_predictor(initial_shape, forests, pixel_coordinates);
  model->path_ = path;
  return model;
}

Landmarks ShapeModel::fit(const cv::Mat& frame, PixelFormat format, const FaceBox& box) const {
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
  cv::Mat gray = warp_gray(frame, format, M, {kPatch, kPatch}, cv::BORDER_REFLECT_101);
  cv::GaussianBlur(gray, gray, {0, 0}, kBlurSigma);

  const long left = (kPatch - kBox) / 2;
  const dlib::rectangle rect(left, left, left + kBox - 1, left + kBox - 1);
  const dlib::full_object_detection shape = impl_->predictor(dlib::cv_image<unsigned char>(gray), rect);
  const cv::Matx23d back = invert_affine(M);
  Landmarks out;
  for (int i = 0; i < kNumLandmarks; ++i) {
    const dlib::point p = shape.part(i);
    out[i] = apply(back, {static_cast<double>(p.x()), static_cast<double>(p.y())});
  }
  return out;
}

}  // namespace starganv2::align
