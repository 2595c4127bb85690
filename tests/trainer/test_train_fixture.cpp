// The proof that one training iteration is the official one: loads the weights, inputs,
// expected losses and expected weights after one iteration of the official training loop
// (../shared/fixtures/official-train-iteration-*.safetensors, see ../shared/README.md), runs
// Solver::train_step from the same state on the CPU in float32 and checks the stated
// tolerances, printing the worst figures.
//
// Fixtures: env STARGANV2_TRAIN_FIXTURES (':'-separated paths), else every
// official-train-iteration-*.safetensors in $STARGANV2_SHARED/fixtures. Exits 77 (skipped) when
// there is none. Config and hyper-parameters come from each file's metadata.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "model/safetensors.h"
#include "trainer/solver.h"
#include "trainer/train_state.h"
#include "train_compare.h"

namespace fs = std::filesystem;

namespace starganv2 {
namespace {

using namespace train_compare;

class TrainIterationTest : public testing::Test {
 public:
  explicit TrainIterationTest(fs::path path) : path_(std::move(path)) {}

  void TestBody() override {
    const auto start = std::chrono::steady_clock::now();
    const SafetensorsFile f = read_safetensors(path_);
    ASSERT_TRUE(f.metadata.count("config") && f.metadata.count("train")) << path_ << ": metadata config/train missing";
    const auto train = nlohmann::json::parse(f.metadata.at("train"));
    if (f.metadata.count("order")) std::printf("[%s] order: %s\n", path_.filename().c_str(), f.metadata.at("order").c_str());

    TrainOptions o;
    o.model = ModelConfig::from_json(f.metadata.at("config"));
    o.batch_size = tensor(f, "io.x_real").size(0);
    o.lambda_reg = train.at("lambda_reg").get<double>();
    o.lambda_sty = train.at("lambda_sty").get<double>();
    o.lambda_ds = train.at("lambda_ds").get<double>();
    o.lambda_cyc = train.at("lambda_cyc").get<double>();
    o.ds_iter = train.at("ds_iter").get<int64_t>();
    o.lr = train.at("lr").get<double>();
    o.f_lr = train.at("f_lr").get<double>();
    o.beta1 = train.at("beta1").get<double>();
    o.beta2 = train.at("beta2").get<double>();
    o.weight_decay = train.at("weight_decay").get<double>();
    o.ema_beta = train.value("ema_beta", 0.999);
    std::printf("[%s] config %s\n  options %s\n", path_.filename().c_str(), o.model.to_json().c_str(), o.to_json().c_str());

    FAN fan{nullptr};
    if (o.model.w_hpf > 0) {
      ASSERT_TRUE(has_prefix(f, "fan.")) << path_ << ": w_hpf > 0 but no fan.* weights";
      fan = FAN();
      load_prefixed(f, path_.string(), *fan, "fan", /*strict=*/false);
    }
    Solver solver(o, torch::kCPU, Precision::kFloat32, fan);
    // The fixture's EMA networks start from the same weights as the trained ones.
    for (auto& [name, net] : solver.nets().named()) load_prefixed(f, path_.string(), *net, "init." + name);
    for (auto& [name, net] : solver.nets_ema().named()) load_prefixed(f, path_.string(), *net, "init." + name);

    Batch b;
    b.x_real = tensor(f, "io.x_real").to(at::kFloat);
    b.y_org = tensor(f, "io.y_org").to(at::kLong);
    b.y_trg = tensor(f, "io.y_trg").to(at::kLong);
    b.x_ref = tensor(f, "io.x_ref").to(at::kFloat);
    b.x_ref2 = tensor(f, "io.x_ref2").to(at::kFloat);
    b.z_trg = tensor(f, "io.z_trg").to(at::kFloat);
    b.z_trg2 = tensor(f, "io.z_trg2").to(at::kFloat);
    const StepLosses losses = solver.train_step(b);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    // Losses: "D/latent_real" <-> loss.D_latent.real
    double worst_rel = 0;
    std::string worst_name;
    int checked = 0;
    for (const auto& [name, value] : losses.named()) {
      const auto slash = name.find('/'), under = name.find('_');
      const std::string key = "loss." + name.substr(0, slash) + "_" + name.substr(slash + 1, under - slash - 1) + "." +
                              name.substr(under + 1);
      if (!f.tensors.count(key)) continue;
      const double ref = tensor(f, key).to(at::kDouble).item<double>();
      const double rel = std::abs(value - ref) / std::max(std::abs(ref), 1e-12);
      std::printf("  %-22s ours %.7f  official %.7f  rel %.2e\n", key.c_str(), value, ref, rel);
      EXPECT_LE(rel, kLossRelTolerance) << key << ": ours " << value << ", official " << ref;
      if (!(rel <= worst_rel)) {
        worst_rel = rel;
        worst_name = key;
      }
      ++checked;
    }
    EXPECT_EQ(checked, 18) << "the fixture should hold 18 loss terms";
    std::printf("  worst loss: %s rel %.2e (limit %.0e)\n", worst_name.c_str(), worst_rel, kLossRelTolerance);

    if (train.contains("lambda_ds_after")) {
      const double want = train["lambda_ds_after"].get<double>();
      std::printf("  lambda_ds after: ours %.12g official %.12g\n", solver.lambda_ds(), want);
      EXPECT_NEAR(solver.lambda_ds(), want, 1e-9);
    }

    WeightStats trained, ema;
    for (auto& [name, net] : solver.nets().named()) compare_net(f, "after", name, *net, trained);
    for (auto& [name, net] : solver.nets_ema().named())
      if (has_prefix(f, "after_ema." + name + ".")) compare_net(f, "after_ema", name, *net, ema);
    report_and_check("after", trained, /*per_tensor_cosine=*/true);
    report_and_check("after_ema", ema, /*per_tensor_cosine=*/false);
    std::printf("  (%.1f s)\n", seconds);
  }

