#!/usr/bin/env bash
# Your webcam, restyled live, in a window.
#
# Needs: a webcam (V4L2, e.g. /dev/video0) and a desktop session (X11 or Wayland) for the window;
#        ./setup.sh done (the element in build/plugin, or installed); Debian packages
#        gstreamer1.0-plugins-base/-good (v4l2src, autovideosink) and gstreamer1.0-libav (for
#        cameras that send MJPEG); a model file (default: the demo model in examples/models).
#        Smooth live video needs a GPU or a small model: the demo model (64x64) runs on a CPU;
#        a 256x256 model on a CPU gives about one frame every few seconds.
#
# Usage:  examples/webcam-window.sh [DOMAIN] [SEED]      (default: female 7; Ctrl-C stops)
# Env:    CAMERA (default /dev/video0), WIDTH the frame width the element works at (default 640;
#         the height follows the camera's aspect ratio),
#         MODEL, BUILD_DIR (see lib.sh), ELEMENT_OPTS extra element properties
#         (e.g. "view=side-by-side detect-interval=3"),
#         SOURCE / SINK replace the camera / the window by any GStreamer description, e.g. to
#         try it without a camera or a display:
#           SOURCE="videotestsrc is-live=true num-buffers=60" SINK=fakesink examples/webcam-window.sh
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

DOMAIN=${1:-female} SEED=${2:-7}
CAMERA=${CAMERA:-/dev/video0} WIDTH=${WIDTH:-640}
use_element
need_model
if [[ -z ${SOURCE:-} ]]; then
  [[ -e $CAMERA ]] || die "no camera at $CAMERA (set CAMERA=/dev/videoN; list them with: v4l2-ctl --list-devices)"
  need_gst v4l2src gstreamer1.0-plugins-good
  # decodebin takes raw frames as they are and decodes MJPEG from cameras that send only that.
  SOURCE="v4l2src device=$CAMERA ! decodebin"
fi
if [[ -z ${SINK:-} ]]; then
  # Without a display autovideosink falls back to DirectFB, which crashes on a headless machine.
  [[ -n ${DISPLAY:-}${WAYLAND_DISPLAY:-} ]] || die "no display (DISPLAY/WAYLAND_DISPLAY unset): run it in a desktop session; without one set SINK=fakesink (or a file sink, see examples/README.md), or use virtual-camera.sh"
  SINK="autovideosink sync=false"
fi

# Live: a one-frame leaky queue in front of the element drops the oldest frame when the element is
# busy, so the picture stays current instead of lagging further and further behind; the window
# shows each frame as soon as it arrives (sync=false).
# shellcheck disable=SC2086
launch \
  $SOURCE ! videoconvert ! videoscale ! video/x-raw,width="$WIDTH",pixel-aspect-ratio=1/1 ! \
  queue leaky=downstream max-size-buffers=1 max-size-bytes=0 max-size-time=0 ! \
  starganv2 checkpoint="$MODEL" domain="$DOMAIN" seed="$SEED" ${ELEMENT_OPTS:-} ! \
  videoconvert ! $SINK
