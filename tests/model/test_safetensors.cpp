// safetensors reader/writer: round trips for every supported dtype, and hostile or broken
// files, each of which must be rejected with one error naming the file and the problem.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "model/safetensors.h"

namespace fs = std::filesystem;
using starganv2::CheckpointError;
using starganv2::read_safetensors;
using starganv2::write_safetensors;

namespace {

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("starganv2-safetensors-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path file(const std::string& name) const { return dir_ / name; }

  // A file with the given 8-byte length field, header text and data bytes, written verbatim.
  fs::path raw(const std::string& name, uint64_t header_len, const std::string& header, const std::string& data = "") {
    const fs::path p = file(name);
    std::ofstream out(p, std::ios::binary);
    for (int i = 0; i < 8; ++i) out.put(static_cast<char>((header_len >> (8 * i)) & 0xff));
    out << header << data;
    return p;
  }
  fs::path raw(const std::string& name, const std::string& header, const std::string& data = "") {
    return raw(name, header.size(), header, data);
  }

  fs::path dir_;
};

// what() of the CheckpointError that fn throws; fails the test if it throws nothing or another type.
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

// Checks that reading the file fails with a message that starts with its name ("FILE: problem",
// or "FILE is not a safetensors model file: ...") and contains `part`.
void expect_rejected(const fs::path& p, const std::string& part) {
  const std::string msg = error_of([&] { read_safetensors(p); });
  EXPECT_TRUE(msg.rfind(p.string() + ": ", 0) == 0 || msg.rfind(p.string() + " is not a safetensors model file: ", 0) == 0)
      << "no file name in front of: " << msg;
  EXPECT_NE(msg.find(part), std::string::npos) << "message: " << msg;
}
#define EXPECT_REJECTED(file_arg, part_arg) \
  do {                                      \
    SCOPED_TRACE(#file_arg);                \
    expect_rejected(file_arg, part_arg);    \
  } while (0)

const std::string kEightFloats(32, '\0');

}  // namespace

TEST_F(SafetensorsTest, RoundTripEveryDtype) {
  at::manual_seed(1);
  const auto f = at::randn({3, 4, 5});
  std::vector<std::pair<std::string, at::Tensor>> tensors = {
      {"f32", f},
      {"f16", f.to(at::kHalf)},
      {"bf16", f.to(at::kBFloat16)},
      {"f64", at::randn({7}, at::kDouble)},
      {"i64", at::randint(-1000000, 1000000, {2, 3}, at::kLong)},
      {"i32", at::randint(-100000, 100000, {5}, at::kInt)},
      {"i16", at::randint(-30000, 30000, {3}, at::kShort)},
      {"i8", at::randint(-128, 127, {9}, at::kChar)},
      {"u8", at::randint(0, 255, {1, 11}, at::kByte)},
      {"bool", at::randint(0, 2, {13}, at::kLong).to(at::kBool)},
      {"scalar", at::scalar_tensor(3.5)},
      {"empty", at::zeros({0, 3})},
      {"transposed", f.transpose(0, 2)},  // not contiguous: must be stored as its logical layout
  };
  const std::map<std::string, std::string> metadata = {{"config", "{\"a\": 1}"}, {"note", "ünïcode ok"}};
  const fs::path p = file("all.safetensors");
  write_safetensors(p, tensors, metadata);

  const auto loaded = read_safetensors(p);
  EXPECT_EQ(loaded.metadata, metadata);
  ASSERT_EQ(loaded.tensors.size(), tensors.size());
  for (const auto& [name, t] : tensors) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(loaded.tensors.count(name));
    const auto& got = loaded.tensors.at(name);
    EXPECT_EQ(got.scalar_type(), t.scalar_type());
    EXPECT_EQ(got.sizes(), t.sizes());
    EXPECT_TRUE(got.is_contiguous());
    EXPECT_TRUE(at::equal(got, t));
  }

