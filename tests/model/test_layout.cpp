// Model files are checked against the layout their config implies before anything of that size
// is allocated (model/layout.h), and config values are bounded and never cast out of range.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "model/checkpoint.h"
#include "model/discriminator.h"
#include "model/layout.h"
#include "model/style.h"
#include "tests/common/model_test_util.h"

namespace fs = std::filesystem;
using namespace starganv2;

namespace {

struct TempDir {
  fs::path path = fs::temp_directory_path() / ("starganv2-layout-" + std::to_string(::getpid()));
  TempDir() { fs::create_directories(path); }
  ~TempDir() { fs::remove_all(path); }
};

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  ADD_FAILURE() << "did not throw";
  return "";
}

// A narrow config: `width` channels at most, base_dim channels at full resolution.
ModelConfig config_of(int64_t img, double w_hpf, int64_t base_dim, int64_t width, int64_t domains) {
  return test::small_config(w_hpf, domains, width, img, base_dim);
}

std::shared_ptr<torch::nn::Module> build(const std::string& net, const ModelConfig& c) {
  if (net == "generator") return Generator(c).ptr();
  if (net == "mapping_network") return MappingNetwork(c).ptr();
  if (net == "style_encoder") return StyleEncoder(c).ptr();
  return Discriminator(c).ptr();
}

}  // namespace

// The computed layout is what the constructors build, name for name and shape for shape, in
// named_state order, over sizes, skips on and off, channel caps that bind early and late.
TEST(Layout, EqualsTheBuiltNetworksForEveryConfig) {
  for (const ModelConfig& c : {config_of(32, 0, 4, 8, 1), config_of(32, 1, 4, 16, 3), config_of(64, 1, 2, 64, 2),
                               config_of(128, 0, 1, 4, 2), config_of(64, 0.5, 8, 8, 4)}) {
    for (const char* net : kLayoutNetworks) {
      const auto module = build(net, c);
      const auto state = named_state(*module, net);
      const auto layout = network_layout(c, net, net);
      ASSERT_EQ(layout.size(), state.size()) << net << " " << c.to_json();
      for (size_t i = 0; i < state.size(); ++i) {
        EXPECT_EQ(layout[i].name, state[i].first) << net << " " << c.to_json();
        EXPECT_EQ(layout[i].shape, state[i].second.sizes().vec()) << state[i].first << " " << c.to_json();
      }
      EXPECT_EQ(layout_numel(layout), [&] {
        int64_t n = 0;
        for (const auto& [name, t] : state) n += t.numel();
        return n;
      }());
    }
  }
}

// The reproduction: a 10 KB file whose config implies networks of many gigabytes. It is
// refused by comparing the header with the layout, naming the first differences; nothing is
// built (the mapping network alone would be 1024 * 3 * 8192^2 floats, 800 GB).
TEST(Layout, SmallFileWithHugeConfigIsRefusedBeforeAllocation_n) {
  TempDir dir;
  ModelConfig c = ModelConfig{};
  c.hidden_dim = 8192;
  c.num_domains = 1024;
  c.style_dim = 512;
  CheckpointMeta meta;
  meta.config = c;
  for (int i = 0; i < 1024; ++i) {
    std::string name = "d";  // (not "d" + to_string: GCC 12 -O3 warns falsely about that inlined memcpy)
    name += std::to_string(i);
    meta.domains.push_back(std::move(name));
  }
  meta.producer = "test";
  std::map<std::string, std::string> md = {{"format_version", "1"},
                                           {"config", c.to_json()},
                                           {"domains", nlohmann::json(meta.domains).dump()},
                                           {"producer", "test"},
                                           {"step", "0"}};
  std::vector<std::pair<std::string, at::Tensor>> dummies;
  for (const char* net : {"generator", "mapping_network", "style_encoder"})
    dummies.emplace_back(std::string(net) + ".dummy", at::zeros({4}));
  const fs::path file = dir.path / "hostile.safetensors";
  write_safetensors(file, dummies, md);
  ASSERT_LT(fs::file_size(file), 20000u);

  const std::string err = error_of([&] { load_translator_nets(file); });
  EXPECT_NE(err.find(file.string()), std::string::npos) << err;
  EXPECT_NE(err.find("does not hold the generator its config implies"), std::string::npos) << err;
  EXPECT_NE(err.find("missing: generator.from_rgb.weight"), std::string::npos) << err;
}

// A config bigger than any network we accept is refused by its size, before any comparison.
TEST(Layout, ConfigBeyondTheParameterLimitIsRefused_n) {
  TempDir dir;
  ModelConfig c = ModelConfig{};
  c.hidden_dim = 8192;
  c.num_domains = 1024;
  const auto layout = network_layout(c, "mapping_network", "mapping_network");
  EXPECT_GT(layout_numel(layout), kMaxNetworkNumel);
  const std::string err = error_of([&] { check_layout(SafetensorsHeader{}, layout, "f", "mapping_network"); });
  EXPECT_NE(err.find("more than the limit"), std::string::npos) << err;
}

