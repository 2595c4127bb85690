// Unit tests of the trainer: options, losses, latents, sampler, augmentation, folder scan,
// loader, sample grids, and the model and resume files. Fast (no training).
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <torch/csrc/autograd/grad_mode.h>
#include <torch/utils.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>

#include "model/checkpoint.h"
#include "model/init.h"
#include "synthetic.h"
#include "tiny_options.h"
#include "trainer/data/augment.h"
#include "trainer/data/image_folder.h"
#include "trainer/data/loader.h"
#include "trainer/options.h"
#include "trainer/random.h"
#include "trainer/samples.h"
#include "trainer/solver.h"
#include "trainer/train_state.h"

namespace fs = std::filesystem;

namespace starganv2 {
namespace {

using test::make_temp_dir;

struct TempDir {
  fs::path path = make_temp_dir("unit");
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

using test::tiny_options;

bool same(const at::Tensor& a, const at::Tensor& b) {
  return a.sizes() == b.sizes() && a.scalar_type() == b.scalar_type() && at::equal(a.cpu(), b.cpu());
}

// ---------------------------------------------------------------------------------------------
// Options

TEST(TrainOptions, JsonRoundTripIsExact) {
  TrainOptions o = tiny_options();
  o.lr = 1.0 / 3.0;  // not a short decimal
  o.lambda_ds = 2;
  o.seed = 123456789012345ULL;
  o.ema_beta = 0.99;
  const TrainOptions back = TrainOptions::from_json(o.to_json());
  EXPECT_TRUE(back == o) << o.to_json() << "\n" << back.to_json();
}

TEST(TrainOptions, DefaultsAreTheOfficialOnes) {
  const TrainOptions o;
  EXPECT_EQ(o.batch_size, 8);
  EXPECT_EQ(o.total_iters, 100000);
  EXPECT_EQ(o.ds_iter, 100000);
  EXPECT_DOUBLE_EQ(o.lr, 1e-4);
  EXPECT_DOUBLE_EQ(o.f_lr, 1e-6);
  EXPECT_DOUBLE_EQ(o.beta1, 0.0);
  EXPECT_DOUBLE_EQ(o.beta2, 0.99);
  EXPECT_DOUBLE_EQ(o.weight_decay, 1e-4);
  EXPECT_DOUBLE_EQ(o.ema_beta, 0.999);
  EXPECT_DOUBLE_EQ(o.randcrop_prob, 0.5);
  EXPECT_EQ(o.seed, 777u);
  EXPECT_EQ(o.model.img_size, 256);
  EXPECT_EQ(o.model.latent_dim, 16);
  EXPECT_EQ(o.model.style_dim, 64);
  EXPECT_DOUBLE_EQ(o.model.w_hpf, 1.0);
}

TEST(TrainOptions, PresetsAreThePapers) {
  const TrainOptions c = preset_options("celeba_hq"), a = preset_options("afhq");
  EXPECT_DOUBLE_EQ(c.model.w_hpf, 1.0);
  EXPECT_DOUBLE_EQ(c.lambda_ds, 1.0);
  EXPECT_DOUBLE_EQ(a.model.w_hpf, 0.0);
  EXPECT_DOUBLE_EQ(a.lambda_ds, 2.0);
  EXPECT_EQ(a.model.img_size, 256);
  EXPECT_THROW(preset_options("ffhq"), std::invalid_argument);
}

TEST(TrainOptions, BadValuesAreNamed_n) {
  auto message = [](auto change) {
    TrainOptions o = tiny_options();
    change(o);
    try {
      o.validate();
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("(accepted)");
  };
  EXPECT_NE(message([](TrainOptions& o) { o.batch_size = 0; }).find("batch_size"), std::string::npos);
  EXPECT_NE(message([](TrainOptions& o) { o.beta1 = 1.0; }).find("beta1"), std::string::npos);
  EXPECT_NE(message([](TrainOptions& o) { o.lr = -1; }).find("lr"), std::string::npos);
  EXPECT_NE(message([](TrainOptions& o) { o.ds_iter = 0; }).find("ds_iter"), std::string::npos);
  EXPECT_NE(message([](TrainOptions& o) { o.model.img_size = 48; }).find("img_size"), std::string::npos);
  EXPECT_THROW(TrainOptions::from_json("{\"batch_size\": 8}"), std::invalid_argument);
  EXPECT_THROW(TrainOptions::from_json("not json"), std::invalid_argument);
}

// ---------------------------------------------------------------------------------------------
// Losses and latents

TEST(Losses, AdvLossIsMeanBinaryCrossEntropyOfLogits) {
  const at::Tensor logits = at::tensor({-2.0f, 0.5f, 3.0f});
  const at::Tensor p = at::sigmoid(logits.to(at::kDouble));
  EXPECT_NEAR(adv_loss(logits, 1.0).item<double>(), (-at::log(p)).mean().item<double>(), 1e-6);
  EXPECT_NEAR(adv_loss(logits, 0.0).item<double>(), (-at::log(1 - p)).mean().item<double>(), 1e-6);
}

TEST(Losses, R1IsHalfTheBatchMeanOfSquaredGradientNorms) {
  // D(x)_n = a * sum(x_n^2): dD/dx = 2 a x, so R1 = 0.5 * mean_n sum (2 a x_n)^2.
  const double a = 0.7;
  const at::Tensor x = at::randn({3, 2, 4, 4}, at::kDouble).requires_grad_(true);
  const at::Tensor d_out = a * x.pow(2).sum({1, 2, 3});
  const at::Tensor reg = r1_reg(d_out, x);
  const double expected = 0.5 * (2 * a * x.detach()).pow(2).sum({1, 2, 3}).mean().item<double>();
  EXPECT_NEAR(reg.item<double>(), expected, 1e-5 * expected);
  // The penalty is itself differentiable (create_graph), as D's training needs.
  EXPECT_TRUE(reg.requires_grad());
}

TEST(Latents, AreDeterministicPerStepAndStandardNormal) {
  auto [z1, z2] = sample_latents(777, 5, 4, 16);
  auto [w1, w2] = sample_latents(777, 5, 4, 16);
  EXPECT_TRUE(same(z1, w1) && same(z2, w2));
  EXPECT_FALSE(at::equal(z1, z2));
  EXPECT_FALSE(at::equal(z1, sample_latents(777, 6, 4, 16).first));
  EXPECT_FALSE(at::equal(z1, sample_latents(778, 5, 4, 16).first));
  const at::Tensor big = sample_latents(1, 0, 20000, 8).first;
  EXPECT_NEAR(big.mean().item<double>(), 0.0, 0.01);
  EXPECT_NEAR(big.std().item<double>(), 1.0, 0.01);
}

// ---------------------------------------------------------------------------------------------
// Sampler and augmentation

TEST(BalancedSampler, DrawsDomainsEquallyWhateverTheirSize) {
  BalancedSampler s({5, 500}, 7, 2);
  int64_t first = 0;
  std::set<int64_t> small_seen;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    const auto [d, idx] = s.draw(i);
    ASSERT_TRUE(d == 0 || d == 1);
    ASSERT_GE(idx, 0);
    ASSERT_LT(idx, d == 0 ? 5 : 500);
    if (d == 0) {
      ++first;
      small_seen.insert(idx);
    }
  }
  // Weights 1/count: each domain is drawn half the time (binomial sd ~ 0.0035).
  EXPECT_NEAR(static_cast<double>(first) / n, 0.5, 0.02);
  EXPECT_EQ(small_seen.size(), 5u);
  BalancedSampler again({5, 500}, 7, 2), other({5, 500}, 8, 2);
  int differ = 0;
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(s.draw(i), again.draw(i));
    differ += s.draw(i) != other.draw(i);
  }
  EXPECT_GT(differ, 30);
}

TEST(Augment, RandomResizedCropStaysInTheOfficialRanges) {
  AugmentRng rng(3);
  double min_area = 1, max_area = 0;
  for (int i = 0; i < 2000; ++i) {
    const CropBox b = random_resized_crop_box(300, 300, rng);
    ASSERT_GE(b.x, 0);
    ASSERT_GE(b.y, 0);
    ASSERT_LE(b.x + b.width, 300);
    ASSERT_LE(b.y + b.height, 300);
    const double area = static_cast<double>(b.width) * b.height / (300.0 * 300.0);
    const double ratio = static_cast<double>(b.width) / b.height;
    // Rounding to whole pixels widens the ranges slightly.
    ASSERT_GE(area, 0.79);
    ASSERT_LE(area, 1.0);
    ASSERT_GE(ratio, 0.89);
    ASSERT_LE(ratio, 1.11);
    min_area = std::min(min_area, area);
    max_area = std::max(max_area, area);
  }
  EXPECT_LT(min_area, 0.81);
  EXPECT_GT(max_area, 0.95);
  // A 3:2 image cannot hold a 0.8-1.0 area box of ratio 0.9-1.1: torchvision falls back to the
  // central crop at the nearest ratio.
  const CropBox wide = random_resized_crop_box(300, 200, rng);
  EXPECT_EQ(wide.height, 200);
  EXPECT_EQ(wide.width, 220);
  EXPECT_EQ(wide.x, 40);
  // A strip: the same fallback.
  const CropBox strip = random_resized_crop_box(1000, 10, rng);
  EXPECT_EQ(strip.height, 10);
  EXPECT_EQ(strip.width, 11);
  EXPECT_EQ(strip.x, (1000 - 11) / 2);
}

TEST(Augment, ResizesFlipsAndNormalises) {
  cv::Mat img(40, 60, CV_8UC3);
  cv::randu(img, cv::Scalar::all(0), cv::Scalar::all(256));
  img.at<cv::Vec3b>(0, 0) = cv::Vec3b(255, 0, 0);
  const at::Tensor plain = resize_normalise(img, 16);
  ASSERT_EQ(plain.sizes(), (at::IntArrayRef{3, 16, 16}));
  EXPECT_GE(plain.min().item<float>(), -1.0f);
  EXPECT_LE(plain.max().item<float>(), 1.0f);
  // Without the crop, every output is the resized image or its mirror, about half each.
  int flipped = 0;
  for (uint64_t s = 0; s < 200; ++s) {
    AugmentRng rng(s);
    const at::Tensor out = augment(img, 16, /*randcrop_prob=*/0.0, rng);
    const bool is_plain = at::equal(out, plain), is_flip = at::equal(out, plain.flip({2}));
    ASSERT_TRUE(is_plain || is_flip);
    flipped += is_flip;
  }
  EXPECT_GT(flipped, 70);
  EXPECT_LT(flipped, 130);
  // With the crop always on, outputs differ from both.
  AugmentRng rng(1);
  const at::Tensor cropped = augment(img, 16, 1.0, rng);
  EXPECT_FALSE(at::equal(cropped, plain) || at::equal(cropped, plain.flip({2})));
}

TEST(Augment, DecodesToRgbInMinusOneToOne) {
  TempDir dir;
  cv::Mat red(8, 8, CV_8UC3, cv::Scalar(0, 0, 255));  // OpenCV stores BGR
  ASSERT_TRUE(cv::imwrite((dir.path / "red.png").string(), red));
  const at::Tensor r = resize_normalise(decode_rgb(dir.path / "red.png"), 8);
  EXPECT_FLOAT_EQ(r[0].min().item<float>(), 1.0f);   // R: 255 -> 1
  EXPECT_FLOAT_EQ(r[2].max().item<float>(), -1.0f);  // B: 0 -> -1
  std::ofstream(dir.path / "bad.png") << "nope";
  try {
    decode_rgb(dir.path / "bad.png");
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.png"), std::string::npos);
  }
}

TEST(Augment, PngRoundTrip) {
  TempDir dir;
  const at::Tensor img = at::rand({3, 10, 14});
  write_png(dir.path / "x.png", img);
  const at::Tensor back = resize_normalise(decode_rgb(dir.path / "x.png"), 10);  // 14 wide -> resized; check size only
  EXPECT_EQ(back.size(0), 3);
  const cv::Mat raw = cv::imread((dir.path / "x.png").string());
  ASSERT_EQ(raw.rows, 10);
  ASSERT_EQ(raw.cols, 14);
  const cv::Vec3b px = raw.at<cv::Vec3b>(2, 3);  // BGR
  EXPECT_NEAR(px[2], std::floor(img[0][2][3].item<float>() * 255 + 0.5), 0.5);
  EXPECT_NEAR(px[0], std::floor(img[2][2][3].item<float>() * 255 + 0.5), 0.5);
  EXPECT_THROW(write_png(dir.path / "missing" / "x.png", img), DataError);
}

// ---------------------------------------------------------------------------------------------
// Folder scan

void write_image(const fs::path& p, int value = 128) {
  fs::create_directories(p.parent_path());
  cv::Mat img(12, 12, CV_8UC3, cv::Scalar::all(value));
  ASSERT_TRUE(cv::imwrite(p.string(), img));
}

std::string scan_error(const fs::path& root) {
  try {
    scan_image_folder(root, {}, nullptr);
  } catch (const DataError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(ImageFolder, FindsDomainsAndImagesAsTheOfficialLoader) {
  TempDir dir;
  write_image(dir.path / "male" / "b.png");
  write_image(dir.path / "male" / "sub" / "a.JPG");
  write_image(dir.path / "female" / "x.jpeg");
  write_image(dir.path / "female" / ".hidden.png");
  std::ofstream(dir.path / "female" / "notes.txt") << "not an image";
  fs::create_directories(dir.path / ".cache" / "x");
  const ImageFolder f = scan_image_folder(dir.path, {}, nullptr);
  ASSERT_EQ(f.domains, (std::vector<std::string>{"female", "male"}));  // sorted, hidden folder left out
  ASSERT_EQ(f.counts(), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(f.files[1][0].filename(), "b.png");  // sorted paths: male/b.png < male/sub/a.JPG
  EXPECT_EQ(f.files[1][1].filename(), "a.JPG");
  EXPECT_TRUE(f.skipped.empty());
  EXPECT_EQ(f.fingerprint(), scan_image_folder(dir.path, {}, nullptr).fingerprint());
  write_image(dir.path / "male" / "c.png");
  EXPECT_NE(f.fingerprint(), scan_image_folder(dir.path, {}, nullptr).fingerprint());
}

TEST(ImageFolder, BadFoldersGiveOneClearError_n) {
  TempDir dir;
  EXPECT_NE(scan_error(dir.path / "nope").find("does not exist"), std::string::npos);
  std::ofstream(dir.path / "file.txt") << "x";
  EXPECT_NE(scan_error(dir.path / "file.txt").find("not a folder"), std::string::npos);
  EXPECT_NE(scan_error(dir.path).find("has no sub-folders"), std::string::npos);
  write_image(dir.path / "cat" / "1.png");
  fs::create_directories(dir.path / "dog");
  const std::string empty = scan_error(dir.path);
  EXPECT_NE(empty.find("\"dog\" has no images"), std::string::npos) << empty;
  EXPECT_NE(empty.find((dir.path / "dog").string()), std::string::npos) << empty;
}

TEST(ImageFolder, UnreadableImagesAreSkippedWithAWarningAndCounted) {
  TempDir dir;
  write_image(dir.path / "a" / "good.png");
  write_image(dir.path / "b" / "good.png");
  std::ofstream(dir.path / "b" / "broken.png") << "this is not a png";
  std::ofstream(dir.path / "b" / "empty.jpg");
  std::vector<std::string> warnings;
  const ImageFolder f = scan_image_folder(dir.path, {}, [&](const std::string& w) { warnings.push_back(w); });
  EXPECT_EQ(f.counts(), (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(f.skipped.size(), 2u);
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_NE(warnings[0].find("broken.png"), std::string::npos);
  // A domain with nothing readable is an error that says so.
  fs::remove(dir.path / "b" / "good.png");
  const std::string e = scan_error(dir.path);
  EXPECT_NE(e.find("no readable image (all 2 failed to decode)"), std::string::npos) << e;
}

// ---------------------------------------------------------------------------------------------
// Loader

class LoaderTest : public testing::Test {
 protected:
  void SetUp() override {
    test::write_synthetic_set(dir_.path, 6, 24, 11);
    // Unbalanced on purpose: 6 cool, 2 warm.
    for (int i = 2; i < 6; ++i) {
      char name[16];
      std::snprintf(name, sizeof name, "%03d.png", i);
      fs::remove(dir_.path / "warm" / name);
    }
    folder_ = scan_image_folder(dir_.path, {}, nullptr);
  }
  TempDir dir_;
  ImageFolder folder_;
};

TEST_F(LoaderTest, BatchesDependOnlyOnSeedAndPosition) {
  LoaderOptions o;
  o.img_size = 16;
  o.batch_size = 3;
  o.seed = 5;
  o.workers = 0;
  TrainLoader serial(folder_, o);
  std::vector<ImageBatch> expected;
  for (int i = 0; i < 5; ++i) expected.push_back(serial.next());
  EXPECT_EQ(serial.position(), 5);

  o.workers = 3;
  TrainLoader threaded(folder_, o);
  TrainLoader resumed(folder_, o, /*start=*/2);
  for (int i = 0; i < 5; ++i) {
    const ImageBatch b = threaded.next();
    EXPECT_TRUE(same(b.x_src, expected[i].x_src) && same(b.y_src, expected[i].y_src) &&
                same(b.x_ref, expected[i].x_ref) && same(b.x_ref2, expected[i].x_ref2) && same(b.y_ref, expected[i].y_ref))
        << "batch " << i;
    if (i >= 2) {
      const ImageBatch r = resumed.next();
      EXPECT_TRUE(same(r.x_src, expected[i].x_src) && same(r.x_ref2, expected[i].x_ref2)) << "resumed batch " << i;
    }
  }
  o.seed = 6;
  TrainLoader other(folder_, o);
  EXPECT_FALSE(same(other.next().x_src, expected[0].x_src));
}

TEST_F(LoaderTest, LabelsMatchTheImagesAndReferencesShareTheirDomain) {
  LoaderOptions o;
  o.img_size = 24;
  o.batch_size = 8;
  o.workers = 2;
  o.randcrop_prob = 0.5;
  TrainLoader loader(folder_, o);
  int64_t warm = 0, total = 0;
  for (int i = 0; i < 6; ++i) {
    const ImageBatch b = loader.next();
    ASSERT_EQ(b.x_src.sizes(), (at::IntArrayRef{8, 3, 24, 24}));
    ASSERT_GE(b.x_src.min().item<float>(), -1.0f);
    ASSERT_LE(b.x_src.max().item<float>(), 1.0f);
    // In the synthetic set the domain shows in the colour: warm images have R > B.
    const at::Tensor src_warm = test::warmth(b.x_src) > 0, ref_warm = test::warmth(b.x_ref) > 0,
                     ref2_warm = test::warmth(b.x_ref2) > 0;
    EXPECT_TRUE(at::equal(src_warm, b.y_src == 1));
    EXPECT_TRUE(at::equal(ref_warm, b.y_ref == 1));
    EXPECT_TRUE(at::equal(ref2_warm, b.y_ref == 1));
    warm += (b.y_src == 1).sum().item<int64_t>() + (b.y_ref == 1).sum().item<int64_t>();
    total += 16;
  }
  // 2 warm vs 6 cool images, yet balanced sampling draws the domains about equally.
  EXPECT_NEAR(static_cast<double>(warm) / total, 0.5, 0.15);
}

TEST_F(LoaderTest, ResumeStateRejectsAChangedFolder_n) {
  LoaderOptions o;
  o.workers = 0;
  o.img_size = 16;
  o.batch_size = 1;
  TrainLoader loader(folder_, o);
  loader.next();
  const std::string state = loader.state_json();
  EXPECT_EQ(TrainLoader::position_from_state(state, folder_), 1);
  write_image(dir_.path / "warm" / "new.png");
  const ImageFolder changed = scan_image_folder(dir_.path, {}, nullptr);
  try {
    TrainLoader::position_from_state(state, changed);
    FAIL() << "a changed folder was accepted";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("differ from the resumed run"), std::string::npos) << e.what();
  }
  EXPECT_THROW(TrainLoader::position_from_state("{}", folder_), DataError);
}

// ---------------------------------------------------------------------------------------------
// Solver construction, sample grids, model and resume files

TEST(Solver, InitialisesAsTheOfficialBuild) {
  const TrainOptions o = tiny_options();
  Solver solver(o, torch::kCPU);
  // The EMA copies are the networks' default init, taken before He init.
  torch::manual_seed(o.seed);
  Generator g(o.model);
  MappingNetwork f(o.model);
  StyleEncoder e(o.model);
  Discriminator d(o.model);
  for (const auto& [name, net] : solver.nets_ema().named()) {
    torch::nn::Module& ref = name == "generator" ? static_cast<torch::nn::Module&>(*g)
                             : name == "mapping_network" ? static_cast<torch::nn::Module&>(*f)
                                                         : static_cast<torch::nn::Module&>(*e);
    const auto a = named_state(*net), b = named_state(ref);
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(same(a[i].second, b[i].second)) << name << " " << a[i].first;
  }
  // He init on the trained ones, drawn right after construction as the official order does.
  he_init(*g);
  he_init(*f);
  he_init(*e);
  he_init(*d);
  const auto trained = solver.nets().named();
  const std::vector<torch::nn::Module*> refs = {g.ptr().get(), f.ptr().get(), e.ptr().get(), d.ptr().get()};
  for (size_t n = 0; n < trained.size(); ++n) {
    const auto a = named_state(*trained[n].second), b = named_state(*refs[n]);
    for (size_t i = 0; i < a.size(); ++i)
      EXPECT_TRUE(same(a[i].second, b[i].second)) << trained[n].first << " " << a[i].first;
  }
  EXPECT_DOUBLE_EQ(solver.optimizer("mapping_network").param_groups()[0].options().get_lr(), o.f_lr);
  EXPECT_DOUBLE_EQ(solver.optimizer("generator").param_groups()[0].options().get_lr(), o.lr);
  EXPECT_EQ(solver.step(), 0);
  EXPECT_DOUBLE_EQ(solver.lambda_ds(), o.lambda_ds);
}

TEST(Solver, RefusesWhatItCannotRun_n) {
  TrainOptions o = tiny_options();
  o.model.w_hpf = 1;
  EXPECT_THROW(Solver(o, torch::kCPU), std::invalid_argument);  // no FAN
  o.model.w_hpf = 0;
  EXPECT_THROW(Solver(o, torch::kCPU, Precision::kBFloat16), std::invalid_argument);  // bf16 is CUDA autocast
}

TEST(SampleGrids, HaveTheOfficialLayouts) {
  EXPECT_TRUE(at::equal(make_grid(at::arange(6, at::kFloat).reshape({6, 1, 1, 1}), 4),
                        at::tensor({0.f, 1.f, 2.f, 3.f, 4.f, 5.f, 0.f, 0.f}).reshape({1, 2, 4})));
  TrainOptions o = tiny_options();
  Solver solver(o, torch::kCPU);
  const int64_t n = 2, s = o.model.img_size, outs = 1;
  SampleInputs in;
  in.x_src = at::rand({n, 3, s, s}) * 2 - 1;
  in.y_src = at::tensor({0, 1}, at::kLong);
  in.x_ref = at::rand({n, 3, s, s}) * 2 - 1;
  in.y_ref = at::tensor({1, 0}, at::kLong);
  const auto grids = debug_grids(solver, in, 1, outs);
  std::map<std::string, at::IntArrayRef> sizes;
  ASSERT_EQ(grids.size(), 5u);
  for (const auto& g : grids) {
    EXPECT_GE(g.image.min().item<float>(), 0.0f);
    EXPECT_LE(g.image.max().item<float>(), 1.0f);
  }
  EXPECT_EQ(grids[0].name, "cycle_consistency");
  EXPECT_EQ(grids[0].image.sizes(), (at::IntArrayRef{3, 4 * s, n * s}));
  EXPECT_EQ(grids[1].name, "latent_psi_0.5");
  EXPECT_EQ(grids[3].name, "latent_psi_1.0");
  EXPECT_EQ(grids[3].image.sizes(), (at::IntArrayRef{3, (1 + 2 * outs) * s, n * s}));
  EXPECT_EQ(grids[4].name, "reference");
  EXPECT_EQ(grids[4].image.sizes(), (at::IntArrayRef{3, (1 + n) * s, (1 + n) * s}));
  // Top-left of the reference grid is the white cell; the first row then shows the sources.
  EXPECT_FLOAT_EQ(grids[4].image.slice(1, 0, s).slice(2, 0, s).min().item<float>(), 1.0f);
  EXPECT_TRUE(at::allclose(grids[4].image.slice(1, 0, s).slice(2, s, 2 * s), ((in.x_src[0] + 1) / 2).clamp(0, 1)));
}

// Gives every trained parameter a gradient and steps its Adam twice, so that optimizer states exist.
void fake_training(Solver& solver) {
  for (int k = 0; k < 2; ++k)
    for (const auto& [name, net] : solver.nets().named()) {
      for (auto& p : net->parameters()) p.mutable_grad() = at::randn_like(p);
      solver.optimizer(name).step();
    }
  solver.set_progress(2, 0.75);
}

TEST(TrainState, ResumeFileRestoresEverything) {
  TempDir dir;
  const TrainOptions o = tiny_options();
  Solver a(o, torch::kCPU);
  fake_training(a);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : a.nets_ema().generator->parameters()) p.add_(1.0);  // EMA differs from a fresh one
  }
  write_resume_file(dir.path / "resume.safetensors", a, {"cool", "warm"}, "{\"position\": 2}");
  const at::Tensor next_random = at::rand({4});

  TrainOptions other_seed = o;
  other_seed.seed = 1;
  const ResumeFile r = read_resume_file(dir.path / "resume.safetensors");
  EXPECT_TRUE(r.options == o);
  EXPECT_EQ(r.domains, (std::vector<std::string>{"cool", "warm"}));
  EXPECT_EQ(r.step, 2);
  EXPECT_DOUBLE_EQ(r.lambda_ds, 0.75);
  EXPECT_EQ(r.sampler_state, "{\"position\": 2}");
  Solver b(r.options, torch::kCPU);
  {
    Solver scramble(other_seed, torch::kCPU);  // moves the global RNG away
  }
  restore_solver(r, b);
  EXPECT_TRUE(at::equal(at::rand({4}), next_random)) << "global RNG state not restored";
  EXPECT_EQ(b.step(), 2);
  EXPECT_DOUBLE_EQ(b.lambda_ds(), 0.75);
  for (int set = 0; set < 2; ++set) {
    const auto na = set ? a.nets_ema().named() : a.nets().named();
    const auto nb = set ? b.nets_ema().named() : b.nets().named();
    ASSERT_EQ(na.size(), nb.size());
    for (size_t n = 0; n < na.size(); ++n) {
      const auto sa = named_state(*na[n].second), sb = named_state(*nb[n].second);
      for (size_t i = 0; i < sa.size(); ++i) ASSERT_TRUE(same(sa[i].second, sb[i].second)) << na[n].first << " " << sa[i].first;
    }
  }
  // Adam states by parameter: compare through the parameter lists of both solvers.
  const auto an = a.nets().named(), bn = b.nets().named();
  for (size_t n = 0; n < an.size(); ++n) {
    const auto pa = an[n].second->parameters(), pb = bn[n].second->parameters();
    const auto& sa = a.optimizer(an[n].first).state();
    const auto& sb = b.optimizer(bn[n].first).state();
    ASSERT_EQ(sa.size(), sb.size()) << an[n].first;
    for (size_t i = 0; i < pa.size(); ++i) {
      const auto& x = static_cast<const torch::optim::AdamParamState&>(*sa.at(pa[i].unsafeGetTensorImpl()));
      const auto& y = static_cast<const torch::optim::AdamParamState&>(*sb.at(pb[i].unsafeGetTensorImpl()));
      EXPECT_EQ(x.step(), y.step());
      EXPECT_TRUE(same(x.exp_avg(), y.exp_avg()) && same(x.exp_avg_sq(), y.exp_avg_sq())) << an[n].first << " " << i;
    }
  }
}

TEST(TrainState, DamagedResumeFilesAreRejectedByName_n) {
  TempDir dir;
  const TrainOptions o = tiny_options();
  Solver a(o, torch::kCPU);
  fake_training(a);
  const fs::path good = dir.path / "resume.safetensors";
  write_resume_file(good, a, {"x", "y"}, "{}");
  SafetensorsFile f = read_safetensors(good);
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (auto& [k, v] : f.tensors)
    if (k != "optims.generator.from_rgb.weight.exp_avg") tensors.emplace_back(k, v);
  write_safetensors(dir.path / "damaged.safetensors", tensors, f.metadata);
  const ResumeFile r = read_resume_file(dir.path / "damaged.safetensors");
  Solver b(o, torch::kCPU);
  try {
    restore_solver(r, b);
    FAIL() << "a missing Adam state was accepted";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("optims.generator.from_rgb.weight.exp_avg"), std::string::npos) << e.what();
  }
  // A model file is not a resume file.
  write_model_file(dir.path / "model.safetensors", a, {"x", "y"});
  try {
    read_resume_file(dir.path / "model.safetensors");
    FAIL();
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("not a resume file"), std::string::npos) << e.what();
  }
}

TEST(TrainState, ModelFileHoldsTheEmaNetworksForTheElement) {
  TempDir dir;
  const TrainOptions o = tiny_options();
  Solver a(o, torch::kCPU);
  fake_training(a);
  write_model_file(dir.path / "model.safetensors", a, {"cool", "warm"});
  const Checkpoint ckpt = Checkpoint::open(dir.path / "model.safetensors");
  EXPECT_EQ(ckpt.meta().domains, (std::vector<std::string>{"cool", "warm"}));
  EXPECT_EQ(ckpt.meta().step, 2);
  EXPECT_TRUE(ckpt.meta().config == o.model);
  EXPECT_NE(ckpt.meta().producer.find("starganv2-train"), std::string::npos);
  EXPECT_FALSE(ckpt.has_network("discriminator"));
  EXPECT_FALSE(ckpt.has_network("fan"));  // w_hpf 0
  Generator g(o.model);
  EXPECT_TRUE(ckpt.load_into(*g, "generator").empty());
  const auto sa = named_state(*a.nets_ema().generator), sb = named_state(*g);
  for (size_t i = 0; i < sa.size(); ++i) EXPECT_TRUE(same(sa[i].second, sb[i].second)) << sa[i].first;
}

}  // namespace
}  // namespace starganv2