  // Header padded to 8 bytes with spaces, data packed without holes and naturally aligned, as
  // other safetensors readers require.
  std::ifstream in(p, std::ios::binary);
  uint64_t len = 0;
  in.read(reinterpret_cast<char*>(&len), 8);
  EXPECT_EQ(len % 8, 0u);
  std::string header(len, '\0');
  in.read(header.data(), static_cast<std::streamsize>(len));
  const auto j = nlohmann::json::parse(header);
  uint64_t total = 0;
  for (const auto& [name, entry] : j.items()) {
    if (name == "__metadata__") continue;
    const uint64_t b = entry["data_offsets"][0], e = entry["data_offsets"][1];
    total += e - b;
    const auto& t = loaded.tensors.at(name);
    if (t.numel() > 0) {
      EXPECT_EQ(b % t.element_size(), 0u) << name;
    }
  }
  EXPECT_EQ(8 + len + total, fs::file_size(p));
}

TEST_F(SafetensorsTest, WriteReplacesAtomicallyAndLeavesNoTemporaryFile) {
  const fs::path p = file("model.safetensors");
  write_safetensors(p, {{"a", at::ones({4})}}, {});
  write_safetensors(p, {{"b", at::zeros({2})}}, {{"k", "v"}});
  const auto loaded = read_safetensors(p);
  EXPECT_EQ(loaded.tensors.size(), 1u);
  EXPECT_TRUE(loaded.tensors.count("b"));
  EXPECT_EQ(loaded.metadata.at("k"), "v");
  int entries = 0;
  for (const auto& e : fs::directory_iterator(dir_)) {
    ++entries;
    EXPECT_EQ(e.path().filename(), "model.safetensors");
  }
  EXPECT_EQ(entries, 1);
}

