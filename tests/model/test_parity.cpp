// Numerical parity with the official StarGAN v2 PyTorch code: loads the random weights, inputs
// and outputs that the official code produced (../shared/fixtures/official-forward-*.safetensors,
// described in ../shared/README.md), runs our networks on the same inputs in float32 on the CPU
// and compares, printing the largest differences.
//
// Fixtures: env STARGANV2_FIXTURES (':'-separated paths), else every
// official-forward-*.safetensors in $STARGANV2_SHARED/fixtures. Exits 77 (skipped) when there is
// none. The network config comes from each file's metadata.
#include <gtest/gtest.h>

#include <ATen/core/grad_mode.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "model/checkpoint.h"
#include "model/config.h"
#include "model/discriminator.h"
#include "model/fan.h"
#include "model/generator.h"
#include "model/mapping_network.h"
#include "model/safetensors.h"
#include "model/style_encoder.h"

namespace fs = std::filesystem;

namespace starganv2 {
namespace {

// Tolerances from ../shared/README.md: what two faithful float32 implementations differ by.
constexpr double kStyleTolerance = 1e-4;      // F, E, D, raw heatmaps; times max(1, max|ref|)
constexpr double kGeneratorTolerance = 1e-3;  // G outputs; times max(1, max|ref|)
constexpr double kMaskMeanTolerance = 1e-4;   // mean |diff| of masks from our FAN
constexpr double kLandmarkPixels = 0.01;
constexpr double kLandmarkShare = 0.98;       // the rest are argmax ties one heatmap cell apart

struct Fixture {
  fs::path path;
  ModelConfig config;
  SafetensorsFile file;

  const at::Tensor& io(const std::string& key) const {
    auto it = file.tensors.find("io." + key);
    if (it == file.tensors.end()) throw std::runtime_error(path.string() + ": no tensor io." + key);
    return it->second;
  }
  at::Tensor io_f32(const std::string& key) const { return io(key).to(at::kFloat); }

  // Copies "<prefix>.*" into the module by official names, as float32. Every tensor of the module
  // must be there with its shape and every file tensor under the prefix must be used, so this
  // also checks that our module tree has exactly the official names.
  void load(torch::nn::Module& module, const std::string& prefix) const {
    torch::NoGradGuard no_grad;
    std::set<std::string> used;
    for (auto& [name, dst] : named_state(module, prefix)) {
      auto it = file.tensors.find(name);
      if (it == file.tensors.end()) throw std::runtime_error(path.string() + ": missing " + name);
      if (it->second.sizes() != dst.sizes())
        throw std::runtime_error(path.string() + ": " + name + " has a different shape than the module's");
      dst.copy_(it->second.to(dst.scalar_type()));
      used.insert(name);
    }
    std::string unused;
    for (auto it = file.tensors.lower_bound(prefix + "."); it != file.tensors.end() && it->first.rfind(prefix + ".", 0) == 0;
         ++it)
      if (!used.count(it->first)) unused += " " + it->first;
    if (!unused.empty()) throw std::runtime_error(path.string() + ": tensors the module does not have:" + unused);
  }
};

const Fixture& fixture(const fs::path& path) {
  static std::map<fs::path, std::unique_ptr<Fixture>> cache;
  auto& slot = cache[path];
  if (!slot) {
    auto f = std::make_unique<Fixture>();
    f->path = path;
    f->file = read_safetensors(path);
    auto it = f->file.metadata.find("config");
    if (it == f->file.metadata.end()) throw std::runtime_error(path.string() + ": no \"config\" in the metadata");
    f->config = ModelConfig::from_json(it->second);
    slot = std::move(f);
  }
  return *slot;
}

struct Diff {
  double max_abs = 0, mean_abs = 0, max_ref = 0;
};

Diff compare(const at::Tensor& ours, const at::Tensor& ref) {
  EXPECT_EQ(ours.sizes(), ref.sizes());
  if (ours.sizes() != ref.sizes()) return {1e30, 1e30, 0};
  at::Tensor d = (ours.to(at::kDouble) - ref.to(at::kDouble)).abs();
  // NaN anywhere must fail, not vanish in max().
  if (d.isnan().any().item<bool>()) return {1e30, 1e30, 0};
  return {d.max().item<double>(), d.mean().item<double>(), ref.abs().max().item<double>()};
}

void report(const std::string& what, const Diff& d, const std::string& bound) {
  std::printf("  %-26s max|diff| %.3g  mean|diff| %.3g  max|ref| %.3g  (%s)\n", what.c_str(), d.max_abs, d.mean_abs,
              d.max_ref, bound.c_str());
  std::fflush(stdout);
}

// max|ours - ref| <= tol * max(1, max|ref|)
void expect_close(const std::string& what, const at::Tensor& ours, const at::Tensor& ref, double tol) {
  Diff d = compare(ours, ref);
  const double bound = tol * std::max(1.0, d.max_ref);
  char text[64];
  std::snprintf(text, sizeof text, "bound %.3g", bound);
  report(what, d, text);
  EXPECT_LE(d.max_abs, bound) << what;
}

void expect_masks_close(const std::string& what, const Masks& ours, const Fixture& f) {
  for (auto [name, t] : {std::pair{"coarse", ours.coarse}, std::pair{"fine", ours.fine}}) {
    Diff d = compare(t, f.io_f32(std::string("masks_") + name));
    char text[64];
    std::snprintf(text, sizeof text, "mean bound %.3g", kMaskMeanTolerance);
    report(what + " " + name, d, text);
    EXPECT_LE(d.mean_abs, kMaskMeanTolerance) << what << " " << name;
  }
}

// ---------------------------------------------------------------------------------------------

class ParityTest : public testing::Test {
 public:
  explicit ParityTest(fs::path path, std::string check) : path_(std::move(path)), check_(std::move(check)) {}

