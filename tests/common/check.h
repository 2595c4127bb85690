// A small test runner for the checks that must build without GoogleTest: the `gpu` suite runs on
// bare GPU machines that have LibTorch, meson and ninja and nothing else. Named cases, checks
// that report file:line and the compared values and carry on, ASSERT_* that end the case, and
// meson's exit codes (0 passed, 1 failed, 77 skipped).
//
//   CHECK_CASE(Engine, GraphsReplay) { EXPECT_LE(diff, 1) << "batch " << n; }
//   int main(int argc, char** argv) { return starganv2::check::run_all(argc, argv); }
//
// run_all takes --filter SUBSTRING (run the cases whose "Suite.Name" contains it) and --list.
#pragma once

#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <functional>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace starganv2::check {

struct Case {
  std::string name;
  std::function<void()> body;
};

inline std::vector<Case>& registry() {
  static std::vector<Case> cases;
  return cases;
}

inline int& failures_in_case() {
  static int n = 0;
  return n;
}

struct Registrar {
  Registrar(std::string name, std::function<void()> body) { registry().push_back({std::move(name), std::move(body)}); }
};

// Thrown by ASSERT_*: ends the current case (already counted as failed).
struct AssertionAbort {};

// Collects the streamed message of one failed check and reports it when the statement ends.
class Failure {
 public:
  Failure(const char* file, int line, std::string what, bool fatal)
      : file_(file), line_(line), what_(std::move(what)), fatal_(fatal) {}
  Failure(const Failure&) = delete;
  Failure& operator=(const Failure&) = delete;
  ~Failure() noexcept(false) {
    ++failures_in_case();
    const std::string extra = message_.str();
    std::fprintf(stderr, "%s:%d: FAILED: %s%s%s\n", file_, line_, what_.c_str(), extra.empty() ? "" : "\n    ",
                 extra.c_str());
    std::fflush(stderr);
    if (fatal_ && std::uncaught_exceptions() == 0) throw AssertionAbort{};
  }
  template <typename T>
  Failure& operator<<(const T& v) {
    message_ << v;
    return *this;
  }

 private:
  const char* file_;
  int line_;
  std::string what_;
  bool fatal_;
  std::ostringstream message_;
};

template <typename T>
std::string show(const T& v);

template <typename T>
std::string show(const std::vector<T>& v) {
  std::string s = "{";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + show(v[i]);
  return s + "}";
}

template <typename T>
std::string show(const T& v) {
  std::ostringstream s;
  if constexpr (std::is_same_v<T, bool>) {
    s << (v ? "true" : "false");
  } else {
    s << v;
  }
  return s.str();
}

// The outcome of a comparison: whether it held and, when not, "a <= b (3 vs 2)".
struct Outcome {
  bool ok;
  std::string text;
};

template <typename A, typename B, typename Op>
Outcome compare(const A& a, const B& b, Op op, const char* expr) {
  if (op(a, b)) return {true, {}};
  return {false, std::string(expr) + "  (" + show(a) + " vs " + show(b) + ")"};
}

inline Outcome near(double a, double b, double tolerance, const char* expr) {
  if (std::abs(a - b) <= tolerance) return {true, {}};
  return {false, std::string(expr) + "  (" + show(a) + " vs " + show(b) + ", tolerance " + show(tolerance) + ")"};
}

