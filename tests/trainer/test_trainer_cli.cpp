// starganv2-train as a user runs it: --help, clear errors before any training, unreadable
// images skipped and counted, resume mismatches, and (suite "train") exact resume: N iterations,
// resume, N more gives the same files as 2N in one go.
//
// Usage: test_trainer_cli <path to starganv2-train> [gtest flags]
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <torch/cuda.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <vector>

#include <nlohmann/json.hpp>

#include <opencv2/imgcodecs.hpp>

#include "../common/model_test_util.h"
#include "model/checkpoint.h"
#include "model/safetensors.h"
#include "synthetic.h"
#include "trainer/evaluation.h"
#include "trainer/options.h"

namespace fs = std::filesystem;

namespace starganv2 {
namespace {

std::string g_cli;

// Scratch folder per test; running the tool comes from tests/common.
struct TempDir : test::TempDir {
  TempDir() : test::TempDir("cli") {}
};
using test::Result;
using test::slurp;

Result run(const std::vector<std::string>& args, const fs::path& scratch) { return test::run_tool(g_cli, args, scratch); }

// A tiny config that trains at CPU speed (narrow networks when model/ has the width knob).
std::vector<std::string> tiny_args(int batch = 2) {
  std::vector<std::string> a = {"--img-size", "32", "--style-dim", "8", "--latent-dim", "4", "--hidden-dim", "16",
                                "--max-conv-dim", "16", "--w-hpf", "0", "--batch-size", std::to_string(batch),
                                "--device", "cpu", "--workers", "1", "--val-batch-size", "2", "--sample-outs", "1",
                                "--no-progress", "--base-dim", "8"};
  return a;
}

std::vector<std::string> operator+(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << "expected \"" << (needle) << "\" in:\n" << (haystack)

TEST(Cli, HelpDocumentsEveryOptionWithItsDefault) {
  TempDir dir;
  const Result r = run({"--help"}, dir.path);
  ASSERT_EQ(r.rc, 0) << r.err;
  for (const char* s :
       {"--train-dir", "--val-dir", "--img-size INT=256", "--batch-size INT=8", "--total-iters INT=100000", "--resume",
        "--lambda-reg FLOAT=1", "--lambda-cyc FLOAT=1", "--lambda-sty FLOAT=1", "--lambda-ds FLOAT=1",
        "--ds-iter INT=100000", "--w-hpf FLOAT=1", "--fan", "--lr FLOAT=0.0001", "--f-lr FLOAT=1e-06", "--beta1 FLOAT=0",
        "--beta2 FLOAT=0.99", "--weight-decay FLOAT=0.0001", "--latent-dim INT=16", "--style-dim INT=64",
        "--max-conv-dim INT=512", "--randcrop-prob FLOAT=0.5", "--seed UINT=777", "--print-every INT=10",
        "--sample-every INT=5000", "--save-every INT=10000", "--device TEXT=auto", "--precision", "=fp32", "--workers INT=4",
        "--out TEXT=expr", "--preset", "celeba_hq", "afhq", "--benchmark", "--eval-every INT:NONNEGATIVE=0",
        "--eval-images INT:POSITIVE=32", "--inception", "--lpips", "--landmarks", "samples/curves.png"})
    EXPECT_CONTAINS(r.out, s);
}

TEST(Cli, MissingOrEmptyFoldersAreClearErrors_n) {
  TempDir dir;
  const std::vector<std::string> out = {"--out", (dir.path / "run").string()};
  Result r = run(tiny_args() + out + std::vector<std::string>{"--train-dir", (dir.path / "nope").string()}, dir.path);
  EXPECT_EQ(r.rc, 1);
  EXPECT_CONTAINS(r.err, (dir.path / "nope").string() + ": the image folder does not exist");

  fs::create_directories(dir.path / "data");
  r = run(tiny_args() + out + std::vector<std::string>{"--train-dir", (dir.path / "data").string()}, dir.path);
  EXPECT_EQ(r.rc, 1);
  EXPECT_CONTAINS(r.err, "has no sub-folders");

  test::write_synthetic_set(dir.path / "data", 2, 32, 1);
  fs::create_directories(dir.path / "data" / "zebra");
  r = run(tiny_args() + out + std::vector<std::string>{"--train-dir", (dir.path / "data").string()}, dir.path);
  EXPECT_EQ(r.rc, 1);
  EXPECT_CONTAINS(r.err, "domain \"zebra\" has no images");

  fs::remove_all(dir.path / "data" / "zebra");
  r = run(tiny_args() + std::vector<std::string>{"--train-dir", (dir.path / "data").string(), "--val-dir",
                                                 (dir.path / "val").string(), "--out", (dir.path / "run").string()},
          dir.path);
  EXPECT_EQ(r.rc, 1);
  EXPECT_CONTAINS(r.err, (dir.path / "val").string() + ": the image folder does not exist");
  EXPECT_FALSE(fs::exists(dir.path / "run")) << "nothing may be written before the input is checked";
}

TEST(Cli, BadCommandLinesExitWithOneAndOneMessage_n) {
  TempDir dir;
  // CLI11's own codes (105, 106, 109, ...) are not what --help and the README promise.
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"--no-such-option"}, {"--batch-size", "many"}, {"--preset", "zebra"},
        {"--precision", "fp8"}, {"--train-dir"}}) {
    const Result r = run(args, dir.path);
    EXPECT_EQ(r.rc, 1) << args.front() << "\n" << r.err;
    EXPECT_CONTAINS(r.err, "starganv2-train: error: ");
  }
  const Result help = run({"--help"}, dir.path);
  EXPECT_EQ(help.rc, 0);
  EXPECT_CONTAINS(help.out, "Exit codes: 0 done; 1 bad input");
}

