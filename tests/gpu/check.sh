#!/usr/bin/env bash
# One command for a short visit to a GPU machine: configures and builds the LibTorch-only parts,
# runs the `gpu` suite, starganv2-bench (CelebA-HQ and AFHQ configs, fp32/fp16/bf16, CUDA graphs
# on and off, batches 1, 4, 8, each against the naive fp32 eager baseline of the same run) and
# the trainer benchmark (fp32 and bf16 of the same run), and prints one summary table with the
# device named. Needs only what a bare GPU box has: bash, a python3 whose torch has CUDA, and
# meson + ninja (in that python's environment or on PATH). No GoogleTest, OpenCV, GStreamer, dlib.
#
#   tests/gpu/check.sh                 # build dir build-gpu-check/ in the source tree
#   BUILD_DIR=/tmp/b PYTHON=/venv/bin/python3 BUDGET_S=480 tests/gpu/check.sh
#
# BUDGET_S (default 480: 8 minutes) bounds the whole run: each step after the build gets at most
# its own cap and what is left of the budget, and is stopped (exit 124 in the table) when it runs
# over, so one short visit leaves room for a rerun.
#
# Exit status: 0 all passed; 1 a check or a benchmark failed; 77 built, but no CUDA device (so
# nothing to measure). Everything is logged under $BUILD_DIR/gpu-check/; the summary is also
# written there as summary.md.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PYTHON=${PYTHON:-python3}
PYTHON=$(command -v "$PYTHON" || true)
BUILD_DIR=${BUILD_DIR:-$ROOT/build-gpu-check}
BUDGET_S=${BUDGET_S:-480}
OUT=$BUILD_DIR/gpu-check

die() { echo "gpu check: $*" >&2; exit 1; }
[ -n "$PYTHON" ] || die "no python3 found (set PYTHON=/path/to/python with torch installed)"
# The python's own bin directory first: a venv's meson and ninja live there.
PATH=$(dirname "$PYTHON"):$PATH
export PATH
"$PYTHON" -c 'import torch' 2>/dev/null || die "$PYTHON cannot import torch"
MESON=(meson)
command -v meson >/dev/null || MESON=("$PYTHON" -m mesonbuild.mesonmain)
"${MESON[@]}" --version >/dev/null 2>&1 || die "meson not found (pip install meson ninja)"
command -v ninja >/dev/null || die "ninja not found (pip install ninja)"

mkdir -p "$OUT"
STEPS=$OUT/steps.csv
echo "step,seconds,status" > "$STEPS"
START=$(date +%s.%N)

# Seconds left of the budget, minus `reserve` kept for the steps after this one.
left() { awk "BEGIN{printf \"%d\", $START + $BUDGET_S - $(date +%s.%N) - $1}"; }

# cap CAP_S RESERVE_S: the smaller of CAP_S and what the budget leaves after RESERVE_S; negative
# (skip) when less than 20 s would remain.
cap() {
  local l
  l=$(left "$2")
  if [ "$l" -lt 20 ]; then echo -1; elif [ "$l" -lt "$1" ]; then echo "$l"; else echo "$1"; fi
}

# step NAME CAP_S COMMAND...: runs COMMAND (at most CAP_S seconds, 0 = no limit) with its output in
# $OUT/NAME.log and on screen, and records its time and exit status.
step() {
  local name=$1 limit=$2
  shift 2
  local t0 t1 rc
  if [ "$limit" -lt 0 ]; then
    echo "=== $name: skipped, the ${BUDGET_S} s budget is spent"
    echo "$name,0,skipped" >> "$STEPS"
    return 124
  fi
  if [ "$limit" -gt 0 ]; then echo "=== $name (at most $limit s)"; else echo "=== $name"; fi
  t0=$(date +%s.%N)
  if [ "$limit" -gt 0 ]; then
    timeout --kill-after=10 "$limit" "$@" 2>&1 | tee "$OUT/$name.log"
  else
    "$@" 2>&1 | tee "$OUT/$name.log"
  fi
  rc=${PIPESTATUS[0]}
  t1=$(date +%s.%N)
  echo "$name,$(awk "BEGIN{printf \"%.1f\", $t1 - $t0}"),$rc" >> "$STEPS"
  return "$rc"
}

