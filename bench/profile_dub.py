"""Where ``dubkit dub`` spends its time: one profiled run over a generated input.

    .venv/bin/python bench/profile_dub.py                 # 1-minute 1280x720 input
    .venv/bin/python bench/profile_dub.py --seconds 600   # the 10-minute one
    .venv/bin/python bench/profile_dub.py --dump prof.out # keep the pstats file

It runs the same ``dubkit dub`` command as case 1 of run.py (the emulator at zero latency, no
cache, concurrency 8, unpaced): once plain (for scale, beside the ffmpeg floor), once with
``-X importtime``, and once under ``python -m cProfile`` in a fresh child, so imports count.
It prints the import costs, the cumulative time of each pipeline step, and the functions with
the most self time. cProfile slows pure-Python code more than native code.
"""

from __future__ import annotations

import argparse
import json
import pstats
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import inputs
from cases import CONCURRENCY, dub_cmd, dub_env
from harness import API_KEY, PYTHON, EmulatorProcess, run_timed

#: (file suffix, function) of the steps worth naming, in pipeline order.
STEPS = [
    ("<frozen importlib._bootstrap>", "_find_and_load", "imports (all modules)"),
    ("dubkit/media/__init__.py", "probe", "media.probe"),
    ("dubkit/pipeline/prepare.py", "analyze", "prepare.analyze (decode 16 kHz + segment)"),
    ("dubkit/media/__init__.py", "iter_pcm16", "  media.iter_pcm16 (decode)"),
    ("dubkit/segment/__init__.py", "feed", "  Segmenter.feed"),
    ("dubkit/translate/__init__.py", "translate_languages", "translate_languages (all requests)"),
    ("dubkit/translate/cloud.py", "_request_once", "  CloudTranslator._request_once (summed)"),
    ("dubkit/translate/cloud.py", "build_request", "  cloud.build_request"),
    ("dubkit/pipeline/timeline.py", "_clip", "timeline._clip (trim silence)"),
    ("dubkit/fit.py", "plan", "fit.plan"),
    ("dubkit/pipeline/timeline.py", "_placed", "timeline._placed (speech spans)"),
    ("dubkit/subtitles/__init__.py", "layout", "subtitles.layout"),
    ("dubkit/mix/loudness.py", "dub_gain", "loudness.dub_gain"),
    ("dubkit/pipeline/dubbing.py", "_counted", "mix + mux loop (dubbing._counted)"),
    ("dubkit/media/__init__.py", "iter_float", "  media.iter_float (decode full rate)"),
    ("dubkit/mix/__init__.py", "mix", "  mix.mix (generator)"),
    ("dubkit/fit.py", "render", "  fit.render (Rubber Band etc.)"),
    ("dubkit/mux.py", "write", "  Muxer.write (pipe to ffmpeg)"),
    ("dubkit/mux.py", "__exit__", "  Muxer.__exit__ (ffmpeg finishing)"),
    ("dubkit/pipeline/manifest.py", "write_manifest", "manifest.write_manifest"),
]


TIMELINE_CHILD = """
import json, sys, tempfile, threading, time
t0 = time.perf_counter()
samples = []  # (seconds, RSS MB) every 0.2 s
def rss_mb():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:")) / 1024
def sample():
    while True:
        samples.append((time.perf_counter() - t0, rss_mb()))
        time.sleep(0.2)
threading.Thread(target=sample, daemon=True).start()
from pathlib import Path
from dubkit.translate.engines import EngineOptions, make_translator
from dubkit.pipeline import Options, dub
src, url, key, conc = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
marks = {"imports done": time.perf_counter() - t0}
def progress(stage, done, total):
    now = time.perf_counter() - t0
    marks.setdefault(stage + " first", now)
    marks[stage + " last"] = now
tr = make_translator(EngineOptions(engine="cloud", api_key=key, base_url=url,
                                   rpm=10**6, tpm=10**9))
with tempfile.TemporaryDirectory() as out:
    dub(src, Options(target="es", out_dir=Path(out), concurrency=conc), tr, progress=progress)
marks["end"] = time.perf_counter() - t0
samples.append((marks["end"], rss_mb()))
print(json.dumps({"marks": marks, "rss": samples}))
"""

#: (label, from mark, to mark) of the wall-clock phases.
PHASES = [
    ("start-up and imports (dubkit.pipeline, dubkit.translate.engines)", None, "imports done"),
    ("probe, decode 16 kHz, segment", "imports done", "segment last"),
    ("translate (all requests)", "segment last", "translate last"),
    ("clips, plan, layout, loudness (incl. lazy imports)", "translate last", "mix first"),
    ("mix + fit.render + mux (streaming to ffmpeg)", "mix first", "mix last"),
    ("ffmpeg finish, subtitles, manifest", "mix last", "end"),
]


