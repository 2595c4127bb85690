// `starganv2-eval official` run as a user runs it: --help, clear errors for missing weights and
// folders, and a whole (tiny) evaluation from image files on disk to the official JSON files,
// with a random model, random Inception and LPIPS weight files and PNG/JPG images written here.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <string>
#include <vector>

#include "../common/cli_test_util.h"
#include "../common/model_test_util.h"
#include "model/checkpoint.h"
#include "model/safetensors.h"

namespace fs = std::filesystem;

namespace starganv2 {
namespace {

std::string g_tool;

// One thread in the tool: OpenMP's spinning threads cost more than they give on a loaded 2-core
// machine (see tests/model/test_official_eval.cpp).
test::Result run(const std::vector<std::string>& args, const fs::path& scratch) {
  std::vector<std::string> argv = {test::tool_path(g_tool), "official"};
  argv.insert(argv.end(), args.begin(), args.end());
  return test::run_argv(argv, scratch, {}, {{"OMP_NUM_THREADS", "1"}});
}

struct Files {
  test::TempDir dir{"eval-official-cli"};
  fs::path model = dir.path / "model.safetensors", inception = dir.path / "inception.safetensors",
           lpips = dir.path / "lpips.safetensors";

  Files() {
    test::RandomModel m;
    m.config = test::small_config(0.0, 2, 32, 64, /*base_dim=*/16);
    test::write_random_model(model, m);
    test::write_random_metric_weights(inception, lpips);
    cv::RNG rng(7);
    for (const std::string d : {"female", "male"}) {
      fs::create_directories(dir.path / "val" / d);
      fs::create_directories(dir.path / "train" / d);
      cv::Mat img(80, 72, CV_8UC3);
      rng.fill(img, cv::RNG::UNIFORM, 0, 256);
      cv::imwrite((dir.path / "val" / d / "a.png").string(), img);
      for (int i = 0; i < 2; ++i) {
        rng.fill(img, cv::RNG::UNIFORM, 0, 256);
        cv::imwrite((dir.path / "train" / d / (std::to_string(i) + ".jpg")).string(), img);
      }
    }
  }
  std::vector<std::string> args() const {
    return {"--model",
            model.string(),
            "--inception",
            inception.string(),
            "--lpips",
            lpips.string(),
            "--val-dir",
            (dir.path / "val").string(),
            "--train-dir",
            (dir.path / "train").string(),
            "--eval-dir",
            (dir.path / "eval").string(),
            "--device",
            "cpu",
            "--num-outs-per-domain",
            "2",
            "--batch-size",
            "1"};
  }
};

TEST(EvalOfficialCli, HelpNamesTheConverterCommands) {
  test::TempDir scratch("eval-official-help");
  const auto r = run({"--help"}, scratch.path);
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("--inception inception_v3_google-0cc3c7bd.pth"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--lpips metrics/lpips_weights.ckpt"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Usage: starganv2-eval official"), std::string::npos) << r.out;
  // Listed among the tool's subcommands.
  const auto top = test::run_argv({test::tool_path(g_tool), "--help"}, scratch.path);
  EXPECT_EQ(top.rc, 0);
  EXPECT_NE(top.out.find("official"), std::string::npos) << top.out;
}

TEST(EvalOfficialCli, ClearErrorsForMissingWeightsAndFolders_n) {
  Files f;
  auto args = f.args();
  args[3] = (f.dir.path / "none.safetensors").string();  // --inception
  auto r = run(args, f.dir.path);
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("none.safetensors: no such file: the Inception weights (--inception); make it with `"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("--inception inception_v3_google-0cc3c7bd.pth"), std::string::npos) << r.err;

  args = f.args();
  args[5] = f.inception.string();  // the Inception file as --lpips
  r = run(args, f.dir.path);
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("holds \"inception_v3\", not the lpips_alexnet weights"), std::string::npos) << r.err;

  args = f.args();
  args[9] = (f.dir.path / "nowhere").string();  // --train-dir
  r = run(args, f.dir.path);
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("nowhere/female: no such folder"), std::string::npos) << r.err;

  r = run({"--model", f.model.string()}, f.dir.path);
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("required"), std::string::npos) << r.err;
}

TEST(EvalOfficialCli, WritesTheOfficialJsonFromImageFiles) {
  Files f;
  auto args = f.args();
  args.insert(args.end(), {"--mode", "latent", "--step", "7", "--save-images"});
  const auto r = run(args, f.dir.path);
  ASSERT_EQ(r.rc, 0) << r.err;
  const fs::path eval = f.dir.path / "eval";
  std::ifstream fid_file(eval / "FID_00007_latent.json"), lpips_file(eval / "LPIPS_00007_latent.json");
  ASSERT_TRUE(fid_file.good() && lpips_file.good());
  const auto fid = nlohmann::ordered_json::parse(fid_file);
  const auto lpips = nlohmann::ordered_json::parse(lpips_file);
  EXPECT_TRUE(fid.contains("FID_latent/female2male") && fid.contains("FID_latent/male2female") &&
              fid.contains("FID_latent/mean"))
      << fid.dump();
  EXPECT_TRUE(lpips.contains("LPIPS_latent/female2male") && lpips.contains("LPIPS_latent/mean")) << lpips.dump();
  EXPECT_GT(lpips["LPIPS_latent/mean"].get<double>(), 0.0);
  EXPECT_NE(r.out.find("FID_latent/mean"), std::string::npos) << r.out;
  // The outputs as the official saves them: <task>/%.4i_%.2i.png, 64 px RGB.
  const cv::Mat saved = cv::imread((eval / "female2male" / "0001_02.png").string());
  EXPECT_EQ(saved.rows, 64);
  EXPECT_EQ(saved.cols, 64);
}

}  // namespace
}  // namespace starganv2

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc < 2) {
    std::fprintf(stderr, "usage: test_eval_official_cli STARGANV2_EVAL\n");
    return 1;
  }
  starganv2::g_tool = argv[1];
  return RUN_ALL_TESTS();
}
