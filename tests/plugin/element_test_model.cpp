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

namespace starganv2::test {

static ModelConfig tiny_config(double w_hpf) {
  ModelConfig c;
  c.img_size = 64;
  c.style_dim = 16;
  c.latent_dim = 8;
  c.num_domains = 2;
  c.max_conv_dim = 32;
  c.hidden_dim = 32;
  c.w_hpf = w_hpf;
  return c;
}

void write_tiny_checkpoint(const std::filesystem::path& path, const TinyModelOptions& options) {
  torch::manual_seed(options.seed);
  const ModelConfig config = tiny_config(options.w_hpf);
  Generator g(config);
  MappingNetwork f(config);
  StyleEncoder e(config);
  he_init(*g);
  he_init(*f);
  he_init(*e);
  std::vector<std::pair<std::string, const torch::nn::Module*>> nets = {
      {"mapping_network", f.get()}, {"style_encoder", e.get()}};
  if (options.with_generator) nets.emplace_back("generator", g.get());
  FAN fan{nullptr};
  if (options.with_fan) {
    fan = FAN();
    nets.emplace_back("fan", fan.get());
  }
  CheckpointMeta meta;
  meta.config = config;
  meta.domains = {"female", "male"};
  meta.producer = "starganv2 element tests";
  write_checkpoint(path, meta, nets);
}

void write_fan_checkpoint(const std::filesystem::path& path, uint64_t seed) {
  torch::manual_seed(seed);
  FAN fan;
  // A FAN file carries only fan.*; the metadata is the checkpoint format's, with any config.
  CheckpointMeta meta;
  meta.config = tiny_config(1.0);
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
