#include "safetensors.h"

#include <ATen/ops/empty.h>
#include <c10/core/ScalarType.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <optional>
#include <set>

namespace starganv2 {

// The format stores little-endian data and we hand the bytes to torch as they are.
static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes a little-endian host");

namespace {

struct DtypeInfo {
  const char* name;
  at::ScalarType type;
  uint64_t itemsize;
};

constexpr DtypeInfo kDtypes[] = {
    {"F32", at::kFloat, 4}, {"F16", at::kHalf, 2},  {"BF16", at::kBFloat16, 2}, {"F64", at::kDouble, 8},
    {"I64", at::kLong, 8},  {"I32", at::kInt, 4},   {"I16", at::kShort, 2},     {"I8", at::kChar, 1},
    {"U8", at::kByte, 1},   {"BOOL", at::kBool, 1},
};

const DtypeInfo* find_dtype(const std::string& name) {
  for (const auto& d : kDtypes)
    if (name == d.name) return &d;
  return nullptr;
}

const DtypeInfo* find_dtype(at::ScalarType type) {
  for (const auto& d : kDtypes)
    if (type == d.type) return &d;
  return nullptr;
}

// Closes the descriptor on every exit path, including exceptions.
struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

std::string errno_text(int err) { return std::strerror(err); }

// Reads exactly n bytes at offset; false if the file ended first (it may shrink under us).
bool pread_all(int fd, void* dst, uint64_t n, uint64_t offset, int* err) {
  auto* p = static_cast<char*>(dst);
  while (n > 0) {
    // Large single reads are capped by the kernel anyway; ask for at most 1 GiB at a time.
    const size_t chunk = static_cast<size_t>(std::min<uint64_t>(n, 1ull << 30));
    const ssize_t got = ::pread(fd, p, chunk, static_cast<off_t>(offset));
    if (got < 0) {
      if (errno == EINTR) continue;
      *err = errno;
      return false;
    }
    if (got == 0) {
      *err = 0;
      return false;
    }
    p += got;
    n -= static_cast<uint64_t>(got);
    offset += static_cast<uint64_t>(got);
  }
  return true;
}

bool write_all(int fd, const void* src, uint64_t n) {
  const auto* p = static_cast<const char*>(src);
  while (n > 0) {
    const size_t chunk = static_cast<size_t>(std::min<uint64_t>(n, 1ull << 30));
    const ssize_t put = ::write(fd, p, chunk);
    if (put < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += put;
    n -= static_cast<uint64_t>(put);
  }
  return true;
}

// A JSON value as a short string for error messages. Hostile files can hold huge or deeply
// nested values, and dump() recurses, so only flat values are printed.
std::string excerpt(const nlohmann::json& v) {
  if (v.is_structured()) {
    bool flat = v.size() <= 16;
    for (const auto& item : v) flat = flat && !item.is_structured();
    if (!flat) return v.is_array() ? "(an array of " + std::to_string(v.size()) + " nested items)" : "(an object)";
  }
  std::string s = v.dump(-1, ' ', /*ensure_ascii=*/true, nlohmann::json::error_handler_t::replace);
  return s.size() > 80 ? s.substr(0, 77) + "..." : s;
}

struct Entry {
  std::string name;
  const DtypeInfo* dtype;
  std::vector<int64_t> shape;
  uint64_t begin, end;
};

}  // namespace

std::string shape_text(at::IntArrayRef shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

const char* safetensors_dtype_name(at::ScalarType type) {
  const DtypeInfo* d = find_dtype(type);
  return d ? d->name : nullptr;
}

bool json_nesting_within(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;  // the escaped character cannot end the string
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return false;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return true;
}

namespace {

// The open file and its parsed header, with each tensor's place in the data area.
struct ParsedFile {
  std::string file;
  uint64_t data_start = 0;
  SafetensorsHeader header;
  std::vector<Entry> entries;
};

CheckpointError failure(const std::string& file, const std::string& problem) {
  return CheckpointError(file + ": " + problem);
}

// The first bytes of a file for a message: as text when they are printable, else in hex.
std::string describe_start(const unsigned char* bytes, size_t n) {
  bool text = n > 0;
  for (size_t i = 0; i < n; ++i) text = text && (std::isprint(bytes[i]) || bytes[i] == '\n' || bytes[i] == '\t');
  std::string out;
  if (text) {
    for (size_t i = 0; i < n; ++i) out += bytes[i] == '\n' || bytes[i] == '\t' ? ' ' : static_cast<char>(bytes[i]);
    return "the text \"" + out + "\"";
  }
  static const char* kHex = "0123456789abcdef";
  for (size_t i = 0; i < n; ++i) {
    if (i) out += ' ';
    out += kHex[bytes[i] >> 4];
    out += kHex[bytes[i] & 15];
  }
  return "the bytes " + out;
}

void parse_header(const Fd& fd, ParsedFile& pf) {
  const std::string& file = pf.file;
  // A safetensors file starts with an 8-byte header length and then the JSON header, '{'. One
  // that does not is another kind of file (a text, a pickle, an image given by mistake): that is
  // said first, then which check it failed. A file that starts right keeps the plain detail (a
  // truncated or damaged safetensors file).
  bool starts_right = false;
  auto fail = [&](const std::string& problem) {
    return starts_right ? failure(file, problem) : CheckpointError(file + " is not a safetensors model file: " + problem);
  };
  struct stat st {};
  if (::fstat(fd.fd, &st) != 0) throw failure(file, "cannot stat: " + errno_text(errno));
  if (S_ISDIR(st.st_mode)) throw failure(file, "is a directory, not a safetensors file");
  if (!S_ISREG(st.st_mode)) throw failure(file, "not a regular file");
  const auto file_size = static_cast<uint64_t>(st.st_size);
  if (file_size == 0) throw fail("empty file");
  if (file_size < 8)
    throw fail("only " + std::to_string(file_size) + " bytes, less than the 8-byte header length");

  unsigned char head[16];
  const size_t head_len = static_cast<size_t>(std::min<uint64_t>(file_size, sizeof head));
  int err = 0;
  if (!pread_all(fd.fd, head, head_len, 0, &err)) throw failure(file, "cannot read header length: " + errno_text(err));
  starts_right = head_len > 8 && head[8] == '{';
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | head[i];
  if (header_len > file_size - 8) {
    if (starts_right)
      throw fail("truncated: header says " + std::to_string(header_len) + " bytes but file has " +
                 std::to_string(file_size - 8) + " after the length field");
    throw fail("it starts with " + describe_start(head, head_len) + "; read as a header length, its first 8 bytes say " +
               std::to_string(header_len) + " bytes, but the file has " + std::to_string(file_size - 8) + " after them");
  }
  if (header_len > kMaxHeaderBytes)
    throw fail("header of " + std::to_string(header_len) + " bytes exceeds the limit of " +
               std::to_string(kMaxHeaderBytes));
  if (header_len < 2) throw fail("header of " + std::to_string(header_len) + " bytes cannot be a JSON object");

  std::string header_text(header_len, '\0');
  if (!pread_all(fd.fd, header_text.data(), header_len, 8, &err))
    throw fail("cannot read header: " + (err ? errno_text(err) : std::string("file ended early")));
  if (!json_nesting_within(header_text, kMaxHeaderNesting))
    throw fail("header nests deeper than " + std::to_string(kMaxHeaderNesting) + " levels (not a safetensors file)");
  const nlohmann::json header = nlohmann::json::parse(header_text, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded()) throw fail("header is not valid JSON");
  if (!header.is_object()) throw fail("header is not a JSON object");

  pf.data_start = 8 + header_len;
  const uint64_t data_size = file_size - pf.data_start;

  SafetensorsHeader& out = pf.header;
  std::vector<Entry>& entries = pf.entries;
  entries.reserve(header.size());
  for (const auto& [name, value] : header.items()) {
    if (name == "__metadata__") {
      if (!value.is_object()) throw fail("\"__metadata__\" is not a JSON object");
      for (const auto& [key, text] : value.items()) {
        if (!text.is_string()) throw fail("\"__metadata__\" value of \"" + key + "\" is not a string");
        out.metadata[key] = text.get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor \"" + name + "\": ";
    if (!value.is_object()) throw fail(where + "entry is not a JSON object");

    const auto dtype_it = value.find("dtype");
    if (dtype_it == value.end() || !dtype_it->is_string()) throw fail(where + "missing or non-string \"dtype\"");
    const DtypeInfo* dtype = find_dtype(dtype_it->get<std::string>());
    if (!dtype) throw fail(where + "unknown dtype " + excerpt(*dtype_it));

    const auto shape_it = value.find("shape");
    if (shape_it == value.end() || !shape_it->is_array()) throw fail(where + "missing or non-array \"shape\"");
    if (shape_it->size() > 64) throw fail(where + "shape has " + std::to_string(shape_it->size()) + " dimensions");
    std::vector<int64_t> shape;
    // Start from the item size so an overflow anywhere in the byte count is caught.
    uint64_t nbytes = dtype->itemsize;
    for (const auto& dim : *shape_it) {
      if (!dim.is_number_unsigned()) throw fail(where + "shape " + excerpt(*shape_it) + " is not a list of sizes >= 0");
      const uint64_t d = dim.get<uint64_t>();
      if (d > static_cast<uint64_t>(INT64_MAX) || __builtin_mul_overflow(nbytes, d, &nbytes))
        throw fail(where + "shape " + excerpt(*shape_it) + " overflows");
      shape.push_back(static_cast<int64_t>(d));
    }

    const auto off_it = value.find("data_offsets");
    if (off_it == value.end() || !off_it->is_array() || off_it->size() != 2 || !(*off_it)[0].is_number_unsigned() ||
        !(*off_it)[1].is_number_unsigned())
      throw fail(where + "\"data_offsets\" is not a pair of offsets >= 0");
    const uint64_t begin = (*off_it)[0].get<uint64_t>();
    const uint64_t end = (*off_it)[1].get<uint64_t>();
    if (begin > end) throw fail(where + "data_offsets " + excerpt(*off_it) + " end before they begin");
    if (end > data_size)
      throw fail(where + "data_offsets " + excerpt(*off_it) + " out of range: the data area has " +
                 std::to_string(data_size) + " bytes (file truncated?)");
    if (end - begin != nbytes)
      throw fail(where + "data_offsets " + excerpt(*off_it) + " span " + std::to_string(end - begin) +
                 " bytes but dtype " + dtype->name + " and shape " + shape_text(shape) + " need " +
                 std::to_string(nbytes));
    out.tensors[name] = SafetensorsEntry{dtype->type, shape, nbytes};
    entries.push_back({name, dtype, std::move(shape), begin, end});
  }

  // Overlapping tensors would alias each other's bytes; a valid writer never produces them.
  std::vector<const Entry*> by_offset;
  for (const auto& e : entries)
    if (e.end > e.begin) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(), [](const Entry* a, const Entry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  for (size_t i = 1; i < by_offset.size(); ++i)
    if (by_offset[i]->begin < by_offset[i - 1]->end)
      throw fail("tensors \"" + by_offset[i - 1]->name + "\" and \"" + by_offset[i]->name + "\" overlap (bytes " +
                 std::to_string(by_offset[i]->begin) + ".." + std::to_string(by_offset[i - 1]->end) + ")");
}

}  // namespace

SafetensorsHeader read_safetensors_header(const std::filesystem::path& path) {
  ParsedFile pf;
  pf.file = path.string();
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.fd < 0) throw failure(pf.file, "cannot open: " + errno_text(errno));
  parse_header(fd, pf);
  return std::move(pf.header);
}

SafetensorsFile read_safetensors(const std::filesystem::path& path, const SafetensorsCheck& check) {
  ParsedFile pf;
  pf.file = path.string();
  const std::string& file = pf.file;
  auto fail = [&](const std::string& problem) { return failure(file, problem); };
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.fd < 0) throw fail("cannot open: " + errno_text(errno));
  parse_header(fd, pf);
  if (check) check(pf.header);

  SafetensorsFile out;
  out.metadata = std::move(pf.header.metadata);
  const uint64_t data_start = pf.data_start;
  int err = 0;
  // Each tensor is read straight into its own storage: no staging copy of the whole file and no
  // per-element work, and in offset order so the reads are sequential.
  std::vector<const Entry*> order;
  for (const auto& e : pf.entries) order.push_back(&e);
  std::sort(order.begin(), order.end(), [](const Entry* a, const Entry* b) { return a->begin < b->begin; });
  for (const Entry* e : order) {
    at::Tensor t = at::empty(e->shape, at::TensorOptions().dtype(e->dtype->type));
    if (e->end > e->begin && !pread_all(fd.fd, t.data_ptr(), e->end - e->begin, data_start + e->begin, &err))
      throw fail("tensor \"" + e->name + "\": cannot read data: " +
                 (err ? errno_text(err) : std::string("file ended early (truncated while reading?)")));
    if (e->dtype->type == at::kBool && t.numel() > 0 && t.view(at::kByte).gt(1).any().item<bool>())
      throw fail("tensor \"" + e->name + "\": BOOL data holds bytes other than 0 and 1");
    out.tensors[e->name] = std::move(t);
  }
  return out;
}

void write_safetensors(const std::filesystem::path& path,
                       const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  const std::string file = path.string();
  auto fail = [&](const std::string& problem) -> CheckpointError {
    return CheckpointError(file + ": " + problem);
  };

  struct Item {
    const std::string* name;
    at::Tensor data;  // CPU, contiguous
    const DtypeInfo* dtype;
  };
  std::vector<Item> items;
  std::set<std::string> seen;
  for (const auto& [name, tensor] : tensors) {
    if (name == "__metadata__") throw fail("\"__metadata__\" cannot be a tensor name");
    if (!seen.insert(name).second) throw fail("tensor \"" + name + "\" given twice");
    if (!tensor.defined()) throw fail("tensor \"" + name + "\" is undefined");
    const DtypeInfo* dtype = find_dtype(tensor.scalar_type());
    if (!dtype) throw fail("tensor \"" + name + "\": dtype " + std::string(c10::toString(tensor.scalar_type())) +
                           " cannot be stored");
    items.push_back({&name, tensor.detach().to(at::kCPU).contiguous(), dtype});
  }
  // Data goes in order of decreasing item size (stable, so otherwise as given): every tensor
  // then starts at a multiple of its own item size without padding, and the file has no holes,
  // which the reference safetensors reader requires.
  std::stable_sort(items.begin(), items.end(),
                   [](const Item& a, const Item& b) { return a.dtype->itemsize > b.dtype->itemsize; });

  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) meta[k] = v;
    header["__metadata__"] = std::move(meta);
  }
  uint64_t offset = 0;
  for (const auto& item : items) {
    const uint64_t n = static_cast<uint64_t>(item.data.numel()) * item.dtype->itemsize;
    header[*item.name] = {{"dtype", item.dtype->name},
                          {"shape", item.data.sizes().vec()},
                          {"data_offsets", {offset, offset + n}}};
    offset += n;
  }
  std::string header_text;
  try {
    header_text = header.dump();
  } catch (const nlohmann::json::exception& e) {
    throw fail(std::string("cannot encode header (names and metadata must be UTF-8): ") + e.what());
  }
  // The spec allows trailing spaces in the header; padding to 8 bytes aligns the data area.
  header_text.append((8 - header_text.size() % 8) % 8, ' ');

  const std::filesystem::path parent = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  std::error_code ec;
  if (!std::filesystem::is_directory(parent, ec)) throw fail("directory " + parent.string() + " does not exist");
  if (std::filesystem::is_directory(path, ec)) throw fail("is a directory");

  // Same directory as the target so the rename is atomic (same file system).
  const std::filesystem::path tmp = file + ".tmp-" + std::to_string(::getpid());
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (fd.fd < 0) throw fail("cannot create " + tmp.string() + ": " + errno_text(errno));
  auto abandon = [&](const std::string& problem) {
    const std::string why = problem + ": " + errno_text(errno);
    ::close(fd.fd);
    fd.fd = -1;
    ::unlink(tmp.c_str());
    return fail(why);
  };

  unsigned char len_bytes[8];
  uint64_t len = header_text.size();
  for (unsigned char& b : len_bytes) {
    b = static_cast<unsigned char>(len & 0xff);
    len >>= 8;
  }
  if (!write_all(fd.fd, len_bytes, 8) || !write_all(fd.fd, header_text.data(), header_text.size()))
    throw abandon("cannot write " + tmp.string());
  for (const auto& item : items) {
    const uint64_t n = static_cast<uint64_t>(item.data.numel()) * item.dtype->itemsize;
    if (n > 0 && !write_all(fd.fd, item.data.data_ptr(), n)) throw abandon("cannot write " + tmp.string());
  }
  // fsync before rename: otherwise a crash can leave the new name pointing at an empty file.
  if (::fsync(fd.fd) != 0) throw abandon("cannot sync " + tmp.string());
  if (::close(fd.fd) != 0) {
    fd.fd = -1;
    const std::string why = errno_text(errno);
    ::unlink(tmp.c_str());
    throw fail("cannot close " + tmp.string() + ": " + why);
  }
  fd.fd = -1;
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = errno_text(errno);
    ::unlink(tmp.c_str());
    throw fail("cannot rename " + tmp.string() + " into place: " + why);
  }
  // Make the rename itself durable; failure here does not lose data, so it is not an error.
  Fd dir(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.fd >= 0) ::fsync(dir.fd);
}

}  // namespace starganv2
