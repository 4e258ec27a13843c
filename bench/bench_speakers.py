"""Figures for speaker analysis (not a test): speed and peak memory on a long input.

Run: ``.venv/bin/python bench/bench_speakers.py [--hours 2]``. The input is real speech
(``fixtures/realspeech.py``: the "turns" and "clean" programs, several layouts) looped to
the length asked for and written as a raw 16 kHz mono PCM16 file under ``bench/.cache/``
(not committed), the way :func:`dubkit.pipeline.analyze` keeps a job's audio on disk. The
utterances are the segmenter's on each program, shifted with each loop, so only the
speaker analysis is timed. It runs in a fresh subprocess: ``ru_maxrss`` is its peak
memory, next to the same process's memory before the analysis (imports and utterances).
Target: at least 100x real time, memory flat in the input's length. ``--speakers heard``
times the rule a dub runs by default (each utterance labelled as heard: the clustering runs
again on everything heard whenever labels are due).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "bench" / ".cache"
sys.path.insert(0, str(ROOT))

from dubkit.segment import segment  # noqa: E402

# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across exec.
PROBE = """
import json, sys, time
from pathlib import Path
import parselmouth, scipy.cluster.hierarchy, scipy.fft, scipy.signal
from dubkit.speakers import find_speakers
from dubkit.types import Utterance
from dubkit.media.scratch import FileAudio
def hwm_kb():
    line = next(x for x in open("/proc/self/status") if x.startswith("VmHWM:"))
    return int(line.split()[1])
spans = json.loads(Path(sys.argv[2]).read_text())
utterances = [Utterance(a, b) for a, b in spans]
before = hwm_kb()
t0 = time.perf_counter()
if sys.argv[3] == "heard":  # each utterance measured and labelled in turn, as a dub does
    from dubkit.speakers import voice_features
    from dubkit.speakers.embed import SpeakerEncoder
    from dubkit.speakers.heard import AsHeard
    audio, encoder, heard = FileAudio(Path(sys.argv[1])), SpeakerEncoder(), AsHeard()
    for u in utterances:
        heard.add(u.start_ms, u.end_ms, voice_features(audio.read(u.start_ms, u.end_ms),
                                                       encoder=encoder))
    heard.finish()
    found = heard.speakers()
else:
    found = find_speakers(FileAudio(Path(sys.argv[1])), utterances)
dt = time.perf_counter() - t0
peak = hwm_kb()
print(json.dumps({"seconds": dt, "rss_before_kb": before, "rss_peak_kb": peak,
                  "speakers": len(found.speakers)}))
"""


def _realspeech():  # type: ignore[no-untyped-def]
    if str(ROOT / "fixtures") not in sys.path:  # realspeech imports its sibling wordtruth
        sys.path.append(str(ROOT / "fixtures"))
    spec = importlib.util.spec_from_file_location("rs", ROOT / "fixtures" / "realspeech.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def make_input(hours: float) -> tuple[Path, Path, int]:
    """The looped programs as raw PCM16 on disk, their utterances as JSON; duration in ms."""
    rs = _realspeech()
    base = [rs.program(name, seed) for name in ("turns", "clean") for seed in (0, 1)]
    pieces = [(p.audio, [(u.start_ms, u.end_ms) for u in segment(p.audio)]) for p in base]
    CACHE.mkdir(parents=True, exist_ok=True)
    raw, spans_path = CACHE / f"speakers-{hours:g}h.s16", CACHE / f"speakers-{hours:g}h.json"
    target_ms, pos_ms, spans = int(hours * 3_600_000), 0, []
    with raw.open("wb") as f:
        while pos_ms < target_ms:
            for audio, utts in pieces:
                f.write(audio.astype("<i2").tobytes())
                spans += [(pos_ms + a, pos_ms + b) for a, b in utts]
                pos_ms += len(audio) * 1000 // rs.RATE
    spans_path.write_text(json.dumps(spans))
    return raw, spans_path, pos_ms


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument(
        "--speakers", choices=("whole", "heard"), default="whole",
        help="the whole file's clustering, or labels decided as heard (dubkit.speakers.heard)",
    )  # fmt: skip
    args = parser.parse_args()
    raw, spans_path, duration_ms = make_input(args.hours)
    spans = json.loads(spans_path.read_text())
    speech_ms = sum(b - a for a, b in spans)
    out = subprocess.run([sys.executable, "-c", PROBE, str(raw), str(spans_path), args.speakers],
                         check=True, capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    r = json.loads(out.stdout)
    print(f"machine: {platform.machine()}, {platform.python_version()}")
    print(
        f"input: {duration_ms / 3.6e6:.2f} h of real speech ({len(spans)} utterances, "
        f"{speech_ms / 3.6e6:.2f} h in utterances), {raw.stat().st_size / 2**20:.0f} MB on disk"
    )
    print(
        f"speaker analysis: {r['seconds']:.1f} s = {duration_ms / 1000 / r['seconds']:.0f}x "
        f"real time ({speech_ms / 1000 / r['seconds']:.0f}x the speech), "
        f"{r['speakers']} speakers"
    )
    print(
        f"peak RSS: {r['rss_peak_kb'] / 1024:.0f} MB "
        f"(before the analysis: {r['rss_before_kb'] / 1024:.0f} MB)"
    )
    print(f"utterance lengths: median {np.median([b - a for a, b in spans]) / 1000:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
