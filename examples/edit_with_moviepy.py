"""Edit with moviepy: cut a clip, dub it with dubkit.moviepy, burn the captions in, write it.

    python examples/edit_with_moviepy.py [INPUT] [--start 4] [--end 11] [--to es]
                                         [--out-dir out] [--base-url URL]

INPUT defaults to ``examples/talk.mp4``. Writes ``<stem>-cut.<lang>.mp4`` (the cut, dubbed,
with hard subtitles, re-encoded by moviepy at a small size and speed) and, from the
dubbing itself, ``<stem>-cut.<lang>.srt``, ``.wav`` (the dubbed audio) and
``.dubkit.json``. Times in the subtitles are relative to the cut.

Engine: the cloud when ``--base-url`` is given or DASHSCOPE_API_KEY is set,
otherwise the offline local engine.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from moviepy import VideoFileClip

import dubkit
from dubkit.moviepy import burn_subtitles, dub_clip
from dubkit.translate.engines import EngineOptions, make_translator
from dubkit.translate.protocol import Translator

TALK = Path(__file__).resolve().parent / "talk.mp4"


def pick_translator(base_url: str | None) -> Translator:
    """Cloud with --base-url or DASHSCOPE_API_KEY, otherwise the offline engine."""
    engine = "cloud" if base_url or os.environ.get("DASHSCOPE_API_KEY") else "local"
    return make_translator(EngineOptions(engine=engine, base_url=base_url))


def edit(
    video: Path, start: float, end: float, lang: str, out_dir: Path, translator: Translator
) -> Path:
    """Cut ``[start, end)`` seconds, dub it, burn the cues in; the path of the written video."""
    name = f"{video.stem}-cut"
    output = out_dir / f"{name}.{lang}.mp4"
    with VideoFileClip(str(video)) as source:
        cut = source.subclipped(start, end)
        dubbed = dub_clip(cut, dubkit.Options(target=lang, out_dir=out_dir), translator, name=name)
        for cue in dubbed.cues:
            text = " / ".join(cue.lines)
            print(f"  {cue.start_ms / 1000:6.2f} -> {cue.end_ms / 1000:6.2f}  {text}")
        final = burn_subtitles(dubbed.clip, dubbed.cues)
        final.write_videofile(
            str(output), fps=source.fps, codec="libx264", preset="ultrafast",
            audio_codec="aac", threads=1, logger=None,
        )  # fmt: skip
    result = dubbed.result
    for path in (output, result.outputs.media, *result.outputs.subtitles, result.outputs.manifest):
        print(f"wrote {path}")
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", nargs="?", type=Path, default=TALK, help="a video file")
    parser.add_argument("--start", type=float, default=4.0, help="cut start, s (default: 4)")
    parser.add_argument("--end", type=float, default=11.0, help="cut end, s (default: 11)")
    parser.add_argument("--to", default="es", help="target language (default: es)")
    parser.add_argument("--out-dir", type=Path, default=Path("out"), help="default: ./out")
    parser.add_argument("--base-url", help="a compatible server, such as `dubkit emulate`")
    args = parser.parse_args(argv)
    if not 0 <= args.start < args.end:
        parser.error("need 0 <= --start < --end")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    try:
        translator = pick_translator(args.base_url)
        edit(args.input, args.start, args.end, args.to, args.out_dir, translator)
    except dubkit.DubkitError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_status
    return 0


if __name__ == "__main__":
    sys.exit(main())
