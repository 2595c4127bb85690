// What the tests that run a built tool as a subprocess share: scratch folders, shell quoting,
// and running the tool (or a command line it printed) with its stdout and stderr captured to
// files, optionally in another working directory or interrupted as by Ctrl-C.
#pragma once

#include <fcntl.h>
#include <signal.h>
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

// Runs a shell command line (e.g. one a tool printed for the user to paste) in `cwd` (empty: this
// process's working directory) with stdin from /dev/null; stdout and stderr go through files in
// `scratch`.
inline Result run_shell(const std::string& line, const std::filesystem::path& scratch,
                        const std::filesystem::path& cwd = {}) {
  const std::filesystem::path out = scratch / "stdout.txt", err = scratch / "stderr.txt";
  std::string cmd;
  if (!cwd.empty()) {
    cmd += "cd ";
    cmd += quote(cwd.string());
    cmd += " && ";
  }
  // Appended piece by piece: GCC 12 warns falsely (-Wstringop-overflow) on "literal" + string&&.
  cmd += "( ";
  cmd += line;
  cmd += " ) > ";
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

inline std::string command_line(const std::string& tool, const std::vector<std::string>& args) {
  std::string cmd = quote(tool);
  for (const auto& a : args) {
    cmd += ' ';
    cmd += quote(a);
  }
  return cmd;
}

// A tool path given relative to this process's folder (meson passes build-relative ones), made
// absolute so that it still names the tool from another working directory; bare names stay.
inline std::string tool_path(const std::string& tool) {
  return tool.find('/') == std::string::npos ? tool : std::filesystem::absolute(tool).string();
}

// Runs `tool args...` (in `cwd` when given); see run_shell.
inline Result run_tool(const std::string& tool, const std::vector<std::string>& args,
                       const std::filesystem::path& scratch, const std::filesystem::path& cwd = {}) {
  return run_shell(command_line(cwd.empty() ? tool : tool_path(tool), args), scratch, cwd);
}

// Runs `tool args...` in `cwd`, and once its stdout holds `marker` sends it SIGINT (as Ctrl-C
// does), then waits for it to end. rc is -1 when it never showed the marker within
// `timeout_s` (it is killed then) or did not exit normally; a tool that ends before showing the
// marker is not signalled and its own exit status is returned.
inline Result interrupt_tool(const std::string& tool, const std::vector<std::string>& args,
                             const std::filesystem::path& scratch, const std::filesystem::path& cwd,
                             const std::string& marker, int timeout_s = 300) {
  const std::filesystem::path out = scratch / "stdout.txt", err = scratch / "stderr.txt";
  const std::string program = tool_path(tool);
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    // The child: only async-signal-safe calls until exec.
    if (chdir(cwd.c_str()) != 0) _exit(127);
    const int o = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int e = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int in = open("/dev/null", O_RDONLY);
    if (o < 0 || e < 0 || in < 0) _exit(127);
    dup2(in, 0);
    dup2(o, 1);
    dup2(e, 2);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(program.c_str()));
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(program.c_str(), argv.data());
    _exit(127);
  }
  Result r;
  bool seen = false;
  int status = 0;
  for (int waited_ms = 0; waited_ms < timeout_s * 1000; waited_ms += 10) {
    if (slurp(out).find(marker) != std::string::npos) {
      seen = true;
      break;
    }
    if (waitpid(pid, &status, WNOHANG) == pid) {  // ended before the marker: no signal sent
      r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      r.out = slurp(out);
      r.err = slurp(err);
      return r;
    }
    usleep(10 * 1000);
  }
  kill(pid, seen ? SIGINT : SIGKILL);
  waitpid(pid, &status, 0);
  r.rc = seen && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

}  // namespace starganv2::test