inline int run_all(int argc, char** argv) {
  std::string filter;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--list") {
      for (const auto& c : registry()) std::printf("%s\n", c.name.c_str());
      return 0;
    }
    if (arg == "--filter" && i + 1 < argc) {
      filter = argv[++i];
    } else {
      std::fprintf(stderr, "usage: %s [--filter SUBSTRING] [--list]\n", argv[0]);
      return 2;
    }
  }
  int ran = 0;
  std::vector<std::string> failed;
  for (const auto& c : registry()) {
    if (!filter.empty() && c.name.find(filter) == std::string::npos) continue;
    ++ran;
    failures_in_case() = 0;
    std::printf("[ RUN  ] %s\n", c.name.c_str());
    std::fflush(stdout);
    const auto t0 = std::chrono::steady_clock::now();
    try {
      c.body();
    } catch (const AssertionAbort&) {
    } catch (const std::exception& e) {
      ++failures_in_case();
      std::fprintf(stderr, "%s: FAILED: unexpected exception: %s\n", c.name.c_str(), e.what());
    }
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    const bool ok = failures_in_case() == 0;
    if (!ok) failed.push_back(c.name);
    std::printf("[ %s ] %s (%.0f ms)\n", ok ? " OK " : "FAIL", c.name.c_str(), ms);
    std::fflush(stdout);
  }
  if (ran == 0) {
    std::fprintf(stderr, "no case matches the filter \"%s\"\n", filter.c_str());
    return 1;
  }
  std::printf("%d case%s, %zu failed\n", ran, ran == 1 ? "" : "s", failed.size());
  for (const auto& name : failed) std::printf("  FAILED %s\n", name.c_str());
  return failed.empty() ? 0 : 1;
}

}  // namespace starganv2::check

#define STARGANV2_CHECK_CAT2(a, b) a##b
#define STARGANV2_CHECK_CAT(a, b) STARGANV2_CHECK_CAT2(a, b)

#define CHECK_CASE(suite, name)                                                                      \
  static void suite##_##name##_case();                                                              \
  static ::starganv2::check::Registrar STARGANV2_CHECK_CAT(suite##_##name##_registrar_, __LINE__)( \
      #suite "." #name, &suite##_##name##_case);                                                    \
  static void suite##_##name##_case()

// The if/else shape lets a message be streamed after the macro; the switch in front makes it
// one statement, so `if (x) EXPECT_TRUE(y); else ...` binds the way it reads.
#define STARGANV2_CHECK_OUTCOME(outcome_expr, fatal)                                   \
  switch (0)                                                                           \
  case 0:                                                                              \
  default:                                                                             \
    if (const ::starganv2::check::Outcome starganv2_outcome_ = (outcome_expr);        \
        starganv2_outcome_.ok) {                                                       \
    } else                                                                             \
      ::starganv2::check::Failure(__FILE__, __LINE__, starganv2_outcome_.text, fatal)

#define STARGANV2_CHECK_BOOL(cond, fatal) \
  STARGANV2_CHECK_OUTCOME((::starganv2::check::Outcome{static_cast<bool>(cond), #cond}), fatal)

#define EXPECT_TRUE(cond) STARGANV2_CHECK_BOOL(cond, false)
#define ASSERT_TRUE(cond) STARGANV2_CHECK_BOOL(cond, true)
#define EXPECT_FALSE(cond) STARGANV2_CHECK_BOOL(!(cond), false)
#define EXPECT_EQ(a, b) \
  STARGANV2_CHECK_OUTCOME(::starganv2::check::compare((a), (b), std::equal_to<>(), #a " == " #b), false)
#define ASSERT_EQ(a, b) \
  STARGANV2_CHECK_OUTCOME(::starganv2::check::compare((a), (b), std::equal_to<>(), #a " == " #b), true)
#define EXPECT_NE(a, b) \
  STARGANV2_CHECK_OUTCOME(::starganv2::check::compare((a), (b), std::not_equal_to<>(), #a " != " #b), false)
#define EXPECT_LE(a, b) \
  STARGANV2_CHECK_OUTCOME(::starganv2::check::compare((a), (b), std::less_equal<>(), #a " <= " #b), false)
#define EXPECT_LT(a, b) \
  STARGANV2_CHECK_OUTCOME(::starganv2::check::compare((a), (b), std::less<>(), #a " < " #b), false)
#define EXPECT_GE(a, b) \
  STARGANV2_CHECK_OUTCOME(::starganv2::check::compare((a), (b), std::greater_equal<>(), #a " >= " #b), false)
#define EXPECT_GT(a, b) \
  STARGANV2_CHECK_OUTCOME(::starganv2::check::compare((a), (b), std::greater<>(), #a " > " #b), false)
#define EXPECT_NEAR(a, b, tol) \
  STARGANV2_CHECK_OUTCOME(::starganv2::check::near((a), (b), (tol), #a " ~= " #b), false)
#define ADD_FAILURE() ::starganv2::check::Failure(__FILE__, __LINE__, "failure", false)
