#!/usr/bin/env bash
# Offline conversion of a video file: every face restyled, the audio kept, no frame dropped.
#
# Needs: ./setup.sh done (the element in build/plugin, or installed with meson install);
#        Debian packages gstreamer1.0-plugins-base/-good/-bad, gstreamer1.0-libav (decoders, AAC
#        encoder), gstreamer1.0-plugins-ugly (x264enc; without it MPEG-4 part 2 is written),
#        gstreamer1.0-plugins-base-apps (gst-discoverer-1.0: does the input have audio?);
#        a model file (default: the demo model examples/models/demo-faces-64.safetensors).
#        No GPU needed: device=auto takes CUDA when there is one, else the CPU.
#
# Usage:  examples/convert-file.sh IN OUT [DOMAIN] [SEED]
#   IN      any file GStreamer decodes (video with or without audio)
#   OUT     .mp4 / .mov (H.264 + AAC) or .mkv (the same streams in Matroska)
#   DOMAIN  a domain of the model (default: female), SEED the style seed (default: 7)
# Env:    MODEL, BUILD_DIR (see lib.sh); ELEMENT_OPTS extra element properties, e.g.
#         ELEMENT_OPTS="psi=0.7 view=side-by-side" or ELEMENT_OPTS="reference=face.jpg".
# Example (from the repository root):
#   examples/convert-file.sh /usr/share/doc/opencv-doc/examples/data/Megamind.avi out/megamind-male.mp4 male 3
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

[[ $# -ge 2 && $# -le 4 ]] || die "usage: $0 IN OUT [DOMAIN] [SEED]"
IN=$1 OUT=$2 DOMAIN=${3:-female} SEED=${4:-7}
[[ -f $IN ]] || die "input $IN not found"
use_element
need_model
need gst-discoverer-1.0 gstreamer1.0-plugins-base-apps

video_output "$OUT"  # MUX, VENC (lib.sh)

# decodebin puts mpeg4videoparse before the MPEG-4 part 2 decoder; on AVI files with packed
# B-frames (Megamind.avi) it stamps many frames with the previous frame's time, and encoders then
# drop them. Without the parser the decoder keeps every timestamp distinct.
export GST_PLUGIN_FEATURE_RANK="mpeg4videoparse:NONE${GST_PLUGIN_FEATURE_RANK:+,$GST_PLUGIN_FEATURE_RANK}"

# The audio branch exists only when the input has an audio stream (else decodebin would have no
# pad for it and the pipeline would not start).
STREAMS=$(gst-discoverer-1.0 "$IN" 2>&1) || die "cannot read $IN: $STREAMS"
grep -qE '^ *video #' <<<"$STREAMS" || die "$IN: no video stream that GStreamer can read:
$STREAMS"
if grep -qE '^ *audio #' <<<"$STREAMS"; then
  need_gst avenc_aac gstreamer1.0-libav
  # Unlimited queue: the video branch is slow and the encoder holds frames back (look-ahead), so
  # the muxer takes audio late; a bounded audio queue would then block the demuxer and deadlock.
  AUDIO=(d. ! audio/x-raw ! queue max-size-time=0 max-size-bytes=0 max-size-buffers=0 !
         audioconvert ! audioresample ! avenc_aac bitrate=192000 ! aacparse ! queue ! mux.)
else
  echo "$IN has no audio stream: writing video only" >&2
  AUDIO=()
fi

# Written as a hidden .part file next to OUT and renamed when the pipeline succeeded (lib.sh).
start_output "$OUT"
# No leaky queue and a non-live file source: the element translates every frame (never drops
# offline); filesink does not sync to the clock, so it runs as fast as the CPU/GPU allows.
# shellcheck disable=SC2086
launch -e \
  filesrc location="$IN" ! decodebin name=d \
  d. ! video/x-raw ! queue ! videoconvert ! \
    starganv2 checkpoint="$MODEL" domain="$DOMAIN" seed="$SEED" ${ELEMENT_OPTS:-} ! \
    videoconvert ! "${VENC[@]}" ! queue ! mux. \
  "${AUDIO[@]}" \
  $MUX name=mux ! filesink location="$PART" sync=false
finish_output "$OUT"
echo "wrote $OUT" >&2
