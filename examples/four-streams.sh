#!/usr/bin/env bash
# Four videos, four starganv2 elements, one model: the elements load the same model file, so they
# share one loaded model and its engine threads (shared-engine, on by default), and a compositor
# puts the four results into a 2x2 mosaic. Every element keeps its own domain and style.
#
# Needs: ./setup.sh done (the element in build/plugin, or installed); Debian packages
#        gstreamer1.0-plugins-base/-good (decoders, compositor), gstreamer1.0-plugins-ugly for
#        x264enc (without it MPEG-4 part 2 is written).
#
# Usage:  examples/four-streams.sh [OUT] [IN1 IN2 IN3 IN4]
#   OUT   the mosaic, .mp4 or .mkv (default out/four-streams.mp4)
#   INi   the four videos (default: Megamind.avi from opencv-doc, four times, each with its own style)
# Env:    MODEL, BUILD_DIR (see lib.sh), ELEMENT_OPTS extra properties for every element (e.g.
#         shared-engine=false to compare)
# Time:   the whole of Megamind.avi (270 frames) four times takes about 2 minutes on 2 CPU cores.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

OUT=${1:-$ROOT/out/four-streams.mp4}
if [[ $# -ge 5 ]]; then
  INPUTS=("$2" "$3" "$4" "$5")
else
  MEGAMIND=/usr/share/doc/opencv-doc/examples/data/Megamind.avi
  [[ -f $MEGAMIND ]] || die "$MEGAMIND not found (Debian package opencv-doc); give four videos instead"
  INPUTS=("$MEGAMIND" "$MEGAMIND" "$MEGAMIND" "$MEGAMIND")
fi
for f in "${INPUTS[@]}"; do [[ -f $f ]] || die "input $f not found"; done
use_element
need_model
need_gst compositor gstreamer1.0-plugins-base
W=360 H=264  # each tile: half of Megamind's 720x528

video_output "$OUT"  # MUX, VENC (lib.sh)

# Domain and seed of each tile.
STYLES=("domain=female seed=7" "domain=male seed=3" "domain=female seed=21" "domain=male seed=11")
POS=("xpos=0 ypos=0" "xpos=$W ypos=0" "xpos=0 ypos=$H" "xpos=$W ypos=$H")
BRANCHES=()
for i in 0 1 2 3; do
  # The element translates every frame (no leaky queue, non-live sources); the compositor waits
  # for all four and puts them on its own output timeline.
  # shellcheck disable=SC2206
  BRANCHES+=(filesrc location="${INPUTS[$i]}" ! decodebin ! videoconvert !
             starganv2 checkpoint="$MODEL" ${STYLES[$i]} ${ELEMENT_OPTS:-} ! videoconvert ! videoscale !
             "video/x-raw,width=$W,height=$H" ! queue ! mix.sink_$i)
done

start_output "$OUT"
# shellcheck disable=SC2086
launch -e \
  compositor name=mix background=black sink_0::${POS[0]// / sink_0::} sink_1::${POS[1]// / sink_1::} \
    sink_2::${POS[2]// / sink_2::} sink_3::${POS[3]// / sink_3::} ! \
  videoconvert ! "${VENC[@]}" ! $MUX ! filesink location="$PART" \
  "${BRANCHES[@]}"
finish_output "$OUT"
echo "wrote $OUT (4 streams, one model)" >&2
