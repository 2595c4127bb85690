// Checkpoint files: metadata, named state, load_into. Uses a small hand-built module with the
// same kinds of layers as the networks (Conv2d, Linear, BatchNorm2d, nested containers) so the
// tests do not depend on any particular network.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include <unistd.h>

#include <filesystem>
#include <functional>
#include <string>

#include "model/checkpoint.h"

namespace fs = std::filesystem;
using namespace starganv2;

namespace {

struct TinyNetImpl : torch::nn::Module {
  explicit TinyNetImpl(int64_t blocks = 2) {
    conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 4, 3)));
    bn = register_module("bn", torch::nn::BatchNorm2d(4));
    fc = register_module("fc", torch::nn::Linear(torch::nn::LinearOptions(8, 5).bias(false)));
    for (int64_t i = 0; i < blocks; ++i)
      this->blocks->push_back(torch::nn::Sequential(torch::nn::Linear(5, 5), torch::nn::Linear(5, 2)));
    register_module("blocks", this->blocks);
    // Give every tensor (buffers too) distinct values so a copy to the wrong place shows.
    torch::NoGradGuard no_grad;
    for (auto& t : parameters()) t.normal_();
    bn->running_mean.normal_();
    bn->running_var.uniform_(0.5, 2.0);
    bn->num_batches_tracked.fill_(7);
  }
  torch::nn::Conv2d conv = nullptr;
  torch::nn::BatchNorm2d bn = nullptr;
  torch::nn::Linear fc = nullptr;
  torch::nn::ModuleList blocks;
};
TORCH_MODULE(TinyNet);

ModelConfig small_config() {
  ModelConfig c;
  c.img_size = 32;
  c.style_dim = 8;
  c.latent_dim = 4;
  c.num_domains = 3;
  c.max_conv_dim = 16;
  c.hidden_dim = 16;
  c.w_hpf = 0;
  return c;
}

CheckpointMeta small_meta() {
  CheckpointMeta m;
  m.config = small_config();
  m.domains = {"cat", "dog", "wild"};
  m.producer = "test_checkpoint";
  m.step = 12345;
  return m;
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const CheckpointError& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw a non-CheckpointError: " << e.what();
    return "";
  }
  ADD_FAILURE() << "did not throw";
  return "";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("starganv2-checkpoint-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    at::manual_seed(3);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A valid checkpoint's tensors and metadata, to be tampered with and rewritten.
  SafetensorsFile valid_file(const TinyNet& net) {
    const fs::path p = dir_ / "valid.safetensors";
    write_checkpoint(p, small_meta(), {{"tiny", net.get()}});
    return read_safetensors(p);
  }
  fs::path rewrite(const std::string& name, const SafetensorsFile& f) {
    std::vector<std::pair<std::string, at::Tensor>> tensors(f.tensors.begin(), f.tensors.end());
    const fs::path p = dir_ / name;
    write_safetensors(p, tensors, f.metadata);
    return p;
  }

  fs::path dir_;
};

void expect_same_state(const torch::nn::Module& a, const torch::nn::Module& b) {
  const auto sa = named_state(a), sb = named_state(b);
  ASSERT_EQ(sa.size(), sb.size());
  for (size_t i = 0; i < sa.size(); ++i) {
    EXPECT_EQ(sa[i].first, sb[i].first);
    EXPECT_TRUE(at::equal(sa[i].second, sb[i].second)) << sa[i].first;
  }
}

}  // namespace

TEST_F(CheckpointTest, NamedStateFollowsStateDictOrderWithoutBatchCounter) {
  TinyNet net(2);
  std::vector<std::string> names;
  for (const auto& [name, t] : named_state(*net, "tiny")) names.push_back(name);
  const std::vector<std::string> expected = {
      "tiny.conv.weight",       "tiny.conv.bias",         "tiny.bn.weight",         "tiny.bn.bias",
      "tiny.bn.running_mean",   "tiny.bn.running_var",    "tiny.fc.weight",         "tiny.blocks.0.0.weight",
      "tiny.blocks.0.0.bias",   "tiny.blocks.0.1.weight", "tiny.blocks.0.1.bias",   "tiny.blocks.1.0.weight",
      "tiny.blocks.1.0.bias",   "tiny.blocks.1.1.weight", "tiny.blocks.1.1.bias",
  };
  EXPECT_EQ(names, expected);
  EXPECT_EQ(named_state(*net).front().first, "conv.weight");
  // The tensors are the module's own, not copies.
  EXPECT_TRUE(named_state(*net).front().second.is_same(net->conv->weight));
}

