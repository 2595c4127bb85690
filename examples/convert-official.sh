#!/usr/bin/env bash
# Use the authors' pretrained StarGAN v2 networks: convert their PyTorch checkpoint once into a
# starganv2 model file (safetensors), then use it like any other model.
#
# Needs: the official checkpoints, which this project does not ship or download. They come with
#        the authors' code, https://github.com/clovaai/stargan-v2 (licence CC BY-NC 4.0, non-commercial):
#        in a clone of it, `bash download.sh pretrained-network-celeba-hq`, `bash download.sh
#        pretrained-network-afhq` and `bash download.sh wing` fetch
#          expr/checkpoints/celeba_hq/100000_nets_ema.ckpt   (faces: female, male; w_hpf 1)
#          expr/checkpoints/afhq/100000_nets_ema.ckpt        (animals: cat, dog, wild; w_hpf 0)
#          expr/checkpoints/wing.ckpt                        (the FAN face-mask network CelebA-HQ needs)
#        ./setup.sh done (build/model/starganv2-convert-official, which runs with .venv's torch,
#        reads the checkpoints; starganv2-inspect in build/model checks the result). The 256x256
#        networks run at interactive rates only on a GPU.
#        For the FAN alone (starganv2-train --fan, the element's fan-checkpoint):
#          build/model/starganv2-convert-official --wing expr/checkpoints/wing.ckpt --out wing.safetensors
#
# Usage:  examples/convert-official.sh celeba_hq NETS_EMA_CKPT WING_CKPT [OUT]
#         examples/convert-official.sh afhq NETS_EMA_CKPT [OUT]
#   OUT   default examples/models/celeba_hq.safetensors or examples/models/afhq.safetensors
# Then:   MODEL=examples/models/celeba_hq.safetensors examples/convert-file.sh IN.mp4 OUT.mp4 male
#         MODEL=examples/models/afhq.safetensors examples/afhq-frame-mode.sh cat.jpg out/wild.png wild
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

# Usage errors are bad input like every other: exit 1 (0 for --help).
usage() {
  sed -n '/^# Usage:/,/^[^#]/p' "$0" | sed -n 's/^# \{0,1\}//p' >&2
  exit "${1:-1}"
}
[[ ${1:-} == -h || ${1:-} == --help ]] && usage 0
[[ $# -ge 2 ]] || usage

# The converter command of the build tree (it runs with the python the build took torch from),
# else the installed one, else the script with the venv's python.
if [[ -x $BUILD_DIR/model/starganv2-convert-official ]]; then
  CONVERT=("$BUILD_DIR/model/starganv2-convert-official")
elif command -v starganv2-convert-official >/dev/null 2>&1; then
  CONVERT=(starganv2-convert-official)
else
  PYTHON=$ROOT/.venv/bin/python
  [[ -x $PYTHON ]] || PYTHON=python3
  "$PYTHON" -c "import torch" 2>/dev/null || die "$PYTHON cannot import torch: run ./setup.sh (it creates .venv with torch)"
  CONVERT=("$PYTHON" "$ROOT/model/convert_official.py")
fi

case $1 in
  celeba_hq)
    [[ $# -ge 3 && $# -le 4 ]] || usage
    NETS=$2 WING=$3 OUT=${4:-$ROOT/examples/models/celeba_hq.safetensors}
    [[ -f $WING ]] || die "FAN weights $WING not found (wing.ckpt: bash download.sh wing in the authors' repository)"
    ARGS=(--wing "$WING" --domains female male) ;;
  afhq)
    [[ $# -le 3 ]] || usage
    NETS=$2 OUT=${3:-$ROOT/examples/models/afhq.safetensors}
    ARGS=(--domains cat dog wild) ;;
  *) die "first argument: celeba_hq or afhq, not '$1'" ;;
esac
[[ -f $NETS ]] || die "checkpoint $NETS not found (100000_nets_ema.ckpt: see the header of $0)"

echo "+ ${CONVERT[*]} $NETS ${ARGS[*]} --out $OUT" >&2
"${CONVERT[@]}" "$NETS" "${ARGS[@]}" --out "$OUT"

# Load it the way the element does: every tensor present, with the right shape.
INSPECT=$BUILD_DIR/model/starganv2-inspect
if [[ -x $INSPECT ]]; then
  "$INSPECT" "$OUT" --load
fi
echo "wrote $OUT; use it with MODEL=$OUT examples/convert-file.sh (faces) or examples/afhq-frame-mode.sh (afhq)" >&2