TEST_F(SafetensorsTest, WriteRejectsBadArguments_n) {
  const fs::path missing_dir = file("no-such-dir") / "m.safetensors";
  std::string msg = error_of([&] { write_safetensors(missing_dir, {{"a", at::ones({1})}}, {}); });
  EXPECT_NE(msg.find(missing_dir.string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("does not exist"), std::string::npos) << msg;

  msg = error_of([&] { write_safetensors(dir_, {{"a", at::ones({1})}}, {}); });
  EXPECT_NE(msg.find("is a directory"), std::string::npos) << msg;

  msg = error_of([&] { write_safetensors(file("d.safetensors"), {{"a", at::ones({1})}, {"a", at::ones({1})}}, {}); });
  EXPECT_NE(msg.find("\"a\" given twice"), std::string::npos) << msg;

  msg = error_of([&] { write_safetensors(file("c.safetensors"), {{"c", at::ones({2}, at::kComplexFloat)}}, {}); });
  EXPECT_NE(msg.find("cannot be stored"), std::string::npos) << msg;

  msg = error_of([&] { write_safetensors(file("u.safetensors"), {{"u", at::Tensor()}}, {}); });
  EXPECT_NE(msg.find("undefined"), std::string::npos) << msg;

  if (::geteuid() != 0) {  // root writes anywhere
    const fs::path ro = file("readonly");
    fs::create_directories(ro);
    fs::permissions(ro, fs::perms::owner_read | fs::perms::owner_exec);
    msg = error_of([&] { write_safetensors(ro / "m.safetensors", {{"a", at::ones({1})}}, {}); });
    EXPECT_NE(msg.find("cannot create"), std::string::npos) << msg;
    fs::permissions(ro, fs::perms::owner_all);
  }
  // Nothing half-written is left behind by any of the failures.
  for (const auto& e : fs::recursive_directory_iterator(dir_))
    EXPECT_EQ(e.path().string().find(".tmp-"), std::string::npos) << e.path();
}

TEST_F(SafetensorsTest, RejectsMissingFileDirectoryAndEmptyFile_n) {
  EXPECT_REJECTED(file("absent.safetensors"), "cannot open: No such file or directory");
  EXPECT_REJECTED(dir_, "is a directory");
  EXPECT_REJECTED(raw("zero-header.safetensors", 0, ""), "header of 0 bytes cannot be a JSON object");
  const fs::path empty = file("zero-bytes.safetensors");
  std::ofstream(empty).close();
  EXPECT_REJECTED(empty, "empty file");
  const fs::path tiny = file("tiny.safetensors");
  std::ofstream(tiny) << "abc";
  EXPECT_REJECTED(tiny, tiny.string() + " is not a safetensors model file: only 3 bytes");
}

// A file of another kind (a text, a README given as a model) is called what it is not first,
// then the details; a safetensors file cut short is still called truncated.
TEST_F(SafetensorsTest, OtherFilesAreCalledNotSafetensorsFirst_n) {
  const fs::path text = file("README.md");
  std::ofstream(text) << "# StarGAN v2\n\nA text file, not a model.\n";
  const std::string msg = error_of([&] { read_safetensors(text); });
  EXPECT_EQ(msg.rfind(text.string() + " is not a safetensors model file: it starts with the text \"# StarGAN v2  A \"", 0), 0u)
      << msg;
  EXPECT_NE(msg.find("bytes, but the file has"), std::string::npos) << msg;
  const fs::path binary = file("image.png");
  std::ofstream(binary, std::ios::binary) << std::string("\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x40", 20);
  EXPECT_REJECTED(binary, binary.string() + " is not a safetensors model file: it starts with the bytes 89 50 4e 47");
  const std::string header = R"({"a":{"dtype":"F32","shape":[8],"data_offsets":[0,32]}})";
  const fs::path cut = raw("cut.safetensors", header.size() + 100, header, kEightFloats);
  EXPECT_REJECTED(cut, cut.string() + ": truncated: header says");
  EXPECT_EQ(error_of([&] { read_safetensors(cut); }).find("not a safetensors"), std::string::npos);
}

TEST_F(SafetensorsTest, RejectsHeaderLengthPastTheEnd_n) {
  const std::string header = R"({"a":{"dtype":"F32","shape":[8],"data_offsets":[0,32]}})";
  EXPECT_REJECTED(raw("past.safetensors", header.size() + 100, header, kEightFloats),
                  "truncated: header says " + std::to_string(header.size() + 100) + " bytes but file has " +
                      std::to_string(header.size() + 32));
  // A hostile length near 2^64 must not wrap around or allocate.
  EXPECT_REJECTED(raw("huge.safetensors", ~0ull - 3, header, kEightFloats), "truncated: header says");
}

TEST_F(SafetensorsTest, RejectsTruncatedData_n) {
  const fs::path p = file("full.safetensors");
  write_safetensors(p, {{"w", at::randn({64})}}, {});
  fs::resize_file(p, fs::file_size(p) - 10);
  EXPECT_REJECTED(p, "out of range");
  EXPECT_REJECTED(p, "tensor \"w\"");
}

TEST_F(SafetensorsTest, RejectsBrokenHeaderJson_n) {
  EXPECT_REJECTED(raw("notjson.safetensors", "{\"a\": [1, 2"), "header is not valid JSON");
  EXPECT_REJECTED(raw("array.safetensors", "[1, 2, 3]"), "header is not a JSON object");
  EXPECT_REJECTED(raw("entry.safetensors", R"({"a": 5})"), "tensor \"a\": entry is not a JSON object");
  EXPECT_REJECTED(raw("binary.safetensors", std::string("\xff\xfe\x00\x01", 4)), "not valid JSON");
}

TEST_F(SafetensorsTest, RejectsUnknownDtype_n) {
  EXPECT_REJECTED(raw("dtype.safetensors", R"({"a":{"dtype":"F7","shape":[8],"data_offsets":[0,32]}})", kEightFloats),
                  "tensor \"a\": unknown dtype \"F7\"");
  EXPECT_REJECTED(raw("nodtype.safetensors", R"({"a":{"shape":[8],"data_offsets":[0,32]}})", kEightFloats),
                  "missing or non-string \"dtype\"");
}

TEST_F(SafetensorsTest, RejectsBadShapes_n) {
  EXPECT_REJECTED(raw("neg.safetensors", R"({"a":{"dtype":"F32","shape":[-8],"data_offsets":[0,32]}})", kEightFloats),
                  "is not a list of sizes >= 0");
  EXPECT_REJECTED(raw("float.safetensors", R"({"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,32]}})", kEightFloats),
                  "is not a list of sizes >= 0");
  EXPECT_REJECTED(raw("noshape.safetensors", R"({"a":{"dtype":"F32","data_offsets":[0,32]}})", kEightFloats),
                  "missing or non-array \"shape\"");
  // 2^32 * 2^32 elements wrap to 0 in 64 bits; the product must be checked, not trusted.
  EXPECT_REJECTED(raw("overflow.safetensors",
                      R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}})"),
                  "overflows");
  // Deep nesting is refused before parsing: it must neither exhaust the stack nor have the parser
  // build a million levels.
  const std::string deep(1000000, '[');
  EXPECT_REJECTED(raw("deep.safetensors", R"({"a":{"dtype":"F32","shape":)" + deep + std::string(deep.size(), ']') +
                                              R"(,"data_offsets":[0,0]}})"),
                  "header nests deeper than 8 levels");
  // Within the bound, a nested shape still gets its own message, without printing the nesting.
  EXPECT_REJECTED(raw("nested.safetensors", R"({"a":{"dtype":"F32","shape":[[[[1]]]],"data_offsets":[0,0]}})"),
                  "shape (an array of 1 nested items) is not a list of sizes >= 0");
  EXPECT_REJECTED(raw("size.safetensors", R"({"a":{"dtype":"F32","shape":[7],"data_offsets":[0,32]}})", kEightFloats),
                  "span 32 bytes but dtype F32 and shape [7] need 28");
}

