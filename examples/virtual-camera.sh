#!/usr/bin/env bash
# Your webcam, restyled live, as a virtual camera that video-call apps (browser meetings, Zoom,
# OBS, ...) can pick like any other camera.
#
# Needs: a webcam (V4L2, e.g. /dev/video0); the v4l2loopback kernel module (Debian package
#        v4l2loopback-dkms, built for your kernel; needs the kernel headers), loaded once per boot:
#          sudo apt-get install v4l2loopback-dkms
#          sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label=StarGANv2
#        (exclusive_caps=1: browsers list the device only when it says it is a capture device);
#        ./setup.sh done (the element in build/plugin, or installed); Debian packages
#        gstreamer1.0-plugins-base/-good (v4l2src, v4l2sink), gstreamer1.0-libav (MJPEG cameras);
#        a model file (default: the demo model in examples/models). Live frame rates need a GPU or
#        a small model (see webcam-window.sh).
#
# Usage:  examples/virtual-camera.sh [DOMAIN] [SEED]   then pick "StarGANv2" in the app; Ctrl-C stops
# Env:    CAMERA (default /dev/video0), OUTPUT the loopback device (default: the one whose name
#         is StarGANv2, found in /sys/class/video4linux), WIDTH x HEIGHT of the virtual camera
#         (640x480; a camera of another shape is letterboxed, never stretched), FORMAT of the
#         virtual camera, YUY2 (default) or I420: what video-call apps read;
#         MODEL, BUILD_DIR (see lib.sh), ELEMENT_OPTS extra element properties;
#         SOURCE / SINK replace the camera / the loopback device by any GStreamer description, e.g.
#           SOURCE="videotestsrc is-live=true num-buffers=60" SINK=fakesink examples/virtual-camera.sh
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

DOMAIN=${1:-female} SEED=${2:-7}
CAMERA=${CAMERA:-/dev/video0} WIDTH=${WIDTH:-640} HEIGHT=${HEIGHT:-480} FORMAT=${FORMAT:-YUY2}
use_element
need_model
if [[ -z ${SOURCE:-} ]]; then
  [[ -e $CAMERA ]] || die "no camera at $CAMERA (set CAMERA=/dev/videoN; list them with: v4l2-ctl --list-devices)"
  need_gst v4l2src gstreamer1.0-plugins-good
  SOURCE="v4l2src device=$CAMERA ! decodebin"
fi
if [[ -z ${SINK:-} ]]; then
  if [[ -z ${OUTPUT:-} ]]; then
    for d in /sys/class/video4linux/video*; do
      [[ -f $d/name && $(cat "$d/name") == StarGANv2 ]] && OUTPUT=/dev/$(basename "$d") && break
    done
  fi
  [[ -n ${OUTPUT:-} && -e $OUTPUT ]] ||
    die "no v4l2loopback device${OUTPUT:+ at $OUTPUT}: load the module with 'sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label=StarGANv2' (package v4l2loopback-dkms) or set OUTPUT=/dev/videoN"
  [[ $OUTPUT != "$CAMERA" ]] || die "OUTPUT and CAMERA are both $CAMERA"
  need_gst v4l2sink gstreamer1.0-plugins-good
  SINK="v4l2sink device=$OUTPUT sync=false"
fi

# As in webcam-window.sh: a one-frame leaky queue keeps the picture current when the element is
# slower than the camera. Video-call apps expect a standard size and format, and the loopback
# device offers the apps the first one it is given, so both are fixed here.
# shellcheck disable=SC2086
launch \
  $SOURCE ! videoconvert ! videoscale add-borders=true ! \
  video/x-raw,width="$WIDTH",height="$HEIGHT",pixel-aspect-ratio=1/1 ! \
  queue leaky=downstream max-size-buffers=1 max-size-bytes=0 max-size-time=0 ! \
  starganv2 checkpoint="$MODEL" domain="$DOMAIN" seed="$SEED" ${ELEMENT_OPTS:-} ! \
  videoconvert ! video/x-raw,format="$FORMAT" ! $SINK