TEST(Cli, FanErrorNamesAConverterCommandThatRuns_n) {
  TempDir dir;
  test::write_synthetic_set(dir.path / "data", 2, 32, 1);
  std::vector<std::string> args = tiny_args() + std::vector<std::string>{"--train-dir", (dir.path / "data").string(),
                                                                          "--out", (dir.path / "run").string()};
  for (size_t i = 0; i + 1 < args.size(); ++i)
    if (args[i] == "--w-hpf") args[i + 1] = std::string("1");
  const Result r = run(args, dir.path);
  EXPECT_EQ(r.rc, 1);
  // The message quotes the converter as a command: `<command> --wing wing.ckpt --out wing.safetensors`.
  const auto b = r.err.find('`'), e = r.err.find(" --wing wing.ckpt --out wing.safetensors`");
  ASSERT_TRUE(b != std::string::npos && e != std::string::npos && e > b) << r.err;
  const std::string command = r.err.substr(b + 1, e - b - 1);
  // It runs as printed (here: --help, as torch may be missing from the system python).
  const Result help = test::run_shell(command + " --help", dir.path);
  EXPECT_EQ(help.rc, 0) << command << "\n" << help.err;
  EXPECT_CONTAINS(help.out, "--wing");
}

TEST(Cli, WrongSettingsAreRefusedBeforeTraining_n) {
  TempDir dir;
  test::write_synthetic_set(dir.path / "data", 2, 32, 1);
  const std::vector<std::string> data = {"--train-dir", (dir.path / "data").string(), "--out", (dir.path / "run").string()};
  std::vector<std::string> args = tiny_args() + data;
  // w_hpf > 0 needs the FAN.
  for (size_t i = 0; i + 1 < args.size(); ++i)
    if (args[i] == "--w-hpf") args[i + 1] = std::string("1");
  Result r = run(args, dir.path);
  EXPECT_EQ(r.rc, 1);
  EXPECT_CONTAINS(r.err, "--fan");
  r = run(tiny_args() + data + std::vector<std::string>{"--fan", (dir.path / "wing.safetensors").string(), "--w-hpf", "1"},
          dir.path);
  EXPECT_EQ(r.rc, 1);
  if (!torch::cuda::is_available()) {
    r = run(tiny_args() + data + std::vector<std::string>{"--precision", "bf16"}, dir.path);
    EXPECT_EQ(r.rc, 1);
    EXPECT_CONTAINS(r.err, "bf16");
  }
  r = run(tiny_args() + data + std::vector<std::string>{"--precision", "fp16"}, dir.path);
  EXPECT_NE(r.rc, 0);
  r = run(tiny_args() + data + std::vector<std::string>{"--img-size", "48"}, dir.path);
  EXPECT_EQ(r.rc, 1);
  EXPECT_CONTAINS(r.err, "img_size");
  EXPECT_FALSE(fs::exists(dir.path / "run" / "checkpoints" / "resume.safetensors"));
}

TEST(Cli, UnreadableImagesAreSkippedWithAWarningAndCounted) {
  TempDir dir;
  test::write_synthetic_set(dir.path / "data", 3, 32, 2);
  std::ofstream(dir.path / "data" / "warm" / "broken.png") << "not a png";
  std::ofstream(dir.path / "data" / "cool" / "empty.jpg");
  const Result r = run(tiny_args() + std::vector<std::string>{"--train-dir", (dir.path / "data").string(), "--out",
                                                               (dir.path / "run").string(), "--total-iters", "0"},
                       dir.path);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_CONTAINS(r.err, "broken.png: cannot be decoded as an image; skipped");
  EXPECT_CONTAINS(r.err, "empty.jpg");
  EXPECT_CONTAINS(r.out, "6 images in 2 domains (cool 3, warm 3); 2 unreadable image(s) skipped");
  EXPECT_TRUE(fs::exists(dir.path / "run" / "checkpoints" / "model-000000.safetensors"));
}

