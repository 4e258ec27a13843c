"""Segmentation figures on real human speech (not a test): recall, boundaries, requests.

Run: ``.venv/bin/python bench/bench_realspeech.py``. The programs come from
``fixtures/realspeech.py`` (Debian's codec2-examples laid over a room tone, music and noise).
Seed 0 is the layout the defaults were first chosen on; seeds 1-3 are other orders, gaps, noise
and music. Every program is scored against two truths: the noise-floor one (all people) and the
word-level one (Whisper text force-aligned by pocketsphinx, ``fixtures/realspeech_words.json``),
the latter separately over the people settings are tuned on (``rs.TUNING``) and the held-out
people figures are reported on (``rs.REPORTING``). ``--detector webrtcvad`` prints the fast
path instead.

Requests per minute of speech: each utterance is one request, and the service allows 100 a
minute, so a 10-minute video needs at least ``requests / 100`` minutes to be translated.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "fixtures"))
sys.path.insert(0, str(ROOT))

import realspeech as rs  # noqa: E402

from dubkit.segment import SegmentOptions, segment  # noqa: E402

RPM = 100
HEADER = (
    "| condition | seed | floor truth: words' time / P90 ms | words, tuning half: time / missed "
    "/ P90 ms / per sentence | words, reporting half: time / missed / P90 ms / per sentence "
    "| music/noise-only s | requests per min of speech | speed |\n"
    "|---|---|---|---|---|---|---|---|"
)


def _half(s: rs.Score) -> str:
    return (
        f"{s.coverage * 100:.1f}% / {s.missed}/{s.sentences} / {s.boundary_p90_ms:.0f} "
        f"/ {s.per_sentence:.2f}"
    )


def row(name: str, seed: int, options: SegmentOptions) -> tuple[str, list[rs.Score]]:
    prog = rs.program(name, seed)
    t0 = time.perf_counter()
    utts = segment(prog.audio, options)
    speed = prog.duration_ms / 1000 / (time.perf_counter() - t0)
    floor = rs.score(prog, utts)
    tune = rs.score(prog, utts, truth="words", speakers=rs.TUNING)
    report = rs.score(prog, utts, truth="words", speakers=rs.REPORTING)
    speech_min = sum(x.end_ms - x.start_ms for x in prog.sentences) / 60_000
    per_min = floor.utterances / speech_min
    line = (
        f"| {name} | {seed} | {floor.coverage * 100:.1f}% / {floor.boundary_p90_ms:.0f} "
        f"| {_half(tune)} | {_half(report)} | {floor.false_s:.1f} | {per_min:.1f} | {speed:.0f}x |"
    )
    return line, [tune, report]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2, 3])
    parser.add_argument("--conditions", nargs="*", default=list(rs.CONDITIONS))
    parser.add_argument("--detector", default="webrtcvad+silero")
    parser.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE",
                        help="override a SegmentOptions field (tuning)")  # fmt: skip
    args = parser.parse_args()
    if not rs.available():
        print("codec2-examples is not installed (bash scripts/setup.sh installs it)")
        return 2
    options = SegmentOptions(detector=args.detector)
    for item in args.set:
        key, value = item.split("=", 1)
        kind = type(getattr(options, key))
        options = dataclasses.replace(options, **{key: kind(value)})
    print(f"{time.strftime('%Y-%m-%d')} {platform.machine()} Python {platform.python_version()}")
    print(f"{options}\n\n{HEADER}")
    worst: dict[str, list[float]] = {"tuning": [], "reporting": []}
    for name in args.conditions:
        for seed in args.seeds:
            line, (tune, report) = row(name, seed, options)
            print(line, flush=True)
            for half, s in (("tuning", tune), ("reporting", report)):
                worst[half].append(s.boundary_p90_ms)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
