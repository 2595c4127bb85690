// The inference engine on the CPU against the networks themselves, with small random
// checkpoints this test writes (needs nothing from ../shared).

#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <torch/cuda.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "engine_test_util.h"
#include "model/cpu_cache.h"
#include "model/cuda_graph_runner.h"
#include "model/fan.h"
#include "model/safetensors.h"
#include "model/seed_rng.h"
#include "model/style.h"
#include "model/translator.h"

namespace starganv2 {
namespace {

using test::TempDir;

TranslatorOptions cpu() {
  TranslatorOptions o;
  o.device = "cpu";
  return o;
}

// Asserts that `f` throws an exception whose message contains every one of `parts`.
template <typename F>
void expect_error(F&& f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "no exception; expected one mentioning \"" << parts.front() << "\"";
  } catch (const std::exception& e) {
    const std::string what = e.what();
    for (const auto& p : parts) EXPECT_NE(what.find(p), std::string::npos) << "message: " << what << "\nmissing: " << p;
  }
}

class Engine : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    write_random_checkpoint(hpf1(), test::engine_config(1.0), 11, /*with_fan=*/true);
    write_random_checkpoint(hpf0(), test::engine_config(0.0), 12, /*with_fan=*/false);
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static void write_random_checkpoint(const std::filesystem::path& p, const ModelConfig& c, uint64_t seed, bool fan) {
    test::write_random_checkpoint(p, c, seed, fan);
  }
  static std::filesystem::path hpf1() { return dir_->path() / "hpf1.safetensors"; }
  static std::filesystem::path hpf0() { return dir_->path() / "hpf0.safetensors"; }
  static std::filesystem::path tmp(const std::string& name) { return dir_->path() / name; }

  static TempDir* dir_;
};
TempDir* Engine::dir_ = nullptr;

// ---- the deterministic latent generator ----

TEST(SeedRng, SplitMix64MatchesThePublishedSequence) {
  // Vigna's splitmix64.c reference output for state 0.
  SplitMix64 rng(0);
  EXPECT_EQ(rng.next(), 0xE220A8397B1DCDAFULL);
  EXPECT_EQ(rng.next(), 0x6E789E6AA1B965F4ULL);
  EXPECT_EQ(rng.next(), 0x06C45D188009454FULL);
}

TEST(SeedRng, SameSeedSameCodesAndStandardNormal) {
  at::Tensor a = seeded_normal(1234, 500, 400);
  at::Tensor b = seeded_normal(1234, 500, 400);
  EXPECT_TRUE(at::equal(a, b));
  EXPECT_FALSE(at::equal(a, seeded_normal(1235, 500, 400)));
  EXPECT_NEAR(a.mean().item<double>(), 0.0, 0.01);
  EXPECT_NEAR(a.std().item<double>(), 1.0, 0.01);
  // A prefix of a longer stream: z for one code is the start of the stream.
  EXPECT_TRUE(at::equal(seeded_normal(99, 1, 16)[0], seeded_normal(99, 4, 16)[0]));
  EXPECT_TRUE(at::isfinite(a).all().item<bool>());
}

// ---- translation equals the networks ----

