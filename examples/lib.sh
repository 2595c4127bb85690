# Shared by the example scripts (sourced, not run): finds the element, the model and the tools,
# and fails early with one clear line when something is missing.
#
# Environment every example understands:
#   BUILD_DIR  the meson build folder whose plugin/ holds the element (default: build; a relative
#              path is taken from the repository root). Without one the installed element is used.
#   MODEL      the model file (default: the demo model that ships in examples/models).

EXAMPLES_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$EXAMPLES_DIR")
BUILD_DIR=${BUILD_DIR:-build}
[[ $BUILD_DIR == /* ]] || BUILD_DIR=$ROOT/$BUILD_DIR
MODEL=${MODEL:-$ROOT/examples/models/demo-faces-64.safetensors}

die() { echo "$(basename "$0"): $*" >&2; exit 1; }

# need COMMAND DEBIAN_PACKAGE
need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found (Debian package $2)"; }

# need_gst ELEMENT DEBIAN_PACKAGE
need_gst() { gst-inspect-1.0 "$1" >/dev/null 2>&1 || die "GStreamer element $1 not found (Debian package $2)"; }

# Puts the element of the build tree on GST_PLUGIN_PATH (an uninstalled build is what ./setup.sh
# leaves), else relies on an installed one (`meson install -C build`).
use_element() {
  need gst-launch-1.0 gstreamer1.0-tools
  if [[ -f $BUILD_DIR/plugin/libgststarganv2.so ]]; then
    export GST_PLUGIN_PATH=$BUILD_DIR/plugin${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}
  fi
  gst-inspect-1.0 starganv2 >/dev/null 2>&1 ||
    die "the GStreamer element starganv2 was not found: run ./setup.sh (it builds $ROOT/build/plugin), set BUILD_DIR to your build folder, or install it with meson install"
}

need_model() {
  [[ -f $MODEL ]] || die "model file $MODEL not found (set MODEL=/path/to/model.safetensors)"
}

# Prints the pipeline, then runs it. gst-launch-1.0 exits non-zero on any error on the bus (255
# for most, after printing the error); the scripts exit 1 like every other failure.
launch() {
  echo "+ gst-launch-1.0 $*" >&2
  gst-launch-1.0 "$@" || die "the pipeline failed (exit $?; the error is above)"
}

# Output files are written under a temporary name next to them (same folder, so the rename is
# atomic) and renamed once complete, so a failed run (an unknown domain, a missing decoder,
# Ctrl-C twice) leaves no empty or partial file:
#   start_output "$OUT"     # sets PART, the name to write to; makes OUT's folder
#   ... filesink location="$PART" ...
#   finish_output "$OUT"    # PART -> OUT
# A PART not renamed is removed when the script exits, whatever the reason.
PARTIAL_FILES=()
remove_partial_files() {
  local f
  for f in "${PARTIAL_FILES[@]}"; do rm -f -- "$f"; done
}
trap remove_partial_files EXIT
start_output() {
  mkdir -p "$(dirname "$1")"
  PART="$(dirname "$1")/.$(basename "$1").part-$$"
  PARTIAL_FILES+=("$PART")
}
finish_output() {
  [[ -s $PART ]] || die "$1 not written: the pipeline produced no data"
  mv -f -- "$PART" "$1"
}

# video_output OUT: sets MUX (the muxer for OUT's extension) and VENC (an array: H.264 with x264enc,
# else MPEG-4 part 2), or fails naming the extensions it takes.
# shellcheck disable=SC2034  # MUX and VENC are for the script that sources this
video_output() {
  case "${1,,}" in
    *.mp4 | *.mov) MUX="mp4mux" ;;
    *.mkv) MUX="matroskamux" ;;
    *) die "output $1: use a .mp4, .mov or .mkv name" ;;
  esac
  if gst-inspect-1.0 x264enc >/dev/null 2>&1; then
    # 4:2:0 (else x264enc picks 4:4:4 from the RGB frames, which most players cannot play);
    # constant quality (pass=qual), so the size follows the picture, not a fixed bitrate.
    VENC=("video/x-raw,format=I420" ! x264enc speed-preset=faster pass=qual quantizer=20 ! h264parse)
  else
    echo "x264enc not found (Debian package gstreamer1.0-plugins-ugly): writing MPEG-4 part 2" >&2
    need_gst avenc_mpeg4 gstreamer1.0-libav
    VENC=(avenc_mpeg4 bitrate=4000000 ! mpeg4videoparse)
  fi
}