TEST(Cli, ResumeMismatchesAreClearErrors_n) {
  TempDir dir;
  test::write_synthetic_set(dir.path / "data", 2, 32, 3);
  const std::vector<std::string> data = {"--train-dir", (dir.path / "data").string(), "--out", (dir.path / "run").string()};
  Result r = run(tiny_args() + data + std::vector<std::string>{"--total-iters", "0"}, dir.path);
  ASSERT_EQ(r.rc, 0) << r.err;
  ASSERT_TRUE(fs::exists(dir.path / "run" / "checkpoints" / "resume.safetensors"));

  r = run(tiny_args() + data + std::vector<std::string>{"--resume", "latest", "--lr", "0.001"}, dir.path);
  EXPECT_EQ(r.rc, 1);
  EXPECT_CONTAINS(r.err, "--lr 0.001 differs from the resumed run's 0.0001");

  r = run(tiny_args() + std::vector<std::string>{"--train-dir", (dir.path / "data").string(), "--out",
                                                 (dir.path / "elsewhere").string(), "--resume", "latest"},
          dir.path);
  EXPECT_EQ(r.rc, 1);
  EXPECT_CONTAINS(r.err, "no resume file");

  fs::create_directories(dir.path / "other");
  fs::rename(dir.path / "data" / "warm", dir.path / "other" / "hot");
  fs::create_directories(dir.path / "other" / "cool");
  fs::copy(dir.path / "data" / "cool", dir.path / "other" / "cool", fs::copy_options::recursive);
  r = run(tiny_args() + std::vector<std::string>{"--train-dir", (dir.path / "other").string(), "--out",
                                                 (dir.path / "run").string(), "--resume", "latest"},
          dir.path);
  EXPECT_EQ(r.rc, 1);
  EXPECT_CONTAINS(r.err, "do not match the resumed run's [\"cool\",\"warm\"]");

  fs::create_directories(dir.path / "data" / "warm");
  fs::copy(dir.path / "other" / "hot", dir.path / "data" / "warm", fs::copy_options::recursive);
  fs::copy_file(dir.path / "data" / "warm" / "000.png", dir.path / "data" / "warm" / "extra.png");
  r = run(tiny_args() + data + std::vector<std::string>{"--resume", "latest"}, dir.path);
  EXPECT_EQ(r.rc, 1);
  EXPECT_CONTAINS(r.err, "image lists differ from the resumed run's");

  std::ofstream(dir.path / "not-resume.safetensors") << "garbage";
  r = run(tiny_args() + data + std::vector<std::string>{"--resume", (dir.path / "not-resume.safetensors").string()},
          dir.path);
  EXPECT_EQ(r.rc, 1);
  EXPECT_CONTAINS(r.err, "not-resume.safetensors");
}

TEST(Cli, OneDomainIsRefusedBeforeTraining_n) {
  TempDir dir;
  test::write_synthetic_set(dir.path / "data", 2, 32, 1);
  fs::remove_all(dir.path / "data" / "warm");
  const Result r = run(tiny_args() + std::vector<std::string>{"--train-dir", (dir.path / "data").string(), "--out",
                                                               (dir.path / "run").string()},
                       dir.path);
  EXPECT_EQ(r.rc, 1);
  EXPECT_CONTAINS(r.err, "1 domain folder (cool)");
  EXPECT_CONTAINS(r.err, "needs at least 2");
  EXPECT_FALSE(fs::exists(dir.path / "run" / "checkpoints"));
}

double megabytes_after(const std::string& text, const std::string& before) {
  const auto at = text.find(before);
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + before.size()));
}

TEST(Cli, SizePresetsSetTheWidthsAndTheFirstLinesSayWhatASaveWrites) {
  TempDir dir;
  test::write_synthetic_set(dir.path / "data", 2, 32, 1);
  const std::vector<std::string> base = {"--train-dir", (dir.path / "data").string(), "--device", "cpu", "--workers", "1",
                                         "--no-progress", "--w-hpf", "0", "--img-size", "32", "--total-iters", "0"};
  const Result tiny = run(base + std::vector<std::string>{"--preset", "tiny", "--out", (dir.path / "tiny").string()}, dir.path);
  ASSERT_EQ(tiny.rc, 0) << tiny.err;
  const TrainOptions o = TrainOptions::from_json(slurp(dir.path / "tiny" / "options.json"));
  EXPECT_EQ(o.model.base_dim, 8);
  EXPECT_EQ(o.model.max_conv_dim, 32);
  EXPECT_EQ(o.model.hidden_dim, 32);
  EXPECT_EQ(o.model.style_dim, 16);
  EXPECT_EQ(o.model.latent_dim, 8);
  // The announced sizes are those of the files written (within the headers' few kB).
  EXPECT_CONTAINS(tiny.out, "Model: G ");
  const double model_mb = megabytes_after(tiny.out, "each save writes a ");
  const double resume_mb = megabytes_after(tiny.out, " model file and a ");
  const double model_file = static_cast<double>(fs::file_size(dir.path / "tiny" / "checkpoints" / "model-000000.safetensors")) / 1e6;
  const double resume_file = static_cast<double>(fs::file_size(dir.path / "tiny" / "checkpoints" / "resume.safetensors")) / 1e6;
  EXPECT_NEAR(model_mb, model_file, 0.1 * model_file + 0.05) << tiny.out;
  // Before the first step Adam holds no moments yet: the file is the networks only.
  EXPECT_LT(resume_file, resume_mb) << tiny.out;
  EXPECT_GT(resume_mb, 2 * model_mb) << tiny.out;

  // Data and size presets combine (comma-separated or repeated); explicit options win.
  const Result combined = run(base + std::vector<std::string>{"--preset", "afhq,small", "--max-conv-dim", "64", "--out",
                                                              (dir.path / "small").string()},
                              dir.path);
  ASSERT_EQ(combined.rc, 0) << combined.err;
  const TrainOptions c = TrainOptions::from_json(slurp(dir.path / "small" / "options.json"));
  EXPECT_EQ(c.model.base_dim, 32);
  EXPECT_EQ(c.model.hidden_dim, 256);
  EXPECT_EQ(c.model.max_conv_dim, 64);
  EXPECT_EQ(c.lambda_ds, 2.0);   // afhq
  EXPECT_EQ(c.model.img_size, 32);  // explicit
  const double small_mb = megabytes_after(combined.out, "each save writes a ");
  EXPECT_GT(small_mb, 2 * model_mb) << "small must be larger than tiny";
}

