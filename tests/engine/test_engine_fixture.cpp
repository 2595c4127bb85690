// The engine on the CPU in fp32 against the official forward pass stored in
// ../shared/fixtures/official-forward-256-hpf1.safetensors (computed by the official PyTorch
// code). The fixture holds weights under the network prefixes but not our checkpoint metadata,
// so the test writes a proper checkpoint from it and opens that, as a user would.
// Exits 77 (skipped) when ../shared is absent.

#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "engine_test_util.h"
#include "model/checkpoint.h"
#include "model/safetensors.h"
#include "model/translator.h"

namespace starganv2 {
namespace {

std::filesystem::path g_fixture;

// Copies "<prefix>.*" of the fixture into `net`; every tensor must be there with its shape.
void load_from_fixture(const SafetensorsFile& f, torch::nn::Module& net, const std::string& prefix) {
  torch::NoGradGuard no_grad;
  for (auto& [name, dst] : named_state(net, prefix)) {
    auto it = f.tensors.find(name);
    ASSERT_NE(it, f.tensors.end()) << "fixture lacks " << name;
    ASSERT_EQ(it->second.sizes(), dst.sizes()) << name;
    dst.copy_(it->second.to(at::kFloat));
  }
}

double max_abs(const at::Tensor& t) { return t.abs().max().item<double>(); }

void expect_close(const at::Tensor& got, const at::Tensor& ref, double rel, const char* what) {
  const double diff = max_abs(got - ref);
  const double tol = rel * std::max(1.0, max_abs(ref));
  std::printf("  %-34s max |diff| %.3g (tolerance %.3g)\n", what, diff, tol);
  EXPECT_LE(diff, tol) << what;
}

TEST(EngineFixture, MatchesTheOfficialForward) {
  const SafetensorsFile f = read_safetensors(g_fixture);
  const ModelConfig config = ModelConfig::from_json(f.metadata.at("config"));
  ASSERT_GT(config.w_hpf, 0);

  test::TempDir dir;
  const auto ckpt = dir.path() / "fixture-model.safetensors";
  {
    Generator g(config);
    MappingNetwork m(config);
    StyleEncoder e(config);
    FAN fan;
    load_from_fixture(f, *g, "generator");
    load_from_fixture(f, *m, "mapping_network");
    load_from_fixture(f, *e, "style_encoder");
    load_from_fixture(f, *fan, "fan");
    CheckpointMeta meta;
    meta.config = config;
    meta.domains = {"female", "male"};
    meta.producer = "test_engine_fixture";
    write_checkpoint(ckpt, meta, {{"generator", g.get()}, {"mapping_network", m.get()},
                                  {"style_encoder", e.get()}, {"fan", fan.get()}});
  }
  TranslatorOptions cpu;
  cpu.device = "cpu";
  Translator engine = Translator::open(ckpt, cpu);
  EXPECT_TRUE(engine.warnings().empty());

  auto io = [&](const std::string& name) { return f.tensors.at("io." + name).to(at::kFloat); };
  const at::Tensor x = io("x"), s_latent = io("s_latent"), s_ref = io("s_ref");
  const at::Tensor y = f.tensors.at("io.y");
  const Masks fixture_masks{io("masks_coarse"), io("masks_fine")};

  // Shared README tolerances: styles 1e-4 relative, G with the fixture's masks 1e-3 relative.
  expect_close(engine.mapping_style(io("z"), y), s_latent, 1e-4, "F(z, y)");
  expect_close(engine.reference_style(io("x_ref"), y), s_ref, 1e-4, "E(x_ref, y)");
  expect_close(engine.generate(x, s_latent, fixture_masks), io("g_out"), 1e-3, "G(x, s_latent, fixture masks)");
  expect_close(engine.generate(x, s_ref, fixture_masks), io("g_out_ref"), 1e-3, "G(x, s_ref, fixture masks)");

  // Masks from the engine's own FAN (as at inference): the README allows a mean mask difference
  // of 1e-4, which moves G's output a little; the mean output difference must stay that small.
  const at::Tensor own = engine.generate(x, s_latent);
  const double mean_diff = (own - io("g_out")).abs().mean().item<double>();
  std::printf("  %-34s mean |diff| %.3g, max %.3g\n", "G(x, s_latent, own FAN masks)", mean_diff,
              max_abs(own - io("g_out")));
  EXPECT_LE(mean_diff, 1e-4 * std::max(1.0, max_abs(io("g_out"))));

  // The uint8 path: the fixture inputs quantised to crops, translated with per-image styles,
  // against the networks run directly (own FAN masks) and converted as the official save_image.
  const at::Tensor u8 = x.add(1).mul(127.5).round().clamp(0, 255).to(at::kByte).permute({0, 2, 3, 1}).contiguous();
  const at::Tensor got = engine.translate(u8, PixelFormat::kRGB, s_latent);
  TranslatorNets nets = load_translator_nets(ckpt);
  const at::Tensor expected = test::reference_translate(nets, u8, s_latent);
  const int64_t max_diff = test::max_u8_diff(got, expected);
  const double equal = test::equal_fraction(got, expected);
  std::printf("  %-34s max |diff| %lld/255, %.4f%% equal\n", "translate(uint8) vs networks",
              static_cast<long long>(max_diff), 100 * equal);
  EXPECT_LE(max_diff, 1);
  EXPECT_GE(equal, 0.995);
  // ... and close to the official output itself (quantisation of the input moves it a little).
  const at::Tensor official_u8 = test::float_to_u8(io("g_out"));
  const double mean_u8 = (got.to(at::kFloat) - official_u8.to(at::kFloat)).abs().mean().item<double>();
  std::printf("  %-34s mean |diff| %.3f/255\n", "translate(uint8) vs official g_out", mean_u8);
  EXPECT_LE(mean_u8, 2.0);
}

}  // namespace
}  // namespace starganv2

int main(int argc, char** argv) {
  const char* shared = std::getenv("STARGANV2_SHARED");
  starganv2::g_fixture = std::filesystem::path(shared ? shared : "../shared") / "fixtures" /
                         "official-forward-256-hpf1.safetensors";
  if (!std::filesystem::exists(starganv2::g_fixture)) {
    std::printf("SKIP: %s not found (set STARGANV2_SHARED to the shared folder)\n", starganv2::g_fixture.c_str());
    return 77;
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
