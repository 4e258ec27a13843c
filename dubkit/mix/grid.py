"""The separation's fixed grid: chunks of :data:`CHUNK_S` seconds from the media's start, each
separated from the original with :data:`CONTEXT_S` seconds more on each side.

Shared by the mix, which separates a chunk in step when it first needs one of its samples
(:mod:`dubkit.mix.separate`), and by the child that separates chunks ahead of it
(:mod:`dubkit.mix.prepared`): a sample's accompaniment depends on its chunk alone.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

#: Seconds of original the model sees on each side of a chunk (then discarded).
CONTEXT_S = 1.0
#: Seconds of the grid's chunks: with the context, 1023 frames at 44.1 kHz (two U-Net segments).
CHUNK_S = 21.75


@dataclass(frozen=True, slots=True)
class Chunk:
    """Chunk ``k`` of the grid: its samples ``[x, e)`` and the original it is separated
    from, ``[r0, r1)`` (the context, clipped to the media)."""

    k: int
    x: int
    e: int
    r0: int
    r1: int

    @classmethod
    def of(cls, k: int, rate: int, total: int) -> Chunk:
        size, ctx = round(CHUNK_S * rate), round(CONTEXT_S * rate)
        x, e = k * size, min((k + 1) * size, total)
        return cls(k, x, e, max(0, x - ctx), min(e + ctx, total))


def chunks_over(spans: Iterable[tuple[int, int]], rate: int, total: int) -> list[int]:
    """The grid chunks holding a sample of ``spans`` (``[start, end)`` samples), in order."""
    size, ks = round(CHUNK_S * rate), set[int]()
    for a, b in spans:
        a, b = max(0, a), min(b, total)
        if a < b:
            ks.update(range(a // size, (b - 1) // size + 1))
    return sorted(ks)


class Ahead:
    """The original's fixed blocks, readable a little before and ahead of the mix."""

    def __init__(self, blocks: Iterator[np.ndarray], total: int) -> None:
        self._blocks = blocks
        self.total = total
        self._kept: collections.deque[tuple[int, np.ndarray]] = collections.deque()
        self._next = 0

    def read(self, start: int, count: int) -> np.ndarray:
        """``(channels, count)`` from ``start``; silence outside the media."""
        while self._next < min(start + count, self.total):
            b = next(self._blocks)
            self._kept.append((self._next, b))
            self._next += b.shape[1]
        channels = self._kept[0][1].shape[0] if self._kept else 1
        out = np.zeros((channels, count), np.float32)
        for b0, b in self._kept:
            lo, hi = max(start, b0), min(start + count, b0 + b.shape[1])
            if lo < hi:
                out[:, lo - start : hi - start] = b[:, lo - b0 : hi - b0]
        return out

    def forget(self, before: int) -> None:
        while self._kept and self._kept[0][0] + self._kept[0][1].shape[1] <= before:
            self._kept.popleft()
