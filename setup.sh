#!/usr/bin/env bash
# One-command set-up for starganv2 on Debian 12 (also used by CI).
#   ./setup.sh            install system packages, create .venv with LibTorch, configure and build,
#                         then run the main job: a real video with a face converted by the element
# Idempotent: a second run installs nothing new and only rebuilds what changed.
# Environment: BUILD_DIR (default build), MESON_OPTIONS (extra `meson setup` options),
#              SKIP_APT=1 (do not touch system packages), SKIP_BUILD=1 (stop after installing),
#              SKIP_DEMO=1 (build only), DEMO_DOMAIN (female), DEMO_SEED (7),
#              DEMO_VIEW (side-by-side: the merged frame with each face's aligned and translated
#              crops in its corner; merged for the frame alone).
set -euo pipefail
cd "$(dirname "$0")"
BUILD_DIR=${BUILD_DIR:-build}
TORCH_VERSION=2.11.0
# The same ninja as Debian 12's: the test command (`.venv/bin/meson test`) rebuilds with whichever
# ninja is on PATH, and ninja >= 1.12 writes a build log that 1.11 cannot read, which made the
# test command recompile the whole tree once after set-up.
NINJA_VERSION=1.11.1.4

DEBIAN_PACKAGES=(
  build-essential pkg-config git python3 python3-venv python3-pip ninja-build
  libglib2.0-dev
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev gstreamer1.0-tools
  gstreamer1.0-plugins-base gstreamer1.0-plugins-base-apps gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav
  libopencv-dev opencv-doc python3-skimage
  libdlib-dev libdlib-data
  libgtest-dev libgmock-dev
  nlohmann-json3-dev libcli11-dev
  libgloo-dev  # headers of the c10d process groups (distributed starganv2-train; the code is in libtorch)
)

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

if [[ "${SKIP_APT:-0}" != 1 ]]; then
  missing=()
  for p in "${DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    log "installing Debian packages: ${missing[*]}"
    SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  else
    log "Debian packages already installed"
  fi
fi

if [[ ! -x .venv/bin/python ]]; then
  log "creating .venv"
  python3 -m venv .venv
fi
if ! .venv/bin/python -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null \
   || [[ ! -x .venv/bin/meson || "$(.venv/bin/ninja --version 2>/dev/null)" != "${NINJA_VERSION%.*}"* ]]; then
  log "installing torch==$TORCH_VERSION (LibTorch, CUDA 13.0 build), meson and ninja into .venv (large download)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q "torch==$TORCH_VERSION" "meson>=1.4" "ninja==$NINJA_VERSION"
else
  log "torch $TORCH_VERSION, meson and ninja already in .venv"
fi

[[ "${SKIP_BUILD:-0}" == 1 ]] && exit 0

export PATH="$PWD/.venv/bin:$PATH"
if [[ ! -f "$BUILD_DIR/build.ninja" ]]; then
  log "configuring $BUILD_DIR"
  # shellcheck disable=SC2086
  meson setup "$BUILD_DIR" --buildtype=release -Dtorch_python="$PWD/.venv/bin/python" ${MESON_OPTIONS:-}
fi
log "building"
meson compile -C "$BUILD_DIR"

# The main job: Megamind.avi (opencv-doc; 270 frames, 720x528, one face) through the element with
# the demo model that ships in examples/models, encoded to H.264 (4:2:0, playable anywhere) in MP4. Every frame is kept (file
# source, no leaky queue). avidemux ! avdec_mpeg4 rather than decodebin: decodebin adds
# mpeg4videoparse, which gives 82 of this file's 270 frames a repeated timestamp, and the encoder
# then drops those frames (the element keeps timestamps exactly as they come).
demo() {
  local video=/usr/share/doc/opencv-doc/examples/data/Megamind.avi
  local model=examples/models/demo-faces-64.safetensors
  local out=out/megamind-${DEMO_DOMAIN:-female}.mp4
  if [[ ! -f "$BUILD_DIR/plugin/libgststarganv2.so" ]]; then
    log "demo skipped: the element was not built (GStreamer or dlib/OpenCV missing)"; return 0
  fi
  [[ -f "$video" ]] || { log "demo skipped: $video not found (Debian package opencv-doc)"; return 0; }
  [[ -f "$model" ]] || { log "demo skipped: $model not found"; return 0; }
  mkdir -p out
  log "main job: translating the face in $video into '${DEMO_DOMAIN:-female}' with the demo model"
  GST_PLUGIN_PATH="$PWD/$BUILD_DIR/plugin" gst-launch-1.0 -q \
    filesrc location="$video" ! avidemux ! avdec_mpeg4 ! videoconvert ! \
    starganv2 checkpoint="$model" domain="${DEMO_DOMAIN:-female}" seed="${DEMO_SEED:-7}" view="${DEMO_VIEW:-side-by-side}" ! \
    videoconvert ! video/x-raw,format=I420 ! x264enc speed-preset=faster ! h264parse ! mp4mux ! filesink location="$out"
  log "output: $PWD/$out"
}
[[ "${SKIP_DEMO:-0}" == 1 ]] || demo
log "done. Run the tests with: .venv/bin/meson test -C $BUILD_DIR --print-errorlogs"