TEST(Cli, KeepLastKeepsOnlyTheNewestModelFiles) {
  TempDir dir;
  test::write_synthetic_set(dir.path / "data", 2, 32, 1);
  const Result r = run(tiny_args() + std::vector<std::string>{"--train-dir", (dir.path / "data").string(), "--out",
                                                               (dir.path / "run").string(), "--total-iters", "4",
                                                               "--save-every", "1", "--keep-last", "2"},
                       dir.path);
  ASSERT_EQ(r.rc, 0) << r.err;
  std::vector<std::string> models;
  for (const auto& e : fs::directory_iterator(dir.path / "run" / "checkpoints"))
    if (e.path().filename().string().rfind("model-", 0) == 0) models.push_back(e.path().filename().string());
  std::sort(models.begin(), models.end());
  EXPECT_EQ(models, (std::vector<std::string>{"model-000003.safetensors", "model-000004.safetensors"}));
  EXPECT_TRUE(fs::exists(dir.path / "run" / "checkpoints" / "resume.safetensors"));
}

TEST(Cli, AugmentationOptionsAreCheckedBeforeTraining_n) {
  TempDir dir;
  test::write_synthetic_set(dir.path / "data", 2, 32, 1);
  const std::vector<std::string> data = {"--train-dir", (dir.path / "data").string(), "--out", (dir.path / "run").string()};
  Result r = run(tiny_args() + data + std::vector<std::string>{"--diffaug", "colour"}, dir.path);
  EXPECT_EQ(r.rc, 1);
  EXPECT_CONTAINS(r.err, "unknown augmentation policy \"colour\"");
  r = run(tiny_args() + data + std::vector<std::string>{"--ada-target", "0.6"}, dir.path);
  EXPECT_EQ(r.rc, 1);
  EXPECT_CONTAINS(r.err, "ada_target needs augmentation policies");
  r = run(tiny_args() + data + std::vector<std::string>{"--diffaug", "cutout", "--augment-p", "1.5"}, dir.path);
  EXPECT_EQ(r.rc, 1);
  EXPECT_CONTAINS(r.err, "augment_p must be in [0, 1]");
  EXPECT_FALSE(fs::exists(dir.path / "run" / "checkpoints"));
}

TEST(Cli, EvalOptionsAreCheckedBeforeTraining_n) {
  TempDir dir;
  test::write_synthetic_set(dir.path / "data", 2, 32, 1);
  const std::vector<std::string> base =
      tiny_args() + std::vector<std::string>{"--train-dir", (dir.path / "data").string(), "--out", (dir.path / "run").string()};
  const std::vector<std::string> val = {"--val-dir", (dir.path / "data").string()};
  auto one_error = [](const Result& r, const std::string& what) {
    EXPECT_EQ(r.rc, 1) << r.out << r.err;
    EXPECT_CONTAINS(r.err, "starganv2-train: error: " + what);
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  };
  one_error(run(base + std::vector<std::string>{"--eval-every", "2"}, dir.path), "--eval-every needs --val-dir");
  const std::string missing = (dir.path / "inception.safetensors").string();
  one_error(run(base + val + std::vector<std::string>{"--eval-every", "2", "--img-size", "64", "--inception", missing, "--lpips", missing}, dir.path),
            "--inception " + missing + ": no such file; make it with `");
  one_error(run(base + val + std::vector<std::string>{"--eval-every", "2", "--lpips", missing}, dir.path),
            "--lpips without --inception");
  one_error(run(base + val + std::vector<std::string>{"--inception", missing}, dir.path), "--inception is for the evaluation");
  Result r = run(base + val + std::vector<std::string>{"--eval-every", "-1"}, dir.path);
  EXPECT_EQ(r.rc, 1);
  EXPECT_CONTAINS(r.err, "--eval-every");
  EXPECT_FALSE(fs::exists(dir.path / "run" / "checkpoints")) << "nothing may be written before the input is checked";
}

// One number of a log line: "key":value.
double log_number(const std::string& line, const std::string& key) {
  const auto at = line.find("\"" + key + "\":");
  if (at == std::string::npos) return NAN;
  return std::stod(line.substr(at + key.size() + 3));
}