TEST_F(Engine, TranslateEqualsNetworksWithFanMasks) {
  Translator engine = Translator::open(hpf1(), cpu());
  EXPECT_EQ(engine.device(), c10::Device(c10::kCPU));
  EXPECT_EQ(engine.precision(), Precision::kFloat32);
  EXPECT_NE(engine.description().find("cpu"), std::string::npos);
  ASSERT_EQ(engine.domains(), test::small_domains());
  engine.use_latent_style(engine.domain_index("dog"), /*seed=*/7, /*psi=*/1.0);

  TranslatorNets ref = load_translator_nets(hpf1());
  const ModelConfig& c = ref.config;
  at::Tensor z = seeded_normal(7, 1, c.latent_dim);
  at::Tensor s;
  {
    torch::NoGradGuard no_grad;
    ref.mapping_network->eval();
    s = ref.mapping_network->forward(z, at::full({1}, 1, at::kLong));
  }

  at::Tensor input = test::random_u8(3, c.img_size, 3, 5);
  at::Tensor expected = test::reference_translate(ref, input, s.expand({3, c.style_dim}));
  at::Tensor got = engine.translate(input);
  ASSERT_EQ(got.sizes(), input.sizes());
  ASSERT_EQ(got.scalar_type(), at::kByte);
  // The engine runs channels-last, the reference NCHW: float rounding differs, so a value on a
  // rounding boundary may land one step away. Anything wrong (channel order, masks, style,
  // conversion) changes far more than that.
  EXPECT_LE(test::max_u8_diff(got, expected), 1);
  EXPECT_GE(test::equal_fraction(got, expected), 0.995);

  // The masks must matter, or this test could not tell whether the engine uses them.
  at::Tensor without = test::reference_translate(ref, input, s.expand({3, c.style_dim}), /*use_masks=*/false);
  EXPECT_GT(test::max_u8_diff(without, expected), 2);

  // The float path: same G, same masks.
  torch::NoGradGuard no_grad;
  at::Tensor x = test::u8_to_float(input);
  at::Tensor y_ref = ref.generator->forward(x, s.expand({3, c.style_dim}), ref.fan->get_heatmap(x));
  at::Tensor y = engine.generate(x, s[0]);
  EXPECT_LE((y - y_ref).abs().max().item<double>(), 1e-5 * std::max(1.0, y_ref.abs().max().item<double>()));
}

TEST_F(Engine, TranslateViewsBgrxInPlaceEqualsNetworks) {
  Translator engine = Translator::open(hpf0(), cpu());
  EXPECT_TRUE(engine.warnings().empty());
  engine.use_latent_style(2, 123, 1.0);
  TranslatorNets ref = load_translator_nets(hpf0());
  const int64_t size = ref.config.img_size;

  at::Tensor rgbx = test::random_u8(2, size, 4, 6);  // alpha byte 77
  at::Tensor rgb = rgbx.narrow(3, 0, 3).contiguous();
  at::Tensor expected = test::reference_translate(ref, rgb, engine.current_style().expand({2, ref.config.style_dim}));

  // BGRx frames with padded rows, translated in place.
  const int64_t stride = size * 4 + 12;
  std::vector<std::vector<uint8_t>> frames(2, std::vector<uint8_t>(stride * size, 0));
  std::vector<ImageView> in;
  std::vector<MutableImageView> out;
  for (int i = 0; i < 2; ++i) {
    at::Tensor f = at::from_blob(frames[i].data(), {size, size, 4}, {stride, 4, 1}, at::kByte);
    f.copy_(rgbx[i].index({at::indexing::Slice(), at::indexing::Slice(), at::tensor(std::vector<int64_t>{2, 1, 0, 3})}));
    out.push_back({frames[i].data(), size, size, stride, PixelFormat::kBGRx});
    in.push_back(out.back());
  }
  engine.translate(in, out);
  for (int i = 0; i < 2; ++i) {
    at::Tensor f = at::from_blob(frames[i].data(), {size, size, 4}, {stride, 4, 1}, at::kByte);
    at::Tensor got_rgb = f.index({at::indexing::Slice(), at::indexing::Slice(), at::tensor(std::vector<int64_t>{2, 1, 0})});
    EXPECT_LE(test::max_u8_diff(got_rgb, expected[i]), 1);
    EXPECT_GE(test::equal_fraction(got_rgb, expected[i]), 0.995);
    EXPECT_TRUE(f.select(2, 3).eq(77).all().item<bool>()) << "the 4th byte must be left untouched";
    // Row padding untouched.
    at::Tensor pad = at::from_blob(frames[i].data(), {size, stride}, at::kByte).narrow(1, size * 4, 12);
    EXPECT_TRUE(pad.eq(0).all().item<bool>());
  }

  // The tensor API with BGR gives the same pixels in BGR order.
  at::Tensor bgr = rgb.flip({3}).contiguous();
  at::Tensor got = engine.translate(bgr, PixelFormat::kBGR);
  EXPECT_LE(test::max_u8_diff(got.flip({3}), expected), 1);
}