TEST_F(CheckpointTest, RoundTripKeepsTensorsAndMetadata) {
  TinyNet saved(2), other(3);
  const fs::path p = dir_ / "model.safetensors";
  write_checkpoint(p, small_meta(), {{"tiny", saved.get()}, {"other", other.get()}});

  const auto ckpt = Checkpoint::open(p);
  EXPECT_EQ(ckpt.path(), p);
  EXPECT_EQ(ckpt.meta().format_version, kCheckpointFormatVersion);
  EXPECT_EQ(ckpt.meta().config, small_config());
  EXPECT_EQ(ckpt.meta().domains, (std::vector<std::string>{"cat", "dog", "wild"}));
  EXPECT_EQ(ckpt.meta().producer, "test_checkpoint");
  EXPECT_EQ(ckpt.meta().step, 12345);
  EXPECT_TRUE(ckpt.has_network("tiny"));
  EXPECT_TRUE(ckpt.has_network("other"));
  EXPECT_FALSE(ckpt.has_network("tin"));  // a prefix is a whole name component
  EXPECT_FALSE(ckpt.has_network("generator"));

  TinyNet loaded(2);
  const auto unexpected = ckpt.load_into(*loaded, "tiny");
  EXPECT_TRUE(unexpected.empty());
  expect_same_state(*saved, *loaded);
  // The counter is not stored, so loading leaves the target's own.
  EXPECT_EQ(loaded->bn->num_batches_tracked.item<int64_t>(), 7);

  // The metadata values are plain JSON (and producer plain text) for other tools to read.
  const auto raw = read_safetensors(p);
  EXPECT_EQ(raw.metadata.at("format_version"), "1");
  EXPECT_EQ(raw.metadata.at("domains"), R"(["cat","dog","wild"])");
  EXPECT_EQ(raw.metadata.at("step"), "12345");
  EXPECT_EQ(ModelConfig::from_json(raw.metadata.at("config")), small_config());
  EXPECT_EQ(raw.tensors.size(), named_state(*saved).size() + named_state(*other).size());
}

TEST_F(CheckpointTest, LoadsHalfPrecisionWeights) {
  TinyNet saved;
  for (const auto dtype : {at::kHalf, at::kBFloat16}) {
    SCOPED_TRACE(c10::toString(dtype));
    auto f = valid_file(saved);
    for (auto& [name, t] : f.tensors) t = t.to(dtype);
    const auto ckpt = Checkpoint::open(rewrite("half.safetensors", f));
    TinyNet loaded;
    ckpt.load_into(*loaded, "tiny");
    for (const auto& [name, t] : named_state(*loaded, "tiny")) {
      EXPECT_EQ(t.scalar_type(), at::kFloat) << name;
      EXPECT_TRUE(at::equal(t, f.tensors.at(name).to(at::kFloat))) << name;
    }
  }
}

TEST_F(CheckpointTest, ReportsEveryMissingAndMisshapenTensorAtOnce_n) {
  TinyNet saved;
  auto f = valid_file(saved);
  f.tensors.erase("tiny.conv.bias");
  f.tensors.erase("tiny.bn.running_var");
  f.tensors["tiny.fc.weight"] = at::zeros({5, 9});
  f.tensors["tiny.blocks.1.1.bias"] = at::zeros({3});
  const fs::path p = rewrite("broken.safetensors", f);
  const auto ckpt = Checkpoint::open(p);

  TinyNet target;
  const auto before = named_state(*target);
  std::vector<at::Tensor> copies;
  for (const auto& [name, t] : before) copies.push_back(t.clone());

  const std::string msg = error_of([&] { ckpt.load_into(*target, "tiny"); });
  EXPECT_TRUE(contains(msg, p.string())) << msg;
  EXPECT_TRUE(contains(msg, "cannot load \"tiny\"")) << msg;
  EXPECT_TRUE(contains(msg, "2 missing: tiny.conv.bias, tiny.bn.running_var")) << msg;
  EXPECT_TRUE(contains(msg, "2 with wrong shape: tiny.fc.weight (file [5,9], model [5,8])")) << msg;
  EXPECT_TRUE(contains(msg, "tiny.blocks.1.1.bias (file [3], model [2])")) << msg;
  // A failed load changes nothing.
  for (size_t i = 0; i < before.size(); ++i) EXPECT_TRUE(at::equal(before[i].second, copies[i])) << before[i].first;
}

TEST_F(CheckpointTest, CapsLongListsOfMissingTensors_n) {
  TinyNet saved(1), target(30);
  const fs::path p = dir_ / "small.safetensors";
  write_checkpoint(p, small_meta(), {{"tiny", saved.get()}});
  const std::string msg = error_of([&] { Checkpoint::open(p).load_into(*target, "tiny"); });
  // 29 blocks of 4 tensors are missing; the message names 12 and counts the rest.
  EXPECT_TRUE(contains(msg, "116 missing: tiny.blocks.1.0.weight, ")) << msg;
  EXPECT_TRUE(contains(msg, ", ... (104 more)")) << msg;
  EXPECT_LT(msg.size(), 1000u) << msg;
}

