"""``dubkit segments``: the voice-activity utterances of a file (no network)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from dubkit.cli import common
from dubkit.segment import segment

EXAMPLES = """examples:
  dubkit segments talk.mp4
  dubkit segments talk.mp4 --json > utterances.json
"""


def register(sub: Any) -> None:
    p = sub.add_parser(
        "segments", help="list the speech utterances (no network)",
        description="Run voice activity detection and print the utterances.",
        epilog=EXAMPLES, formatter_class=common.HelpFormatter,
    )  # fmt: skip
    p.add_argument("input", type=Path, metavar="INPUT", help="video or audio file")
    p.add_argument("--json", action="store_true", help='a JSON list of {"start_ms", "end_ms"}')
    p.add_argument("--debug", action="store_true", help="verbose logs and tracebacks")
    common.add_segment_options(p)
    p.set_defaults(run=run, quiet=False)


def run(args: argparse.Namespace) -> int:
    utterances = segment(args.input, common.segment_options(args))
    if args.json:
        print(json.dumps([{"start_ms": u.start_ms, "end_ms": u.end_ms} for u in utterances]))
        return 0
    print(f"{'#':>4}  {'start':>10}  {'end':>10}  {'duration':>8}")
    for i, u in enumerate(utterances, 1):
        print(
            f"{i:4d}  {_clock(u.start_ms):>10}  {_clock(u.end_ms):>10}  "
            f"{u.duration_ms / 1000:7.2f}s"
        )
    print(
        f"{len(utterances)} utterances, "
        f"{sum(u.duration_ms for u in utterances) / 1000:.1f} s of speech"
    )
    return 0


def _clock(ms: int) -> str:
    m, s = divmod(ms / 1000, 60)
    return f"{int(m):d}:{s:06.3f}"
