"""Segmentation figures on real human speech (not a test): recall, boundaries, requests.

Run: ``.venv/bin/python bench/bench_realspeech.py``. The programs come from
``fixtures/realspeech.py`` (Debian's codec2-examples laid over a room tone, music and noise).
Seed 0 is the layout the defaults were chosen on; seeds 1-3 are held out (other orders, gaps,
noise and music) and show whether the figures hold beyond it. Each row is printed for the
default detector and for webrtcvad alone.

Requests per minute of speech: each utterance is one request, and the service allows 100 a
minute, so a 10-minute video needs at least ``requests / 100`` minutes to be translated.
"""

from __future__ import annotations

import argparse
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


def row(name: str, seed: int, options: SegmentOptions) -> str:
    prog = rs.program(name, seed)
    t0 = time.perf_counter()
    utts = segment(prog.audio, options)
    speed = prog.duration_ms / 1000 / (time.perf_counter() - t0)
    s = rs.score(prog, utts)
    speech_min = sum(x.end_ms - x.start_ms for x in prog.sentences) / 60_000
    per_min = s.utterances / speech_min
    return (
        f"| {name} | {seed} | {s.coverage * 100:.1f}% | {s.missed}/{s.sentences} "
        f"| {s.boundary_p90_ms:.0f} | {s.boundary_max_ms:.0f} | {s.per_sentence:.2f} "
        f"| {s.false_s:.1f} | {s.mean_utterance_s:.1f} | {per_min:.1f} "
        f"| {per_min * 10 / RPM:.2f} | {speed:.0f}x |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2, 3])
    args = parser.parse_args()
    if not rs.available():
        print("codec2-examples is not installed (bash scripts/setup.sh installs it)")
        return 2
    print(f"{time.strftime('%Y-%m-%d')} {platform.machine()} Python {platform.python_version()}")
    header = (
        "| condition | seed | words' time covered | sentences missed | boundary P90 ms "
        "| max ms | utterances per sentence | music/noise-only s | mean utterance s "
        "| requests per min of speech | min of quota per 10 min of speech | speed |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|"
    )
    for detector in ("webrtcvad+silero", "webrtcvad"):
        options = SegmentOptions(detector=detector)
        print(f"\ndetector {detector}\n\n{header}")
        for name in rs.CONDITIONS:
            for seed in args.seeds:
                print(row(name, seed, options), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
