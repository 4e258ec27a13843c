"""separate_spans: only the spans, bounded memory, crossfaded edges; speed per second of span."""
from __future__ import annotations

import resource
import sys
import time

import numpy as np

import separate as sep

sys.path.insert(0, "/work/main/fixtures")
import realspeech as rs  # noqa: E402

rate = 48_000
prog = rs.program("music12")
x16 = prog.audio.astype(np.float32) / 32768
x = sep._resample(x16, 16000, rate)
orig = np.stack([x, 0.8 * x], axis=1)  # (n, 2) at 48 kHz, as a video's track would be
reads = []


def read(start: int, count: int) -> np.ndarray:
    reads.append((start, count))
    out = np.zeros((count, 2), np.float32)
    got = orig[start : start + count]
    out[: len(got)] = got
    return out


spans = [(s.start_ms * rate // 1000, s.end_ms * rate // 1000) for s in prog.sentences]
sep.models()
t0 = time.perf_counter()
cpu0 = sum(__import__("os").times()[:2])
out = orig.copy()
covered = 0
for piece in sep.separate_spans(read, spans, rate, 2, total=len(orig), block_s=20.0):
    out[piece.start : piece.start + len(piece.audio)] = piece.audio
    covered += len(piece.audio)
dt = time.perf_counter() - t0
cpu = sum(__import__("os").times()[:2]) - cpu0
print(f"{len(spans)} spans, {covered / rate:.1f}s written of {len(orig) / rate:.1f}s, "
      f"{sum(c for _, c in reads) / rate:.1f}s read; {dt:.1f}s wall ({covered / rate / dt:.1f}x real time "
      f"of the spans), {cpu:.1f}s CPU; largest read {max(c for _, c in reads) / rate:.1f}s; "
      f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
# outside the spans (+fade) the original is untouched; at the span edges no step
mask = np.zeros(len(orig), bool)
for a, b in spans:
    mask[max(0, a - 4800) : b + 4800] = True
print("max change outside spans:", float(np.abs(out[~mask] - orig[~mask]).max()))
d = np.abs(np.diff(out[:, 0]))
print(f"largest sample step in output {d.max():.4f} vs original {np.abs(np.diff(orig[:, 0])).max():.4f}")
