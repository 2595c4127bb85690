#!/usr/bin/env bash
# Whole-frame mode for AFHQ-style models (cat / dog / wild animal faces): no face detection, the
# whole frame is resized to the model's size, translated, and resized back (mode=frame).
#
# Needs: an AFHQ-style model, e.g. the authors' AFHQ weights converted with convert-official.sh
#        (default MODEL: examples/models/afhq.safetensors, which is not shipped) or one you trained
#        on AFHQ with train-folder.sh; an image or video of an animal face, filling the frame like
#        the AFHQ images do (a square, centred, close crop works best);
#        ./setup.sh done (the element in build/plugin, or installed); Debian packages
#        gstreamer1.0-plugins-base/-good (decoders, pngenc/jpegenc), gstreamer1.0-libav, and
#        gstreamer1.0-plugins-ugly for an .mp4 output (x264enc). No GPU needed for images.
#
# Usage:  examples/afhq-frame-mode.sh IN OUT [DOMAIN] [SEED]      (default domain: dog, seed 7)
#   IN    an image (.jpg, .png, ...) or a video; OUT .png / .jpg for an image, .mp4 / .mkv for a
#         video (then with the audio, through convert-file.sh)
# Env:    MODEL, BUILD_DIR (see lib.sh), ELEMENT_OPTS extra element properties (e.g. psi=0.7)
# Example: MODEL=afhq.safetensors examples/afhq-frame-mode.sh cat.jpg out/cat-as-wild.png wild
set -euo pipefail
MODEL=${MODEL:-$(dirname "$0")/models/afhq.safetensors}
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

[[ $# -ge 2 && $# -le 4 ]] || die "usage: $0 IN OUT [DOMAIN] [SEED]"
IN=$1 OUT=$2 DOMAIN=${3:-dog} SEED=${4:-7}
[[ -f $IN ]] || die "input $IN not found"
use_element
[[ -f $MODEL ]] || die "model file $MODEL not found: convert the authors' AFHQ weights with examples/convert-official.sh afhq ..., or set MODEL=/path/to/model.safetensors"

case "${OUT,,}" in
  *.png) ENC=pngenc ;;
  *.jpg | *.jpeg) ENC="jpegenc quality=95" ;;
  *.mp4 | *.mov | *.mkv)
    MODEL=$MODEL ELEMENT_OPTS="mode=frame ${ELEMENT_OPTS:-}" exec "$EXAMPLES_DIR/convert-file.sh" "$IN" "$OUT" "$DOMAIN" "$SEED" ;;
  *) die "output $OUT: use .png or .jpg for an image, .mp4, .mov or .mkv for a video" ;;
esac

# A still image is a one-buffer stream: decode it, translate it, encode it (into a .part file
# renamed on success, lib.sh).
start_output "$OUT"
# shellcheck disable=SC2086
launch \
  filesrc location="$IN" ! decodebin ! videoconvert ! \
  starganv2 checkpoint="$MODEL" mode=frame domain="$DOMAIN" seed="$SEED" ${ELEMENT_OPTS:-} ! \
  videoconvert ! $ENC ! filesink location="$PART"
finish_output "$OUT"
echo "wrote $OUT" >&2