def timeline(src: Path, base_url: str) -> list[tuple[str, float, float]]:
    """Wall-clock phases of one unprofiled ``dubkit.pipeline.dub`` in a fresh child, each
    with the highest RSS (MB) sampled during it (every 0.2 s, so short spikes may be missed)."""
    cmd = [PYTHON, "-c", TIMELINE_CHILD, str(src), base_url, API_KEY, str(CONCURRENCY)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    marks, rss = got["marks"], got["rss"]
    rows = []
    for label, a, b in PHASES:
        lo, hi = (marks[a] if a else 0.0), marks[b]
        peak = max((mb for t, mb in rss if lo <= t <= hi), default=0.0)
        rows.append((label, hi - lo, peak))
    return [*rows, ("total", marks["end"], max(mb for _, mb in rss))]


def profiled_cli(src: Path, base_url: str, out: Path, dump: Path) -> float:
    """``dubkit dub`` under ``python -m cProfile`` in a fresh child (imports included)."""
    cmd = dub_cmd(src, base_url, out)
    cmd = [PYTHON, "-m", "cProfile", "-o", str(dump), "-m", "dubkit", *cmd[1:]]
    t = run_timed(cmd, env=dub_env())
    if t.returncode != 0:
        raise RuntimeError(f"profiled dub failed: {t.stderr_tail}")
    return t.wall_s


def import_times(src: Path, base_url: str, out: Path, top: int = 12) -> list[tuple[str, float]]:
    """Top-level imports of one ``dubkit dub`` run (``-X importtime``), cumulative seconds."""
    cmd = dub_cmd(src, base_url, out)
    cmd = [PYTHON, "-X", "importtime", "-m", "dubkit", *cmd[1:]]
    err = subprocess.run(cmd, env=dub_env(), capture_output=True, text=True).stderr
    found: list[tuple[str, float]] = []
    for line in err.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\S.*)$", line)
        if m:  # no indentation before the name: imported by dubkit's own code or the CLI
            found.append((m.group(2), int(m.group(1)) / 1e6))
    total = sum(s for _, s in found)
    return [("(all top-level imports)", total), *sorted(found, key=lambda x: -x[1])[:top]]


def _steps(stats: pstats.Stats) -> dict[str, float]:
    table: dict[str, float] = {}
    raw = stats.stats  # type: ignore[attr-defined]
    for suffix, func, label in STEPS:
        total = sum(
            v[3] for (file, _, name), v in raw.items() if file.endswith(suffix) and name == func
        )
        table[label] = total
    return table


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--seconds", type=int, default=60, help="length of the generated input")
    p.add_argument("--top", type=int, default=30, help="how many functions to list")
    p.add_argument("--dump", type=Path, default=None, help="write the pstats file here")
    args = p.parse_args()
    src = inputs.video(inputs.VideoSpec(args.seconds, 1280, 720, 25))
    with EmulatorProcess(latency_s=0.0, canned=True) as emu, tempfile.TemporaryDirectory() as out:
        plain = run_timed(dub_cmd(src, emu.base_url, Path(out)), env=dub_env())
        floor = run_timed(
            [inputs.ffmpeg(), "-nostdin", "-loglevel", "error", "-y", "-i", str(src),
             "-map", "0:v", "-c:v", "copy", "-map", "0:a", "-c:a", "aac", f"{out}/f.mp4"]
        )  # fmt: skip
        print(
            f"input {src.name}: unprofiled `dubkit dub` {plain.wall_s:.2f} s "
            f"(peak RSS {plain.maxrss_mb:.0f} MB); ffmpeg floor {floor.wall_s:.2f} s"
        )
        phases = timeline(src, emu.base_url)
        imports = import_times(src, emu.base_url, Path(out))
        dump = args.dump or Path(out) / "dub.prof"
        wall = profiled_cli(src, emu.base_url, Path(out), dump)
        print(f"profiled run (cProfile on): {wall:.2f} s")
        stats = pstats.Stats(str(dump))
    steps = _steps(stats)
    print("\nwall-clock phases (unprofiled, library call in a fresh process):")
    print(f"  {'phase':<58} {'seconds':>8} {'peak RSS MB':>12}")
    for name, secs, peak in phases:
        print(f"  {name:<58} {secs:8.2f} {peak:12.0f}")
    print("\nimports (-X importtime, cumulative s; top-level modules):")
    for name, secs in imports:
        print(f"  {name:<58} {secs:8.2f}")
    print("\ncumulative time per step (s, cProfile):")
    for label, secs in steps.items():
        print(f"  {label:<58} {secs:8.2f}")
    print(f"\ntop {args.top} functions by self time:")
    stats.sort_stats("tottime").print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
