#!/usr/bin/env bash
# Train StarGAN v2 on your own folder of images, then restyle with the result.
#
# Needs: ./setup.sh done (starganv2-train in build/trainer and the element in build/plugin, or
#        both installed); images in DATA_DIR, one sub-folder per domain, at least a few per domain:
#          DATA_DIR/female/*.jpg  DATA_DIR/male/*.jpg        (domain names = sorted folder names)
#        For faces, the images should be aligned like CelebA-HQ (face centred, eyes level); AFHQ-style
#        animal faces are square close crops. Real training wants a GPU: the paper trains 100k
#        iterations at 256x256 (about three days on one V100); --tiny runs in minutes on a CPU and
#        only shows the chain working.
#
# Usage:  examples/train-folder.sh DATA_DIR OUT_DIR [--tiny] [-- MORE TRAINER OPTIONS]
#   --tiny   a tiny model (32x32, narrow) for 200 iterations on the CPU: a quick try, not quality
#   after -- any starganv2-train option, e.g. -- --total-iters 50000 --batch-size 16 --preset afhq
#            (see build/trainer/starganv2-train --help). Ctrl-C stops training and prints the
#            command that continues it (starganv2-train --resume latest --out OUT_DIR); running
#            this script again with -- --resume latest does the same and then tries the model.
# Then:   the newest OUT_DIR/checkpoints/model-*.safetensors is used by the element on TRY_INPUT
#         (default: astronaut.png from Debian's python3-skimage, a portrait; face mode), one picture
#         per domain in OUT_DIR/try-<domain>.png.
# Env:    BUILD_DIR (see lib.sh), TRY_INPUT an image to try the model on, MODE face|frame (frame
#         for AFHQ-like data), DEVICE auto|cpu|cuda (default auto).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

[[ $# -ge 2 ]] || die "usage: $0 DATA_DIR OUT_DIR [--tiny] [-- MORE TRAINER OPTIONS]"
DATA=$1 OUT=$2
shift 2
TINY=0
if [[ ${1:-} == --tiny ]]; then TINY=1; shift; fi
if [[ ${1:-} == -- ]]; then shift; fi
[[ -d $DATA ]] || die "data folder $DATA not found"
mapfile -t DOMAINS < <(find "$DATA" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | LC_ALL=C sort)
((${#DOMAINS[@]} >= 2)) || die "$DATA needs one sub-folder per domain, at least two (found ${#DOMAINS[@]})"

TRAIN=$BUILD_DIR/trainer/starganv2-train
[[ -x $TRAIN ]] || TRAIN=$(command -v starganv2-train) ||
  die "starganv2-train not found: run ./setup.sh or set BUILD_DIR to your build folder"

if ((TINY)); then
  # Small enough for a 2-core CPU (a few iterations per second): every network narrow, 32x32,
  # no high-pass skips (so no FAN file is needed).
  SIZE=(--preset tiny --img-size 32
        --w-hpf 0 --batch-size 2 --total-iters 200 --ds-iter 200 --save-every 100 --sample-every 100 --print-every 50
        --device cpu --workers 1)
  # One compute thread: networks this small gain nothing from more, and on a CPU that is busy
  # with anything else OpenMP's waiting threads made each iteration ten times slower.
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
else
  # The paper's settings at 256x256 without the high-pass skips (w_hpf 1 needs the FAN weights:
  # add -- --preset celeba_hq --fan wing.safetensors for faces like the paper).
  SIZE=(--img-size 256 --w-hpf 0 --device "${DEVICE:-auto}")
fi
echo "+ $TRAIN --train-dir $DATA --out $OUT ${SIZE[*]} $*" >&2
"$TRAIN" --train-dir "$DATA" --out "$OUT" "${SIZE[@]}" "$@"

MODEL=$(find "$OUT/checkpoints" -name 'model-*.safetensors' | LC_ALL=C sort | tail -n 1)
[[ -n $MODEL ]] || die "no model file in $OUT/checkpoints"
echo "model: $MODEL (domains: ${DOMAINS[*]})" >&2

# Use it: one picture per domain through the element (a still image is a one-frame video).
use_element
TRY_INPUT=${TRY_INPUT:-/usr/lib/python3/dist-packages/skimage/data/astronaut.png}
[[ -f $TRY_INPUT ]] || die "no image to try the model on: set TRY_INPUT (astronaut.png comes with Debian's python3-skimage)"
for d in "${DOMAINS[@]}"; do
  start_output "$OUT/try-$d.png"
  launch -q filesrc location="$TRY_INPUT" ! decodebin ! videoconvert ! \
    starganv2 checkpoint="$MODEL" domain="$d" mode="${MODE:-face}" ! \
    videoconvert ! pngenc ! filesink location="$PART"
  finish_output "$OUT/try-$d.png"
  echo "wrote $OUT/try-$d.png" >&2
done
cat >&2 <<EOF
Next: the model in a pipeline, e.g.
  MODEL=$MODEL examples/convert-file.sh IN.mp4 OUT.mp4 ${DOMAINS[1]}
  MODEL=$MODEL examples/webcam-window.sh ${DOMAINS[0]}
EOF
