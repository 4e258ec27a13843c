"""``dubkit subs``: translated subtitles only (text modality, cheaper)."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from dubkit.cli import common
from dubkit.config import Environment
from dubkit.pipeline import subtitle

EXAMPLES = """examples:
  dubkit subs talk.mp4 --to es                # talk.es.srt
  dubkit subs talk.mp4 --to zh --format srt,vtt
  dubkit subs *.mkv --to French --from en --out-dir subs/
"""


def register(sub: Any) -> None:
    p = sub.add_parser(
        "subs", help="translated subtitles only",
        description="Segment and translate (text only) into SRT/WebVTT sidecar files.",
        epilog=EXAMPLES, formatter_class=common.HelpFormatter,
    )  # fmt: skip
    common.add_job_options(p, dubbing=False)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    env = Environment.read()
    options = common.job_options(args, env, dubbing=False)
    if args.dry_run:
        from dubkit.cli.dryrun import dry_run

        return dry_run(args, options, dubbing=False)
    translator = common.translator(args, env, options, dubbing=False)

    def one(path: Path) -> tuple[int, dict[str, Any]]:
        with common.progress_display(args, path.name) as progress:
            result = subtitle(path, options, translator, progress=progress)
        s: dict[str, Any] = {
            "input": str(path), "engine": result.engine, "target": result.target.code,
            "subtitles": [str(p) for p in result.outputs.subtitles],
            "manifest": str(result.outputs.manifest), "utterances": len(result.results),
            "cues": len(result.cues), "failed": len(result.failed),
            "tokens": result.usage.total_tokens,
        }  # fmt: skip
        if not args.json and not args.quiet:
            print(
                f"{path}: {s['utterances']} utterances, {s['cues']} cues, {s['failed']} failed, "
                f"{s['tokens']} tokens ({s['engine']} engine)"
            )
            for p in s["subtitles"]:
                print(f"  wrote {p}")
        return (4 if result.failed else 0), s

    try:
        return common.run_inputs(args, one)
    finally:
        asyncio.run(translator.aclose())
