"""Run dubkit's benchmarks and print the figures against their targets.

    .venv/bin/python bench/run.py                  # everything (20-40 minutes)
    .venv/bin/python bench/run.py --quick          # reduced sizes, a smoke check
    .venv/bin/python bench/run.py --only overhead  # one case (overhead, quota, latency,
                                                   #   memory, segment, paced); repeatable
    .venv/bin/python bench/run.py --markdown BENCHMARKS.table.md   # also write the table

Inputs are generated on first use and cached under bench/.cache/ (gitignored). Every case runs
a few times (3 by default, ``--runs``; once for moviepy and the 2-hour input) and reports the
median with the range.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import logging
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cases
import segcase
from harness import Row

CASES = ("overhead", "quota", "latency", "memory", "segment", "paced")


def machine() -> str:
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = os.getloadavg()
    return (
        f"{os.cpu_count()} cores, {mem_gb:.0f} GB, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}; load average at start "
        f"{load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}"
    )


def text_table(rows: list[Row]) -> str:
    head = ("case", "figure", "value", "target", "", "note")
    body = [(r.case, r.figure, r.value, r.target, r.verdict, r.note) for r in rows]
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(x, widths, strict=True)).rstrip()
        for x in [head, *body]
    ]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def markdown_table(rows: list[Row]) -> str:
    lines = ["| case | figure | value | target | result | note |", "|---|---|---|---|---|---|"]
    last = None
    for r in rows:
        case = r.case if r.case != last else ""
        last = r.case
        verdict = f"**{r.verdict}**" if r.verdict == "MISS" else r.verdict
        lines.append(f"| {case} | {r.figure} | {r.value} | {r.target} | {verdict} | {r.note} |")
    return "\n".join(lines)


def run(selected: list[str], sizes: cases.Sizes, quick: bool) -> tuple[list[Row], str]:
    rows: list[Row] = []
    verbatim = ""
    if "overhead" in selected:
        rows += cases.case_overhead(sizes)
    if "quota" in selected:
        rows += cases.case_quota(sizes)
    if "latency" in selected:
        rows += cases.case_latency(sizes)
    if "memory" in selected:
        rows += cases.case_memory(sizes)
    if "segment" in selected:
        seg = segcase.case_segment(quick, sizes.overhead_s, sizes.runs)
        rows += seg.rows
        verbatim = seg.verbatim
    if "paced" in selected:
        rows += cases.case_paced(sizes)
    return rows, verbatim


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="reduced sizes (1-minute inputs...)")
    p.add_argument("--only", action="append", choices=CASES, help="run only this case")
    p.add_argument("--runs", type=int, default=None, help="repetitions of the short cases")
    p.add_argument(
        "--markdown",
        default=None,
        metavar="FILE",
        help="also write the table as markdown to FILE ('-' for stdout)",
    )
    args = p.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    for noisy in ("httpx", "httpx2", "openai", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    sizes = cases.QUICK if args.quick else cases.FULL
    if args.runs is not None:
        sizes = dataclasses.replace(sizes, runs=args.runs)
    selected = args.only or list(CASES)
    started = time.time()
    header = (
        f"dubkit benchmarks, {dt.date.today().isoformat()}, "
        f"{'quick' if args.quick else 'full'} run; {machine()}"
    )
    rows, verbatim = run(selected, sizes, args.quick)
    load = os.getloadavg()
    footer = (
        f"took {(time.time() - started) / 60:.1f} min; load average at end "
        f"{load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}"
    )
    print(header)
    print(text_table(rows))
    print(footer)
    if verbatim:
        print("\nbench/bench_segment.py output:\n" + verbatim)
    if args.markdown:
        md = f"{header}\n\n{markdown_table(rows)}\n\n{footer}\n"
        if verbatim:
            md += f"\nbench/bench_segment.py output:\n\n```\n{verbatim}\n```\n"
        if args.markdown == "-":
            print("\n" + md)
        else:
            Path(args.markdown).write_text(md)
    misses = [r for r in rows if r.ok is False]
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
