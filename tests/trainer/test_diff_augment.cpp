// Augmentation of D's inputs (trainer/diff_augment.h): each DiffAugment policy keeps shapes and
// the [-1, 1] range, is the identity at probability 0, changes images at probability 1, is
// reproducible from the seed, lets the gradient reach G, and gives a replica the same rows as a
// single process; ADA's controller moves p towards the target; the solver with augmentation on
// is deterministic and its R1 is taken through the augmentation. The reconstruction warm-up, the
// other small-dataset option, trains only G and E, learns, and hands over to the official iteration.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/nn/modules/conv.h>
#include <torch/torch.h>

#include <cmath>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "trainer/diff_augment.h"
#include "trainer/solver.h"
#include "tiny_options.h"

namespace starganv2 {
namespace {

at::Generator generator(uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

at::Tensor images(int64_t n = 6, int64_t size = 32, uint64_t seed = 1) {
  at::Generator g = generator(seed);
  return at::rand({n, 3, size, size}, g, at::kFloat) * 2 - 1;
}

const std::vector<unsigned> kEachPolicy = {kAugmentColor, kAugmentTranslation, kAugmentCutout, kAugmentAll};

TEST(DiffAugment, ParsesPolicyNames) {
  EXPECT_EQ(parse_diff_augment(""), 0u);
  EXPECT_EQ(parse_diff_augment("none"), 0u);
  EXPECT_EQ(parse_diff_augment("color"), kAugmentColor);
  EXPECT_EQ(parse_diff_augment("cutout,color"), kAugmentColor | kAugmentCutout);
  EXPECT_EQ(parse_diff_augment("color,translation,cutout"), kAugmentAll);
  EXPECT_EQ(diff_augment_name(kAugmentCutout | kAugmentColor), "color,cutout");
  EXPECT_EQ(diff_augment_name(0), "");
}

TEST(DiffAugment, UnknownOrRepeatedPoliciesAreRefused_n) {
  for (const char* bad : {"colour", "color,,cutout", "color,color", "translation,", "all"})
    EXPECT_THROW(parse_diff_augment(bad), std::invalid_argument) << bad;
}

TEST(DiffAugment, KeepsShapeDtypeAndRange) {
  const at::Tensor x = images(6, 24);
  for (unsigned policy : kEachPolicy) {
    at::Generator g = generator(3);
    const at::Tensor y = diff_augment(x, policy, 1.0, g);
    EXPECT_EQ(y.sizes(), x.sizes()) << diff_augment_name(policy);
    EXPECT_EQ(y.scalar_type(), x.scalar_type());
    EXPECT_GE(y.min().item<float>(), -1.0f) << diff_augment_name(policy);
    EXPECT_LE(y.max().item<float>(), 1.0f) << diff_augment_name(policy);
  }
}

TEST(DiffAugment, IsTheIdentityAtProbabilityZero) {
  const at::Tensor x = images();
  for (unsigned policy : kEachPolicy) {
    at::Generator g = generator(5);
    EXPECT_TRUE(at::equal(diff_augment(x, policy, 0.0, g), x)) << diff_augment_name(policy);
  }
}

TEST(DiffAugment, ChangesEveryImageAtProbabilityOne) {
  const at::Tensor x = images(8);
  for (unsigned policy : kEachPolicy) {
    at::Generator g = generator(7);
    const at::Tensor y = diff_augment(x, policy, 1.0, g);
    for (int64_t i = 0; i < x.size(0); ++i)
      EXPECT_FALSE(at::equal(y[i], x[i])) << diff_augment_name(policy) << " left image " << i << " unchanged";
  }
}

TEST(DiffAugment, ProbabilityPicksAboutThatShareOfImages) {
  const at::Tensor x = images(400, 8);
  at::Generator g = generator(11);
  const at::Tensor y = diff_augment(x, kAugmentColor, 0.3, g);
  int changed = 0;
  for (int64_t i = 0; i < x.size(0); ++i) changed += at::equal(y[i], x[i]) ? 0 : 1;
  EXPECT_NEAR(changed / 400.0, 0.3, 0.07);
}

TEST(DiffAugment, IsReproducibleFromTheSeed) {
  const at::Tensor x = images();
  for (unsigned policy : kEachPolicy) {
    at::Generator a = generator(42), b = generator(42), c = generator(43);
    const at::Tensor ya = diff_augment(x, policy, 1.0, a);
    EXPECT_TRUE(at::equal(ya, diff_augment(x, policy, 1.0, b))) << diff_augment_name(policy);
    EXPECT_FALSE(at::equal(ya, diff_augment(x, policy, 1.0, c))) << diff_augment_name(policy);
  }
}

TEST(DiffAugment, TranslationAndCutoutMoveAndBlankPixels) {
  // A translated image holds the same pixels shifted (the rest grey), a cut-out one the same
  // pixels with a block of grey: checks the geometry, not only "something changed".
  const at::Tensor x = images(4, 32);
  at::Generator g = generator(9);
  const at::Tensor t = diff_augment(x, kAugmentTranslation, 1.0, g);
  for (int64_t i = 0; i < x.size(0); ++i) {
    bool found = false;
    for (int64_t dy = -4; dy <= 4 && !found; ++dy)
      for (int64_t dx = -4; dx <= 4 && !found; ++dx) {
        const at::Tensor moved = at::constant_pad_nd(x[i], {4, 4, 4, 4}, 0).narrow(1, 4 - dy, 32).narrow(2, 4 - dx, 32);
        found = at::equal(moved, t[i]);
      }
    EXPECT_TRUE(found) << "image " << i << " is not a shift of at most 4 px (1/8 of 32) of its source";
  }
  at::Generator g2 = generator(9);
  const at::Tensor c = diff_augment(x, kAugmentCutout, 1.0, g2);
  for (int64_t i = 0; i < x.size(0); ++i) {
    const at::Tensor blank = c[i].eq(0).all(0);
    const int64_t blanked = blank.sum().item<int64_t>();
    EXPECT_GT(blanked, 8 * 8) << "image " << i;
    EXPECT_LE(blanked, 16 * 16) << "image " << i;
    EXPECT_TRUE(at::equal(c[i].masked_fill(blank.unsqueeze(0), 0), x[i].masked_fill(blank.unsqueeze(0), 0)));
  }
}

TEST(DiffAugment, AReplicaAugmentsItsRowsOfTheGlobalBatch) {
  const at::Tensor x = images(8);
  at::Generator whole = generator(21);
  const at::Tensor all = diff_augment(x, kAugmentAll, 0.7, whole);
  for (int64_t rank = 0; rank < 2; ++rank) {
    at::Generator g = generator(21);
    const at::Tensor part = diff_augment(x.narrow(0, rank * 4, 4), kAugmentAll, 0.7, g, 8, rank * 4);
    EXPECT_TRUE(at::equal(part, all.narrow(0, rank * 4, 4))) << "rank " << rank;
  }
}

TEST(DiffAugment, TheGradientReachesTheGenerator) {
  // G (a convolution) -> augmentation -> D (a convolution): G's weights get a gradient through
  // every policy, and it is the gradient through the augmentation (not zero, not the plain one).
  for (unsigned policy : kEachPolicy) {
    torch::manual_seed(0);
    torch::nn::Conv2d g_net(torch::nn::Conv2dOptions(3, 3, 3).padding(1));
    torch::nn::Conv2d d_net(torch::nn::Conv2dOptions(3, 1, 3).padding(1));
    const at::Tensor z = images(4, 16, 2);
    auto grad_of_g = [&](bool augmented) {
      g_net->zero_grad();
      at::Generator gen = generator(13);
      const at::Tensor fake = at::tanh(g_net(z));
      const at::Tensor seen = augmented ? diff_augment(fake, policy, 1.0, gen) : fake;
      d_net(seen).pow(2).mean().backward();
      return g_net->weight.grad().clone();
    };
    const at::Tensor with = grad_of_g(true), without = grad_of_g(false);
    EXPECT_TRUE(with.isfinite().all().item<bool>()) << diff_augment_name(policy);
    EXPECT_GT(with.abs().sum().item<double>(), 0) << diff_augment_name(policy);
    EXPECT_FALSE(at::allclose(with, without)) << diff_augment_name(policy);
  }
}

TEST(Ada, RaisesPWhenDIsTooSureOfRealsAndLowersItOtherwise) {
  AdaState s;
  s.p = 0.5;
  s.sign_sum = 9;  // r_t = 0.9 > 0.6: D overfits, augment more
  s.sign_count = 10;
  ada_adjust(s, 0.6, /*batch_size=*/4, /*interval=*/4, /*kimg=*/1);
  EXPECT_DOUBLE_EQ(s.p, 0.5 + 16.0 / 1000.0);
  EXPECT_DOUBLE_EQ(s.last_rt, 0.9);
  EXPECT_EQ(s.sign_count, 0);
  s.sign_sum = 2;  // r_t = 0.2 < 0.6
  s.sign_count = 10;
  ada_adjust(s, 0.6, 4, 4, 1);
  EXPECT_DOUBLE_EQ(s.p, 0.5);
  // Clamped to [0, 1]; nothing counted, nothing changes.
  s.p = 0.001;
  s.sign_sum = -10;
  s.sign_count = 10;
  ada_adjust(s, 0.6, 4, 4, 1);
  EXPECT_EQ(s.p, 0.0);
  ada_adjust(s, 0.6, 4, 4, 1);
  EXPECT_EQ(s.p, 0.0);
}

// --- The solver with augmentation -----------------------------------------------------------

// The shared tiny options, with a learning rate at which a few steps change D visibly.
TrainOptions tiny_options() {
  TrainOptions o = test::tiny_options();
  o.lr = 1e-3;
  return o;
}

Batch tiny_batch() {
  at::Generator g = generator(17);
  Batch b;
  b.x_real = at::rand({2, 3, 32, 32}, g, at::kFloat) * 2 - 1;
  b.x_ref = at::rand({2, 3, 32, 32}, g, at::kFloat) * 2 - 1;
  b.x_ref2 = at::rand({2, 3, 32, 32}, g, at::kFloat) * 2 - 1;
  b.y_org = at::tensor({0, 1}, at::kLong);
  b.y_trg = at::tensor({1, 0}, at::kLong);
  b.z_trg = at::randn({2, 4}, g, at::kFloat);
  b.z_trg2 = at::randn({2, 4}, g, at::kFloat);
  return b;
}

std::vector<double> losses_of(Solver& s, int steps) {
  std::vector<double> out;
  for (int i = 0; i < steps; ++i)
    for (const auto& [name, v] : s.train_step(tiny_batch()).named()) out.push_back(v);
  return out;
}

TEST(SolverAugment, SameSeedSameRunAndTheAugmentationChangesIt) {
  TrainOptions o = tiny_options();
  Solver plain(o, torch::kCPU);
  o.diffaug = "color,translation,cutout";
  Solver a(o, torch::kCPU), b(o, torch::kCPU);
  const auto la = losses_of(a, 2), lb = losses_of(b, 2), lp = losses_of(plain, 2);
  EXPECT_EQ(la, lb);
  EXPECT_NE(la, lp) << "the augmentation did not change what D saw";
  // At probability 0 the augmented solver is the official one exactly.
  o.augment_p = 0;
  Solver zero(o, torch::kCPU);
  EXPECT_EQ(losses_of(zero, 2), lp);
}

TEST(SolverAugment, AdaStartsAtZeroAndCountsTheSignsOfDOnReals) {
  TrainOptions o = tiny_options();
  o.diffaug = "color,translation";
  o.ada_target = 0.6;
  o.ada_interval = 2;
  o.ada_kimg = 0.004;  // one step moves p by 2 * 2 / 4 = 1: the direction shows at once
  Solver s(o, torch::kCPU);
  EXPECT_EQ(s.augment_p(), 0.0);
  s.train_step(tiny_batch());
  // Two D steps of 2 reals each: 4 signs counted, not adjusted yet.
  AdaState st = s.ada_state();
  EXPECT_EQ(st.sign_count, 4);
  EXPECT_EQ(st.p, 0.0);
  s.train_step(tiny_batch());
  st = s.ada_state();
  EXPECT_EQ(st.sign_count, 0) << "the counts are cleared at the adjustment";
  // r_t is the mean of the 8 signs of the two iterations.
  EXPECT_GE(st.last_rt, -1.0);
  EXPECT_LE(st.last_rt, 1.0);
  EXPECT_DOUBLE_EQ(st.last_rt * 8, std::round(st.last_rt * 8));
  EXPECT_EQ(st.p, st.last_rt > 0.6 ? 1.0 : 0.0);
}

// --- The reconstruction warm-up (options.recon_warmup) ----------------------------------------

std::vector<at::Tensor> parameters_of(torch::nn::Module& m) {
  std::vector<at::Tensor> out;
  for (const at::Tensor& p : m.parameters()) out.push_back(p.detach().clone());
  return out;
}

bool same(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b) {
  for (size_t i = 0; i < a.size(); ++i)
    if (!at::equal(a[i], b[i])) return false;
  return true;
}

TEST(Warmup, TrainsOnlyGAndEThenTheOfficialIterationsBegin) {
  TrainOptions o = tiny_options();
  o.recon_warmup = 2;
  Solver s(o, torch::kCPU);
  const double lambda_ds = s.lambda_ds();
  const auto g0 = parameters_of(*s.nets().generator), e0 = parameters_of(*s.nets().style_encoder);
  const auto f0 = parameters_of(*s.nets().mapping_network), d0 = parameters_of(*s.nets().discriminator);
  const auto g_ema0 = parameters_of(*s.nets_ema().generator);

  for (int i = 0; i < 2; ++i) {
    const auto named = s.train_step(tiny_batch()).named();
    ASSERT_EQ(named.size(), 1u);
    EXPECT_EQ(named[0].first, "W/recon");
    EXPECT_GT(named[0].second, 0.0);
  }
  EXPECT_EQ(s.step(), 2);
  EXPECT_FALSE(same(parameters_of(*s.nets().generator), g0)) << "G was not trained";
  EXPECT_FALSE(same(parameters_of(*s.nets().style_encoder), e0)) << "E was not trained";
  EXPECT_TRUE(same(parameters_of(*s.nets().mapping_network), f0)) << "F changed in the warm-up";
  EXPECT_TRUE(same(parameters_of(*s.nets().discriminator), d0)) << "D changed in the warm-up";
  EXPECT_FALSE(same(parameters_of(*s.nets_ema().generator), g_ema0)) << "the average did not follow G";
  EXPECT_EQ(s.lambda_ds(), lambda_ds) << "the diversity weight decays over the official iterations only";

  const auto named = s.train_step(tiny_batch()).named();
  EXPECT_EQ(named.size(), 18u);
  EXPECT_EQ(named[0].first, "D/latent_real");
  EXPECT_FALSE(same(parameters_of(*s.nets().discriminator), d0));
  EXPECT_LT(s.lambda_ds(), lambda_ds);
}

TEST(Warmup, LearnsToGiveBackTheImagesAndIsReproducible) {
  TrainOptions o = tiny_options();
  o.recon_warmup = 40;
  Batch b = tiny_batch();
  // Smooth pictures (noise averaged over 8x8 and enlarged bilinearly), as faces are at this size.
  b.x_real = at::upsample_bilinear2d(at::avg_pool2d(b.x_real, 8), {32, 32}, false) * 3;
  b.x_real = b.x_real.clamp(-1, 1);
  auto run = [&] {
    Solver s(o, torch::kCPU);
    std::vector<double> recon;
    for (int i = 0; i < 40; ++i) recon.push_back(s.train_step(b).named()[0].second);
    return recon;
  };
  const auto a = run();
  EXPECT_LT(a.back(), 0.6 * a.front()) << "L1 " << a.front() << " -> " << a.back();
  EXPECT_EQ(run(), a);
}

TEST(Warmup, ANegativeLengthIsNamedAndTheOptionIsSaved_n) {
  TrainOptions o = tiny_options();
  o.total_iters = 10;
  o.recon_warmup = -1;
  try {
    o.validate();
    ADD_FAILURE() << "a negative warm-up was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("recon_warmup"), std::string::npos) << e.what();
  }
  // Longer than this part of the run is fine: a run may be trained in parts.
  o.recon_warmup = 11;
  EXPECT_NO_THROW(o.validate());
  o.recon_warmup = 10;
  // Written and read back with the run's options; a file from before the option reads as off.
  const TrainOptions back = TrainOptions::from_json(o.to_json());
  EXPECT_EQ(back.recon_warmup, 10);
  nlohmann::json j = nlohmann::json::parse(o.to_json());
  j.erase("recon_warmup");
  EXPECT_EQ(TrainOptions::from_json(j.dump()).recon_warmup, 0);
}

}  // namespace
}  // namespace starganv2