TEST_F(Engine, PerImageStylesAndAnyBatchSize) {
  Translator engine = Translator::open(hpf0(), cpu());
  TranslatorNets ref = load_translator_nets(hpf0());
  const ModelConfig& c = ref.config;
  at::Tensor styles = at::stack({engine.latent_style(0, 1), engine.latent_style(1, 2), engine.latent_style(2, 3),
                                 engine.latent_style(0, 4), engine.latent_style(1, 5)});
  at::Tensor input = test::random_u8(5, c.img_size, 3, 8);
  at::Tensor got = engine.translate(input, PixelFormat::kRGB, styles);
  at::Tensor expected = test::reference_translate(ref, input, styles);
  EXPECT_LE(test::max_u8_diff(got, expected), 1);
  // Batch 1 of the same image gives the same pixels as inside the batch.
  at::Tensor one = engine.translate(input.narrow(0, 3, 1), PixelFormat::kRGB, styles.narrow(0, 3, 1));
  EXPECT_LE(test::max_u8_diff(one[0], got[3]), 1);
}

TEST_F(Engine, FanFromSeparateFile) {
  // The same weights split into a checkpoint without fan.* and a FAN-only file.
  TranslatorNets full = load_translator_nets(hpf1());
  CheckpointMeta meta = Checkpoint::open(hpf1()).meta();
  write_checkpoint(tmp("nofan.safetensors"), meta,
                   {{"generator", full.generator.get()},
                    {"mapping_network", full.mapping_network.get()},
                    {"style_encoder", full.style_encoder.get()}});
  write_safetensors(tmp("fan-only.safetensors"), named_state(*full.fan, "fan"), {});
  write_safetensors(tmp("fan-bare.safetensors"), named_state(*full.fan), {});

  expect_error([&] { Translator::open(tmp("nofan.safetensors"), cpu()); },
               {"nofan.safetensors", "fan.*", "w_hpf"});

  Translator a = Translator::open(hpf1(), cpu());
  Translator b = Translator::open(tmp("nofan.safetensors"), cpu(), tmp("fan-only.safetensors"));
  Translator d = Translator::open(tmp("nofan.safetensors"), cpu(), tmp("fan-bare.safetensors"));
  at::Tensor input = test::random_u8(1, a.config().img_size, 3, 9);
  for (Translator* t : {&a, &b, &d}) t->use_latent_style(0, 5);
  at::Tensor ya = a.translate(input);
  EXPECT_TRUE(at::equal(ya, b.translate(input)));
  EXPECT_TRUE(at::equal(ya, d.translate(input)));

  // A file that is not a FAN.
  expect_error([&] { Translator::open(tmp("nofan.safetensors"), cpu(), hpf0()); },
               {"hpf0.safetensors", "FAN", "missing"});
}

TEST_F(Engine, CpuAllocationCacheChangesNothingButMemoryReuse) {
  TranslatorOptions off = cpu();
  off.cpu_allocation_cache = false;
  at::Tensor input = test::random_u8(2, 64, 3, 13);
  at::Tensor expected;
  {
    Translator plain = Translator::open(hpf0(), off);
    plain.use_latent_style(1, 3);
    expected = plain.translate(input);
  }
  {
    Translator cached = Translator::open(hpf0(), cpu());
    cached.use_latent_style(1, 3);
    EXPECT_TRUE(at::equal(cached.translate(input), expected));
    const size_t held = cpu_cache_bytes();
    EXPECT_GT(held, 0u) << "the engine's freed activations should wait in the cache";
    EXPECT_TRUE(at::equal(cached.translate(input), expected));
    EXPECT_EQ(cpu_cache_bytes(), held) << "a second call of the same shape reuses the same blocks";
    // Allocations outside engine calls are not cached.
    { at::Tensor big = at::empty({64 << 20}, at::kByte); }
    EXPECT_EQ(cpu_cache_bytes(), held);
  }
  EXPECT_EQ(cpu_cache_bytes(), 0u) << "the last CPU translator gives the cache back";
}

// ---- styles ----

