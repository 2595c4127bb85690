// The official evaluation protocol (model/official_eval.h) on a small random model: the files and
// keys eval.py writes, its batching, the reference iterator, determinism, and clear errors for
// wrong folders. Images come from a decoder that draws them from the file name, so no image
// library is needed; FID's features come from a cheap stand-in for Inception (the Inception path
// itself is checked against the official code in test_metrics.cpp).
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "../common/cli_test_util.h"
#include "../common/model_test_util.h"
#include "model/checkpoint.h"
#include "model/lpips.h"
#include "model/official_eval.h"

namespace fs = std::filesystem;

namespace starganv2 {
namespace {

// The networks here are tiny: one thread. With two, every small op opens an OpenMP region whose
// threads spin at its barrier, which on a loaded 2-core machine took 70% of the time (perf).
const bool kOneThread = [] {
  at::set_num_threads(1);
  return true;
}();

// The dataset tree: <root>/val/<d>/*.png and <root>/train/<d>/*.jpg (empty files; the decoder
// makes the pixels).
void make_tree(const fs::path& root, const std::vector<std::string>& domains, int val, int train) {
  for (const auto& d : domains) {
    fs::create_directories(root / "val" / d);
    fs::create_directories(root / "train" / d / "sub");
    for (int i = 0; i < val; ++i) std::ofstream(root / "val" / d / (std::to_string(i) + ".png"));
    // Official listdir: recursive, and only png/jpg/jpeg/JPG (a .PNG or .txt is not an image).
    for (int i = 0; i < train; ++i) std::ofstream(root / "train" / d / "sub" / (std::to_string(i) + ".jpg"));
    std::ofstream(root / "train" / d / "notes.txt");
    std::ofstream(root / "train" / d / "upper.PNG");
  }
}

// Pixels drawn from the path: the same file always decodes to the same image. Files whose name
// is in `flat` decode to one grey picture.
DecodeImage decoder(std::set<std::string> flat_folders = {}) {
  return [flat_folders](const fs::path& p) {
    if (flat_folders.count(p.parent_path().filename().string())) return at::full({40, 48, 3}, 128, at::kByte);
    at::Generator g = at::detail::createCPUGenerator(std::hash<std::string>{}(p.string()));
    return at::randint(0, 256, {40 + static_cast<int64_t>(p.string().size() % 7), 48, 3}, g, at::kByte);
  };
}

// Mean colour per channel on a 2x2 grid: 12-d features of the (N,3,299,299) FID input.
at::Tensor cheap_features(const at::Tensor& x) {
  EXPECT_EQ(x.size(1), 3);
  EXPECT_EQ(x.size(2), 299);
  EXPECT_EQ(x.size(3), 299);
  return at::adaptive_avg_pool2d(x, {2, 2}).reshape({x.size(0), -1});
}

LPIPS random_lpips() {
  torch::manual_seed(3);
  LPIPS net;  // LibTorch's default initialisation; the weights only need to be fixed
  {
    torch::NoGradGuard no_grad;
    for (auto& [name, t] : named_state(*net))
      if (name.rfind("lpips_weights.", 0) == 0) t.abs_();
  }
  return net;
}

nlohmann::ordered_json read_json(const fs::path& p) {
  std::ifstream f(p);
  EXPECT_TRUE(f.good()) << p;
  return nlohmann::ordered_json::parse(f);
}

struct EvalSetup {
  test::TempDir dir{"official-eval"};
  fs::path model = dir.path / "model.safetensors";
  TranslatorNets nets;
  LPIPS lpips = random_lpips();
  OfficialEvalOptions options;

