#include "augment.h"

#include <ATen/ATen.h>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <system_error>

#include "image_folder.h"
#include "trainer/random.h"

namespace starganv2 {

namespace fs = std::filesystem;

uint64_t AugmentRng::next() {
  state_ += 0x9e3779b97f4a7c15ULL;
  return splitmix64(state_);
}

double AugmentRng::uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

double AugmentRng::uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }

int64_t AugmentRng::integer(int64_t lo, int64_t hi) {
  if (hi <= lo) return lo;
  return lo + static_cast<int64_t>(next() % static_cast<uint64_t>(hi - lo));
}

CropBox random_resized_crop_box(int width, int height, AugmentRng& rng, double scale_lo, double scale_hi,
                                double ratio_lo, double ratio_hi) {
  const double area = static_cast<double>(width) * height;
  const double log_lo = std::log(ratio_lo), log_hi = std::log(ratio_hi);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target_area = area * rng.uniform(scale_lo, scale_hi);
    const double aspect = std::exp(rng.uniform(log_lo, log_hi));
    // Python's round() rounds halves to even, as nearbyint does by default.
    const int w = static_cast<int>(std::nearbyint(std::sqrt(target_area * aspect)));
    const int h = static_cast<int>(std::nearbyint(std::sqrt(target_area / aspect)));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      CropBox box;
      box.y = static_cast<int>(rng.integer(0, height - h + 1));
      box.x = static_cast<int>(rng.integer(0, width - w + 1));
      box.width = w;
      box.height = h;
      return box;
    }
  }
  const double in_ratio = static_cast<double>(width) / height;
  CropBox box{0, 0, width, height};
  if (in_ratio < ratio_lo) {
    box.height = static_cast<int>(std::nearbyint(width / ratio_lo));
  } else if (in_ratio > ratio_hi) {
    box.width = static_cast<int>(std::nearbyint(height * ratio_hi));
  }
  box.y = (height - box.height) / 2;
  box.x = (width - box.width) / 2;
  return box;
}

cv::Mat decode_rgb(const fs::path& path) {
  const int flags = cv::IMREAD_COLOR;
  cv::Mat bgr = cv::imread(path.string(), flags);
  if (bgr.empty()) throw DataError(path.string() + ": cannot be decoded as an image");
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  return rgb;
}

namespace {

cv::Mat resize_to(const cv::Mat& src, int size) {
  if (src.cols == size && src.rows == size) return src;
  // INTER_AREA when shrinking stands in for PIL's antialiased bilinear filter (torchvision's
  // resize on PIL images); plain bilinear when enlarging, where the two agree.
  const int interp = (src.cols > size && src.rows > size) ? cv::INTER_AREA : cv::INTER_LINEAR;
  cv::Mat out;
  cv::resize(src, out, cv::Size(size, size), 0, 0, interp);
  return out;
}

at::Tensor to_tensor(const cv::Mat& rgb) {
  cv::Mat contiguous = rgb.isContinuous() ? rgb : rgb.clone();
  at::Tensor hwc = at::from_blob(contiguous.data, {contiguous.rows, contiguous.cols, 3}, at::kByte);
  // ToTensor then Normalize(0.5, 0.5): x / 255 * 2 - 1, done in float32 as torchvision does.
  return hwc.permute({2, 0, 1}).to(at::kFloat).div_(255.0f).sub_(0.5f).div_(0.5f).contiguous();
}

}  // namespace

at::Tensor augment(const cv::Mat& rgb, int img_size, double randcrop_prob, AugmentRng& rng) {
  cv::Mat img = rgb;
  if (rng.uniform() < randcrop_prob) {
    const CropBox box = random_resized_crop_box(img.cols, img.rows, rng);
    img = img(cv::Rect(box.x, box.y, box.width, box.height));
  }
  img = resize_to(img, img_size);
  if (rng.uniform() < 0.5) {
    cv::Mat flipped;
    cv::flip(img, flipped, /*flipCode=*/1);
    img = flipped;
  }
  return to_tensor(img);
}

at::Tensor resize_normalise(const cv::Mat& rgb, int img_size) { return to_tensor(resize_to(rgb, img_size)); }

void write_png(const fs::path& path, const at::Tensor& image01) {
  const at::Tensor hwc =
      image01.detach().to(at::kCPU, at::kFloat).clamp(0, 1).mul(255).add(0.5).floor().to(at::kByte).permute({1, 2, 0}).contiguous();
  cv::Mat rgb(static_cast<int>(hwc.size(0)), static_cast<int>(hwc.size(1)), CV_8UC3, hwc.data_ptr());
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  const fs::path tmp = path.parent_path() / (".tmp-" + path.filename().string());
  bool ok = false;
  std::string why = " (folder missing or not writable?)";
  try {
    ok = cv::imwrite(tmp.string(), bgr);
  } catch (const cv::Exception& e) {
    why = std::string(": ") + e.what();
  }
  std::error_code ec;
  if (ok) fs::rename(tmp, path, ec);
  if (!ok || ec) {
    // No half-written file stays behind.
    std::error_code ignored;
    fs::remove(tmp, ignored);
    if (!ok) throw DataError(path.string() + ": cannot write the PNG" + why);
    throw DataError(path.string() + ": cannot rename the written PNG into place: " + ec.message());
  }
}

}  // namespace starganv2