TEST_F(Engine, SameSeedSameStyleAcrossInstances) {
  Translator a = Translator::open(hpf0(), cpu());
  Translator b = Translator::open(hpf0(), cpu());
  at::Tensor sa = a.latent_style(1, 42);
  EXPECT_EQ(sa.sizes(), at::IntArrayRef({a.config().style_dim}));
  EXPECT_TRUE(at::equal(sa, b.latent_style(1, 42)));
  EXPECT_FALSE(at::equal(sa, a.latent_style(1, 43)));
  EXPECT_FALSE(at::equal(sa, a.latent_style(2, 42)));
  // The documented z: seeded_normal(seed) through F.
  at::Tensor z = seeded_normal(42, 1, a.config().latent_dim);
  EXPECT_TRUE(at::allclose(sa, a.mapping_style(z, at::full({1}, 1, at::kLong))[0], 0, 0));
}

TEST_F(Engine, PsiZeroGivesTheAverageStyle) {
  Translator engine = Translator::open(hpf0(), cpu());
  TranslatorNets ref = load_translator_nets(hpf0());
  const int64_t domain = 2;
  at::Tensor avg = engine.average_style(domain);

  // The official average: mean of F(z, y) over 10,000 codes (here from the documented seed).
  at::Tensor z = seeded_normal(kAverageStyleSeed, kAverageStyleSamples, ref.config.latent_dim);
  at::Tensor expected;
  {
    torch::NoGradGuard no_grad;
    ref.mapping_network->eval();
    expected = ref.mapping_network->forward(z, at::full({kAverageStyleSamples}, domain, at::kLong)).mean(0);
  }
  EXPECT_LE((avg - expected).abs().max().item<double>(), 1e-5 * std::max(1.0, expected.abs().max().item<double>()));

  EXPECT_TRUE(at::equal(engine.latent_style(domain, 77, 0.0), avg));
  at::Tensor raw = engine.latent_style(domain, 77, 1.0);
  EXPECT_FALSE(at::allclose(raw, avg));
  at::Tensor half = engine.latent_style(domain, 77, 0.5);
  EXPECT_TRUE(at::allclose(half, (avg + raw) / 2, 1e-5, 1e-6));
  // Cached once for all domains.
  engine.average_style(0);
  engine.latent_style(1, 3, 0.7);
  EXPECT_EQ(engine.stats().average_style_computations, 1);

  expect_error([&] { engine.latent_style(0, 1, 1.5); }, {"psi", "[0, 1]"});
  expect_error([&] { engine.latent_style(0, 1, -0.1); }, {"psi"});
}

TEST_F(Engine, InterpolationEndpointsAreTheStyles) {
  Translator engine = Translator::open(hpf0(), cpu());
  at::Tensor a = engine.latent_style(0, 1);
  at::Tensor b = engine.latent_style(1, 2);
  EXPECT_TRUE(at::equal(interpolate_styles(a, b, 0.0), a));
  EXPECT_TRUE(at::equal(interpolate_styles(a, b, 1.0), b));
  EXPECT_TRUE(at::allclose(interpolate_styles(a, b, 0.25), a + 0.25 * (b - a), 1e-6, 1e-6));
  expect_error([&] { interpolate_styles(a, b, 1.01); }, {"t must be in [0, 1]"});
  expect_error([&] { interpolate_styles(a, b.narrow(0, 0, 3), 0.5); }, {"shape"});

  // Interpolated styles drive translation like any other style.
  at::Tensor input = test::random_u8(1, engine.config().img_size, 3, 4);
  engine.use_style(interpolate_styles(a, b, 1.0));
  at::Tensor yb = engine.translate(input);
  engine.use_latent_style(1, 2);
  EXPECT_TRUE(at::equal(yb, engine.translate(input)));
}