TEST_F(SafetensorsTest, RejectsOffsetsOutOfRange_n) {
  EXPECT_REJECTED(raw("range.safetensors", R"({"a":{"dtype":"F32","shape":[8],"data_offsets":[16,48]}})", kEightFloats),
                  "tensor \"a\": data_offsets [16,48] out of range: the data area has 32 bytes");
  EXPECT_REJECTED(raw("reversed.safetensors", R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}})", kEightFloats),
                  "end before they begin");
  EXPECT_REJECTED(raw("neg.safetensors", R"({"a":{"dtype":"F32","shape":[8],"data_offsets":[-4,28]}})", kEightFloats),
                  "\"data_offsets\" is not a pair");
  EXPECT_REJECTED(raw("three.safetensors", R"({"a":{"dtype":"F32","shape":[8],"data_offsets":[0,16,32]}})", kEightFloats),
                  "\"data_offsets\" is not a pair");
}

TEST_F(SafetensorsTest, RejectsOverlappingTensors_n) {
  EXPECT_REJECTED(raw("overlap.safetensors",
                      R"({"b":{"dtype":"F32","shape":[4],"data_offsets":[12,28]},)"
                      R"("a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})",
                      kEightFloats),
                  "tensors \"a\" and \"b\" overlap");
  // Same range twice is an overlap too; zero-sized tensors overlap nothing.
  EXPECT_REJECTED(raw("same.safetensors",
                      R"({"a":{"dtype":"F32","shape":[8],"data_offsets":[0,32]},)"
                      R"("b":{"dtype":"I32","shape":[8],"data_offsets":[0,32]}})",
                      kEightFloats),
                  "overlap");
  const auto ok = read_safetensors(raw("zero.safetensors",
                                       R"({"a":{"dtype":"F32","shape":[8],"data_offsets":[0,32]},)"
                                       R"("z":{"dtype":"F32","shape":[0,2],"data_offsets":[16,16]}})",
                                       kEightFloats));
  EXPECT_EQ(ok.tensors.at("z").numel(), 0);
}

TEST_F(SafetensorsTest, RejectsBadMetadata_n) {
  EXPECT_REJECTED(raw("meta1.safetensors", R"({"__metadata__": [1]})"), "\"__metadata__\" is not a JSON object");
  EXPECT_REJECTED(raw("meta2.safetensors", R"({"__metadata__": {"step": 5}})"),
                  "\"__metadata__\" value of \"step\" is not a string");
}

TEST_F(SafetensorsTest, RejectsBoolBytesOtherThanZeroOrOne_n) {
  EXPECT_REJECTED(raw("bool.safetensors", R"({"a":{"dtype":"BOOL","shape":[4],"data_offsets":[0,4]}})",
                      std::string("\x00\x01\x02\x00", 4)),
                  "BOOL data");
}