// ADA on a D that overfits (8 training images): D grows sure of the reals (r_t above the target),
// and p rises; every logged adjustment moves p by one step in the direction of r_t - target.
TEST(Ada, TheProbabilityFollowsTheSignOfDOnRealsOfAnOverfittingD) {
  TempDir dir;
  test::write_synthetic_set(dir.path / "data", 4, 32, 6);
  const double kimg = 0.4, batch = 4, step = batch / (kimg * 1000);  // 0.01 a step
  const Result r = run(tiny_args(4) + std::vector<std::string>{"--train-dir", (dir.path / "data").string(), "--out",
                                                                (dir.path / "run").string(), "--total-iters", "60",
                                                                "--print-every", "1", "--save-every", "1000",
                                                                "--sample-every", "1000", "--lr", "0.001", "--diffaug",
                                                                "color,translation,cutout", "--ada-target", "0.6",
                                                                "--ada-interval", "1", "--ada-kimg", "0.4"},
                       dir.path);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_CONTAINS(r.out, "Augmenting D's inputs: color,translation,cutout, ADA target 0.6 (p now 0)");
  std::istringstream log(slurp(dir.path / "run" / "log.jsonl"));
  std::string line;
  double p_before = 0;
  int lines = 0, above = 0;
  while (std::getline(log, line)) {
    const double p = log_number(line, "augment/p"), rt = log_number(line, "augment/rt");
    ASSERT_TRUE(std::isfinite(p) && std::isfinite(rt)) << line;
    const double expected = std::clamp(p_before + (rt > 0.6 ? step : rt < 0.6 ? -step : 0.0), 0.0, 1.0);
    EXPECT_NEAR(p, expected, 1e-9) << line;
    above += rt > 0.6;
    p_before = p;
    ++lines;
  }
  EXPECT_EQ(lines, 60);
  EXPECT_GT(above, lines / 2) << "D should be sure of its 8 reals most of the time";
  EXPECT_GT(p_before, 0.1) << "p should have risen";
}

// ---------------------------------------------------------------------------------------------

void expect_same_files(const fs::path& a, const fs::path& b, const std::vector<std::string>& metadata_keys) {
  const SafetensorsFile fa = read_safetensors(a), fb = read_safetensors(b);
  ASSERT_EQ(fa.tensors.size(), fb.tensors.size());
  int differ = 0;
  for (const auto& [name, t] : fa.tensors) {
    const auto it = fb.tensors.find(name);
    ASSERT_NE(it, fb.tensors.end()) << name;
    if (!(t.sizes() == it->second.sizes() && at::equal(t, it->second))) {
      if (++differ <= 5) ADD_FAILURE() << name << " differs between " << a << " and " << b;
    }
  }
  EXPECT_EQ(differ, 0);
  for (const auto& k : metadata_keys) EXPECT_EQ(fa.metadata.at(k), fb.metadata.at(k)) << k;
}

TEST(Resume, ContinuesExactly) {
  TempDir dir;
  test::write_synthetic_set(dir.path / "data", 4, 40, 4);
  const int n = 2;
  const std::vector<std::string> common = tiny_args(/*batch=*/2) +
                                          std::vector<std::string>{"--train-dir", (dir.path / "data").string(),
                                                                   "--save-every", std::to_string(n), "--print-every", "1",
                                                                   "--sample-every", "1000", "--lr", "0.001"};
  const fs::path one = dir.path / "one", two = dir.path / "two";
  Result r = run(common + std::vector<std::string>{"--out", one.string(), "--total-iters", std::to_string(2 * n)}, dir.path);
  ASSERT_EQ(r.rc, 0) << r.err;
  r = run(common + std::vector<std::string>{"--out", two.string(), "--total-iters", std::to_string(n)}, dir.path);
  ASSERT_EQ(r.rc, 0) << r.err;
  const fs::path half = two / "checkpoints" / "model-000002.safetensors";
  // Only the run folder (and the longer total): the data folder, device, workers, logging and
  // saving intervals come from <out>/run.json, and from another working directory.
  fs::create_directories(dir.path / "elsewhere");
  r = test::run_tool(g_cli, {"--out", two.string(), "--resume", "latest", "--total-iters", std::to_string(2 * n)},
                     dir.path, dir.path / "elsewhere");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_CONTAINS(r.out, "Resumed");
  EXPECT_CONTAINS(r.out, "on cpu");

  expect_same_files(one / "checkpoints" / "resume.safetensors", two / "checkpoints" / "resume.safetensors",
                    {"step", "lambda_ds", "sampler", "options"});
  expect_same_files(one / "checkpoints" / "model-000004.safetensors", two / "checkpoints" / "model-000004.safetensors",
                    {"step", "config", "domains"});
  // Not vacuous: the iterations after the resume changed the weights.
  const SafetensorsFile mid = read_safetensors(half), end = read_safetensors(two / "checkpoints" / "model-000004.safetensors");
  EXPECT_FALSE(at::equal(mid.tensors.at("generator.from_rgb.weight"), end.tensors.at("generator.from_rgb.weight")));
  // The log of the resumed run continues where the first part stopped.
  const std::string log = slurp(two / "log.jsonl");
  for (int step = 1; step <= 2 * n; ++step) EXPECT_CONTAINS(log, "{\"step\":" + std::to_string(step) + ",");
}