TEST_F(Engine, StyleFileRoundTripAndErrors) {
  Translator engine = Translator::open(hpf0(), cpu());
  at::Tensor s = engine.latent_style(2, 9, 0.8);
  const auto file = tmp("style.safetensors");
  save_style(file, s, {{"domain", "wild"}});
  at::Tensor loaded = load_style(file, engine.config().style_dim);
  EXPECT_TRUE(at::equal(loaded, s));

  at::Tensor input = test::random_u8(2, engine.config().img_size, 3, 3);
  engine.use_style(loaded);
  at::Tensor y1 = engine.translate(input);
  engine.use_latent_style(2, 9, 0.8);
  EXPECT_TRUE(at::equal(y1, engine.translate(input)));

  expect_error([&] { load_style(file, engine.config().style_dim + 1); }, {"style.safetensors", "shape", "17"});
  expect_error([&] { load_style(hpf0(), 16); }, {"hpf0.safetensors", "no tensor named \"style\""});
  expect_error([&] { load_style(tmp("missing.safetensors"), 16); }, {"missing.safetensors"});
  {
    std::ofstream junk(tmp("junk.safetensors"), std::ios::binary);
    junk << "not a safetensors file at all";
  }
  expect_error([&] { load_style(tmp("junk.safetensors"), 16); }, {"junk.safetensors"});
  save_style(tmp("nan.safetensors"), at::full({16}, std::nan("")));
  expect_error([&] { load_style(tmp("nan.safetensors"), 16); }, {"nan.safetensors", "NaN"});
  expect_error([&] { engine.use_style(at::zeros({5})); }, {"style", "(16)"});
}

TEST_F(Engine, ReferenceStyleIsTheStyleEncoder) {
  Translator engine = Translator::open(hpf0(), cpu());
  TranslatorNets ref = load_translator_nets(hpf0());
  const int64_t size = ref.config.img_size;
  at::Tensor crop = test::random_u8(1, size, 3, 21);
  ImageView view{crop.data_ptr<uint8_t>(), size, size, size * 3, PixelFormat::kRGB};
  at::Tensor s = engine.reference_style(1, view);
  at::Tensor expected;
  {
    torch::NoGradGuard no_grad;
    ref.style_encoder->eval();
    expected = ref.style_encoder->forward(test::u8_to_float(crop), at::full({1}, 1, at::kLong))[0];
  }
  EXPECT_LE((s - expected).abs().max().item<double>(), 1e-5 * std::max(1.0, expected.abs().max().item<double>()));
  at::Tensor bgr = crop.flip({3}).contiguous();
  ImageView bgr_view{bgr.data_ptr<uint8_t>(), size, size, size * 3, PixelFormat::kBGR};
  EXPECT_TRUE(at::equal(engine.reference_style(1, bgr_view), s));
  EXPECT_FALSE(at::equal(engine.reference_style(0, view), s));
}

TEST_F(Engine, StylesAreCachedUntilTheirInputsChange) {
  Translator engine = Translator::open(hpf0(), cpu());
  auto computed = [&] { return engine.stats().style_computations; };
  engine.use_latent_style(0, 1, 1.0);
  EXPECT_EQ(computed(), 1);
  engine.use_latent_style(0, 1, 1.0);
  EXPECT_EQ(computed(), 1);
  engine.use_latent_style(0, 1, 0.5);  // psi changed
  EXPECT_EQ(computed(), 2);
  engine.use_latent_style(0, 2, 0.5);  // seed changed
  EXPECT_EQ(computed(), 3);
  engine.use_latent_style(1, 2, 0.5);  // domain changed
  EXPECT_EQ(computed(), 4);
  at::Tensor latent = engine.current_style();

  const int64_t size = engine.config().img_size;
  at::Tensor crop = test::random_u8(1, size, 3, 2);
  ImageView view{crop.data_ptr<uint8_t>(), size, size, size * 3, PixelFormat::kRGB};
  engine.use_reference_style(1, view);
  EXPECT_EQ(computed(), 5);
  engine.use_reference_style(1, view);
  EXPECT_EQ(computed(), 5);
  EXPECT_FALSE(at::equal(engine.current_style(), latent));
  crop[0][3][3][1].fill_((crop[0][3][3][1].item<int>() + 1) % 256);  // reference changed
  engine.use_reference_style(1, view);
  EXPECT_EQ(computed(), 6);
  engine.use_reference_style(2, view);  // domain changed
  EXPECT_EQ(computed(), 7);
  engine.use_latent_style(1, 2, 0.5);  // back to the cached latent style
  EXPECT_EQ(computed(), 7);
  EXPECT_TRUE(at::equal(engine.current_style(), latent));
}

// ---- errors ----

