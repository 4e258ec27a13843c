"""How fast the review page opens for a 2-hour dub with 1,500 utterances (not a test).

Run: ``.venv/bin/python bench/review_load.py [--runs 5] [--utterances 1500]``. Needs chromium.

Builds the page for a synthetic manifest shaped like a real one (tests/review_fixtures.py),
opens it from disk in headless Chromium and reads the time the page itself records:
``performance.now()`` once its script has built every row and block and the page is laid
out (navigation start -> ready, so HTML and JSON parsing are included). It also times the
whole Chromium run against the same run on an empty page, so start-up is not counted.
Targets: page under 5 MB, ready in under 2 s. Exits 1 if either is missed.
"""

from __future__ import annotations

import argparse
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dubkit.review import review_html  # noqa: E402
from tests.review_fixtures import chromium_args, find_chromium, synthetic_manifest  # noqa: E402

MAX_BYTES = 5_000_000
MAX_READY_MS = 2000.0


def open_page(exe: str, page: Path, profile: Path) -> tuple[float, str]:
    """Wall seconds of one headless Chromium run that loads ``page``, and the DOM it dumps."""
    t0 = time.perf_counter()
    out = subprocess.run(
        [*chromium_args(exe, profile), "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=300, check=True,
    ).stdout  # fmt: skip
    return time.perf_counter() - t0, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--utterances", type=int, default=1500)
    ap.add_argument("--hours", type=float, default=2.0)
    args = ap.parse_args()
    exe = find_chromium()
    if exe is None:
        print("chromium is not installed (bash scripts/setup.sh installs it)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="dubkit-review-bench-") as tmp:
        work = Path(tmp)
        manifest = synthetic_manifest(args.utterances, round(args.hours * 3_600_000))
        t0 = time.perf_counter()
        html = review_html(manifest)
        build_s = time.perf_counter() - t0
        page, blank = work / "talk.es.review.html", work / "blank.html"
        page.write_text(html, encoding="utf-8")
        blank.write_text("<!doctype html><title>blank</title><p>blank", encoding="utf-8")
        size = page.stat().st_size
        open_page(exe, blank, work / "profile")  # warm-up: profile created, binaries cached
        ready, wall, base = [], [], []
        for _ in range(args.runs):
            base.append(open_page(exe, blank, work / "profile")[0])
            seconds, dom = open_page(exe, page, work / "profile")
            m = re.search(r'data-render-ms="([0-9.]+)"', dom)
            rows = len(re.findall(r' id="u-\d+"', dom))
            if m is None or rows != args.utterances:
                print(f"the page did not render ({rows} rows)", file=sys.stderr)
                return 1
            ready.append(float(m.group(1)))
            wall.append(seconds)
    med = statistics.median
    print(f"machine: {platform.machine()}, {platform.processor() or '?'}, "
          f"{_cpus()} CPUs, {platform.system()} {platform.release()}")  # fmt: skip
    print(f"chromium: {_version(exe)}")
    print(f"page: {args.utterances} utterances over {args.hours:g} h: {size / 1e6:.2f} MB "
          f"(target < {MAX_BYTES / 1e6:.0f} MB), built in {build_s * 1000:.0f} ms")  # fmt: skip
    print(f"ready (navigation -> rows built and laid out): median {med(ready):.0f} ms, "
          f"range {min(ready):.0f}-{max(ready):.0f} ms over {args.runs} runs "
          f"(target < {MAX_READY_MS:.0f} ms)")  # fmt: skip
    print(f"headless chromium run: {med(wall):.2f} s with the page, {med(base):.2f} s with an "
          f"empty page: the page adds {med(wall) - med(base):.2f} s")  # fmt: skip
    ok = size < MAX_BYTES and med(ready) < MAX_READY_MS
    print("PASS" if ok else "MISS")
    return 0 if ok else 1


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0


def _version(exe: str) -> str:
    proc = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
    return proc.stdout.strip() or "?"


if __name__ == "__main__":
    sys.exit(main())
