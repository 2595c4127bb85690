// What the tests that run a built tool as a subprocess share: scratch folders, shell quoting,
// and running the tool with its stdout and stderr captured to files.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

namespace starganv2::test {

// A fresh empty folder under the system temp directory (removed by the caller).
inline std::filesystem::path make_temp_dir(const std::string& tag) {
  const std::filesystem::path base = std::filesystem::temp_directory_path();
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const std::filesystem::path p =
        base / ("starganv2-" + tag + "-" + std::to_string(getpid()) + "-" + std::to_string(attempt));
    if (std::filesystem::create_directory(p)) return p;
  }
  throw std::runtime_error("cannot create a temporary folder in " + base.string());
}

// A scratch folder that is removed with everything in it when the test ends.
struct TempDir {
  explicit TempDir(const std::string& tag) : path(make_temp_dir(tag)) {}
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::filesystem::path path;
};

// Single-quoted for /bin/sh, embedded quotes included.
inline std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream f(p);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

struct Result {
  int rc = -1;  // exit status; -1 when the tool did not exit normally (e.g. a crash)
  std::string out, err;
};

// Runs `tool args...` with stdin from /dev/null; stdout and stderr go through files in `scratch`.
inline Result run_tool(const std::string& tool, const std::vector<std::string>& args,
                       const std::filesystem::path& scratch) {
  std::string cmd = quote(tool);
  for (const auto& a : args) {
    cmd += ' ';
    cmd += quote(a);
  }
  const std::filesystem::path out = scratch / "stdout.txt", err = scratch / "stderr.txt";
  // Appended piece by piece: GCC 12 warns falsely (-Wstringop-overflow) on "literal" + string&&.
  cmd += " > ";
  cmd += quote(out.string());
  cmd += " 2> ";
  cmd += quote(err.string());
  cmd += " < /dev/null";
  const int status = std::system(cmd.c_str());
  Result r;
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

}  // namespace starganv2::test
