#!/usr/bin/env bash
# Runs the model-file fuzz target for SECONDS (default 50) on a copy of the seed corpus, with a
# 2 GB memory cap and a 10 s per-input limit. Exit 0: no finding; 77: no fuzz target in this
# build, or not built yet (the reason is printed); anything else: libFuzzer's finding, with the input it saved.
# Usage: run_fuzz.sh FUZZER|"" CORPUS_DIR [SECONDS] [-- extra libFuzzer flags]
set -u
fuzzer=$1 corpus=$2 seconds=${3:-50}
shift 3 2>/dev/null || shift $#
[ "${1:-}" = "--" ] && shift
if [ -z "$fuzzer" ]; then
  echo "SKIP: no fuzz target in this build: it needs clang++ with libFuzzer (Debian: clang," \
       "libclang-rt-dev) and -Dfuzz=auto or enabled; see README, Fuzzing"
  exit 77
fi
if [ ! -x "$fuzzer" ]; then
  # build_by_default false: `meson test` builds it first, `meson test --no-rebuild` does not.
  echo "SKIP: the fuzz target $fuzzer is not built yet (run meson test without --no-rebuild," \
       "or ninja -C BUILD tests/fuzz/fuzz-model-files)"
  exit 77
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/starganv2-fuzz-XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus" "$work/findings"
cp "$corpus"/* "$work/corpus/"
# -malloc_limit_mb: one allocation beyond the cap is a finding (a model file must not make the
# reader allocate what its size does not justify); -rss_limit_mb: the same for the whole process.
"$fuzzer" "$work/corpus" -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout=10 \
  -artifact_prefix="$work/findings/" -print_final_stats=1 "$@"
rc=$?
if [ $rc -ne 0 ]; then
  keep=$(mktemp -d "${TMPDIR:-/tmp}/starganv2-fuzz-findings-XXXXXX")
  cp -r "$work/findings/." "$keep/"
  echo "FAIL: libFuzzer exited with $rc; the input is kept in $keep"
fi
exit $rc
