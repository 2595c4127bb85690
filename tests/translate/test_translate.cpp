// starganv2-translate as a user runs it (issue 7): a tiny checkpoint written here through model/,
// real face photos from Debian packages (astronaut.png from python3-skimage, messi5.jpg from
// opencv-doc), the CLI run as a subprocess and its files checked with OpenCV.
//
// Usage: test_translate <path to starganv2-translate> [gtest flags]. Exits 77 (skipped) when
// the photos or dlib's landmark model are not installed.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <algorithm>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "align/face_aligner.h"
#include "align/landmarks.h"
#include "model/checkpoint.h"
#include "model/generator.h"
#include "model/init.h"
#include "model/mapping_network.h"
#include "model/style.h"
#include "model/style_encoder.h"
#include "model/translator.h"
#include "tests/common/cli_test_util.h"
#include "tests/common/model_test_util.h"

namespace fs = std::filesystem;

namespace starganv2 {
namespace {

constexpr int kImgSize = 64;
const fs::path kAstronaut = "/usr/lib/python3/dist-packages/skimage/data/astronaut.png";
const fs::path kMessi = "/usr/share/doc/opencv-doc/examples/data/messi5.jpg";

std::string g_cli;
fs::path g_dir;         // scratch folder of the whole run
fs::path g_checkpoint;  // the tiny model

// Scratch folder per test; running the tool comes from tests/common.
struct TempDir : test::TempDir {
  TempDir() : test::TempDir("translate") {}
};
using test::Result;

Result run(const std::vector<std::string>& args, const fs::path& scratch) { return test::run_tool(g_cli, args, scratch); }

// Random he-init networks at a small width (base_dim 16), written through model/.
void write_tiny_checkpoint(const fs::path& path) {
  test::write_random_model(path, {.config = test::small_config(0.0, /*num_domains=*/2, /*width=*/32, kImgSize, /*base_dim=*/16),
                            .seed = 3, .producer = "starganv2-translate tests"});
}

// The usual arguments: the tiny model on the CPU.
std::vector<std::string> with_model(std::vector<std::string> args) {
  args.insert(args.end(), {"--checkpoint", g_checkpoint.string(), "--device", "cpu"});
  return args;
}

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << "expected \"" << (needle) << "\" in:\n" << (haystack)

cv::Mat read(const fs::path& p) { return cv::imread(p.string(), cv::IMREAD_COLOR); }

// A PNG copy of a photo (PNG so that "unchanged" can be checked bit-exactly).
fs::path png_copy(const fs::path& photo, const fs::path& dir, const std::string& name) {
  const fs::path p = dir / name;
  cv::imwrite(p.string(), read(photo));
  return p;
}

// A flat colour image: nothing a face detector could take for a face.
fs::path flat_png(const fs::path& dir, const std::string& name) {
  const fs::path p = dir / name;
  cv::imwrite(p.string(), cv::Mat(240, 320, CV_8UC3, cv::Scalar(40, 160, 90)));
  return p;
}

// The largest face's box as align/ finds it in a still image, independently of the CLI.
cv::Rect face_box(const cv::Mat& bgr) {
  static std::shared_ptr<const align::ShapeModel> model = align::ShapeModel::load();
  align::AlignerOptions o;
  o.crop_size = kImgSize;
  align::FaceAligner aligner(model, o);
  const auto faces = aligner.align(bgr, align::PixelFormat::kBGR);
  if (faces.empty()) return {};
  const cv::Rect2d b = faces.front().box.bounds();
  return cv::Rect(cv::Point(cvRound(b.x), cvRound(b.y)), cv::Size(cvRound(b.width), cvRound(b.height)));
}

// Mask of the pixels that differ between a and b.
cv::Mat changed(const cv::Mat& a, const cv::Mat& b) {
  cv::Mat diff, sum;
  cv::absdiff(a, b, diff);
  cv::transform(diff, sum, cv::Matx13f(1, 1, 1));  // one channel, saturating
  return sum > 0;
}

// The face box grown about its centre by `factor`, clipped to the image.
cv::Rect grown(const cv::Rect& r, double factor, const cv::Size& size) {
  const double cx = r.x + r.width / 2.0, cy = r.y + r.height / 2.0;
  const double w = r.width * factor, h = r.height * factor;
  return cv::Rect(cvRound(cx - w / 2), cvRound(cy - h / 2), cvRound(w), cvRound(h)) & cv::Rect(cv::Point(), size);
}

// Inside the face box most pixels changed; outside 3x the box nothing did.
void expect_face_translated(const cv::Mat& before, const cv::Mat& after) {
  ASSERT_EQ(after.size(), before.size());
  const cv::Rect box = face_box(before);
  ASSERT_FALSE(box.empty()) << "align/ finds no face in the test photo";
  const cv::Mat mask = changed(before, after);
  EXPECT_GT(cv::countNonZero(mask(box)), box.area() / 2) << "the face box " << box << " is mostly unchanged";
  cv::Mat outside = mask.clone();
  outside(grown(box, 3.0, before.size())).setTo(0);
  EXPECT_EQ(cv::countNonZero(outside), 0) << "pixels changed far outside the face box " << box;
}

// ---- Help ---------------------------------------------------------------------------------------

TEST(TranslateCli, HelpDocumentsEveryOptionWithItsDefault) {
  TempDir dir;
  const Result r = run({"--help"}, dir.path);
  ASSERT_EQ(r.rc, 0) << r.err;
  for (const char* s : {"inputs", "--out", "--grid", "--recursive", "--checkpoint", "--fan-checkpoint", "--domain",
                        "--seed UINT=[0]", "--psi FLOAT", "=1", "--reference", "--style-file", "--mode", "=face",
                        "--view", "=merged", "side-by-side", "--device TEXT=auto", "--precision", "=auto",
                        "--max-faces", "=32", "--min-face-size", "--feather", "=0.08", "--color-match", "--format",
                        "=png", "--no-face", "=copy", "without a face are written unchanged", "--save-aligned"})
    EXPECT_CONTAINS(r.out, s);
}

// ---- Translation ----------------------------------------------------------------------------------

TEST(TranslateCli, FacePhotoIsTranslatedInsideTheFaceOnly) {
  TempDir dir;
  const fs::path in = png_copy(kAstronaut, dir.path, "astronaut.png");
  const fs::path out = dir.path / "out" / "result.png";
  const Result r = run(with_model({in.string(), "--domain", "male", "--seed", "7", "--out", out.string()}), dir.path);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_CONTAINS(r.out, "1 face");
  const cv::Mat before = read(in), after = read(out);
  ASSERT_FALSE(after.empty()) << out << " not written";
  expect_face_translated(before, after);
}

TEST(TranslateCli, JpegPhotoWithASmallFace) {
  // messi5.jpg's face is about 50 px wide: found with the default (no) minimum size.
  TempDir dir;
  const Result r = run(with_model({kMessi.string(), "--out", (dir.path / "out").string()}), dir.path);
  ASSERT_EQ(r.rc, 0) << r.err;
  const cv::Mat before = read(kMessi), after = read(dir.path / "out" / "messi5.png");
  ASSERT_FALSE(after.empty());
  expect_face_translated(before, after);

  // A minimum face size above it leaves the photo alone.
  const Result big = run(with_model({kMessi.string(), "--min-face-size", "200", "--out", (dir.path / "big").string()}),
                         dir.path);
  ASSERT_EQ(big.rc, 0) << big.err;
  EXPECT_CONTAINS(big.out, "no face");
  EXPECT_EQ(cv::norm(read(dir.path / "big" / "messi5.png"), before, cv::NORM_INF), 0);
}

TEST(TranslateCli, SeedsDomainsAndStyleSourcesGiveTheirOwnImages) {
  TempDir dir;
  const fs::path in = png_copy(kAstronaut, dir.path, "a.png");
  const fs::path style = dir.path / "female-5.safetensors";
  {
    TranslatorOptions options;
    options.device = "cpu";
    Translator t = Translator::open(g_checkpoint, options);
    save_style(style, t.latent_style(t.domain_index("female"), 5, 1.0));
  }
  Result r = run(with_model({in.string(), "--domain", "female", "--seed", "5", "6", "--out", (dir.path / "seeds").string()}),
                 dir.path);
  ASSERT_EQ(r.rc, 0) << r.err;
  const cv::Mat s5 = read(dir.path / "seeds" / "a-seed5.png"), s6 = read(dir.path / "seeds" / "a-seed6.png");
  ASSERT_FALSE(s5.empty());
  ASSERT_FALSE(s6.empty());
  EXPECT_GT(cv::norm(s5, s6, cv::NORM_INF), 0) << "two seeds gave the same image";

  // The domain by index is the domain by name; another domain is another image.
  r = run(with_model({in.string(), "--domain", "0", "--seed", "5", "--out", (dir.path / "index.png").string()}), dir.path);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(cv::norm(read(dir.path / "index.png"), s5, cv::NORM_INF), 0);
  r = run(with_model({in.string(), "--domain", "male", "--seed", "5", "--out", (dir.path / "male.png").string()}), dir.path);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_GT(cv::norm(read(dir.path / "male.png"), s5, cv::NORM_INF), 0);

  // A style file holding seed 5's style gives seed 5's image.
  r = run(with_model({in.string(), "--style-file", style.string(), "--out", (dir.path / "file.png").string()}), dir.path);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(cv::norm(read(dir.path / "file.png"), s5, cv::NORM_INF), 0);

  // A reference photo's face gives a style of its own.
  const fs::path messi = png_copy(kMessi, dir.path, "messi.png");
  r = run(with_model({in.string(), "--reference", messi.string(), "--out", (dir.path / "ref.png").string()}), dir.path);
  ASSERT_EQ(r.rc, 0) << r.err;
  const cv::Mat ref = read(dir.path / "ref.png");
  ASSERT_FALSE(ref.empty());
  EXPECT_GT(cv::norm(ref, s5, cv::NORM_INF), 0);
  expect_face_translated(read(in), ref);
}

TEST(TranslateCli, FolderGivesOneOutputPerImage) {
  TempDir dir;
  const fs::path photos = dir.path / "photos";
  fs::create_directories(photos / "more");
  png_copy(kAstronaut, photos, "astronaut.png");
  fs::copy_file(kMessi, photos / "messi5.jpg");
  flat_png(photos, "wall.png");
  png_copy(kAstronaut, photos / "more", "again.png");
  std::ofstream(photos / "notes.txt") << "not an image\n";

  Result r = run(with_model({photos.string(), "--out", (dir.path / "out").string()}), dir.path);
  ASSERT_EQ(r.rc, 0) << r.err;
  std::vector<std::string> written;
  for (const auto& e : fs::recursive_directory_iterator(dir.path / "out"))
    if (e.is_regular_file()) written.push_back(e.path().lexically_relative(dir.path / "out").string());
  std::sort(written.begin(), written.end());
  EXPECT_EQ(written, (std::vector<std::string>{"astronaut.png", "messi5.png", "wall.png"}));
  EXPECT_CONTAINS(r.out, "1 image without a face written unchanged");

  // --recursive takes the sub-folder too, keeping its place.
  r = run(with_model({photos.string(), "--recursive", "--out", (dir.path / "all").string()}), dir.path);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_TRUE(fs::exists(dir.path / "all" / "more" / "again.png"));
  EXPECT_TRUE(fs::exists(dir.path / "all" / "astronaut.png"));
}

TEST(TranslateCli, FacelessImageIsWrittenUnchangedAndCounted) {
  TempDir dir;
  const fs::path wall = flat_png(dir.path, "wall.png");
  Result r = run(with_model({wall.string(), "--out", (dir.path / "out.png").string()}), dir.path);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_CONTAINS(r.out, "wall.png: no face, written unchanged");
  EXPECT_CONTAINS(r.out, "1 image without a face");
  const cv::Mat out = read(dir.path / "out.png");
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(cv::norm(out, read(wall), cv::NORM_INF), 0);

  // --no-face skip: counted, not written.
  r = run(with_model({wall.string(), "--no-face", "skip", "--out", (dir.path / "skipped.png").string()}), dir.path);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_CONTAINS(r.out, "1 image without a face skipped");
  EXPECT_FALSE(fs::exists(dir.path / "skipped.png"));
}

TEST(TranslateCli, GridHasARowPerFaceImageAndAColumnPerStyle) {
  TempDir dir;
  const fs::path a = png_copy(kAstronaut, dir.path, "a.png");
  const fs::path m = png_copy(kMessi, dir.path, "m.png");
  const fs::path wall = flat_png(dir.path, "wall.png");
  const fs::path grid = dir.path / "grid.png";
  const Result r = run(with_model({a.string(), m.string(), wall.string(), "--seed", "1", "2", "3", "--grid", grid.string()}),
                       dir.path);
  ASSERT_EQ(r.rc, 0) << r.err;
  const cv::Mat g = read(grid);
  ASSERT_FALSE(g.empty()) << r.out << r.err;
  // Two rows (the wall has no face), the source plus three seeds.
  EXPECT_EQ(g.rows, 2 * kImgSize);
  EXPECT_EQ(g.cols, 4 * kImgSize);
  // Every column of a row is a different image: the source and three distinct styles.
  for (int row = 0; row < 2; ++row)
    for (int i = 0; i < 4; ++i)
      for (int j = i + 1; j < 4; ++j)
        EXPECT_GT(cv::norm(g(cv::Rect(i * kImgSize, row * kImgSize, kImgSize, kImgSize)),
                           g(cv::Rect(j * kImgSize, row * kImgSize, kImgSize, kImgSize)), cv::NORM_INF),
                  0)
            << "row " << row << ": columns " << i << " and " << j << " are the same";
  // Without --out only the grid is written.
  EXPECT_FALSE(fs::exists(dir.path / "a-seed1.png"));
}

// --save-aligned writes what the grid's first column shows: each face image's largest face as the
// networks are given it; images without a face write nothing, a repeated name is numbered.
TEST(TranslateCli, SaveAlignedWritesEachImagesLargestFace) {
  TempDir dir;
  const fs::path a = png_copy(kAstronaut, dir.path, "a.png");
  fs::create_directories(dir.path / "again");
  const fs::path a2 = png_copy(kAstronaut, dir.path / "again", "a.png");
  const fs::path wall = flat_png(dir.path, "wall.png");
  const fs::path grid = dir.path / "grid.png", aligned = dir.path / "aligned";
  const Result r = run(with_model({a.string(), a2.string(), wall.string(), "--grid", grid.string(), "--save-aligned",
                                   aligned.string()}),
                       dir.path);
  ASSERT_EQ(r.rc, 0) << r.err;
  const cv::Mat g = read(grid), face = read(aligned / "a.png"), face2 = read(aligned / "a-2.png");
  ASSERT_FALSE(face.empty()) << r.out;
  ASSERT_FALSE(face2.empty()) << r.out;
  EXPECT_EQ(face.size(), cv::Size(kImgSize, kImgSize));
  EXPECT_EQ(cv::norm(face, g(cv::Rect(0, 0, kImgSize, kImgSize)), cv::NORM_INF), 0);
  EXPECT_EQ(cv::norm(face, face2, cv::NORM_INF), 0);
  EXPECT_FALSE(fs::exists(aligned / "wall.png"));
  EXPECT_EQ(std::distance(fs::directory_iterator(aligned), fs::directory_iterator{}), 2);
}

TEST(TranslateCli, FrameModeTranslatesTheWholeImage) {
  TempDir dir;
  const fs::path wall = flat_png(dir.path, "wall.png");
  const fs::path out = dir.path / "out.png";
  const Result r = run(with_model({wall.string(), "--mode", "frame", "--out", out.string()}), dir.path);
  ASSERT_EQ(r.rc, 0) << r.err;
  const cv::Mat before = read(wall), after = read(out);
  ASSERT_EQ(after.size(), before.size());
  // No face needed: the generator's output covers the image, corners included.
  const cv::Mat mask = changed(before, after);
  EXPECT_GT(cv::countNonZero(mask), mask.total() / 2);
  EXPECT_NE(mask.at<uint8_t>(0, 0) + mask.at<uint8_t>(before.rows - 1, before.cols - 1), 0);
}

// ---- Style files ---------------------------------------------------------------------------------

// Every file under `dir` (relative names, sorted).
std::vector<std::string> files_in(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) names.push_back(e.path().lexically_relative(dir).string());
  std::sort(names.begin(), names.end());
  return names;
}

TEST(TranslateCli, SaveStyleWritesWhatStyleFileReadsBack) {
  TempDir dir;
  // From a seed, without any image: the mapping network's style for that seed and psi.
  const fs::path seed_style = dir.path / "styles" / "female-5.safetensors";
  Result r = run(with_model({"--domain", "female", "--seed", "5", "--psi", "0.5", "--save-style", seed_style.string()}),
                 dir.path);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_CONTAINS(r.out, "-> " + seed_style.string());
  {
    TranslatorOptions options;
    options.device = "cpu";
    Translator t = Translator::open(g_checkpoint, options);
    const at::Tensor expected = t.latent_style(t.domain_index("female"), 5, 0.5);
    const at::Tensor saved = load_style(seed_style, expected.numel());
    EXPECT_TRUE(at::allclose(saved, expected.reshape({-1}), 1e-6, 1e-6)) << saved << expected;
  }
  const std::string header = test::slurp(seed_style);
  EXPECT_CONTAINS(header, "\"format\":\"starganv2-style\"");
  EXPECT_CONTAINS(header, "\"domain\":\"female\"");
  EXPECT_CONTAINS(header, "\"source\":\"seed 5, psi 0.5\"");

  // The file gives the image the seed gives.
  const fs::path in = png_copy(kAstronaut, dir.path, "a.png");
  r = run(with_model({in.string(), "--domain", "female", "--seed", "5", "--psi", "0.5", "--out", (dir.path / "seed.png").string()}),
          dir.path);
  ASSERT_EQ(r.rc, 0) << r.err;
  r = run(with_model({in.string(), "--style-file", seed_style.string(), "--out", (dir.path / "file.png").string()}), dir.path);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(cv::norm(read(dir.path / "seed.png"), read(dir.path / "file.png"), cv::NORM_INF), 0);

  // From a reference photo, while translating: the saved style gives the reference's image.
  const fs::path messi = png_copy(kMessi, dir.path, "messi.png");
  const fs::path ref_style = dir.path / "ref.safetensors";
  r = run(with_model({in.string(), "--domain", "male", "--reference", messi.string(), "--save-style", ref_style.string(),
                      "--out", (dir.path / "ref.png").string()}),
          dir.path);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_CONTAINS(test::slurp(ref_style), "\"source\":\"reference " + messi.string() + "\"");
  r = run(with_model({in.string(), "--style-file", ref_style.string(), "--out", (dir.path / "ref-file.png").string()}),
          dir.path);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(cv::norm(read(dir.path / "ref.png"), read(dir.path / "ref-file.png"), cv::NORM_INF), 0);

  // Several styles: one file each, named like the images.
  r = run(with_model({"--seed", "1", "2", "--save-style", (dir.path / "many" / "s.safetensors").string()}), dir.path);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(files_in(dir.path / "many"), (std::vector<std::string>{"s-seed1.safetensors", "s-seed2.safetensors"}));
  EXPECT_FALSE(at::equal(load_style(dir.path / "many" / "s-seed1.safetensors", 16),
                         load_style(dir.path / "many" / "s-seed2.safetensors", 16)));
}

// A style file's style is of the domain it was saved for: the header line says that domain, not
// --domain's default (the issue: "domain female" for a male style file whose image is the one
// --domain male --seed 3 gives, as SaveStyleWritesWhatStyleFileReadsBack checks).
TEST(TranslateCli, StyleFileReportsItsOwnDomain) {
  TempDir dir;
  const fs::path male3 = dir.path / "male-3.safetensors";
  Result r = run(with_model({"--domain", "male", "--seed", "3", "--save-style", male3.string()}), dir.path);
  ASSERT_EQ(r.rc, 0) << r.err;
  const fs::path in = png_copy(kAstronaut, dir.path, "a.png");
  r = run(with_model({in.string(), "--style-file", male3.string(), "--out", (dir.path / "file.png").string()}), dir.path);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_CONTAINS(r.out, "; domain male, 1 style, 1 image");
  // With a seed of the other domain as well: both are named.
  r = run(with_model({in.string(), "--seed", "1", "--style-file", male3.string(), "--out", (dir.path / "both").string()}),
          dir.path);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_CONTAINS(r.out, "; domains female, male, 2 styles, 1 image");
}

// ---- Errors: non-zero exit and one message naming the problem ---------------------------------

TEST(TranslateCli, BadCommandLinesExitWithOne_n) {
  TempDir dir;
  const std::string wall = flat_png(dir.path, "wall.png").string();
  const std::string out = (dir.path / "o").string();
  // CLI11's own codes (105 for --psi 2, 106 for a missing option, ...) are not the documented 1.
  for (const std::vector<std::string>& args :
       {with_model({wall, "--psi", "2", "--out", out}), with_model({wall, "--mode", "sideways", "--out", out}),
        with_model({wall, "--no-such-option", "--out", out}), with_model({wall, "--seed", "x", "--out", out}),
        with_model({"--out", out}), std::vector<std::string>{wall, "--out", out}}) {
    const Result r = run(args, dir.path);
    EXPECT_EQ(r.rc, 1) << r.err;
    EXPECT_CONTAINS(r.err, "starganv2-translate: error: ");
  }
  // No --checkpoint: the message names the shipped demo model, by a path that works anywhere.
  const Result r = run({wall, "--out", out}, dir.path);
  EXPECT_CONTAINS(r.err, "--checkpoint is required");
  const char* root = std::getenv("STARGANV2_SOURCE_ROOT");
  if (root) {
    EXPECT_CONTAINS(r.err, (fs::path(root) / "examples" / "models" / "demo-faces-64.safetensors").string());
  }
  EXPECT_FALSE(fs::exists(out));
  const Result help = run({"--help"}, dir.path);
  EXPECT_EQ(help.rc, 0);
  EXPECT_CONTAINS(help.out, "Exit codes: 0 done; 1 bad input");
}

TEST(TranslateCli, ReadmeModelPathFromAnotherFolderNamesTheShippedModel_n) {
  TempDir dir;
  const std::string wall = flat_png(dir.path, "wall.png").string();
  const Result r = test::run_tool(g_cli, {wall, "--checkpoint", "examples/models/demo-faces-64.safetensors", "--out",
                                          (dir.path / "o").string()},
                                  dir.path, dir.path);
  EXPECT_EQ(r.rc, 1);
  EXPECT_CONTAINS(r.err, "checkpoint examples/models/demo-faces-64.safetensors does not exist");
  const char* root = std::getenv("STARGANV2_SOURCE_ROOT");
  ASSERT_NE(root, nullptr);
  const fs::path shipped = fs::path(root) / "examples" / "models" / "demo-faces-64.safetensors";
  EXPECT_CONTAINS(r.err, "the shipped model of that name is " + shipped.string());
  // ... and that path works from here.
  const Result ok = test::run_tool(g_cli, {wall, "--checkpoint", shipped.string(), "--device", "cpu", "--out",
                                           (dir.path / "o").string()},
                                   dir.path, dir.path);
  EXPECT_EQ(ok.rc, 0) << ok.err;
  EXPECT_TRUE(fs::exists(dir.path / "o" / "wall.png"));
}

TEST(TranslateCli, FailedRunsLeaveNoFiles_n) {
  TempDir dir;
  const fs::path in = png_copy(kAstronaut, dir.path, "a.png");
  fs::create_directories(dir.path / "o");
  // An unknown domain stops the run before anything is written: no image, no grid, no style file.
  Result r = run(with_model({in.string(), "--domain", "zebra", "--out", (dir.path / "o").string(), "--grid",
                             (dir.path / "o" / "grid.png").string(), "--save-style", (dir.path / "o" / "s.safetensors").string()}),
                 dir.path);
  EXPECT_EQ(r.rc, 1);
  EXPECT_TRUE(files_in(dir.path / "o").empty()) << files_in(dir.path / "o").front();
  // A reference without a face fails after the first style: no style file of the styles before it.
  r = run(with_model({"--seed", "1", "--reference", flat_png(dir.path, "wall.png").string(), "--save-style",
                      (dir.path / "o" / "s.safetensors").string()}),
          dir.path);
  EXPECT_EQ(r.rc, 1);
  EXPECT_TRUE(files_in(dir.path / "o").empty()) << files_in(dir.path / "o").front();
  // A successful run leaves its files and no temporary ones.
  r = run(with_model({in.string(), "--seed", "1", "2", "--out", (dir.path / "o").string()}), dir.path);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(files_in(dir.path / "o"), (std::vector<std::string>{"a-seed1.png", "a-seed2.png"}));
}

TEST(TranslateCli, MissingOrCorruptCheckpoint_n) {
  TempDir dir;
  const fs::path in = flat_png(dir.path, "wall.png");
  const fs::path missing = dir.path / "nope.safetensors";
  Result r = run({in.string(), "--checkpoint", missing.string(), "--out", (dir.path / "o").string()}, dir.path);
  EXPECT_NE(r.rc, 0);
  EXPECT_CONTAINS(r.err, "checkpoint " + missing.string() + " does not exist");

  const fs::path corrupt = dir.path / "corrupt.safetensors";
  std::ofstream(corrupt) << "this is not a safetensors file at all";
  r = run({in.string(), "--checkpoint", corrupt.string(), "--out", (dir.path / "o").string()}, dir.path);
  EXPECT_NE(r.rc, 0);
  EXPECT_CONTAINS(r.err, corrupt.string());
  EXPECT_FALSE(fs::exists(dir.path / "o" / "wall.png"));
}

TEST(TranslateCli, UnknownDomainListsTheValidOnes_n) {
  TempDir dir;
  const Result r = run(with_model({flat_png(dir.path, "wall.png").string(), "--domain", "zebra", "--out",
                                   (dir.path / "o").string()}),
                       dir.path);
  EXPECT_NE(r.rc, 0);
  EXPECT_CONTAINS(r.err, "unknown domain \"zebra\"");
  EXPECT_CONTAINS(r.err, "female, male");
}

TEST(TranslateCli, UnreadableInputImage_n) {
  TempDir dir;
  const fs::path junk = dir.path / "junk.png";
  std::ofstream(junk) << "not a PNG";
  Result r = run(with_model({junk.string(), "--out", (dir.path / "o").string()}), dir.path);
  EXPECT_NE(r.rc, 0);
  EXPECT_CONTAINS(r.err, "cannot read " + junk.string());

  // In a folder the other images are still done, and the run still fails.
  const fs::path photos = dir.path / "photos";
  fs::create_directories(photos);
  fs::copy_file(junk, photos / "junk.png");
  flat_png(photos, "wall.png");
  r = run(with_model({photos.string(), "--out", (dir.path / "o2").string()}), dir.path);
  EXPECT_NE(r.rc, 0);
  EXPECT_CONTAINS(r.err, "junk.png");
  EXPECT_TRUE(fs::exists(dir.path / "o2" / "wall.png"));

  // An input that is not there at all.
  r = run(with_model({(dir.path / "ghost.jpg").string(), "--out", (dir.path / "o3").string()}), dir.path);
  EXPECT_NE(r.rc, 0);
  EXPECT_CONTAINS(r.err, "ghost.jpg does not exist");
}

TEST(TranslateCli, FolderWithoutImages_n) {
  TempDir dir;
  const fs::path empty = dir.path / "empty";
  fs::create_directories(empty / "sub");
  std::ofstream(empty / "readme.txt") << "no images here\n";
  const Result r = run(with_model({empty.string(), "--out", (dir.path / "o").string()}), dir.path);
  EXPECT_NE(r.rc, 0);
  EXPECT_CONTAINS(r.err, "no image found in the folder " + empty.string());
}

TEST(TranslateCli, UnwritableOutput_n) {
  TempDir dir;
  const fs::path in = flat_png(dir.path, "wall.png");
  // A file where a folder must go fails for every user, root included.
  const fs::path file = dir.path / "a-file";
  std::ofstream(file) << "x";
  Result r = run(with_model({in.string(), "--out", (file / "out").string()}), dir.path);
  EXPECT_NE(r.rc, 0);
  EXPECT_CONTAINS(r.err, "cannot create the output folder " + (file / "out").string());

  r = run(with_model({in.string(), "--out", (file / "out.png").string()}), dir.path);
  EXPECT_NE(r.rc, 0);
  EXPECT_CONTAINS(r.err, "cannot create the output folder " + file.string());

  r = run(with_model({in.string(), "--grid", (file / "grid.png").string()}), dir.path);
  EXPECT_NE(r.rc, 0);
  EXPECT_CONTAINS(r.err, file.string());
}

}  // namespace
}  // namespace starganv2

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc < 2) {
    std::cerr << "usage: test_translate <path to starganv2-translate> [gtest flags]\n";
    return 2;
  }
  starganv2::g_cli = argv[1];
  for (const fs::path& p : {starganv2::kAstronaut, starganv2::kMessi, fs::path(starganv2::align::kDefaultShapeModel)}) {
    if (!fs::exists(p)) {
      std::cout << "SKIP: " << p << " is not installed (Debian packages python3-skimage, opencv-doc, libdlib-data)\n";
      return 77;
    }
  }
  starganv2::g_dir = starganv2::test::make_temp_dir("translate-model");
  starganv2::g_checkpoint = starganv2::g_dir / "tiny.safetensors";
  starganv2::write_tiny_checkpoint(starganv2::g_checkpoint);
  const int rc = RUN_ALL_TESTS();
  std::error_code ec;
  fs::remove_all(starganv2::g_dir, ec);
  return rc;
}
