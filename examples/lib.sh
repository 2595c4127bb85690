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

# Prints the pipeline, then runs it; gst-launch-1.0 exits non-zero on any error on the bus.
launch() {
  echo "+ gst-launch-1.0 $*" >&2
  gst-launch-1.0 "$@"
}