// With ADA, the probability and the signs counted since its last adjustment survive a resume:
// the resumed run is the uninterrupted one, bit for bit.
TEST(Resume, ContinuesExactlyWithAugmentation) {
  TempDir dir;
  test::write_synthetic_set(dir.path / "data", 4, 32, 4);
  const std::vector<std::string> common =
      tiny_args(2) + std::vector<std::string>{"--train-dir", (dir.path / "data").string(), "--save-every", "3",
                                              "--print-every", "1", "--sample-every", "1000", "--lr", "0.001",
                                              "--diffaug", "color,translation,cutout", "--ada-target", "0.6",
                                              "--ada-interval", "2", "--ada-kimg", "0.2"};
  const fs::path one = dir.path / "one", two = dir.path / "two";
  Result r = run(common + std::vector<std::string>{"--out", one.string(), "--total-iters", "6"}, dir.path);
  ASSERT_EQ(r.rc, 0) << r.err;
  // Stopped after 3 iterations: between two adjustments (interval 2).
  r = run(common + std::vector<std::string>{"--out", two.string(), "--total-iters", "3"}, dir.path);
  ASSERT_EQ(r.rc, 0) << r.err;
  // The third iteration's signs (2 D steps x 2 reals) are counted and not yet used: the resume
  // file must carry them.
  const auto augment = nlohmann::json::parse(
      read_safetensors(two / "checkpoints" / "resume.safetensors").metadata.at("augment"));
  EXPECT_EQ(augment.at("sign_count").get<double>(), 4.0) << augment.dump();
  r = run({"--out", two.string(), "--resume", "latest", "--total-iters", "6"}, dir.path);
  ASSERT_EQ(r.rc, 0) << r.err;
  expect_same_files(one / "checkpoints" / "resume.safetensors", two / "checkpoints" / "resume.safetensors",
                    {"step", "lambda_ds", "sampler", "options", "augment"});
  expect_same_files(one / "checkpoints" / "model-000006.safetensors", two / "checkpoints" / "model-000006.safetensors",
                    {"step"});
}

// The reconstruction warm-up is decided by the iteration number alone: a run stopped inside it
// continues the warm-up and then the official iterations as the uninterrupted run does, and the
// log names the warm-up's term.
TEST(Resume, ContinuesExactlyAcrossTheWarmup) {
  TempDir dir;
  test::write_synthetic_set(dir.path / "data", 4, 32, 4);
  const std::vector<std::string> common =
      tiny_args(2) + std::vector<std::string>{"--train-dir", (dir.path / "data").string(), "--save-every", "1",
                                              "--print-every", "1", "--sample-every", "1000", "--lr", "0.001",
                                              "--recon-warmup", "2"};
  const fs::path one = dir.path / "one", two = dir.path / "two";
  Result r = run(common + std::vector<std::string>{"--out", one.string(), "--total-iters", "4"}, dir.path);
  ASSERT_EQ(r.rc, 0) << r.err;
  r = run(common + std::vector<std::string>{"--out", two.string(), "--total-iters", "1"}, dir.path);
  ASSERT_EQ(r.rc, 0) << r.err;
  r = run({"--out", two.string(), "--resume", "latest", "--total-iters", "4"}, dir.path);
  ASSERT_EQ(r.rc, 0) << r.err;
  expect_same_files(one / "checkpoints" / "resume.safetensors", two / "checkpoints" / "resume.safetensors",
                    {"step", "lambda_ds", "sampler", "options"});
  expect_same_files(one / "checkpoints" / "model-000004.safetensors", two / "checkpoints" / "model-000004.safetensors",
                    {"step"});
  std::istringstream log(slurp(one / "log.jsonl"));
  int64_t lines = 0;
  for (std::string line; std::getline(log, line); ++lines) {
    const auto j = nlohmann::json::parse(line);
    const bool warmup = j.at("step").get<int64_t>() <= 2;
    EXPECT_EQ(j.contains("W/recon"), warmup) << line;
    EXPECT_EQ(j.contains("D/latent_total"), !warmup) << line;
  }
  EXPECT_EQ(lines, 4);
  // A negative one is refused before anything starts.
  std::vector<std::string> bad = common;
  bad.back() = "-1";
  r = run(bad + std::vector<std::string>{"--out", (dir.path / "three").string(), "--total-iters", "1"}, dir.path);
  EXPECT_EQ(r.rc, 1);
  EXPECT_CONTAINS(r.err, "recon_warmup");
  EXPECT_FALSE(fs::exists(dir.path / "three" / "checkpoints"));
}

// Ctrl-C stops with a resume command; pasted as printed, in the same shell, it continues the run
// to its end with nothing else given.
TEST(Resume, StopMessageCommandWorksAsPrinted) {
  TempDir dir;
  test::write_synthetic_set(dir.path / "data", 3, 32, 5);
  // Relative folders, as typed in a shell; the run folder records them as absolute paths.
  const int total = 20;
  const Result stopped = test::interrupt_tool(
      g_cli, tiny_args() + std::vector<std::string>{"--train-dir", "data", "--out", "runs/my run", "--total-iters",
                                                    std::to_string(total), "--print-every", "1"},
      dir.path, dir.path, "Training ");
  ASSERT_EQ(stopped.rc, 130) << stopped.out << stopped.err;
  const std::string marker = "; resume with: ";
  const auto at = stopped.out.find(marker);
  ASSERT_NE(at, std::string::npos) << stopped.out;
  const std::string command = stopped.out.substr(at + marker.size(), stopped.out.find('\n', at) - at - marker.size());
  // The program as it was run, and the folder quoted for the shell.
  const std::string program = test::tool_path(g_cli);
  EXPECT_TRUE(command.rfind(program, 0) == 0 || command.rfind(test::quote(program), 0) == 0) << command;
  EXPECT_CONTAINS(command, " --resume latest --out 'runs/my run'");
  const std::string run_json = slurp(dir.path / "runs" / "my run" / "run.json");
  EXPECT_CONTAINS(run_json, "\"train_dir\": \"" + (dir.path / "data").string() + "\"");

  const Result resumed = test::run_shell(command, dir.path, dir.path);
  ASSERT_EQ(resumed.rc, 0) << command << "\n" << resumed.out << resumed.err;
  EXPECT_CONTAINS(resumed.out, "Resumed");
  EXPECT_CONTAINS(resumed.out, "Done: " + std::to_string(total) + " iterations");
  EXPECT_TRUE(fs::exists(dir.path / "runs" / "my run" / "checkpoints" / ("model-0000" + std::to_string(total) + ".safetensors")));
}

