// starganv2-eval as a user runs it: `faces` with the shipped demo model on a public-domain aligned
// face (the astronaut from python3-skimage, aligned here by the project's own aligner, and her
// mirror image), with a loose bound that the demo model must meet and a model with random weights
// of the same config must not; `flicker` on image sequences whose answer is known; and the
// errors a user meets.
//
// Usage: test_eval <path to starganv2-eval> [gtest flags]. Exits 77 (skipped) when the astronaut
// (python3-skimage), dlib's landmark model (libdlib-data) or the demo model is missing.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "align/face_aligner.h"
#include "align/landmarks.h"
#include "model/checkpoint.h"
#include "model/locations.h"
#include "tests/common/cli_test_util.h"
#include "tests/common/model_test_util.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace starganv2 {
namespace {

const fs::path kAstronaut = "/usr/lib/python3/dist-packages/skimage/data/astronaut.png";

std::string g_cli;
fs::path g_dir;    // scratch folder of the whole run
fs::path g_faces;  // the aligned astronaut and her mirror image
fs::path g_demo;   // the shipped demo model

using test::Result;

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << "expected \"" << (needle) << "\" in:\n" << (haystack)

Result run(const std::vector<std::string>& args, const fs::path& scratch) { return test::run_tool(g_cli, args, scratch); }

// One line on stderr, naming the problem.
void expect_one_error_line(const Result& r, const std::string& needle) {
  EXPECT_EQ(r.rc, 1) << r.out << r.err;
  EXPECT_CONTAINS(r.err, needle);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

json faces_report(const fs::path& model, const fs::path& scratch, std::string* table = nullptr) {
  const fs::path report = scratch / "faces.json";
  const Result r = run({"faces", "--checkpoint", model.string(), "--device", "cpu", "--seed", "1", "2", "3",
                        g_faces.string(), "--json", report.string()},
                       scratch);
  EXPECT_EQ(r.rc, 0) << r.out << r.err;
  if (table) *table = r.out;
  std::ifstream f(report);
  return f ? json::parse(f) : json::object();
}

// The bound the shipped model is held to, loose enough for any model of faces (today's demo model
// on these two crops: a face found in 9 of 12 translations, mean best detector score 0.27 into
// female and -0.15 into male, pose error 0.013-0.015, diversity 0.031-0.033, change 0.09-0.18; the
// first demo model: 3 of 12, 0.09 and -0.54, 0.021, 0.06-0.08, 0.13-0.16; random weights of its
// config: 0 found, -0.98 and -0.91, pose error 0.11, change 0.34): the detector
// still finds a face in some translation and its mean best score in each domain stays well above
// noise's -1, the landmarks stay within 5 % of the crop width of the source's, the pictures
// change but not into noise, and seeds give different pictures.
std::vector<std::string> bound_failures(const json& j) {
  std::vector<std::string> fails;
  if (j["source"]["found_rate"].get<double>() < 1.0) fails.push_back("a source face was not found");
  int found = 0;
  for (const auto& [domain, d] : j["domains"].items()) {
    found += d["found"].get<int>();
    const double best = d["mean_best_score"].get<double>();
    if (!(best > -0.75)) fails.push_back(domain + ": mean best detector score " + std::to_string(best));
    if (!(d["pose_error"].get<double>() < 0.05)) fails.push_back(domain + ": pose error " + d["pose_error"].dump());
    const double change = d["change"].get<double>();
    if (!(change > 0.02 && change < 0.25)) fails.push_back(domain + ": change " + std::to_string(change));
    if (!(d["diversity"].get<double>() > 0.01)) fails.push_back(domain + ": diversity " + d["diversity"].dump());
  }
  if (found == 0) fails.push_back("no face found in any translation");
  return fails;
}

TEST(EvalFaces, DemoModelKeepsFacesPoseAndStyles) {
  test::TempDir dir("eval");
  std::string table;
  const json j = faces_report(g_demo, dir.path, &table);
  ASSERT_TRUE(j.contains("domains"));
  for (const char* word : {"source", "-> female", "-> male", "found", "score", "pose error", "diversity", "change", "seams"})
    EXPECT_CONTAINS(table, word);
  EXPECT_EQ(j["images"].get<int>(), 2);
  EXPECT_EQ(j["img_size"].get<int>(), 64);
  ASSERT_EQ(j["domains"].size(), 2u);
  for (const auto& [domain, d] : j["domains"].items()) EXPECT_EQ(d["crops"].get<int>(), 6) << domain;
  // The upsampling seams: a photo's are about 1; a translation's are reported per crop and per domain
  // (the demo model's 1.3-1.4 on these crops).
  const double source_seams = j["source"]["seams"].get<double>();
  EXPECT_GT(source_seams, 0.8);
  EXPECT_LT(source_seams, 1.25);
  for (const auto& [domain, d] : j["domains"].items()) EXPECT_GT(d["seams"].get<double>(), 0.5) << domain;
  for (const auto& image : j["per_image"])
    for (const auto& t : image["translated"]) EXPECT_TRUE(t.contains("seams")) << t.dump();
  const std::vector<std::string> fails = bound_failures(j);
  EXPECT_TRUE(fails.empty()) << "the demo model misses the bound: " << fails.front() << "\n" << j.dump(2);
  // Deterministic: the same figures on a second run.
  test::TempDir again("eval");
  const json k = faces_report(g_demo, again.path);
  EXPECT_EQ(j["domains"], k["domains"]);
  EXPECT_EQ(j["per_image"].size(), k["per_image"].size());
}

TEST(EvalFaces, RandomWeightsFailTheBound) {
  // The check that the bound can fail: networks of the demo model's config with random weights.
  test::TempDir dir("eval");
  const CheckpointMeta meta = Checkpoint::open(g_demo).meta();
  const fs::path model = dir.path / "random.safetensors";
  test::write_random_model(model, {.config = meta.config, .domains = meta.domains, .seed = 5});
  const json j = faces_report(model, dir.path);
  ASSERT_TRUE(j.contains("domains"));
  const std::vector<std::string> fails = bound_failures(j);
  EXPECT_FALSE(fails.empty()) << j["domains"].dump(2);
  // Not by luck on one figure: the detector, the landmarks and the pixels all tell.
  EXPECT_GE(fails.size(), 4u) << j["domains"].dump(2);
}

TEST(EvalFaces, BadInput_n) {
  test::TempDir dir("eval");
  expect_one_error_line(run({"faces", "--checkpoint", (dir.path / "none.safetensors").string(), g_faces.string()}, dir.path),
                        "none.safetensors does not exist");
  expect_one_error_line(run({"faces", g_faces.string()}, dir.path), "--checkpoint is required");
  expect_one_error_line(run({"faces", "-c", g_demo.string(), (dir.path / "nowhere").string()}, dir.path),
                        "nowhere does not exist");
  fs::create_directory(dir.path / "empty");
  expect_one_error_line(run({"faces", "-c", g_demo.string(), (dir.path / "empty").string()}, dir.path),
                        "no image found in the folder");
  expect_one_error_line(run({"faces", "-c", g_demo.string(), "--device", "cpu", "--domain", "male", "--domain", "cat",
                             g_faces.string()},
                            dir.path),
                        "cat");
  std::ofstream(dir.path / "broken.png") << "not a png";
  expect_one_error_line(run({"faces", "-c", g_demo.string(), "--device", "cpu", (dir.path / "broken.png").string()}, dir.path),
                        "cannot read");
  expect_one_error_line(run({"bogus"}, dir.path), "see --help");
}

TEST(Eval, HelpListsSubcommandsAndExitCodes) {
  test::TempDir dir("eval");
  const Result r = run({"--help"}, dir.path);
  EXPECT_EQ(r.rc, 0);
  for (const char* word : {"faces", "flicker", "Exit codes", "0 done", "1 bad input"}) EXPECT_CONTAINS(r.out, word);
}

// ---- flicker ----

// A textured scene drifting 1.3 px right and 0.6 px down per frame, as a PNG sequence, and
// versions of it: `kind` 0 = the input, 1 = the same frames, 2 = a disc noised afresh each frame.
fs::path write_clip(const fs::path& dir, int kind, int frames = 5) {
  fs::create_directories(dir);
  cv::RNG rng(11);
  cv::Mat tex(180, 220, CV_32FC3);
  rng.fill(tex, cv::RNG::NORMAL, 0, 1);
  cv::GaussianBlur(tex, tex, {0, 0}, 2.5);
  cv::normalize(tex, tex, 40, 215, cv::NORM_MINMAX);
  cv::RNG noise_rng(3);
  for (int t = 0; t < frames; ++t) {
    const cv::Matx23d M(1, 0, -10 - 1.3 * t, 0, 1, -10 - 0.6 * t);
    cv::Mat f, out;
    cv::warpAffine(tex, f, M, {160, 120}, cv::INTER_LINEAR, cv::BORDER_REFLECT_101);
    if (kind == 2) {
      cv::Mat noise(f.size(), CV_32FC3), disc = cv::Mat::zeros(f.size(), CV_8UC1);
      noise_rng.fill(noise, cv::RNG::NORMAL, 0, 8);
      cv::circle(disc, {80 - static_cast<int>(1.3 * t), 60}, 25, cv::Scalar(255), cv::FILLED);
      cv::add(f, noise, f, disc);
    }
    f.convertTo(out, CV_8UC3);
    char name[32];
    std::snprintf(name, sizeof name, "f%03d.png", t);
    cv::imwrite((dir / name).string(), out);
  }
  return dir / "f%03d.png";
}

TEST(EvalFlicker, KnownClips) {
  test::TempDir dir("eval");
  const fs::path in = write_clip(dir.path / "in", 0), same = write_clip(dir.path / "same", 1),
                 noisy = write_clip(dir.path / "noisy", 2);
  Result r = run({"flicker", in.string(), same.string(), "--region", "all", "--json", (dir.path / "s.json").string()}, dir.path);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_CONTAINS(r.out, "flicker ratio 1.000");
  json s = json::parse(std::ifstream(dir.path / "s.json"));
  EXPECT_EQ(s["ratio"].get<double>(), 1.0);
  EXPECT_EQ(s["frames"].get<int>(), 5);
  EXPECT_EQ(s["pairs"].size(), 4u);

  r = run({"flicker", in.string(), noisy.string(), "--json", (dir.path / "n.json").string(), "--csv",
           (dir.path / "n.csv").string()},
          dir.path);
  ASSERT_EQ(r.rc, 0) << r.err;
  json n = json::parse(std::ifstream(dir.path / "n.json"));
  EXPECT_GT(n["ratio"].get<double>(), 3.0) << r.out;
  EXPECT_EQ(n["pairs_measured"].get<int>(), 4);
  const std::string csv = test::slurp(dir.path / "n.csv");
  EXPECT_EQ(csv.rfind("frame,pixels,input_error,output_error,ratio\n0,", 0), 0u) << csv;
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 5);
}

TEST(EvalFlicker, BadInput_n) {
  test::TempDir dir("eval");
  const fs::path in = write_clip(dir.path / "in", 0), shorter = write_clip(dir.path / "short", 1, 3);
  expect_one_error_line(run({"flicker", in.string(), (dir.path / "missing.avi").string()}, dir.path),
                        "missing.avi does not exist");
  std::ofstream(dir.path / "junk.avi") << "not a video";
  expect_one_error_line(run({"flicker", in.string(), (dir.path / "junk.avi").string()}, dir.path), "cannot open");
  expect_one_error_line(run({"flicker", in.string(), shorter.string()}, dir.path), "differ in length");
  expect_one_error_line(run({"flicker", in.string()}, dir.path), "output");
}

}  // namespace
}  // namespace starganv2

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc < 2) {
    std::cerr << "usage: test_eval <path to starganv2-eval>\n";
    return 1;
  }
  namespace sv = starganv2;
  sv::g_cli = argv[1];
  for (const fs::path& need : {sv::kAstronaut, fs::path(sv::align::kDefaultShapeModel)}) {
    if (!fs::exists(need)) {
      std::cout << "SKIP: " << need << " is not installed (python3-skimage, libdlib-data)\n";
      return 77;
    }
  }
  sv::g_demo = sv::shipped_model();
  if (sv::g_demo.empty()) {
    std::cout << "SKIP: the demo model " << sv::kDemoModelName << " is not in examples/models\n";
    return 77;
  }
  sv::test::TempDir dir("eval-run");
  sv::g_dir = dir.path;
  // The astronaut aligned the way the element aligns faces (the CelebA-HQ framing, 256 px), and
  // her mirror image: two sources from one public-domain photo.
  sv::g_faces = dir.path / "faces";
  fs::create_directories(sv::g_faces);
  const cv::Mat photo = cv::imread(sv::kAstronaut.string(), cv::IMREAD_COLOR);
  sv::align::AlignerOptions options;
  options.crop_size = 256;
  options.crop_format = sv::align::PixelFormat::kBGR;
  sv::align::FaceAligner aligner(sv::align::ShapeModel::load(), options);
  const auto faces = aligner.align(photo, sv::align::PixelFormat::kBGR);
  if (faces.empty()) {
    std::cerr << "the project's aligner found no face in " << sv::kAstronaut << "\n";
    return 1;
  }
  cv::Mat mirrored;
  cv::flip(faces.front().crop, mirrored, 1);
  cv::imwrite((sv::g_faces / "astronaut.png").string(), faces.front().crop);
  cv::imwrite((sv::g_faces / "astronaut-mirrored.png").string(), mirrored);
  return RUN_ALL_TESTS();
}
