"""A small picture of the waveform: the peak level of each short stretch of the audio.

Built while the 16 kHz audio streams in (``feed`` each chunk, then ``finish``), at a
fixed number of bins for the whole file, so a 2-hour input costs the same few
kilobytes as a 1-minute one. The review page draws it under the utterances.

>>> import numpy as np
>>> b = EnvelopeBuilder(duration_ms=1000, rate=16_000, bins=4)
>>> b.feed(np.array([0, 16384, -32768, 0] * 2000, dtype=np.int16))  # 0.5 s loud
>>> b.feed(np.zeros(8000, dtype=np.int16))                           # 0.5 s silent
>>> b.finish()
Envelope(bin_ms=250, peaks=(255, 255, 0, 0))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Bins for a whole file: enough for a timeline a few screens wide, small in a manifest.
DEFAULT_BINS = 2000
#: No bin is shorter than this, so a short file gets fewer, not finer, bins.
MIN_BIN_MS = 10
#: Peaks are stored as integers 0..PEAK_MAX (linear in amplitude).
PEAK_MAX = 255


@dataclass(frozen=True, slots=True)
class Envelope:
    """Peak level 0..255 of each consecutive ``bin_ms`` of audio, from the start."""

    bin_ms: int
    peaks: tuple[int, ...]

    def __post_init__(self) -> None:
        if self.bin_ms < 1:
            raise ValueError(f"bin_ms must be at least 1, not {self.bin_ms}")


class EnvelopeBuilder:
    """Accumulates :class:`Envelope` peaks over int16 mono chunks, in order."""

    def __init__(self, duration_ms: int, rate: int, bins: int = DEFAULT_BINS) -> None:
        if bins < 1 or rate < 1:
            raise ValueError(f"bins and rate must be positive, not {bins}, {rate}")
        self.bin_ms = max(MIN_BIN_MS, -(-max(duration_ms, 1) // bins))
        self._bin_samples = max(1, self.bin_ms * rate // 1000)
        self._pos = 0
        self._peaks = np.zeros(0, dtype=np.int32)

    def feed(self, chunk: np.ndarray) -> None:
        """Add the next samples (int16, any length)."""
        n = len(chunk)
        if n == 0:
            return
        size = self._bin_samples
        first, last = self._pos // size, (self._pos + n - 1) // size
        if last >= len(self._peaks):  # usually sized once; grows if the probe was short
            self._peaks = np.concatenate(
                [self._peaks, np.zeros(last + 1 - len(self._peaks), np.int32)]
            )
        bounds = np.arange(first, last + 1) * size - self._pos
        bounds[0] = 0
        peaks = np.maximum.reduceat(np.abs(chunk.astype(np.int32)), bounds)
        np.maximum(self._peaks[first : last + 1], peaks, out=self._peaks[first : last + 1])
        self._pos += n

    def finish(self) -> Envelope:
        scaled = np.minimum(PEAK_MAX, -(-self._peaks * PEAK_MAX // 32768))
        return Envelope(self.bin_ms, tuple(int(p) for p in scaled))
