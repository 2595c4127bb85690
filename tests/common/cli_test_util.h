// What the tests that run programs as subprocesses share (tools, gst-launch, example scripts):
// scratch folders, shell quoting, and the one way to run a program (spawn) with its stdout and
// stderr captured to files, optionally in another working directory, with another environment,
// through a shell (a command line a tool printed) or interrupted as by Ctrl-C.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
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
  int rc = -1;  // exit status; -1 when the program did not exit normally (e.g. a crash)
  std::string out, err;
  double seconds = 0;  // wall time from start to exit
};

// An `env` value that removes the variable (e.g. DISPLAY, to play a machine without a display).
inline const std::string kUnset = "\x01unset";

// The one way tests start a program: argv (argv[0] found on PATH when it has no '/') without a
// shell, in `cwd` when given, with `env` changes on top of this process's environment, stdin
// from /dev/null, stdout and stderr to files in `scratch`. Returns the child's pid.
inline pid_t spawn(const std::vector<std::string>& argv, const std::filesystem::path& scratch,
                   const std::filesystem::path& cwd = {}, const std::map<std::string, std::string>& env = {}) {
  const std::filesystem::path out = scratch / "stdout.txt", err = scratch / "stderr.txt";
  // Everything the child needs is built before fork: between fork and exec only
  // async-signal-safe calls are allowed.
  std::map<std::string, std::string> vars;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string kv = *e;
    const size_t eq = kv.find('=');
    if (eq != std::string::npos) vars[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const auto& [k, v] : env) {
    if (v == kUnset)
      vars.erase(k);
    else
      vars[k] = v;
  }
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : vars) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp, args;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = argv;
  for (auto& a : argv_copy) args.push_back(a.data());
  args.push_back(nullptr);
  const std::string dir = cwd.string();
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    if (!dir.empty() && chdir(dir.c_str()) != 0) _exit(127);
    const int o = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int e = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int in = open("/dev/null", O_RDONLY);
    if (o < 0 || e < 0 || in < 0) _exit(127);
    dup2(in, 0);
    dup2(o, 1);
    dup2(e, 2);
    execvpe(args[0], args.data(), envp.data());
    _exit(127);
  }
  return pid;
}

// Waits for a spawned program and collects what it wrote.
inline Result finish(pid_t pid, const std::filesystem::path& scratch,
                     std::chrono::steady_clock::time_point started) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  Result r;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(scratch / "stdout.txt");
  r.err = slurp(scratch / "stderr.txt");
  return r;
}

// Runs argv to its end; see spawn.
inline Result run_argv(const std::vector<std::string>& argv, const std::filesystem::path& scratch,
                       const std::filesystem::path& cwd = {}, const std::map<std::string, std::string>& env = {}) {
  const auto t0 = std::chrono::steady_clock::now();
  return finish(spawn(argv, scratch, cwd, env), scratch, t0);
}

// Runs a shell command line (e.g. one a tool printed for the user to paste) in `cwd`.
inline Result run_shell(const std::string& line, const std::filesystem::path& scratch,
                        const std::filesystem::path& cwd = {}) {
  return run_argv({"/bin/sh", "-c", line}, scratch, cwd);
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

// Runs `tool args...` (in `cwd` when given); see spawn.
inline Result run_tool(const std::string& tool, const std::vector<std::string>& args,
                       const std::filesystem::path& scratch, const std::filesystem::path& cwd = {}) {
  std::vector<std::string> argv = {tool_path(tool)};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_argv(argv, scratch, cwd);
}

// Runs `tool args...` in `cwd`, and once its stdout holds `marker` sends it SIGINT (as Ctrl-C
// does), then waits for it to end. rc is -1 when it never showed the marker within
// `timeout_s` (it is killed then) or did not exit normally; a tool that ends before showing the
// marker is not signalled and its own exit status is returned.
inline Result interrupt_tool(const std::string& tool, const std::vector<std::string>& args,
                             const std::filesystem::path& scratch, const std::filesystem::path& cwd,
                             const std::string& marker, int timeout_s = 300) {
  std::vector<std::string> argv = {tool_path(tool)};
  argv.insert(argv.end(), args.begin(), args.end());
  const auto t0 = std::chrono::steady_clock::now();
  const pid_t pid = spawn(argv, scratch, cwd);
  int status = 0;
  for (int waited_ms = 0; waited_ms < timeout_s * 1000; waited_ms += 10) {
    if (slurp(scratch / "stdout.txt").find(marker) != std::string::npos) {
      kill(pid, SIGINT);
      return finish(pid, scratch, t0);
    }
    if (waitpid(pid, &status, WNOHANG) == pid) {  // ended before the marker: no signal sent
      Result r;
      r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      r.out = slurp(scratch / "stdout.txt");
      r.err = slurp(scratch / "stderr.txt");
      return r;
    }
    usleep(10 * 1000);
  }
  kill(pid, SIGKILL);
  Result r = finish(pid, scratch, t0);
  r.rc = -1;
  return r;
}

}  // namespace starganv2::test
