"""``dubkit segments``: the voice-activity utterances of a file (no network)."""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from dubkit import media, speakers
from dubkit.cli import common
from dubkit.cli.options import add_segment_options, segment_options
from dubkit.pipeline import analyze
from dubkit.pipeline.options import SPEAKER_MODES
from dubkit.segment import SegmentOptions
from dubkit.speakers import SpeakerInfo
from dubkit.speakers.heard import LOOKAHEAD_MS, labels_of
from dubkit.types import Utterance

EXAMPLES = """examples:
  dubkit segments talk.mp4
  dubkit segments talk.mp4 --json > utterances.json
"""


def register(sub: Any) -> None:
    p = sub.add_parser(
        "segments", help="list the speech utterances (no network)",
        description="Run voice activity detection and print the utterances, each with its "
        "speaker (S1, S2, ... as `dub --voices` names them), the speaker's gender and its F0.",
        epilog=EXAMPLES, formatter_class=common.HelpFormatter,
    )  # fmt: skip
    p.add_argument("input", type=Path, metavar="INPUT", help="video or audio file")
    p.add_argument(
        "--json",
        action="store_true",
        help='a JSON list of {"start_ms", "end_ms", "speaker", "gender", "f0_hz"}',
    )
    p.add_argument(
        "--speakers",
        choices=SPEAKER_MODES,
        default="heard",
        help="label the speakers as `dub` does by default (each as heard) or as `dub "
        "--speakers whole` does (from the whole file)",
    )
    p.add_argument("--debug", action="store_true", help="verbose logs and tracebacks")
    add_segment_options(p)
    p.set_defaults(run=run, quiet=False)


def speakers_of(
    path: Path, options: SegmentOptions, mode: str = "heard"
) -> tuple[list[Utterance], tuple[SpeakerInfo, ...]]:
    """The utterances of ``path`` and who speaks each (the audio kept on disk meanwhile),
    labelled as a dub with ``speakers=mode`` labels them."""
    info = media.require_audio(media.probe(path))
    with tempfile.TemporaryDirectory(prefix="dubkit-") as work:
        audio, utterances = analyze(path, options, Path(work), None, info.duration_ms)
        feats = speakers.analyze(audio, utterances)
    if mode == "whole":
        return utterances, speakers.cluster(feats).utterances
    spans = [(u.core_start_ms, u.end_ms) for u in utterances]  # as the speaker child hears them
    return utterances, labels_of(feats, spans, LOOKAHEAD_MS).utterances


def run(args: argparse.Namespace) -> int:
    utterances, who = speakers_of(args.input, segment_options(args), args.speakers)
    if args.json:
        rows = [
            {"start_ms": u.start_ms, "end_ms": u.end_ms, "speaker": w.speaker,
             "gender": w.gender, "f0_hz": round(w.f0_hz)}
            for u, w in zip(utterances, who, strict=True)
        ]  # fmt: skip
        print(json.dumps(rows))
        return 0
    print(f"{'#':>4}  {'start':>10}  {'end':>10}  {'duration':>8}  speaker")
    for i, (u, w) in enumerate(zip(utterances, who, strict=True), 1):
        print(
            f"{i:4d}  {_clock(u.start_ms):>10}  {_clock(u.end_ms):>10}  "
            f"{u.duration_ms / 1000:7.2f}s  {w.speaker} {w.gender} {w.f0_hz:.0f} Hz"
        )
    print(
        f"{len(utterances)} utterances, "
        f"{sum(u.duration_ms for u in utterances) / 1000:.1f} s of speech"
    )
    return 0


def _clock(ms: int) -> str:
    m, s = divmod(ms / 1000, 60)
    return f"{int(m):d}:{s:06.3f}"
