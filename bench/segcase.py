"""Case 5: segmentation speed.

The figures come from ``bench/bench_segment.py`` (owned by the segmentation engineer), run as a
child process; each line of its output that states a figure and a target ("= 812x real time
... target >= 500x", "peak RSS 95 MB (target < 200 MB)") becomes a row, and the output is also
kept verbatim for the report. If that script is missing, one figure is measured here instead:
``dubkit.segment.segment`` over the decoded 16 kHz audio of case 1's input, as a realtime
factor.
"""

from __future__ import annotations

import logging
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import inputs
from harness import PYTHON, Row, median, spread

log = logging.getLogger(__name__)

CASE = "5. segmentation (bench/bench_segment.py)"
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


_SPEED = re.compile(r"^(?P<what>[^:]+):.*?(?P<x>\d+)x real time.*target >= (?P<t>\d+)x")
_RSS = re.compile(r"^(?P<what>[^:]+):.*peak RSS (?P<mb>\d+) MB \(target < (?P<t>\d+) MB\)")


def parse_rows(out: str) -> list[Row]:
    """Rows for the lines of bench_segment.py's output that state a figure and its target."""
    rows = []
    for line in out.splitlines():
        if m := _SPEED.search(line):
            x, t = int(m["x"]), int(m["t"])
            rows.append(Row(CASE, m["what"], f"{x}x realtime", f">= {t}x", x >= t))
        elif m := _RSS.search(line):
            mb, t = int(m["mb"]), int(m["t"])
            speed = re.search(r"\((\d+)x real time\)", line)
            note = f"segment() {speed[1]}x realtime" if speed else ""
            rows.append(Row(CASE, m["what"] + ": peak RSS", f"{mb} MB", f"< {t} MB", mb < t, note))
    return rows


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
        "5. segmentation (measured by run.py)",
        f"segment() on {audio_s / 60:.0f} min of decoded 16 kHz audio",
        f"{audio_s / median(walls):.0f}x realtime",
        note=f"{spread(walls, digits=2)}, {found} utterances",
    )  # fmt: skip


def case_segment(quick: bool, seconds: int, runs: int) -> SegmentReport:
    if not BENCH_SEGMENT.exists():
        rows = [_own_figure(seconds, runs)]
        rows.append(Row(CASE, "bench/bench_segment.py", "missing", note="measured here instead"))
        return SegmentReport(rows, "")
    out, wall, code = _bench_segment(quick)
    log.info("bench_segment.py took %.1f s", wall)
    rows = parse_rows(out) if code == 0 else []
    if code != 0 or not rows:
        rows.append(Row(CASE, "bench/bench_segment.py", f"status {code}, {len(rows)} figures",
                        note="see its output below the table", ok=False))  # fmt: skip
    return SegmentReport(rows, out)
