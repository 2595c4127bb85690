#include "synthetic.h"

#include <ATen/ATen.h>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <random>
#include <stdexcept>
#include <unistd.h>

namespace starganv2::test {

namespace fs = std::filesystem;

void write_synthetic_set(const fs::path& root, int per_domain, int size, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (size_t d = 0; d < kSyntheticDomains.size(); ++d) {
    const fs::path dir = root / kSyntheticDomains[d];
    fs::create_directories(dir);
    for (int i = 0; i < per_domain; ++i) {
      cv::Mat img(size, size, CV_8UC3);
      cv::randn(img, cv::Scalar::all(25), cv::Scalar::all(6));  // dark, slightly noisy background
      const double strong = 170 + 85 * u(rng), weak = 50 * u(rng), green = 40 + 120 * u(rng);
      // OpenCV draws in BGR order.
      const cv::Scalar colour = kSyntheticDomains[d] == "warm" ? cv::Scalar(weak, green, strong) : cv::Scalar(strong, green, weak);
      const int half = static_cast<int>(size * (0.18 + 0.14 * u(rng)));
      const int cx = half + static_cast<int>((size - 2 * half) * u(rng));
      const int cy = half + static_cast<int>((size - 2 * half) * u(rng));
      if (u(rng) < 0.5)
        cv::circle(img, cv::Point(cx, cy), half, colour, cv::FILLED, cv::LINE_AA);
      else
        cv::rectangle(img, cv::Point(cx - half, cy - half), cv::Point(cx + half, cy + half), colour, cv::FILLED);
      char name[32];
      std::snprintf(name, sizeof name, "%03d.png", i);
      if (!cv::imwrite((dir / name).string(), img)) throw std::runtime_error("cannot write " + (dir / name).string());
    }
  }
}

at::Tensor warmth(const at::Tensor& images) {
  const at::Tensor x = images.to(at::kFloat);
  return (x.select(1, 0) - x.select(1, 2)).mean({1, 2});
}

}  // namespace starganv2::test
