// The networks' structure (official names, shapes, parameter counts), forward shapes, the maths
// of the building blocks, He init and ModelConfig. Numerical parity with the official code is
// checked against fixtures in test_parity.cpp.
#include <gtest/gtest.h>

#include <torch/nn/functional/conv.h>
#include <torch/nn/functional/instancenorm.h>
#include <torch/nn/functional/pooling.h>

#include <cmath>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/discriminator.h"
#include "model/fan.h"
#include "model/generator.h"
#include "model/init.h"
#include "model/layers.h"
#include "model/mapping_network.h"
#include "model/style_encoder.h"

namespace starganv2 {
namespace {

namespace F = torch::nn::functional;

int64_t count_parameters(const torch::nn::Module& module) {
  int64_t n = 0;
  for (const auto& p : module.parameters()) n += p.numel();
  return n;
}

std::map<std::string, std::vector<int64_t>> shapes_of(const torch::OrderedDict<std::string, torch::Tensor>& dict) {
  std::map<std::string, std::vector<int64_t>> out;
  for (const auto& item : dict) out[item.key()] = item.value().sizes().vec();
  return out;
}

// Expects every (name, shape) pair to be present in `actual`.
void expect_shapes(const std::map<std::string, std::vector<int64_t>>& actual,
                   const std::map<std::string, std::vector<int64_t>>& expected) {
  for (const auto& [name, shape] : expected) {
    auto it = actual.find(name);
    ASSERT_NE(it, actual.end()) << "missing " << name;
    EXPECT_EQ(it->second, shape) << name;
  }
}

ModelConfig small_config(int64_t img_size, double w_hpf) {
  ModelConfig c;
  c.img_size = img_size;
  c.style_dim = 16;
  c.latent_dim = 8;
  c.num_domains = 3;
  c.max_conv_dim = 64;
  c.hidden_dim = 32;
  c.w_hpf = w_hpf;
  return c;
}

torch::Tensor random_images(int64_t n, int64_t size) { return torch::rand({n, 3, size, size}) * 2 - 1; }

// ---------------------------------------------------------------------------------------------
// Parameter counts of the official 256x256 networks (max_conv_dim 512, 2 domains).

TEST(NetworksParamCount, GeneratorWithHighPass) {
  ModelConfig c = celeba_hq_config();
  EXPECT_EQ(count_parameters(*Generator(c)), 43467395);
}

TEST(NetworksParamCount, GeneratorWithoutHighPass) {
  ModelConfig c = celeba_hq_config();
  c.w_hpf = 0;
  EXPECT_EQ(count_parameters(*Generator(c)), 33892995);
}

TEST(NetworksParamCount, MappingNetwork) { EXPECT_EQ(count_parameters(*MappingNetwork(celeba_hq_config())), 2438272); }

TEST(NetworksParamCount, StyleEncoder) { EXPECT_EQ(count_parameters(*StyleEncoder(celeba_hq_config())), 20916928); }

TEST(NetworksParamCount, Discriminator) { EXPECT_EQ(count_parameters(*Discriminator(celeba_hq_config())), 20852290); }

TEST(NetworksParamCount, FAN) { EXPECT_EQ(count_parameters(*FAN()), 6333603); }

// ---------------------------------------------------------------------------------------------
// Official attribute names, so an official state dict maps 1:1.

TEST(NetworksNames, GeneratorMatchesOfficial) {
  Generator g(celeba_hq_config());
  expect_shapes(shapes_of(g->named_parameters()), {
                                                      {"from_rgb.weight", {64, 3, 3, 3}},
                                                      {"encode.0.conv1.weight", {64, 64, 3, 3}},
                                                      {"encode.0.conv2.weight", {128, 64, 3, 3}},
                                                      {"encode.0.conv1x1.weight", {128, 64, 1, 1}},
                                                      {"encode.0.norm1.weight", {64}},
                                                      {"encode.0.norm2.bias", {64}},
                                                      {"encode.6.conv2.bias", {512}},
                                                      {"decode.0.norm1.fc.weight", {1024, 64}},
                                                      {"decode.6.conv1x1.weight", {64, 128, 1, 1}},
                                                      {"decode.6.norm2.fc.bias", {128}},
                                                      {"to_rgb.0.weight", {64}},
                                                      {"to_rgb.2.weight", {3, 64, 1, 1}},
                                                  });
  auto buffers = shapes_of(g->named_buffers());
  ASSERT_EQ(buffers.size(), 1u);
  EXPECT_EQ(buffers.at("hpf.filter"), (std::vector<int64_t>{3, 3}));

  ModelConfig no_hpf = celeba_hq_config();
  no_hpf.w_hpf = 0;
  EXPECT_TRUE(Generator(no_hpf)->named_buffers().is_empty());
}

TEST(NetworksNames, MappingStyleDiscriminatorMatchOfficial) {
  ModelConfig c = celeba_hq_config();
  expect_shapes(shapes_of(MappingNetwork(c)->named_parameters()), {
                                                                      {"shared.0.weight", {512, 16}},
                                                                      {"shared.6.weight", {512, 512}},
                                                                      {"unshared.1.0.weight", {512, 512}},
                                                                      {"unshared.1.6.bias", {64}},
                                                                  });
  expect_shapes(shapes_of(StyleEncoder(c)->named_parameters()), {
                                                                    {"shared.0.weight", {64, 3, 3, 3}},
                                                                    {"shared.1.conv1x1.weight", {128, 64, 1, 1}},
                                                                    {"shared.6.conv2.weight", {512, 512, 3, 3}},
                                                                    {"shared.8.weight", {512, 512, 4, 4}},
                                                                    {"unshared.1.weight", {64, 512}},
                                                                });
  expect_shapes(shapes_of(Discriminator(c)->named_parameters()), {
                                                                     {"main.0.bias", {64}},
                                                                     {"main.8.weight", {512, 512, 4, 4}},
                                                                     {"main.10.weight", {2, 512, 1, 1}},
                                                                 });
}

TEST(NetworksNames, FANMatchesOfficial) {
  FAN fan;
  expect_shapes(shapes_of(fan->named_parameters()), {
                                                        {"conv1.conv.weight", {64, 6, 7, 7}},
                                                        {"conv2.downsample.0.weight", {64}},
                                                        {"conv2.downsample.2.weight", {128, 64, 1, 1}},
                                                        {"conv4.conv3.weight", {64, 64, 3, 3}},
                                                        {"m0.coordconv.conv.weight", {256, 259, 1, 1}},
                                                        {"m0.b1_4.conv1.weight", {128, 256, 3, 3}},
                                                        {"m0.b2_plus_1.conv3.weight", {64, 64, 3, 3}},
                                                        {"m0.b3_1.bn3.bias", {64}},
                                                        {"top_m_0.bn2.weight", {128}},
                                                        {"conv_last0.bias", {256}},
                                                        {"l0.weight", {99, 256, 1, 1}},
                                                    });
  auto buffers = shapes_of(fan->named_buffers());
  expect_shapes(buffers, {{"bn1.running_mean", {64}}, {"m0.b1_4.bn1.running_var", {256}}});
  for (const auto& [name, shape] : buffers) {
    const bool stat = name.ends_with(".running_mean") || name.ends_with(".running_var") ||
                      name.ends_with(".num_batches_tracked");
    EXPECT_TRUE(stat) << "unexpected buffer " << name;
  }
  for (const auto& item : fan->named_buffers()) EXPECT_TRUE(item.value().defined()) << item.key();
}

// ---------------------------------------------------------------------------------------------
// Forward shapes at small configurations.

TEST(NetworksForward, ShapesAtSmallConfigs) {
  torch::NoGradGuard no_grad;
  for (int64_t img : {32, 64}) {
    for (double w_hpf : {0.0, 1.0}) {
      SCOPED_TRACE("img_size " + std::to_string(img) + " w_hpf " + std::to_string(w_hpf));
      ModelConfig c = small_config(img, w_hpf);
      Generator g(c);
      MappingNetwork f(c);
      StyleEncoder e(c);
      Discriminator d(c);
      torch::Tensor x = random_images(2, img);
      torch::Tensor y = torch::tensor({0, 2}, torch::kLong);
      torch::Tensor s = f(torch::randn({2, c.latent_dim}), y);
      EXPECT_EQ(s.sizes(), (std::vector<int64_t>{2, c.style_dim}));
      EXPECT_EQ(f->forward_all(torch::randn({2, c.latent_dim})).sizes(), (std::vector<int64_t>{2, 3, c.style_dim}));
      EXPECT_EQ(e(x, y).sizes(), (std::vector<int64_t>{2, c.style_dim}));
      EXPECT_EQ(e->forward_all(x).sizes(), (std::vector<int64_t>{2, 3, c.style_dim}));
      EXPECT_EQ(d(x, y).sizes(), (std::vector<int64_t>{2}));
      EXPECT_EQ(g(x, s).sizes(), x.sizes());
      Masks masks{torch::rand({2, 1, 256, 256}), torch::rand({2, 1, 256, 256})};
      EXPECT_EQ(g(x, s, masks).sizes(), x.sizes());
    }
  }
}

TEST(NetworksForward, FANShapesAndRanges) {
  torch::NoGradGuard no_grad;
  FAN fan;
  torch::Tensor x = random_images(1, 128);
  EXPECT_EQ(fan->get_heatmap_raw(x).sizes(), (std::vector<int64_t>{1, 98, 64, 64}));
  Masks masks = fan->get_heatmap(x);
  ASSERT_TRUE(masks.defined());
  for (const torch::Tensor& m : {masks.coarse, masks.fine}) {
    EXPECT_EQ(m.sizes(), (std::vector<int64_t>{1, 1, 256, 256}));
    EXPECT_GE(m.min().item<float>(), 0.0f);
    EXPECT_LE(m.max().item<float>(), 1.0f);
  }
  torch::Tensor landmarks = fan->get_landmark(x);
  EXPECT_EQ(landmarks.sizes(), (std::vector<int64_t>{1, 98, 2}));
  // 64 px heatmaps scaled by 128 / 64: 1-based cells, +-0.25 inside the border, -0.5, times 2.
  EXPECT_GE(landmarks.min().item<float>(), 1.0f);
  EXPECT_LE(landmarks.max().item<float>(), 127.0f);
  EXPECT_TRUE(torch::equal(landmarks * 2, (landmarks * 2).round()));
}

// The official preprocessing clears NaNs in the coarse mask but, by the order of its statements,
// not in the fine one; ours keeps that behaviour.
TEST(NetworksForward, FANMasksOfNaNInputFollowOfficial) {
  torch::NoGradGuard no_grad;
  FAN fan;
  Masks masks = fan->get_heatmap(torch::full({1, 3, 256, 256}, std::nanf("")));
  EXPECT_TRUE(torch::equal(masks.coarse, torch::zeros_like(masks.coarse)));
  EXPECT_TRUE(masks.fine.isnan().all().item<bool>());
}

TEST(NetworksForward, DomainSelectionPicksEachSamplesDomain) {
  torch::NoGradGuard no_grad;
  ModelConfig c = small_config(32, 0);
  MappingNetwork f(c);
  StyleEncoder e(c);
  Discriminator d(c);
  torch::Tensor z = torch::randn({3, c.latent_dim});
  torch::Tensor x = random_images(3, 32);
  torch::Tensor y = torch::tensor({2, 0, 1}, torch::kLong);
  torch::Tensor all_f = f->forward_all(z), all_e = e->forward_all(x);
  torch::Tensor s_f = f(z, y), s_e = e(x, y), out_d = d(x, y);
  for (int64_t i = 0; i < 3; ++i) {
    const int64_t yi = y[i].item<int64_t>();
    EXPECT_TRUE(torch::equal(s_f[i], all_f[i][yi]));
    EXPECT_TRUE(torch::equal(s_e[i], all_e[i][yi]));
    // D's logit for domain yi of sample i alone.
    EXPECT_TRUE(torch::allclose(out_d[i], d(x.slice(0, i, i + 1), y.slice(0, i, i + 1))[0], 1e-5, 1e-6));
  }
}

TEST(NetworksForward, BadInputsAreRejected_n) {
  ModelConfig c = small_config(32, 1);
  MappingNetwork f(c);
  StyleEncoder e(c);
  Generator g(c);
  EXPECT_THROW(f(torch::randn({2, c.latent_dim}), torch::tensor({0, 1}, torch::kInt)), c10::Error);  // dtype
  EXPECT_THROW(f(torch::randn({2, c.latent_dim}), torch::tensor({0}, torch::kLong)), c10::Error);    // batch
  EXPECT_THROW(f(torch::randn({2, c.latent_dim + 1}), torch::tensor({0, 1}, torch::kLong)), c10::Error);
  EXPECT_THROW(e(random_images(2, 64), torch::tensor({0, 1}, torch::kLong)), c10::Error);  // size
  EXPECT_THROW(g(random_images(2, 32), torch::randn({2, c.style_dim + 1})), c10::Error);
}

// ---------------------------------------------------------------------------------------------
// The generator's high-pass skips.

TEST(NetworksGenerator, MasksAddHighPassSkipsOnlyWithHighPass) {
  torch::NoGradGuard no_grad;
  torch::Tensor x = random_images(2, 64);
  Masks masks{torch::rand({2, 1, 256, 256}), torch::rand({2, 1, 256, 256})};
  Masks zeros{torch::zeros({2, 1, 256, 256}), torch::zeros({2, 1, 256, 256})};

  ModelConfig with = small_config(64, 1);
  Generator g(with);
  torch::Tensor s = torch::randn({2, with.style_dim});
  torch::Tensor plain = g(x, s);
  EXPECT_FALSE(torch::allclose(g(x, s, masks), plain));
  // The skips are added: zero masks contribute exactly nothing.
  EXPECT_TRUE(torch::equal(g(x, s, zeros), plain));

  ModelConfig without = small_config(64, 0);
  Generator g0(without);
  EXPECT_TRUE(torch::equal(g0(x, s, masks), g0(x, s)));
}

// ---------------------------------------------------------------------------------------------
// Block maths, checked against the formulas rather than against the code under test.

TEST(NetworksBlocks, ResBlkDividesBySqrtTwo) {
  torch::NoGradGuard no_grad;
  // With zero conv weights the residual branch is 0, leaving shortcut / sqrt(2).
  for (bool downsample : {false, true}) {
    ResBlk block(8, 8, /*normalize=*/true, downsample);
    for (auto& p : block->parameters()) p.zero_();
    torch::Tensor x = torch::randn({2, 8, 8, 8});
    torch::Tensor expected = (downsample ? F::avg_pool2d(x, F::AvgPool2dFuncOptions(2)) : x) / std::sqrt(2.0);
    EXPECT_TRUE(torch::allclose(block(x), expected, 1e-6, 1e-6)) << "downsample " << downsample;
  }
}

TEST(NetworksBlocks, AdaINIsOnePlusGammaTimesNormPlusBeta) {
  torch::NoGradGuard no_grad;
  AdaIN adain(/*style_dim=*/5, /*num_features=*/4);
  torch::Tensor x = torch::randn({2, 4, 6, 6}) * 3 + 1;
  torch::Tensor s = torch::randn({2, 5});
  torch::Tensor h = torch::addmm(adain->named_parameters()["fc.bias"], s, adain->named_parameters()["fc.weight"].t());
  torch::Tensor gamma = h.slice(1, 0, 4).view({2, 4, 1, 1});
  torch::Tensor beta = h.slice(1, 4, 8).view({2, 4, 1, 1});
  torch::Tensor mean = x.mean({2, 3}, true);
  torch::Tensor var = x.var({2, 3}, /*unbiased=*/false, /*keepdim=*/true);
  torch::Tensor expected = (1 + gamma) * (x - mean) / torch::sqrt(var + 1e-5) + beta;
  EXPECT_TRUE(torch::allclose(adain(x, s), expected, 1e-4, 1e-5));
}

TEST(NetworksBlocks, AdainResBlkKeepsShortcutOnlyWithoutHighPass) {
  torch::NoGradGuard no_grad;
  torch::Tensor x = torch::randn({1, 4, 4, 4});
  torch::Tensor s = torch::randn({1, 3});
  for (double w_hpf : {0.0, 1.0}) {
    AdainResBlk block(4, 4, /*style_dim=*/3, w_hpf, /*upsample=*/true);
    for (auto& p : block->parameters()) p.zero_();
    torch::Tensor up = x.repeat_interleave(2, 2).repeat_interleave(2, 3);  // nearest 2x
    torch::Tensor expected = w_hpf == 0 ? up / std::sqrt(2.0) : torch::zeros_like(up);
    EXPECT_TRUE(torch::allclose(block(x, s), expected, 1e-6, 1e-6)) << "w_hpf " << w_hpf;
  }
}

TEST(NetworksBlocks, HighPassIsDepthwiseLaplacianOverWeight) {
  torch::NoGradGuard no_grad;
  HighPass hpf(/*w_hpf=*/2.0);
  torch::Tensor filter = hpf->named_buffers()["filter"];
  torch::Tensor expected = torch::tensor({-1.f, -1.f, -1.f, -1.f, 8.f, -1.f, -1.f, -1.f, -1.f}).view({3, 3}) / 2.0;
  EXPECT_TRUE(torch::equal(filter, expected));
  // A single bright pixel in channel 1 gives the kernel around it in channel 1 only.
  torch::Tensor x = torch::zeros({1, 2, 5, 5});
  x[0][1][2][2] = 1;
  torch::Tensor out = hpf(x);
  EXPECT_TRUE(torch::equal(out[0][0], torch::zeros({5, 5})));
  EXPECT_TRUE(torch::equal(out[0][1].slice(0, 1, 4).slice(1, 1, 4), expected));
}

// ---------------------------------------------------------------------------------------------
// He init as the official core/utils.py he_init.

TEST(NetworksInit, HeInitGivesKaimingNormalWeightsAndZeroBiases) {
  torch::manual_seed(0);
  ModelConfig c = small_config(64, 1);
  c.hidden_dim = 128;  // big enough layers for stable statistics
  Generator g(c);
  MappingNetwork f(c);
  for (torch::nn::Module* net : std::vector<torch::nn::Module*>{g.get(), f.get()}) {
    he_init(*net);
    int checked = 0;
    for (const auto& item : net->named_parameters()) {
      const std::string& name = item.key();
      const torch::Tensor& t = item.value();
      if (t.dim() >= 2) {  // conv / linear weight
        const double fan_in = static_cast<double>(t.numel() / t.size(0));
        const double want = std::sqrt(2.0 / fan_in);
        if (t.numel() < 4000) continue;
        const double sd = t.std().item<double>();
        EXPECT_NEAR(sd / want, 1.0, 0.06) << name;
        EXPECT_NEAR(t.mean().item<double>() / want, 0.0, 0.06) << name;
        // Normal, not uniform: about 68.3% within one standard deviation (uniform: 57.7%).
        const double within = (t.abs() < want).to(torch::kDouble).mean().item<double>();
        EXPECT_NEAR(within, 0.683, 0.03) << name;
        ++checked;
      } else if (name.ends_with("norm1.weight") || name.ends_with("norm2.weight") || name == "to_rgb.0.weight") {
        EXPECT_TRUE(torch::equal(t, torch::ones_like(t))) << name;  // InstanceNorm affine untouched
      } else {
        EXPECT_TRUE(torch::equal(t, torch::zeros_like(t))) << name;  // biases
      }
    }
    EXPECT_GT(checked, 5);
  }
}

// ---------------------------------------------------------------------------------------------
// ModelConfig

TEST(Config, JsonRoundTrip) {
  ModelConfig c = small_config(128, 0.5);
  c.hidden_dim = 256;
  ModelConfig back = ModelConfig::from_json(c.to_json());
  EXPECT_EQ(back, c);
  EXPECT_EQ(ModelConfig::from_json(afhq_config().to_json()), afhq_config());
}

TEST(Config, AcceptsPythonStyleNumbersAndOldFiles) {
  ModelConfig c = ModelConfig::from_json(
      R"({"img_size": 256.0, "style_dim": 64, "latent_dim": 16, "num_domains": 3, "max_conv_dim": 512, "w_hpf": 0})");
  EXPECT_EQ(c.img_size, 256);
  EXPECT_EQ(c.hidden_dim, 512);  // predates hidden_dim
  EXPECT_EQ(c.w_hpf, 0.0);
}

TEST(Config, RejectsBadConfigs_n) {
  auto rejects = [](const std::string& text, const std::string& mentions) {
    try {
      ModelConfig::from_json(text);
      ADD_FAILURE() << "accepted " << text;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(mentions), std::string::npos) << e.what();
    }
  };
  const std::string rest = R"("style_dim": 64, "latent_dim": 16, "num_domains": 2, "max_conv_dim": 512, "w_hpf": 1})";
  rejects("not json", "not a JSON object");
  rejects("[1, 2]", "not a JSON object");
  rejects(R"({"img_size": 100, )" + rest, "img_size");
  rejects(R"({"img_size": 16, )" + rest, "img_size");
  rejects(R"({"img_size": 256.5, )" + rest, "img_size");
  rejects(R"({"img_size": "256", )" + rest, "img_size");
  rejects(R"({"style_dim": 64, "latent_dim": 16, "num_domains": 2, "max_conv_dim": 512, "w_hpf": 1})", "img_size");
  rejects(R"({"img_size": 256, "style_dim": 0, "latent_dim": 16, "num_domains": 2, "max_conv_dim": 512, "w_hpf": 1})",
          "style_dim");
  rejects(R"({"img_size": 256, "style_dim": 64, "latent_dim": 16, "num_domains": 2, "max_conv_dim": 512, "w_hpf": -1})",
          "w_hpf");
  rejects(R"({"img_size": 256, "style_dim": 64, "latent_dim": 16, "num_domains": 2, "max_conv_dim": 512})", "w_hpf");

  ModelConfig bad = celeba_hq_config();
  bad.num_domains = 0;
  EXPECT_THROW(bad.validate(), std::invalid_argument);
  EXPECT_THROW(Generator{bad}, std::invalid_argument);  // networks refuse a bad config
}

}  // namespace
}  // namespace starganv2
