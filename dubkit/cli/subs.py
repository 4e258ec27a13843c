"""``dubkit subs``: translated subtitles only (text modality, cheaper)."""

from __future__ import annotations

import argparse
from typing import Any

from dubkit.cli import common
from dubkit.cli.options import add_job_options
from dubkit.pipeline import Result, subtitle

EXAMPLES = """examples:
  dubkit subs talk.mp4 --to es                # talk.es.srt
  dubkit subs talk.mp4 --to es,fr,ja          # talk.es.srt, talk.fr.srt, talk.ja.srt
  dubkit subs talk.mp4 --to zh --format srt,vtt
  dubkit subs *.mkv --to French --from en --out-dir subs/
"""


def register(sub: Any) -> None:
    p = sub.add_parser(
        "subs", help="translated subtitles only",
        description="Segment and translate (text only) into SRT/WebVTT sidecar files.",
        epilog=EXAMPLES, formatter_class=common.HelpFormatter,
    )  # fmt: skip
    add_job_options(p, dubbing=False)
    p.set_defaults(run=run)


def summary(result: Result) -> dict[str, Any]:
    t = result.totals
    return {
        "input": str(result.input), "engine": result.engine, "target": result.target.code,
        "subtitles": [str(p) for p in result.outputs.subtitles],
        "manifest": str(result.outputs.manifest), "utterances": t.utterances,
        "cues": t.cues, "failed": t.failed, "tokens": t.usage.total_tokens,
    }  # fmt: skip


def describe(s: dict[str, Any]) -> str:
    head = (
        f"{s['input']}: {s['utterances']} utterances, {s['cues']} cues, {s['failed']} failed, "
        f"{common.cost(s)}"
    )
    return "\n".join([head, *(f"  wrote {p}" for p in s["subtitles"])])


def run(args: argparse.Namespace) -> int:
    return common.run_job(args, dubbing=False, work=subtitle, summarize=summary, describe=describe)
