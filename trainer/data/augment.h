// Decoding and the official training transform (core/data_loader.py get_train_loader): with
// probability randcrop_prob a random resized crop (scale 0.8-1.0, aspect ratio 0.9-1.1), resize to
// img_size x img_size, random horizontal flip, normalise to [-1, 1].
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>

namespace cv {
class Mat;
}

namespace starganv2 {

// A small deterministic generator (SplitMix64 stream) whose draws do not depend on the standard
// library's distribution implementations, so augmentations are reproducible everywhere.
class AugmentRng {
 public:
  explicit AugmentRng(uint64_t seed) : state_(seed) {}
  uint64_t next();
  double uniform();                        // [0, 1)
  double uniform(double lo, double hi);    // [lo, hi)
  int64_t integer(int64_t lo, int64_t hi); // [lo, hi)

 private:
  uint64_t state_;
};

struct CropBox {
  int x = 0, y = 0, width = 0, height = 0;
};

// torchvision RandomResizedCrop.get_params: up to 10 tries of area fraction in [scale_lo,
// scale_hi] and log-uniform aspect ratio in [ratio_lo, ratio_hi]; falls back to a central crop.
CropBox random_resized_crop_box(int width, int height, AugmentRng& rng, double scale_lo = 0.8, double scale_hi = 1.0,
                                double ratio_lo = 0.9, double ratio_hi = 1.1);

// Reads an image as 8-bit RGB (alpha dropped, grey expanded), at full size. Throws DataError
// naming the file.
cv::Mat decode_rgb(const std::filesystem::path& path);

// The training transform on an RGB image -> (3, img_size, img_size) float32 in [-1, 1].
at::Tensor augment(const cv::Mat& rgb, int img_size, double randcrop_prob, AugmentRng& rng);

// The evaluation transform (resize + normalise) -> (3, img_size, img_size) float32 in [-1, 1].
at::Tensor resize_normalise(const cv::Mat& rgb, int img_size);

// (3,H,W) float in [0,1] -> PNG (written beside the target, then renamed). Throws DataError.
void write_png(const std::filesystem::path& path, const at::Tensor& image01);

}  // namespace starganv2