// A file that holds the right names with one wrong shape and one integer tensor is refused,
// and the message names both.
TEST(Layout, WrongShapeAndDtypeAreNamed_n) {
  const ModelConfig c = config_of(32, 0, 4, 8, 2);
  const auto layout = network_layout(c, "style_encoder", "style_encoder");
  SafetensorsHeader header;
  for (const auto& t : layout) header.tensors[t.name] = SafetensorsEntry{at::kFloat, t.shape, 0};
  check_layout(header, layout, "f", "style_encoder");  // the exact layout passes
  header.tensors[layout[0].name].shape.back() += 1;
  header.tensors[layout[1].name].dtype = at::kLong;
  const std::string err = error_of([&] { check_layout(header, layout, "f", "style_encoder"); });
  EXPECT_NE(err.find("1 with wrong shape: " + layout[0].name), std::string::npos) << err;
  EXPECT_NE(err.find("1 with wrong dtype: " + layout[1].name + " (I64"), std::string::npos) << err;
}

// The check runs on the header: a file refused by it never has its tensors read.
TEST(Layout, CheckRunsBeforeTensorsAreRead) {
  TempDir dir;
  const fs::path file = dir.path / "two.safetensors";
  write_safetensors(file, {{"a", at::ones({1000})}, {"b", at::ones({3}, at::kLong)}}, {{"k", "v"}});
  bool called = false;
  const auto content = read_safetensors(file, [&](const SafetensorsHeader& h) {
    called = true;
    EXPECT_EQ(h.metadata.at("k"), "v");
    EXPECT_EQ(h.tensors.at("a").shape, std::vector<int64_t>{1000});
    EXPECT_EQ(h.tensors.at("a").nbytes, 4000u);
    EXPECT_EQ(h.tensors.at("b").dtype, at::kLong);
  });
  EXPECT_TRUE(called);
  EXPECT_TRUE(content.tensors.at("a").equal(at::ones({1000})));
  const std::string err =
      error_of([&] { read_safetensors(file, [](const SafetensorsHeader&) { throw CheckpointError("refused"); }); });
  EXPECT_EQ(err, "refused");
}

// A header nested deeper than any safetensors header is refused before parsing.
TEST(Layout, DeeplyNestedHeaderIsRefused_n) {
  TempDir dir;
  const fs::path file = dir.path / "deep.safetensors";
  std::string header = "{\"a\":" + std::string(100000, '[') + std::string(100000, ']') + "}";
  std::string bytes(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  {
    std::ofstream(file, std::ios::binary) << bytes << header;
  }
  const std::string err = error_of([&] { read_safetensors(file); });
  EXPECT_NE(err.find("nests deeper than 8"), std::string::npos) << err;
  EXPECT_TRUE(json_nesting_within("{\"a\":\"[[[[[[[[[[[[[[\"}", 1));  // brackets in strings do not count
  EXPECT_FALSE(json_nesting_within("[[[]]]", 2));
}

// Config integers: out-of-range values (which a plain cast would turn into undefined
// behaviour), non-integral values and nested or oversized texts each get one clear error.
TEST(Config, NumbersOutOfRangeOrNotIntegralAreRefused_n) {
  const ModelConfig good = config_of(32, 1, 4, 16, 2);
  auto with = [&](const std::string& key, const std::string& value) {
    nlohmann::json j = nlohmann::json::parse(good.to_json());
    j[key] = nlohmann::json::parse(value);
    return j.dump();
  };
  EXPECT_NE(error_of([&] { ModelConfig::from_json(with("hidden_dim", "1e300")); }).find("\"hidden_dim\" is out of range"),
            std::string::npos);
  EXPECT_NE(error_of([&] { ModelConfig::from_json(with("img_size", "-1e300")); }).find("\"img_size\" is out of range"),
            std::string::npos);
  EXPECT_NE(error_of([&] { ModelConfig::from_json(with("num_domains", "18446744073709551615")); })
                .find("\"num_domains\" is out of range"),
            std::string::npos);
  EXPECT_NE(error_of([&] { ModelConfig::from_json(with("style_dim", "8.5")); }).find("\"style_dim\" must be an integer"),
            std::string::npos);
  EXPECT_NE(error_of([&] { ModelConfig::from_json(with("style_dim", "\"8\"")); }).find("\"style_dim\" must be an integer"),
            std::string::npos);
  EXPECT_NE(error_of([&] { ModelConfig::from_json(with("latent_dim", "[4]")); }).find("not a flat JSON object"),
            std::string::npos);
  EXPECT_NE(error_of([&] { ModelConfig::from_json(with("producer", "\"" + std::string(5000, 'x') + "\"")); })
                .find("exceeds 4096"),
            std::string::npos);
  EXPECT_NE(error_of([&] { ModelConfig::from_json(with("hidden_dim", "8193")); }).find("hidden_dim must be in [1, 8192]"),
            std::string::npos);
  // Integral floats (Python's 256.0) are the integers they spell.
  EXPECT_EQ(ModelConfig::from_json(with("img_size", "32.0")), good);
}

// A style file is one float "style" tensor of style_dim elements; anything else is refused on
// its header.
TEST(Layout, StyleFileWithOtherTensorsIsRefused_n) {
  TempDir dir;
  const fs::path file = dir.path / "style.safetensors";
  write_safetensors(file, {{"style", at::ones({8})}, {"big", at::zeros({100000})}}, {});
  const std::string err = error_of([&] { load_style(file, 8); });
  EXPECT_NE(err.find("holds the tensor \"style\" alone; this one has 2 tensors"), std::string::npos) << err;
  save_style(file, at::ones({8}));
  EXPECT_TRUE(load_style(file, 8).equal(at::ones({8})));
  EXPECT_NE(error_of([&] { load_style(file, 9); }).find("has shape [8], the model needs [9]"), std::string::npos);
}
