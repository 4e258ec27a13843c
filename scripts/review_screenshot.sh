#!/usr/bin/env bash
# Makes docs/review.png, the README's picture of the review page: dubs examples/talk.mp4 with
# the offline engine into a temporary folder, opens its talk.es.review.html in headless
# Chromium and keeps a 256-colour PNG of the first screen. Run after scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
.venv/bin/dubkit dub examples/talk.mp4 --to es --engine local --out-dir "$work" --no-cache --quiet
url=$(.venv/bin/python -c 'import pathlib, sys; print(pathlib.Path(sys.argv[1]).resolve().as_uri())' \
    "$work/talk.es.review.html")
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --mute-audio --no-first-run \
    --user-data-dir="$work/profile" --window-size=1280,820 --virtual-time-budget=3000 \
    --screenshot="$work/shot.png" "$url" >/dev/null 2>&1
mkdir -p docs
.venv/bin/python - "$work/shot.png" docs/review.png <<'PY'
import sys

from PIL import Image

Image.open(sys.argv[1]).convert("RGB").quantize(256).save(sys.argv[2], optimize=True)
PY
echo "wrote docs/review.png ($(stat -c %s docs/review.png) bytes)"
