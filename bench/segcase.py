"""Case 5: segmentation speed.

The figures come from ``bench/bench_segment.py`` (owned by the segmentation engineer). It is
run as a child process and its output is kept verbatim for the report; if it accepts
``--quick`` that is passed in quick mode. Beside it, one figure measured here the same way as
the other cases: ``dubkit.segment.segment`` over the decoded 16 kHz audio of case 1's input
(decode excluded, so it is the VAD and span logic alone), as a realtime factor.
"""

from __future__ import annotations

import logging
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import inputs
from harness import PYTHON, Row, median, spread

log = logging.getLogger(__name__)

BENCH_SEGMENT = Path(__file__).resolve().parent / "bench_segment.py"


@dataclass(frozen=True, slots=True)
class SegmentReport:
    rows: list[Row]
    verbatim: str  # bench_segment.py's own output, for the report


def _bench_segment(quick: bool) -> tuple[str, float, int]:
    """Run bench_segment.py; its stdout, wall seconds and exit status."""
    help_text = subprocess.run(
        [PYTHON, str(BENCH_SEGMENT), "--help"], capture_output=True, text=True, timeout=120
    ).stdout
    cmd = [PYTHON, str(BENCH_SEGMENT)]
    if quick and "--quick" in help_text:
        cmd.append("--quick")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - t0
    out = proc.stdout.strip()
    if proc.returncode != 0:
        out += "\n" + "\n".join(proc.stderr.strip().splitlines()[-5:])
    return out, wall, proc.returncode


def _own_figure(seconds: int, runs: int) -> Row:
    import numpy as np

    from dubkit.media import iter_pcm16
    from dubkit.segment import segment

    src = inputs.video(inputs.VideoSpec(seconds, 1280, 720, 25))
    pcm = np.concatenate(list(iter_pcm16(src)))
    walls, found = [], 0
    for _ in range(runs):
        t0 = time.perf_counter()
        found = len(segment(pcm))
        walls.append(time.perf_counter() - t0)
    audio_s = len(pcm) / 16_000
    return Row(
        "5. segmentation", f"segment() on {audio_s / 60:.0f} min of decoded 16 kHz audio",
        f"{audio_s / median(walls):.0f}x realtime",
        note=f"{spread(walls, digits=2)}, {found} utterances",
    )  # fmt: skip


def case_segment(quick: bool, seconds: int, runs: int) -> SegmentReport:
    rows = [_own_figure(seconds, runs)]
    verbatim = ""
    if BENCH_SEGMENT.exists():
        out, wall, code = _bench_segment(quick)
        verbatim = out
        ok = code == 0
        rows.append(
            Row(
                "5. segmentation",
                "bench/bench_segment.py (output below the table)",
                f"ran in {wall:.1f} s" if ok else f"failed (status {code})",
                ok=None if ok else False,
            )
        )
    else:
        rows.append(
            Row(
                "5. segmentation",
                "bench/bench_segment.py",
                "not present yet",
                note="figures from the segmentation engineer's script missing",
            )
        )
    return SegmentReport(rows, verbatim)