// Which log lines carry evaluation figures (their steps), each checked to hold nothing else;
// the others must be the loss lines.
std::vector<int64_t> eval_steps(const fs::path& log_file, std::vector<nlohmann::json>* evals = nullptr) {
  std::vector<int64_t> steps;
  std::istringstream log(slurp(log_file));
  for (std::string line; std::getline(log, line);) {
    const auto j = nlohmann::json::parse(line);
    if (!j.contains("eval_s")) {
      EXPECT_TRUE(j.contains("D/latent_total") && j.contains("G/ref_cyc")) << line;
      continue;
    }
    steps.push_back(j.at("step").get<int64_t>());
    for (const auto& [k, v] : j.items())
      EXPECT_TRUE(k == "step" || k == "time" || k == "eval_s" || k.rfind("eval/", 0) == 0) << k;
    if (evals) evals->push_back(j);
  }
  return steps;
}

// One thread: LibTorch's and Inception's OpenMP threads cost more than they give to tiny models on a
// loaded 2-core machine.
Result run_one_thread(const std::vector<std::string>& args, const fs::path& scratch) {
  std::vector<std::string> argv = {test::tool_path(g_cli)};
  argv.insert(argv.end(), args.begin(), args.end());
  return test::run_argv(argv, scratch, {}, {{"OMP_NUM_THREADS", "1"}});
}

bool shape_model_missing() {
  return TrainingEvaluator::has_face_metrics() && !fs::exists("/usr/share/dlib/shape_predictor_68_face_landmarks.dat");
}

