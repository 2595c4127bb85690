#!/usr/bin/env bash
# Flicker of the element on a video: the video is decoded once, and its frames go both straight
# into a lossless file (the input) and through the element, offline (every frame, exact), into
# another (the output); starganv2-eval flicker then gives the warping-error ratio of the two
# (1 = the translated face moves exactly with the input; see README.md, "Measuring the pictures").
#
# Needs: ./setup.sh done (the element and starganv2-eval in build/, or installed), Debian packages
#        gstreamer1.0-plugins-good (avimux), gstreamer1.0-libav (decoders).
#
# Usage:  examples/measure-flicker.sh [IN] [OUT_DIR]
#   IN       any video file GStreamer decodes (default: Megamind.avi from opencv-doc)
#   OUT_DIR  where input.avi, output.avi (raw BGR in AVI: lossless, 1.1 MB a 720x528 frame),
#            flicker.json and flicker.csv are written (default: out/flicker)
# Env:    MODEL, BUILD_DIR (see lib.sh); DOMAIN (default female), SEED (default 7) as the main job;
#         ELEMENT_OPTS extra element properties, e.g. ELEMENT_OPTS="smoothing=0".
# Example (from the repository root):
#   examples/measure-flicker.sh
#   ELEMENT_OPTS="smoothing=0" examples/measure-flicker.sh "" out/flicker-nosmoothing
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

[[ $# -le 2 ]] || die "usage: $0 [IN] [OUT_DIR]"
IN=${1:-/usr/share/doc/opencv-doc/examples/data/Megamind.avi}
[[ -n $IN ]] || IN=/usr/share/doc/opencv-doc/examples/data/Megamind.avi
OUT_DIR=${2:-out/flicker}
[[ -f $IN ]] || die "input $IN not found"
use_element
need_model
need_gst avimux gstreamer1.0-plugins-good
if [[ -x $BUILD_DIR/plugin/starganv2-eval ]]; then
  EVAL=$BUILD_DIR/plugin/starganv2-eval
else
  need starganv2-eval "starganv2 (meson install)"
  EVAL=starganv2-eval
fi

# As in convert-file.sh: without mpeg4videoparse, every frame of an MPEG-4 part 2 AVI keeps its
# own timestamp (the parser repeats some, and a muxer may then drop frames).
export GST_PLUGIN_FEATURE_RANK="mpeg4videoparse:NONE${GST_PLUGIN_FEATURE_RANK:+,$GST_PLUGIN_FEATURE_RANK}"

mkdir -p "$OUT_DIR"
INPUT=$OUT_DIR/input.avi OUTPUT=$OUT_DIR/output.avi
start_output "$INPUT"
PART_INPUT=$PART
start_output "$OUTPUT"
PART_OUTPUT=$PART
# One decode, two branches: the element gets exactly the frames the input file keeps (BGR both
# ways, so no colour conversion stands between them). The element copies a frame the tee shares
# before writing to it.
# shellcheck disable=SC2086
launch -e -q \
  filesrc location="$IN" ! decodebin ! videoconvert ! video/x-raw,format=BGR ! tee name=t \
  t. ! queue ! avimux ! filesink location="$PART_INPUT" \
  t. ! queue ! starganv2 checkpoint="$MODEL" domain="${DOMAIN:-female}" seed="${SEED:-7}" ${ELEMENT_OPTS:-} ! \
    video/x-raw,format=BGR ! avimux ! filesink location="$PART_OUTPUT"
PART=$PART_INPUT finish_output "$INPUT"
PART=$PART_OUTPUT finish_output "$OUTPUT"

"$EVAL" flicker "$INPUT" "$OUTPUT" --quiet --json "$OUT_DIR/flicker.json" --csv "$OUT_DIR/flicker.csv"
echo "per-frame figures: $OUT_DIR/flicker.csv, $OUT_DIR/flicker.json" >&2
