"""What the changes proposed in BENCHMARKS.md would save, measured by patching them in.

    .venv/bin/python bench/whatif.py                 # 10-minute 1280x720 input
    .venv/bin/python bench/whatif.py --seconds 60
    .venv/bin/python bench/whatif.py --seconds 7200 --tiny --variants loud120   # case 4 input

Each variant runs ``dubkit.pipeline.dub`` once in a fresh process (cloud engine, emulator at
zero latency, no cache, concurrency 8), with some of these changes applied at runtime:

- ``writer``: ``media.Muxer.write`` hands blocks to a thread through a queue of 8 blocks, so
  mixing and ffmpeg overlap;
- ``poly``: ``fit.resample`` done with ``scipy.signal.resample_poly``;
- ``loud120``: ``pipeline.LOUDNESS_BUDGET_MS`` = 120 s.

These patches are experiments, not dubkit's code. They show what each change buys before
anyone writes it properly. The output is the wall time and the peak RSS of each variant.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import inputs
from cases import CONCURRENCY
from harness import API_KEY, PYTHON, EmulatorProcess

CHILD = """
import json, math, queue, resource, sys, tempfile, threading, time
t0 = time.perf_counter()
from pathlib import Path
import numpy as np
from dubkit import fit, media, pipeline
from dubkit.engines import EngineOptions, make_translator
src, url, key, conc, variant = sys.argv[1:6]
flags = set(variant.split("+"))

if "writer" in flags:
    plain_write, plain_exit = media.Muxer.write, media.Muxer.__exit__
    def write(self, block):
        if not hasattr(self, "_q"):
            self._q, self._err = queue.Queue(maxsize=8), []
            def run():
                while (b := self._q.get()) is not None:
                    try:
                        plain_write(self, b)
                    except BaseException as e:
                        self._err.append(e)
            self._t = threading.Thread(target=run, daemon=True)
            self._t.start()
        if self._err:
            raise self._err[0]
        self._q.put(block)
    def exit_(self, *exc):
        if hasattr(self, "_q"):
            self._q.put(None)
            self._t.join()
        return plain_exit(self, *exc)
    media.Muxer.write, media.Muxer.__exit__ = write, exit_

if "poly" in flags:
    from scipy.signal import resample_poly
    def resample(x, in_rate, out_rate):
        if in_rate == out_rate or len(x) == 0:
            return x
        g = math.gcd(in_rate, out_rate)
        return resample_poly(x, out_rate // g, in_rate // g).astype(np.float32)
    fit.resample = resample
    pipeline.resample = resample

if "loud120" in flags:
    pipeline.LOUDNESS_BUDGET_MS = 120_000

tr = make_translator(EngineOptions(engine="cloud", api_key=key, base_url=url,
                                   rpm=10**6, tpm=10**9))
with tempfile.TemporaryDirectory() as out:
    r = pipeline.dub(src, pipeline.Options(target="es", out_dir=Path(out),
                                           concurrency=int(conc)), tr)
    assert not r.failed
print(json.dumps({"wall": time.perf_counter() - t0,
                  "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

VARIANTS = ["baseline", "writer", "poly", "loud120", "writer+poly+loud120", "baseline"]


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--seconds", type=int, default=600, help="length of the generated input")
    p.add_argument("--tiny", action="store_true", help="160x90 5 fps picture (as case 4)")
    p.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated, in order")
    p.add_argument("--repeat", type=int, default=1, help="run the whole list this many times")
    args = p.parse_args()
    size = (160, 90, 5) if args.tiny else (1280, 720, 25)
    src = inputs.video(inputs.VideoSpec(args.seconds, *size))
    print(f"input {src.name}")
    print(f"  {'variant':<22} {'wall s':>7} {'peak RSS MB':>12}")
    with EmulatorProcess(latency_s=0.0) as emu:
        for variant in args.variants.split(",") * args.repeat:
            cmd = [PYTHON, "-c", CHILD, str(src), emu.base_url, API_KEY, str(CONCURRENCY),
                   variant]  # fmt: skip
            proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
            got = json.loads(proc.stdout.strip().splitlines()[-1])
            print(f"  {variant:<22} {got['wall']:7.2f} {got['rss']:12.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
