"""Figures for dubbing into several languages (not a test): one run against one run each.

Run: ``.venv/bin/python bench/bench_languages.py [--runs 3] [--quick]``. The input is
benchmark case 1's (10 minutes of 1280x720 video with speech, generated once under
``bench/.cache/``); the emulator serves pre-made answers from its own process at zero
latency, so what is measured is dubkit's own work on this machine. Each repeat times
``dubkit dub --to es,fr,ja`` (one file, three dubbed tracks) and then the three runs
``--to es``, ``--to fr``, ``--to ja`` one after another, as a user does today: wall time and
CPU seconds (user + system, dubkit's and its ffmpeg children's). The output is a table to
paste into BENCHMARKS.md with the date and the machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cases
import inputs
from harness import EmulatorProcess, Timed, median, run_timed, spread

LANGS = ("es", "fr", "ja")


def one_run(src: Path, base_url: str) -> Timed:
    with cases.scratch() as out:
        t = run_timed(cases.dub_cmd(src, base_url, out, ",".join(LANGS)), env=cases.dub_env())
        if t.returncode != 0 or not (out / f"{src.stem}.dub.mp4").exists():
            raise RuntimeError(f"the run into {LANGS} failed: {t.stderr_tail}")
        return t


def three_runs(src: Path, base_url: str) -> Timed:
    wall = cpu = 0.0
    with cases.scratch() as out:
        for lang in LANGS:
            t = run_timed(cases.dub_cmd(src, base_url, out, lang), env=cases.dub_env())
            if t.returncode != 0:
                raise RuntimeError(f"the run into {lang} failed: {t.stderr_tail}")
            wall, cpu = wall + t.wall_s, cpu + t.cpu_s
    return Timed(wall, 0, 0.0, 0.0, "", cpu)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="the 1-minute input instead")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sizes = cases.QUICK if args.quick else cases.FULL
    spec = cases.overhead_spec(sizes)
    src = inputs.video(spec)
    ones: list[Timed] = []
    threes: list[Timed] = []
    with EmulatorProcess(latency_s=0.0, canned=True) as emu:
        one_run(src, emu.base_url)  # warm-up: page cache, .pyc files
        for i in range(args.runs):  # alternating, so a drift in the machine hits both
            ones.append(one_run(src, emu.base_url))
            threes.append(three_runs(src, emu.base_url))
            logging.info(
                "repeat %d: one run %.1f s (CPU %.1f s), three runs %.1f s (CPU %.1f s)",
                i + 1, ones[-1].wall_s, ones[-1].cpu_s, threes[-1].wall_s, threes[-1].cpu_s,
            )  # fmt: skip
    wall = median([t.wall_s / o.wall_s for o, t in zip(ones, threes, strict=True)])
    cpu = median([t.cpu_s / o.cpu_s for o, t in zip(ones, threes, strict=True)])
    label = f"{spec.seconds // 60} min {spec.width}x{spec.height}, {', '.join(LANGS)}"
    print(f"\nmany languages ({label}), {dt.date.today()}, median [min-max] of {args.runs}")
    print("| figure | wall | CPU |\n|---|---|---|")
    print(f"| one run, `--to {','.join(LANGS)}` (one file) | {spread([t.wall_s for t in ones])} "
          f"| {spread([t.cpu_s for t in ones])} |")  # fmt: skip
    print(f"| three runs, one language each | {spread([t.wall_s for t in threes])} "
          f"| {spread([t.cpu_s for t in threes])} |")  # fmt: skip
    print(f"| three runs / one run | {wall:.2f}x | {cpu:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
