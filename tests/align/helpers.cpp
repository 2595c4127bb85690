#include "helpers.h"

#include <cmath>
#include <filesystem>
#include <stdexcept>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "align/image.h"

namespace starganv2::align::test {

const std::shared_ptr<const ShapeModel>& shape_model() {
  static const std::shared_ptr<const ShapeModel> model = ShapeModel::load();
  return model;
}

cv::Mat load_bgr(const std::string& path) {
  if (!std::filesystem::exists(path))
    throw std::runtime_error(path + " is missing: install the Debian package named in tests/align/helpers.h (./setup.sh does)");
  cv::Mat image = cv::imread(path, cv::IMREAD_COLOR);
  if (image.empty()) throw std::runtime_error(path + ": cannot decode");
  return image;
}

cv::Mat astronaut_head() { return load_bgr(kAstronaut)(cv::Rect(92, 0, 260, 260)).clone(); }

cv::Mat smooth_texture(cv::Size size, uint64_t seed, double sigma, double lo, double hi) {
  cv::RNG rng(seed);
  cv::Mat noise(size, CV_32FC3);
  rng.fill(noise, cv::RNG::NORMAL, 0, 1);
  cv::GaussianBlur(noise, noise, {0, 0}, sigma);
  cv::normalize(noise, noise, lo, hi, cv::NORM_MINMAX);
  return noise;
}

cv::Mat random_background(cv::Size size, std::mt19937& rng) {
  std::uniform_int_distribution<int> level(30, 225);
  cv::Mat coarse(6, 8, CV_8UC3);
  for (int y = 0; y < coarse.rows; ++y)
    for (int x = 0; x < coarse.cols; ++x)
      coarse.at<cv::Vec3b>(y, x) = cv::Vec3b(level(rng), level(rng), level(rng));
  cv::Mat field;
  cv::resize(coarse, field, size, 0, 0, cv::INTER_CUBIC);
  cv::Mat grain(size, CV_8UC3);
  cv::theRNG().state = rng();
  cv::randn(grain, cv::Scalar::all(0), cv::Scalar::all(4));
  cv::Mat out;
  cv::add(field, grain, out, cv::noArray(), CV_8UC3);
  return out;
}

cv::Mat place(const cv::Mat& image, const cv::Mat& background, const cv::Matx23d& M) {
  cv::Mat warped, cover;
  warp_affine(image, warped, M, background.size(), cv::BORDER_CONSTANT);
  warp_affine(cv::Mat(image.size(), CV_8U, cv::Scalar(255)), cover, M, background.size(), cv::BORDER_CONSTANT);
  cv::Mat out = background.clone();
  warped.copyTo(out, cover > 127);
  return out;
}

cv::Matx23d similarity(cv::Point2d from, cv::Point2d to, double angle_deg, double scale) {
  cv::Matx23d M = cv::getRotationMatrix2D(from, angle_deg, scale);
  M(0, 2) += to.x - from.x;
  M(1, 2) += to.y - from.y;
  return M;
}

Landmarks map(const cv::Matx23d& M, const Landmarks& points) {
  Landmarks out;
  for (std::size_t i = 0; i < points.size(); ++i) out[i] = apply(M, points[i]);
  return out;
}

double mean_distance(const Landmarks& a, const Landmarks& b) {
  double sum = 0;
  for (std::size_t i = 0; i < a.size(); ++i) sum += cv::norm(a[i] - b[i]);
  return sum / a.size();
}

double psnr(const cv::Mat& a, const cv::Mat& b, const cv::Mat& mask) {
  double se = 0;
  long n = 0;
  for (int y = 0; y < a.rows; ++y)
    for (int x = 0; x < a.cols; ++x) {
      if (mask.at<float>(y, x) <= 0.5f) continue;
      const cv::Vec3b p = a.at<cv::Vec3b>(y, x), q = b.at<cv::Vec3b>(y, x);
      for (int k = 0; k < 3; ++k) se += (p[k] - q[k]) * (p[k] - q[k]);
      n += 3;
    }
  if (n == 0) return 0;
  const double mse = se / n;
  return mse == 0 ? 99.0 : 10.0 * std::log10(255.0 * 255.0 / mse);
}

}  // namespace starganv2::align::test
