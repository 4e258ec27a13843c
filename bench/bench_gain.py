"""Where a dub's loudness lands: the dubbed speech against the original speech (issue 31).

Each clip's gain is decided as the clips arrive (:class:`dubkit.mix.loudness.RunningGain`),
so the first clips are matched with less evidence than later ones; this measures the result
on a finished dub: the integrated loudness (BS.1770, pyloudnorm) of the dubbed track over
the placed clips against the original track over the utterances, and the dubbed track's
true peak (4x oversampled). Targets: within 1 LU, and at most -1 dBTP.

    python bench/bench_gain.py OUTPUT.mp4 ORIGINAL.mp4 MANIFEST.dubkit.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import av
import numpy as np
import pyloudnorm
from scipy.signal import resample_poly


def _track(path: Path, index: int) -> tuple[np.ndarray, int]:
    with av.open(str(path)) as c:
        s = c.streams.audio[index]
        rs = av.AudioResampler(format="fltp", layout=s.layout.name, rate=s.rate)
        parts = [f.to_ndarray() for fr in c.decode(s) for f in rs.resample(fr)]
        return np.concatenate(parts, axis=1), s.rate


def _over(x: np.ndarray, rate: int, spans: list[tuple[int, int]]) -> float:
    parts = [x[:, s * rate // 1000 : e * rate // 1000] for s, e in spans]
    return float(pyloudnorm.Meter(rate).integrated_loudness(np.concatenate(parts, axis=1).T))


def main(output: Path, original: Path, manifest: Path) -> None:
    data = json.loads(manifest.read_text())
    items = [u for u in data["utterances"] if u.get("dub")]
    dub, rate = _track(output, 0)
    orig, orig_rate = _track(original, 0)
    heard = _over(dub, rate, [(u["dub"]["start_ms"], u["dub"]["end_ms"]) for u in items])
    said = _over(orig, orig_rate, [(u["start_ms"], u["end_ms"]) for u in items])
    peak = 20 * np.log10(np.abs(resample_poly(dub, 4, 1, axis=-1)).max() + 1e-12)
    print(f"clips: {len(items)}")
    print(f"dubbed speech {heard:.2f} LUFS, original speech {said:.2f} LUFS: "
          f"{heard - said:+.2f} LU (target within 1)")  # fmt: skip
    print(f"dubbed track true peak {peak:.2f} dBTP (target <= -1)")


if __name__ == "__main__":
    main(*(Path(a) for a in sys.argv[1:4]))
