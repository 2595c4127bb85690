#!/usr/bin/env bash
# One command for a short visit to a GPU machine: configures and builds the LibTorch-only parts,
# runs the `gpu` suite, starganv2-bench (CelebA-HQ and AFHQ configs, fp32/fp16/bf16, CUDA graphs
# on and off, batches 1, 4, 8, each against the naive fp32 eager baseline of the same run) and
# the trainer benchmark (fp32 and bf16 of the same run), and prints one summary table with the
# device named. Needs only what a bare GPU box has: bash, a python3 whose torch has CUDA, and
# meson + ninja (in that python's environment or on PATH). No GoogleTest, OpenCV, GStreamer, dlib.
#
#   tests/gpu/check.sh                 # build dir build-gpu-check/ in the source tree
#   BUILD_DIR=/tmp/b PYTHON=/venv/bin/python3 tests/gpu/check.sh
#
# Exit status: 0 all passed; 1 a check or a benchmark failed; 77 built, but no CUDA device (so
# nothing to measure). Everything is logged under $BUILD_DIR/gpu-check/; the summary is also
# written there as summary.md.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PYTHON=${PYTHON:-python3}
PYTHON=$(command -v "$PYTHON" || true)
BUILD_DIR=${BUILD_DIR:-$ROOT/build-gpu-check}
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

# step NAME TIMEOUT_S COMMAND...: runs COMMAND with its output in $OUT/NAME.log (and on screen),
# records its time and exit status.
step() {
  local name=$1 limit=$2
  shift 2
  local t0 t1 rc
  echo "=== $name"
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

# The suite runs either way: without a GPU each program says why it skips.
step gpu-suite 300 "${MESON[@]}" test -C "$BUILD_DIR" --no-rebuild --suite gpu --print-errorlogs -v
suite_rc=$?

if ! "$PYTHON" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  reason=$("$PYTHON" -c 'import torch; print("torch " + torch.__version__ + (" has no CUDA support" if torch.version.cuda is None else " (CUDA " + torch.version.cuda + ") finds no CUDA device"))')
  echo
  echo "gpu check: NO GPU: $reason."
  echo "gpu check: configured, built and ran the gpu suite up to the point where CUDA is needed"
  echo "gpu check: ($(awk "BEGIN{printf \"%.0f\", $(date +%s.%N) - $START}") s); nothing to measure. Exit 77."
  exit 77
fi

step bench-graphs 150 "$BUILD_DIR/model/starganv2-bench" --device cuda:0 --config celeba,afhq \
  --precision all --batches 1,4,8 --csv "$OUT/bench-graphs.csv"
bench_rc=$?
step bench-eager 150 "$BUILD_DIR/model/starganv2-bench" --device cuda:0 --config celeba,afhq \
  --precision all --batches 1,4,8 --no-graphs --csv "$OUT/bench-eager.csv"
bench_rc=$((bench_rc | $?))
step train-bench 120 "$BUILD_DIR/trainer/starganv2-train-bench" --device cuda:0 --precision both \
  --csv "$OUT/train-bench.csv"
train_rc=$?

"$PYTHON" "$ROOT/tests/gpu/summarize.py" --out "$OUT" --build "$BUILD_DIR" \
  --total "$(awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $START}")" | tee "$OUT/summary.md"

if [ "$suite_rc" -ne 0 ] || [ "$bench_rc" -ne 0 ] || [ "$train_rc" -ne 0 ]; then
  echo "gpu check: FAILED (gpu suite $suite_rc, engine bench $bench_rc, trainer bench $train_rc); logs in $OUT" >&2
  exit 1
fi
echo "gpu check: all passed; logs and summary.md in $OUT"
