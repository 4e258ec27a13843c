"""Subtitles only: translate the speech to text (no synthesis, cheaper) and write SRT and VTT.

    python examples/subtitles_only.py [INPUT] [--to es] [--out-dir out] [--base-url URL]

INPUT defaults to ``examples/talk.mp4``. Writes ``<stem>.<lang>.srt``,
``<stem>.<lang>.vtt`` and ``<stem>.<lang>.dubkit.json`` in ``--out-dir`` and prints
the first cues. The requests ask for ``modalities=["text"]`` only.

Engine: the cloud when ``--base-url`` is given or DASHSCOPE_API_KEY is set,
otherwise the offline local engine (pocketsphinx -> Apertium).
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


def write_subtitles(video: Path, lang: str, out_dir: Path, translator: Translator) -> int:
    options = dubkit.Options(target=lang, out_dir=out_dir, formats=("srt", "vtt"))
    result = dubkit.subtitle(video, options, translator)
    print(f"{len(result.cues)} cues from {len(result.results)} utterances ({result.engine})")
    for cue in result.cues[:3]:
        text = " / ".join(cue.lines)
        print(f"  {cue.start_ms / 1000:7.2f} -> {cue.end_ms / 1000:7.2f}  {text}")
    for path in (*result.outputs.subtitles, result.outputs.manifest):
        print(f"wrote {path}")
    return 4 if result.failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", nargs="?", type=Path, default=TALK, help="video or audio file")
    parser.add_argument("--to", default="es", help="target language (default: es)")
    parser.add_argument("--out-dir", type=Path, default=Path("out"), help="default: ./out")
    parser.add_argument("--base-url", help="a compatible server, such as `dubkit emulate`")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    try:
        return write_subtitles(args.input, args.to, args.out_dir, pick_translator(args.base_url))
    except dubkit.DubkitError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_status


if __name__ == "__main__":
    sys.exit(main())
