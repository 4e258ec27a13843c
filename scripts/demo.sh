#!/usr/bin/env bash
# Set up, then dub the bundled English example into Spanish with the offline engine
# (or with qwen3-livetranslate-flash when DASHSCOPE_API_KEY is set).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p out
.venv/bin/dubkit dub examples/talk.mp4 --from en --to es --format srt,vtt --out-dir out "$@"
