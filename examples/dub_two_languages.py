"""Dub one video into two languages: a dubbed video, subtitles and a manifest for each.

    python examples/dub_two_languages.py [INPUT] [--to es fr] [--out-dir out] [--base-url URL]

INPUT defaults to ``examples/talk.mp4``. For each language it writes, in ``--out-dir``,
``<stem>.<lang>.mp4`` (video copied, dubbed track first, original second, soft
subtitles), ``<stem>.<lang>.srt`` and ``<stem>.<lang>.dubkit.json``.

Engine: the cloud (qwen3-livetranslate-flash) when ``--base-url`` is given or
DASHSCOPE_API_KEY is set, otherwise the offline local engine, which can only dub
into languages whose Apertium pair is installed (``apertium-eng-spa`` gives es).
To try it without a key, start the emulator in another terminal:

    dubkit emulate --port 8000 --api-key sk-test
    DASHSCOPE_API_KEY=sk-test python examples/dub_two_languages.py \\
        --base-url http://127.0.0.1:8000/compatible-mode/v1
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import dubkit
from dubkit.translate.engines import EngineOptions, make_translator
from dubkit.translate.protocol import Translator

TALK = Path(__file__).resolve().parent / "talk.mp4"


def pick_translator(base_url: str | None) -> Translator:
    """Cloud with --base-url or DASHSCOPE_API_KEY, otherwise the offline engine."""
    engine = "cloud" if base_url or os.environ.get("DASHSCOPE_API_KEY") else "local"
    return make_translator(EngineOptions(engine=engine, base_url=base_url))


def dub_into(video: Path, languages: list[str], out_dir: Path, translator: Translator) -> int:
    """Dub ``video`` into each language; print what was written; 4 if any utterance failed."""
    status = 0
    for lang in languages:
        options = dubkit.Options(target=lang, out_dir=out_dir, formats=("srt",))
        result = dubkit.dub(video, options, translator)
        print(
            f"{lang}: {len(result.results)} utterances, {len(result.failed)} failed, "
            f"{result.usage.total_tokens} tokens ({result.engine} engine)"
        )
        for path in (result.outputs.media, *result.outputs.subtitles, result.outputs.manifest):
            print(f"  wrote {path}")
        status = 4 if result.failed else status
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", nargs="?", type=Path, default=TALK, help="video or audio file")
    parser.add_argument("--to", nargs="+", default=["es", "fr"], help="target languages")
    parser.add_argument("--out-dir", type=Path, default=Path("out"), help="default: ./out")
    parser.add_argument("--base-url", help="a compatible server, such as `dubkit emulate`")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    try:
        return dub_into(args.input, args.to, args.out_dir, pick_translator(args.base_url))
    except dubkit.DubkitError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_status


if __name__ == "__main__":
    sys.exit(main())
