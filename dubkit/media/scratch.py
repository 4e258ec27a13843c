"""The decoded 16 kHz source audio of one job, kept on disk, not in memory.

Decoding streams the audio once: each chunk feeds the segmenter and is
appended to a raw file from which any utterance's samples are read back.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from dubkit.types import VAD_RATE


class FileAudio:
    """16 kHz mono int16 samples in a raw file; ``read(start_ms, end_ms)`` returns a span."""

    def __init__(self, path: Path, rate: int = VAD_RATE) -> None:
        self.path = path
        self.rate = rate

    @property
    def samples(self) -> int:
        return self.path.stat().st_size // 2

    def read(self, start_ms: int, end_ms: int) -> np.ndarray:
        first = start_ms * self.rate // 1000
        count = max(0, end_ms * self.rate // 1000 - first)
        with self.path.open("rb") as f:
            f.seek(first * 2)
            return np.frombuffer(f.read(count * 2), dtype="<i2").astype(np.int16)

    def read_spread(self, spans: Iterable[tuple[int, int]], budget_ms: int) -> np.ndarray:
        """Up to ``budget_ms`` of audio taken evenly across ``spans`` (for loudness measures)."""
        spans = list(spans)
        total = sum(e - s for s, e in spans)
        if total <= 0:
            return np.zeros(0, np.int16)
        step = max(1, int(np.ceil(total / budget_ms)))
        parts = [self.read(s, e) for i, (s, e) in enumerate(spans) if i % step == 0]
        return np.concatenate(parts) if parts else np.zeros(0, np.int16)