TEST_F(CheckpointTest, RejectsNonFloatWeights_n) {
  TinyNet saved;
  auto f = valid_file(saved);
  f.tensors["tiny.conv.weight"] = f.tensors["tiny.conv.weight"].to(at::kLong);
  f.tensors["tiny.fc.weight"] = f.tensors["tiny.fc.weight"].to(at::kDouble);
  const auto ckpt = Checkpoint::open(rewrite("ints.safetensors", f));
  TinyNet target;
  const std::string msg = error_of([&] { ckpt.load_into(*target, "tiny"); });
  EXPECT_TRUE(contains(msg, "2 with wrong dtype: tiny.conv.weight (I64, expected F32, F16 or BF16)")) << msg;
  EXPECT_TRUE(contains(msg, "tiny.fc.weight (F64, expected")) << msg;
}

TEST_F(CheckpointTest, ReturnsUnexpectedTensorsUnderThePrefixOnly) {
  TinyNet saved;
  auto f = valid_file(saved);
  f.tensors["tiny.extra.weight"] = at::zeros({2});
  f.tensors["tinyish.weight"] = at::zeros({2});
  f.tensors["other.weight"] = at::zeros({2});
  const auto ckpt = Checkpoint::open(rewrite("extra.safetensors", f));
  TinyNet target;
  EXPECT_EQ(ckpt.load_into(*target, "tiny"), std::vector<std::string>{"tiny.extra.weight"});
  expect_same_state(*saved, *target);
}

TEST_F(CheckpointTest, RejectsBadMetadata_n) {
  TinyNet saved;
  const auto good = valid_file(saved);
  struct Case {
    std::string key, value, expected;  // value "" = remove the key
  };
  const std::vector<Case> cases = {
      {"format_version", "", "metadata \"format_version\" is missing"},
      {"format_version", "one", "metadata \"format_version\" is not valid JSON"},
      {"format_version", "1.5", "metadata \"format_version\" is not an integer"},
      {"format_version", "99", "metadata \"format_version\" is 99; this build reads version 1 to 1"},
      {"config", "", "metadata \"config\" is missing"},
      {"config", "{img_size: 256", "metadata \"config\" is wrong"},
      {"config", R"({"img_size": 256})", "metadata \"config\" is wrong: invalid model config: missing \"style_dim\""},
      {"domains", "", "metadata \"domains\" is missing"},
      {"domains", "[cat, dog]", "metadata \"domains\" is not valid JSON"},
      {"domains", R"({"cat": 0})", "metadata \"domains\" is not a JSON array"},
      {"domains", R"(["cat", 1, "wild"])", "metadata \"domains\" holds 1"},
      {"domains", "[\"cat\", " + std::string(100000, '[') + std::string(100000, ']') + "]",
       "metadata \"domains\" nests lists or objects"},
      {"domains", R"(["cat", ["dog"], "wild"])", "metadata \"domains\" nests lists or objects"},
      {"domains", R"(["cat", "cat", "wild"])", "metadata \"domains\" names \"cat\" twice"},
      {"domains", R"(["female", "male"])", "metadata \"domains\" has 2 names but config.num_domains is 3"},
      {"producer", "", "metadata \"producer\" is missing"},
      {"step", "", "metadata \"step\" is missing"},
      {"step", "-1", "metadata \"step\" is not an integer >= 0"},
      {"step", "\"100\"", "metadata \"step\" is not an integer >= 0"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.key + " = " + c.value);
    auto f = good;
    if (c.value.empty())
      f.metadata.erase(c.key);
    else
      f.metadata[c.key] = c.value;
    const fs::path p = rewrite("meta.safetensors", f);
    const std::string msg = error_of([&] { Checkpoint::open(p); });
    EXPECT_TRUE(contains(msg, p.string())) << msg;
    EXPECT_TRUE(contains(msg, c.expected)) << msg;
  }
}

TEST_F(CheckpointTest, OpenReportsFileProblems_n) {
  const fs::path missing = dir_ / "missing.safetensors";
  std::string msg = error_of([&] { Checkpoint::open(missing); });
  EXPECT_TRUE(contains(msg, missing.string() + ": cannot open")) << msg;
  msg = error_of([&] { Checkpoint::open(dir_); });
  EXPECT_TRUE(contains(msg, "is a directory")) << msg;
}

TEST_F(CheckpointTest, WriteRejectsInconsistentMetadata_n) {
  TinyNet net;
  auto meta = small_meta();
  meta.domains.pop_back();
  std::string msg = error_of([&] { write_checkpoint(dir_ / "a.safetensors", meta, {{"tiny", net.get()}}); });
  EXPECT_TRUE(contains(msg, "2 domain names for num_domains 3")) << msg;
  meta = small_meta();
  meta.config.img_size = 100;
  msg = error_of([&] { write_checkpoint(dir_ / "b.safetensors", meta, {{"tiny", net.get()}}); });
  EXPECT_TRUE(contains(msg, "img_size")) << msg;
  EXPECT_FALSE(fs::exists(dir_ / "a.safetensors"));
  EXPECT_FALSE(fs::exists(dir_ / "b.safetensors"));
}