TARGETS=(model/starganv2-bench trainer/starganv2-train-bench
         tests/gpu/test_engine_gpu tests/gpu/test_graph_runner_gpu tests/gpu/test_train_gpu)

# LibTorch-only: the element and the alignment library need GStreamer, dlib and OpenCV.
if [ -f "$BUILD_DIR/build.ninja" ]; then
  step configure 0 "${MESON[@]}" setup --reconfigure "$BUILD_DIR" "$ROOT" -Dtorch_python="$PYTHON" \
    -Dplugin=disabled -Dalign=disabled || die "configure failed (see $OUT/configure.log)"
else
  step configure 0 "${MESON[@]}" setup "$BUILD_DIR" "$ROOT" --buildtype=release -Dtorch_python="$PYTHON" \
    -Dplugin=disabled -Dalign=disabled || die "configure failed (see $OUT/configure.log)"
fi
step build 0 ninja -C "$BUILD_DIR" "${TARGETS[@]}" || die "build failed (see $OUT/build.log)"

# The suite runs either way: without a GPU each program says why it skips (quickly, so no cap).
if "$PYTHON" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  have_gpu=1
  suite_cap=$(cap 180 180)
else
  have_gpu=0
  suite_cap=120
fi
step gpu-suite "$suite_cap" "${MESON[@]}" test -C "$BUILD_DIR" --no-rebuild --suite gpu --print-errorlogs -v
suite_rc=$?

if [ "$have_gpu" -eq 0 ]; then
  "$PYTHON" -W ignore "$ROOT/tests/gpu/summarize.py" --out "$OUT" --build "$BUILD_DIR" \
    --total "$(awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $START}")" | tee "$OUT/summary.md"
  [ "$suite_rc" -eq 0 ] || die "the gpu suite failed even before needing CUDA (see $OUT/gpu-suite.log)"
  reason=$("$PYTHON" -c 'import torch; print("torch " + torch.__version__ + (" has no CUDA support" if torch.version.cuda is None else " (CUDA " + torch.version.cuda + ") finds no CUDA device"))')
  echo
  echo "gpu check: NO GPU: $reason."
  echo "gpu check: configured, built and ran the gpu suite up to the point where CUDA is needed"
  echo "gpu check: ($(awk "BEGIN{printf \"%.0f\", $(date +%s.%N) - $START}") s); nothing to measure. Exit 77."
  exit 77
fi

step bench-graphs "$(cap 90 100)" "$BUILD_DIR/model/starganv2-bench" --device cuda:0 --config celeba,afhq \
  --precision all --batches 1,4,8 --csv "$OUT/bench-graphs.csv"
bench_rc=$?
step bench-eager "$(cap 75 50)" "$BUILD_DIR/model/starganv2-bench" --device cuda:0 --config celeba,afhq \
  --precision all --batches 1,4,8 --no-graphs --csv "$OUT/bench-eager.csv"
bench_rc=$((bench_rc | $?))
step train-bench "$(cap 60 0)" "$BUILD_DIR/trainer/starganv2-train-bench" --device cuda:0 --precision both \
  --csv "$OUT/train-bench.csv"
train_rc=$?

"$PYTHON" -W ignore "$ROOT/tests/gpu/summarize.py" --out "$OUT" --build "$BUILD_DIR" \
  --total "$(awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $START}")" | tee "$OUT/summary.md"

if [ "$suite_rc" -ne 0 ] || [ "$bench_rc" -ne 0 ] || [ "$train_rc" -ne 0 ]; then
  echo "gpu check: FAILED (gpu suite $suite_rc, engine bench $bench_rc, trainer bench $train_rc); logs in $OUT" >&2
  exit 1
fi
echo "gpu check: all passed; logs and summary.md in $OUT"