TEST_F(Engine, UnknownDomainListsTheValidNames) {
  Translator engine = Translator::open(hpf0(), cpu());
  EXPECT_EQ(engine.domain_index("wild"), 2);
  EXPECT_EQ(engine.domain_index("1"), 1);
  expect_error([&] { engine.domain_index("female"); }, {"unknown domain \"female\"", "cat", "dog", "wild"});
  expect_error([&] { engine.domain_index("3"); }, {"unknown domain", "cat, dog, wild"});
  expect_error([&] { engine.latent_style(7, 1); }, {"domain", "7", "cat", "wild"});
}

TEST_F(Engine, BadBatchesGiveClearErrors) {
  Translator engine = Translator::open(hpf0(), cpu());
  const int64_t size = engine.config().img_size;
  expect_error([&] { engine.translate(test::random_u8(1, size, 3, 1)); }, {"no style chosen"});
  engine.use_latent_style(0, 1);
  expect_error([&] { engine.translate(at::zeros({0, size, size, 3}, at::kByte)); }, {"empty batch"});
  expect_error([&] { engine.translate(std::span<const ImageView>{}, std::span<const MutableImageView>{}); },
               {"empty batch"});
  expect_error([&] { engine.translate(test::random_u8(2, 32, 3, 1)); }, {"wrong crop size", "32x32", "64x64"});
  expect_error([&] { engine.translate(test::random_u8(1, size, 4, 1)); }, {"wrong channel count", "4 channels"});
  expect_error([&] { engine.translate(at::zeros({1, size, size, 3}, at::kFloat)); }, {"uint8"});

  std::vector<uint8_t> pixels(48 * 48 * 3);
  ImageView small{pixels.data(), 48, 48, 48 * 3, PixelFormat::kRGB};
  MutableImageView small_out{pixels.data(), 48, 48, 48 * 3, PixelFormat::kRGB};
  expect_error([&] { engine.translate(std::span(&small, 1), std::span(&small_out, 1)); },
               {"wrong crop size", "48x48", "64x64"});
  expect_error([&] { engine.reference_style(0, small); }, {"wrong crop size"});
  std::vector<uint8_t> ok(size * size * 3);
  ImageView short_stride{ok.data(), size, size, size * 2, PixelFormat::kRGB};
  expect_error([&] { engine.reference_style(0, short_stride); }, {"stride"});
}

TEST_F(Engine, DeviceAndPrecisionErrors) {
  TranslatorOptions o;
  o.device = "cuda:7";
  if (!torch::cuda::is_available()) {
    expect_error([&] { Translator::open(hpf0(), o); }, {"CUDA requested but not available", "cuda"});
    o.device = "cuda";
    expect_error([&] { Translator::open(hpf0(), o); }, {"CUDA requested but not available", "cuda"});
  } else if (torch::cuda::device_count() <= 7) {
    expect_error([&] { Translator::open(hpf0(), o); }, {"no GPU 7"});
  }
  o.device = "tpu";
  expect_error([&] { Translator::open(hpf0(), o); }, {"invalid device \"tpu\""});
  o.device = "cuda:x";
  expect_error([&] { Translator::open(hpf0(), o); }, {"invalid device"});
  o.device = "cpu";
  o.precision = Precision::kFloat16;
  expect_error([&] { Translator::open(hpf0(), o); }, {"fp16", "needs a CUDA device"});
  o.precision = Precision::kBFloat16;
  expect_error([&] { Translator::open(hpf0(), o); }, {"bf16", "needs a CUDA device"});
  o.precision = Precision::kAuto;
  EXPECT_EQ(Translator::open(hpf0(), o).precision(), Precision::kFloat32);
  expect_error([] { parse_precision("fp8"); }, {"fp8", "fp32, fp16 or bf16"});
  EXPECT_EQ(parse_precision("bf16"), Precision::kBFloat16);
  expect_error([&] { Translator::open(tmp("does-not-exist.safetensors"), cpu()); }, {"does-not-exist.safetensors"});
}

// ---- the mask path keeps float32 whatever G runs in ----