 private:
  fs::path path_;
};

std::vector<fs::path> fixture_paths() {
  std::vector<fs::path> out;
  if (const char* env = std::getenv("STARGANV2_TRAIN_FIXTURES"); env && *env) {
    std::string list = env;
    size_t pos = 0;
    while (pos <= list.size()) {
      const size_t end = std::min(list.find(':', pos), list.size());
      if (end > pos) {
        const fs::path p = list.substr(pos, end - pos);
        if (fs::exists(p)) out.push_back(p);
        else std::printf("note: STARGANV2_TRAIN_FIXTURES names %s, which does not exist\n", p.c_str());
      }
      pos = end + 1;
    }
    return out;
  }
  const char* shared = std::getenv("STARGANV2_SHARED");
  if (!shared) return out;
  const fs::path dir = fs::path(shared) / "fixtures";
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind("official-train-iteration-", 0) == 0 && it->path().extension() == ".safetensors")
      out.push_back(it->path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace
}  // namespace starganv2

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  const auto paths = starganv2::fixture_paths();
  if (paths.empty()) {
    std::printf("SKIP: no official-train-iteration-*.safetensors fixture (set STARGANV2_TRAIN_FIXTURES, or provide "
                "$STARGANV2_SHARED/fixtures; STARGANV2_SHARED=%s)\n",
                std::getenv("STARGANV2_SHARED") ? std::getenv("STARGANV2_SHARED") : "(unset)");
    return 77;
  }
  for (const auto& p : paths) {
    std::string name = p.stem().string();
    for (char& c : name)
      if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
    testing::RegisterTest("TrainIteration", name.c_str(), nullptr, nullptr, __FILE__, __LINE__,
                          [p]() -> testing::Test* { return new starganv2::TrainIterationTest(p); });
  }
  return RUN_ALL_TESTS();
}