  void TestBody() override {
    const Fixture& f = fixture(path_);
    c10::InferenceMode inference;
    const auto start = std::chrono::steady_clock::now();
    std::printf("[%s] %s, config %s\n", path_.filename().c_str(), check_.c_str(), f.config.to_json().c_str());
    run(f);
    std::printf("  (%.2f s)\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }

 private:
  // Every network the config implies must be in the fixture (a missing one fails: it is not
  // something the config makes meaningless); the FAN and the masks exist only with w_hpf > 0.
  // For w_hpf = 0, io.g_out is G(x, s_latent) and io.g_out_ref G(x, s_ref), without masks.
  void run(const Fixture& f) {
    const ModelConfig& c = f.config;
    const bool hpf = c.w_hpf > 0;
    if (check_ == "MappingNetwork") {
      MappingNetwork net(c);
      f.load(*net, "mapping_network");
      net->eval();
      expect_close("s_latent = F(z, y)", net(f.io_f32("z"), f.io("y")), f.io("s_latent"), kStyleTolerance);
    } else if (check_ == "StyleEncoder") {
      StyleEncoder net(c);
      f.load(*net, "style_encoder");
      net->eval();
      expect_close("s_ref = E(x_ref, y)", net(f.io_f32("x_ref"), f.io("y")), f.io("s_ref"), kStyleTolerance);
    } else if (check_ == "Discriminator") {
      Discriminator net(c);
      f.load(*net, "discriminator");
      net->eval();
      expect_close("d_out = D(x, y)", net(f.io_f32("x"), f.io("y")), f.io("d_out"), kStyleTolerance);
    } else if (check_ == "FAN") {
      if (!hpf) {
        // Nothing to compare: say so if the fixture holds FAN data anyway, which means it was
        // made for another config.
        for (const auto& [name, t] : f.file.tensors)
          ASSERT_FALSE(name.starts_with("fan.") || name.starts_with("io.fan_") || name.starts_with("io.masks_"))
              << name << " in a w_hpf = 0 fixture";
        GTEST_SKIP() << "w_hpf = 0: the model has no FAN";
      }
      FAN fan = load_fan(f);
      const at::Tensor x = f.io_f32("x");
      expect_close("FAN raw heatmaps", fan->get_heatmap_raw(x), f.io("fan_heatmaps_raw"), kStyleTolerance);
      expect_masks_close("FAN masks", fan->get_heatmap(x), f);

      const at::Tensor ours = fan->get_landmark(x), ref = f.io_f32("fan_landmarks");
      ASSERT_EQ(ours.sizes(), ref.sizes());
      const at::Tensor dist = (ours - ref).abs().amax(2);  // per point, the worse coordinate
      const double share = (dist <= kLandmarkPixels).to(at::kDouble).mean().item<double>();
      std::printf("  %-26s %.2f%% within %.2g px, max diff %.3g px (need %.0f%%)\n", "FAN landmarks", 100 * share,
                  kLandmarkPixels, dist.max().item<double>(), 100 * kLandmarkShare);
      EXPECT_GE(share, kLandmarkShare);
    } else if (check_ == "Generator") {
      // With w_hpf > 0 the fixture's own masks, so that G is compared alone.
      Generator g = load_generator(f);
      const Masks masks = hpf ? Masks{f.io_f32("masks_coarse"), f.io_f32("masks_fine")} : Masks{};
      const at::Tensor x = f.io_f32("x");
      const char* m = hpf ? ", m" : "";
      expect_close(std::string("g_out = G(x, s_latent") + m + ")", g(x, f.io_f32("s_latent"), masks), f.io("g_out"),
                   kGeneratorTolerance);
      expect_close(std::string("g_out_ref = G(x, s_ref") + m + ")", g(x, f.io_f32("s_ref"), masks), f.io("g_out_ref"),
                   kGeneratorTolerance);
    } else if (check_ == "GeneratorWithoutMasks") {
      Generator g = load_generator(f);
      expect_close("g_out_no_masks = G(x, s)", g(f.io_f32("x"), f.io_f32("s_latent")), f.io("g_out_no_masks"),
                   kGeneratorTolerance);
    } else if (check_ == "GeneratorWithOwnFANMasks") {
      if (!hpf) GTEST_SKIP() << "w_hpf = 0: the generator takes no masks";
      Generator g = load_generator(f);
      FAN fan = load_fan(f);
      const at::Tensor x = f.io_f32("x");
      expect_close("g_out = G(x, s, FAN(x))", g(x, f.io_f32("s_latent"), fan->get_heatmap(x)), f.io("g_out"),
                   kGeneratorTolerance);
    } else if (check_ == "EveryTensorIsChecked") {
      // Whatever a fixture holds is compared by one of the checks above: a new output in a
      // fixture fails here until a check uses it.
      const std::set<std::string> known = {"x", "y", "z", "x_ref", "s_latent", "s_ref", "d_out", "g_out", "g_out_ref",
                                           "g_out_no_masks", "fan_heatmaps_raw", "fan_landmarks", "masks_coarse",
                                           "masks_fine"};
      const std::set<std::string> nets = {"generator", "mapping_network", "style_encoder", "discriminator", "fan"};
      for (const auto& [name, t] : f.file.tensors) {
        const std::string head = name.substr(0, name.find('.'));
        if (head == "io")
          EXPECT_TRUE(known.count(name.substr(3))) << name << " is in the fixture but no check compares it";
        else
          EXPECT_TRUE(nets.count(head)) << name << " belongs to no network a check loads";
      }
    } else {
      FAIL() << "unknown check " << check_;
    }
  }

  static Generator load_generator(const Fixture& f) {
    Generator g(f.config);
    f.load(*g, "generator");
    g->eval();
    return g;
  }
  static FAN load_fan(const Fixture& f) {
    FAN fan;
    f.load(*fan, "fan");
    fan->eval();
    return fan;
  }

  fs::path path_;
  std::string check_;
};

std::vector<fs::path> find_fixtures(std::string* why_none) {
  std::vector<fs::path> found;
  if (const char* list = std::getenv("STARGANV2_FIXTURES"); list && *list) {
    std::string rest = list;
    size_t pos = 0;
    while (pos <= rest.size()) {
      size_t end = rest.find(':', pos);
      if (end == std::string::npos) end = rest.size();
      const std::string item = rest.substr(pos, end - pos);
      if (!item.empty()) {
        if (fs::is_regular_file(item)) {
          found.emplace_back(item);
        } else {
          std::fprintf(stderr, "STARGANV2_FIXTURES: %s is not a file, ignored\n", item.c_str());
        }
      }
      pos = end + 1;
    }
    *why_none = std::string("none of the files in STARGANV2_FIXTURES (") + list + ") exists";
    return found;
  }
  const char* shared = std::getenv("STARGANV2_SHARED");
  if (!shared || !*shared) {
    *why_none = "neither STARGANV2_FIXTURES nor STARGANV2_SHARED is set";
    return found;
  }
  const fs::path dir = fs::path(shared) / "fixtures";
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_regular_file() && name.starts_with("official-forward-") && name.ends_with(".safetensors"))
      found.push_back(entry.path());
  }
  std::sort(found.begin(), found.end());
  *why_none = "no official-forward-*.safetensors in " + dir.string() + (ec ? " (" + ec.message() + ")" : "");
  return found;
}

}  // namespace
}  // namespace starganv2

int main(int argc, char** argv) {
  using namespace starganv2;
  std::string why_none;
  const std::vector<fs::path> paths = find_fixtures(&why_none);
  if (paths.empty()) {
    std::printf("SKIP: %s (the fixtures live in ../shared; see its README)\n", why_none.c_str());
    return 77;
  }
  testing::InitGoogleTest(&argc, argv);
  for (const fs::path& path : paths) {
    std::string suite = "Parity/" + path.stem().string();
    for (const char* check : {"MappingNetwork", "StyleEncoder", "Discriminator", "FAN", "Generator",
                              "GeneratorWithoutMasks", "GeneratorWithOwnFANMasks", "EveryTensorIsChecked"}) {
      testing::RegisterTest(suite.c_str(), check, nullptr, nullptr, __FILE__, __LINE__,
                            [path, check]() -> ParityTest* { return new ParityTest(path, check); });
    }
  }
  return RUN_ALL_TESTS();
}