TEST_F(Engine, FanMasksAreComputedInFloat32WhateverTheGeneratorPrecision) {
  FAN fan = load_translator_nets(hpf1()).fan;  // float32 weights
  fan->eval();
  const at::Tensor x32 = test::u8_to_float(test::random_u8(2, 64, 3, 21));
  const Masks ref = fan->get_heatmap(x32);
  // Masks whose values half precision would round (random FAN weights saturate the coarse mask
  // at 1, the fine one varies), or the comparisons below could not tell precisions apart.
  ASSERT_FALSE(at::equal(ref.fine, ref.fine.to(at::kHalf).to(at::kFloat)));
  for (at::ScalarType g_dtype : {at::kHalf, at::kBFloat16, at::kFloat}) {
    const Masks m = fan_masks(*fan, x32, g_dtype);
    EXPECT_EQ(m.coarse.scalar_type(), g_dtype);
    EXPECT_EQ(m.fine.scalar_type(), g_dtype);
    // The float32 masks, rounded to G's precision once at the very end.
    EXPECT_TRUE(at::equal(m.coarse, ref.coarse.to(g_dtype))) << g_dtype;
    EXPECT_TRUE(at::equal(m.fine, ref.fine.to(g_dtype))) << g_dtype;
  }
  // An input already in G's precision is widened to float32 before the FAN sees it.
  const at::Tensor x16 = x32.to(at::kBFloat16);
  const Masks m = fan_masks(*fan, x16, at::kBFloat16);
  const Masks expected = fan->get_heatmap(x16.to(at::kFloat));
  EXPECT_TRUE(at::equal(m.coarse, expected.coarse.to(at::kBFloat16)));
  EXPECT_TRUE(at::equal(m.fine, expected.fine.to(at::kBFloat16)));
  for (const auto& p : fan->parameters()) EXPECT_EQ(p.scalar_type(), at::kFloat) << "fan_masks must not convert the FAN";
}

TEST_F(Engine, MasksAreTheFanMasksInFloat32AndFeedG) {
  Translator engine = Translator::open(hpf1(), cpu());
  TranslatorNets ref = load_translator_nets(hpf1());
  const at::Tensor x = test::u8_to_float(test::random_u8(2, engine.config().img_size, 3, 4));
  const Masks m = engine.masks(x);
  ASSERT_TRUE(m.defined());
  EXPECT_EQ(m.coarse.scalar_type(), at::kFloat);
  EXPECT_EQ(m.fine.scalar_type(), at::kFloat);
  EXPECT_TRUE(m.coarse.device().is_cpu());
  ref.fan->eval();
  const Masks r = ref.fan->get_heatmap(x);
  EXPECT_TRUE(at::equal(m.coarse, r.coarse));
  EXPECT_TRUE(at::equal(m.fine, r.fine));
  // They are the masks the engine gives G.
  const at::Tensor s = engine.latent_style(0, 3);
  EXPECT_TRUE(at::equal(engine.generate(x, s), engine.generate(x, s, m)));
  EXPECT_FALSE(Translator::open(hpf0(), cpu()).masks(x).defined()) << "w_hpf = 0 has no masks";
  expect_error([&] { engine.masks(at::zeros({1, 3, 32, 32})); }, {"(N,3,64,64)", "got [1,3,32,32]"});
}

// ---- warm-up and the CUDA graph runner, as far as a CPU shows them ----

TEST_F(Engine, WarmUpOnTheCpuRunsEachSizeOnceAndCapturesNothing) {
  Translator engine = Translator::open(hpf0(), cpu());
  engine.warm_up_to(3);
  EXPECT_EQ(engine.stats().eager_calls, 3);
  EXPECT_EQ(engine.stats().graph_captures, 0);
  EXPECT_TRUE(engine.graph_batch_sizes().empty());
  EXPECT_FALSE(engine.current_style().defined()) << "warm-up leaves no style chosen";
  expect_error([&] { engine.warm_up_to(0); }, {"warm_up_to", ">= 1"});
  const int64_t bad[] = {2, 0};
  expect_error([&] { engine.warm_up(bad); }, {"warm_up", ">= 1", "got 0"});
}

TEST(GraphRunner, NeedsACudaDevice) {
  expect_error([] { CudaGraphRunner runner(c10::Device(c10::kCPU), {}); }, {"CUDA"});
}

}  // namespace
}  // namespace starganv2