// --eval-every (issue 23): figures on their own log lines at the scheduled steps and the curves
// picture; the weights are those of a run without evaluation, and a resumed run keeps the schedule.
TEST(Eval, LogsFiguresAtItsStepsAndLeavesTheWeightsAlone) {
  if (shape_model_missing()) GTEST_SKIP() << "dlib's shape model is not installed";
  TempDir dir;
  test::write_synthetic_set(dir.path / "data", 4, 32, 4);
  test::write_synthetic_set(dir.path / "val", 1, 32, 9);
  const std::vector<std::string> common =
      tiny_args() + std::vector<std::string>{"--train-dir", (dir.path / "data").string(), "--val-dir",
                                             (dir.path / "val").string(), "--print-every", "1", "--save-every", "2",
                                             "--lr", "0.001"};
  const std::vector<std::string> eval = {"--eval-every", "2", "--eval-images", "1"};
  const fs::path on = dir.path / "on", off = dir.path / "off", resumed = dir.path / "resumed";
  Result r = run_one_thread(common + eval + std::vector<std::string>{"--out", on.string(), "--total-iters", "4"}, dir.path);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_CONTAINS(r.out, "Evaluation at iteration 2 (");
  EXPECT_CONTAINS(r.out, "Evaluation at iteration 4 (");
  // A build without align/ says once what it leaves out.
  if (TrainingEvaluator::has_face_metrics())
    EXPECT_EQ(r.out.find("built without align/"), std::string::npos) << r.out;
  else
    EXPECT_CONTAINS(r.out, "built without align/ (dlib): --eval-every logs diversity, not face found or pose error");
  r = run_one_thread(common + std::vector<std::string>{"--out", off.string(), "--total-iters", "4"}, dir.path);
  ASSERT_EQ(r.rc, 0) << r.err;
  expect_same_files(on / "checkpoints" / "resume.safetensors", off / "checkpoints" / "resume.safetensors",
                    {"step", "lambda_ds", "sampler", "options"});
  expect_same_files(on / "checkpoints" / "model-000004.safetensors", off / "checkpoints" / "model-000004.safetensors",
                    {"step", "config", "domains"});

  std::vector<nlohmann::json> evals;
  EXPECT_EQ(eval_steps(on / "log.jsonl", &evals), (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(eval_steps(off / "log.jsonl"), std::vector<int64_t>{});
  EXPECT_EQ(slurp(off / "log.jsonl").find("eval"), std::string::npos);
  ASSERT_EQ(evals.size(), 2u);
  std::vector<std::string> keys = {"eval/diversity/cool", "eval/diversity/warm", "eval/diversity/mean"};
  if (TrainingEvaluator::has_face_metrics())
    keys.insert(keys.end(), {"eval/face_found/mean", "eval/face_found/source", "eval/pose_error/warm", "eval/face_score/mean"});
  for (const auto& k : keys) EXPECT_TRUE(evals[1].contains(k)) << k << " in " << evals[1].dump();
  EXPECT_GT(evals[0].at("eval/diversity/mean").get<double>(), 0.0);
  EXPECT_FALSE(fs::exists(on / "eval")) << "FID/LPIPS files without --inception";
  // The curves: a picture that decodes, in both runs; with the metric panels, taller.
  const cv::Mat curves_on = cv::imread((on / "samples" / "curves.png").string()),
                curves_off = cv::imread((off / "samples" / "curves.png").string());
  ASSERT_FALSE(curves_on.empty());
  ASSERT_FALSE(curves_off.empty());
  EXPECT_GT(curves_on.rows, curves_off.rows);

  // Two iterations, then resumed with nothing but the run folder: the evaluation goes on at 4.
  r = run_one_thread(common + eval + std::vector<std::string>{"--out", resumed.string(), "--total-iters", "2"}, dir.path);
  ASSERT_EQ(r.rc, 0) << r.err;
  r = run_one_thread({"--out", resumed.string(), "--resume", "latest", "--total-iters", "4"}, dir.path);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(eval_steps(resumed / "log.jsonl"), (std::vector<int64_t>{2, 4}));
  expect_same_files(on / "checkpoints" / "model-000004.safetensors", resumed / "checkpoints" / "model-000004.safetensors",
                    {"step", "config", "domains"});
}

// With --inception and --lpips, the official protocol's figures join the log and its JSON files
// go to <out>/eval, named by the step (random weight files stand in for the converted ones).
TEST(Eval, FidAndLpipsWithTheWeightFiles) {
  if (shape_model_missing()) GTEST_SKIP() << "dlib's shape model is not installed";
  TempDir dir;
  // 64 px: LPIPS's AlexNet needs it.
  test::write_synthetic_set(dir.path / "data", 2, 64, 4);
  test::write_synthetic_set(dir.path / "val", 1, 64, 9);
  const fs::path inception = dir.path / "inception.safetensors", lpips = dir.path / "lpips.safetensors";
  test::write_random_metric_weights(inception, lpips);
  Result r = run_one_thread(tiny_args() + std::vector<std::string>{"--img-size", "64", "--train-dir", (dir.path / "data").string(),
                                                                  "--val-dir", (dir.path / "val").string(), "--out",
                                                                  (dir.path / "run").string(), "--total-iters", "1",
                                                                  "--eval-every", "1", "--eval-images", "1",
                                                                  "--val-batch-size", "1", "--inception", inception.string(),
                                                                  "--lpips", lpips.string()},
                            dir.path);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_CONTAINS(r.out, "FID latent ");
  std::vector<nlohmann::json> evals;
  EXPECT_EQ(eval_steps(dir.path / "run" / "log.jsonl", &evals), std::vector<int64_t>{1});
  ASSERT_EQ(evals.size(), 1u);
  for (const char* k : {"eval/FID_latent/cool2warm", "eval/FID_latent/warm2cool", "eval/FID_latent/mean",
                        "eval/FID_reference/mean", "eval/LPIPS_latent/mean", "eval/LPIPS_reference/warm2cool",
                        "eval/diversity/mean"})
    EXPECT_TRUE(evals[0].contains(k)) << k << " in " << evals[0].dump();
  // The official files, named by the step, hold the logged values.
  for (const char* f : {"FID_00001_latent.json", "FID_00001_reference.json", "LPIPS_00001_latent.json", "LPIPS_00001_reference.json"})
    EXPECT_TRUE(fs::exists(dir.path / "run" / "eval" / f)) << f;
  const auto fid = nlohmann::json::parse(slurp(dir.path / "run" / "eval" / "FID_00001_latent.json"));
  EXPECT_DOUBLE_EQ(fid.at("FID_latent/mean").get<double>(), evals[0].at("eval/FID_latent/mean").get<double>());
  const auto lp = nlohmann::json::parse(slurp(dir.path / "run" / "eval" / "LPIPS_00001_reference.json"));
  EXPECT_DOUBLE_EQ(lp.at("LPIPS_reference/mean").get<double>(), evals[0].at("eval/LPIPS_reference/mean").get<double>());

  // At 32 px LPIPS cannot run: refused before training, as are weight files of the wrong kind.
  r = run(tiny_args() + std::vector<std::string>{"--train-dir", (dir.path / "data").string(), "--val-dir",
                                                 (dir.path / "val").string(), "--out", (dir.path / "small").string(),
                                                 "--eval-every", "1", "--inception", inception.string(), "--lpips",
                                                 lpips.string()},
          dir.path);
  EXPECT_EQ(r.rc, 1);
  EXPECT_CONTAINS(r.err, "LPIPS needs images of at least 64 px");
  r = run(tiny_args() + std::vector<std::string>{"--img-size", "64", "--train-dir", (dir.path / "data").string(), "--val-dir",
                                                 (dir.path / "val").string(), "--out", (dir.path / "swapped").string(),
                                                 "--eval-every", "1", "--inception", lpips.string(), "--lpips",
                                                 inception.string()},
          dir.path);
  EXPECT_EQ(r.rc, 1);
  EXPECT_CONTAINS(r.err, lpips.string());
  EXPECT_FALSE(fs::exists(dir.path / "swapped" / "checkpoints"));
}

}  // namespace
}  // namespace starganv2

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s <path to starganv2-train> [gtest flags]\n", argv[0]);
    return 2;
  }
  starganv2::g_cli = argv[1];
  return RUN_ALL_TESTS();
}
