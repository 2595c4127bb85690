// The parts of the test helpers that need LibTorch or OpenCV, kept out of the GStreamer units.
#include <ATen/ATen.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <torch/nn/module.h>

#include "element_test_util.h"
#include "model/checkpoint.h"
#include "model/fan.h"
#include "model/generator.h"
#include "model/init.h"
#include "model/mapping_network.h"
#include "model/style.h"
#include "model/style_encoder.h"
#include "model/translator.h"
#include "tests/common/model_test_util.h"

namespace starganv2::test {

void write_tiny_checkpoint(const std::filesystem::path& path, const TinyModelOptions& options) {
  write_random_model(path, {.config = small_config(options.w_hpf), .seed = options.seed,
                            .with_generator = options.with_generator, .with_fan = options.with_fan,
                            .producer = "starganv2 element tests"});
}

void write_fan_checkpoint(const std::filesystem::path& path, uint64_t seed) {
  torch::manual_seed(seed);
  FAN fan;
  // A FAN file carries only fan.*; the metadata is the checkpoint format's, with any config.
  CheckpointMeta meta;
  meta.config = small_config(1.0);
  meta.domains = {"female", "male"};
  meta.producer = "starganv2 element tests (FAN only)";
  write_checkpoint(path, meta, {{"fan", fan.get()}});
}

void write_latent_style_file(const std::filesystem::path& checkpoint, const std::string& domain,
                             uint64_t seed, const std::filesystem::path& out) {
  TranslatorOptions options;
  options.device = "cpu";
  Translator t = Translator::open(checkpoint, options);
  save_style(out, t.latent_style(t.domain_index(domain), seed, 1.0));
}

void write_png(const std::filesystem::path& path, const Image& img) {
  cv::Mat rgb(img.height, img.width, CV_8UC3, const_cast<uint8_t*>(img.rgb.data()));
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  if (!cv::imwrite(path.string(), bgr)) throw std::runtime_error("cannot write " + path.string());
}

}  // namespace starganv2::test