  explicit EvalSetup(double w_hpf = 0.0, int val = 3, int train = 3) {
    test::RandomModel m;
    m.config = test::small_config(w_hpf, 2, 32, 64, /*base_dim=*/16);  // narrow: seconds, not minutes
    m.with_fan = w_hpf > 0;
    test::write_random_model(model, m);
    nets = load_translator_nets(model);
    make_tree(dir.path, {"female", "male"}, val, train);
    options.val_dir = dir.path / "val";
    options.train_dir = dir.path / "train";
    options.eval_dir = dir.path / "eval";
    options.batch_size = 2;  // 3 sources: batches of 2 and 1
    options.num_outs_per_domain = 3;
    options.step = 5;
  }
  std::vector<OfficialEvalMode> run(const DecodeImage& decode = decoder(), const EvalProgress& progress = {},
                                    const SaveImage& save = {}) {
    return run_official_eval(nets, FeatureFn(cheap_features), *lpips, options, decode, progress, save);
  }
};

TEST(OfficialEval, WritesTheOfficialFilesAndKeys) {
  EvalSetup s;
  int64_t calls = 0;
  std::set<std::string> stages;
  const auto results = s.run(decoder(), [&](const std::string& what, int64_t done, int64_t total) {
    ++calls;
    stages.insert(what);
    EXPECT_LE(done, total);
  });
  ASSERT_EQ(results.size(), 2u);
  for (const auto& r : results) {
    const std::string m = r.mode;
    EXPECT_EQ(r.fid_file, s.options.eval_dir / ("FID_00005_" + m + ".json"));
    EXPECT_EQ(r.lpips_file, s.options.eval_dir / ("LPIPS_00005_" + m + ".json"));
    // eval.py's order: target domains sorted, sources in the same order without the target.
    const auto lp = read_json(r.lpips_file);
    const auto fid = read_json(r.fid_file);
    std::vector<std::string> lp_keys, fid_keys;
    for (const auto& [k, v] : lp.items()) lp_keys.push_back(k);
    for (const auto& [k, v] : fid.items()) fid_keys.push_back(k);
    EXPECT_EQ(lp_keys, (std::vector<std::string>{"LPIPS_" + m + "/male2female", "LPIPS_" + m + "/female2male",
                                                 "LPIPS_" + m + "/mean"}));
    EXPECT_EQ(fid_keys, (std::vector<std::string>{"FID_" + m + "/male2female", "FID_" + m + "/female2male",
                                                  "FID_" + m + "/mean"}));
    for (const auto* j : {&lp, &fid}) {
      const double a = j->begin().value().get<double>(), b = std::next(j->begin()).value().get<double>();
      EXPECT_TRUE(std::isfinite(a) && std::isfinite(b));
      EXPECT_GT(a, 0);
      EXPECT_DOUBLE_EQ(std::prev(j->end()).value().get<double>(), a / 2 + b / 2);
    }
    EXPECT_DOUBLE_EQ(r.lpips[0].second, lp["LPIPS_" + m + "/male2female"].get<double>());
  }
  EXPECT_TRUE(stages.count("FID real images: female") && stages.count("latent: female2male") &&
              stages.count("reference: male2female"));
  EXPECT_EQ(calls, 2 * 2 /*real: domains x batches*/ + 2 * 2 * 2 /*modes x tasks x batches*/);
}

TEST(OfficialEval, ReproducibleForASeedAndDifferentForAnother) {
  EvalSetup s;
  s.options.modes = {"latent"};
  const auto a = s.run(), b = s.run();
  EXPECT_EQ(a[0].lpips, b[0].lpips);
  EXPECT_EQ(a[0].fid, b[0].fid);
  s.options.seed = 778;
  const auto c = s.run();
  EXPECT_NE(a[0].lpips[0].second, c[0].lpips[0].second);
}

TEST(OfficialEval, IdenticalReferencesGiveZeroLpips) {
  // Reference mode takes a new batch of the target's val images per output: when all of them
  // are the same picture, every output of a source is the same and LPIPS is exactly 0; latent
  // mode still varies. (A protocol that reused one style, or compared across sources, would not
  // show this contrast.)
  EvalSetup s;
  const auto r = s.run(decoder({"female"}));
  ASSERT_EQ(r[1].mode, "reference");
  EXPECT_EQ(r[1].lpips[0].first, "LPIPS_reference/male2female");
  EXPECT_EQ(r[1].lpips[0].second, 0.0);
  EXPECT_GT(r[1].lpips[1].second, 0.0);  // female2male: references from male, all different
  EXPECT_GT(r[0].lpips[0].second, 0.0);  // latent male2female
}

TEST(OfficialEval, SavesOutputsUnderTheOfficialNames) {
  EvalSetup s;
  s.options.modes = {"latent"};
  s.options.save_images = true;
  std::vector<fs::path> saved;
  s.run(decoder(), {}, [&](const fs::path& p, const at::Tensor& px) {
    saved.push_back(p);
    EXPECT_EQ(px.sizes(), (std::vector<int64_t>{64, 64, 3}));
    EXPECT_EQ(px.scalar_type(), at::kByte);
  });
  ASSERT_EQ(saved.size(), 2u * 3 * 3);  // tasks x sources x outputs
  const std::set<fs::path> names(saved.begin(), saved.end());
  // '%.4i_%.2i.png' % (i*val_batch_size+(k+1), j+1): the third source is the first of batch 1.
  EXPECT_TRUE(names.count(s.options.eval_dir / "female2male" / "0001_01.png"));
  EXPECT_TRUE(names.count(s.options.eval_dir / "female2male" / "0003_03.png"));
  EXPECT_TRUE(names.count(s.options.eval_dir / "male2female" / "0002_02.png"));
}

TEST(OfficialEval, FanMasksWhenWHpfIsPositive) {
  EvalSetup s(/*w_hpf=*/1.0, /*val=*/1, /*train=*/2);
  s.options.modes = {"latent"};
  s.options.num_outs_per_domain = 2;
  const auto r = s.run();
  EXPECT_TRUE(std::isfinite(r[0].fid.back().second));
  s.nets.fan = FAN{nullptr};
  EXPECT_THROW(s.run(), std::invalid_argument);
}

void expect_refused(EvalSetup& s, const std::string& part) {
  try {
    s.run();
    ADD_FAILURE() << "accepted; expected an error with: " << part;
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

TEST(OfficialEval, ClearErrorsForWrongFolders) {
  {
    EvalSetup s;
    fs::create_directories(s.options.val_dir / "other");
    expect_refused(s, "3 domain folders (female, male, other) but the model has 2 domains");
  }
  {
    EvalSetup s;
    fs::remove_all(s.options.train_dir / "male");
    expect_refused(s, "train/male: no such folder");
  }
  {
    EvalSetup s;
    s.options.batch_size = 4;
    expect_refused(s, "fewer than one reference batch of 4");
    s.options.modes = {"latent"};
    EXPECT_NO_THROW(s.run());  // latent mode needs no reference batch
  }
  {
    EvalSetup s;
    for (const auto& e : fs::directory_iterator(s.options.val_dir / "female")) fs::remove(e.path());
    expect_refused(s, "val/female: no images");
  }
  {
    EvalSetup s;
    s.options.val_dir = s.dir.path / "nowhere";
    expect_refused(s, "nowhere: no such folder");
  }
}

TEST(OfficialEval, ImageFilesAsTheOfficialListdir) {
  test::TempDir dir("listdir");
  fs::create_directories(dir.path / "b");
  for (const char* f : {"z.jpg", "a.png", "b/c.jpeg", "d.JPG", "e.PNG", "f.txt", "g.jpg.bak"})
    std::ofstream(dir.path / f);
  std::vector<std::string> names;
  for (const auto& p : official_image_files(dir.path)) names.push_back(fs::relative(p, dir.path).string());
  EXPECT_EQ(names, (std::vector<std::string>{"a.png", "b/c.jpeg", "d.JPG", "z.jpg"}));
}

}  // namespace
}  // namespace starganv2
