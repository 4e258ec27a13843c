"""``--mix separate``: the original's dialogue taken out where a dubbed clip plays.

Only the spans the dub covers are separated, each widened by the mix's ramp, where the bed
crossfades from the original to the separated accompaniment and back (linear, the duck's
trapezoid): far from every clip the original passes bit for bit. The spans are gathered into
regions (clips closer than :data:`MERGE_S` are separated through the gap, cheaper than a
second context) and each region is separated in chunks of at most :data:`CHUNK_S` seconds, read
with :data:`CONTEXT_S` seconds more on each side for the model, so memory is bounded by one
chunk whatever the media's length. To see a region's extent the mix reads the clips and the
original up to one chunk ahead.

The model (:mod:`dubkit.mix.spleeter`, numpy only) runs in a child process: its weights
(some 120 MB) and working memory never weigh on the dub's process. Surround layouts need no
model: the dialogue is the centre channel, dropped under each clip (the other channels
untouched).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import struct
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import IO, TYPE_CHECKING

import numpy as np

from dubkit import tools
from dubkit.errors import MediaToolError

if TYPE_CHECKING:
    from dubkit.mix import PlacedClip
    from dubkit.mix.prepared import Prepared

#: Seconds of original the model sees on each side of a chunk (then discarded).
CONTEXT_S = 1.0
#: Most seconds separated in one go (two of Spleeter's 512-frame segments with the context).
CHUNK_S = 21.5
#: Clips closer than this are separated as one region, gap included.
MERGE_S = 2.0
_HEADER = struct.Struct("<qqq")
log = logging.getLogger(__name__)


def available() -> bool:
    """Whether the separation model is installed (see :func:`dubkit.mix.spleeter.available`)."""
    from dubkit.mix import spleeter

    return spleeter.available()


class SeparatorProcess:
    """The accompaniment of chunks of audio, computed in ``python -m dubkit.mix.spleeter``."""

    def __init__(self) -> None:
        self._child = tools.Child([sys.executable, "-m", "dubkit.mix.spleeter"], stdout=True)

    def __call__(self, x: np.ndarray, rate: int) -> np.ndarray:
        """``(frames, channels)`` float32 -> its accompaniment, the same shape."""
        proc = self._child.proc
        assert proc.stdin is not None and proc.stdout is not None
        frames, channels = x.shape
        try:
            proc.stdin.write(_HEADER.pack(rate, channels, frames))
            proc.stdin.write(np.ascontiguousarray(x, np.float32).tobytes())
            proc.stdin.flush()
            want = 4 * frames * channels
            out = _read_exactly(proc.stdout, want)
        except (BrokenPipeError, EOFError) as e:
            proc.wait()
            raise self._child.failure("dialogue separation failed in its worker process") from e
        return np.frombuffer(out, np.float32).reshape(frames, channels)

    def close(self) -> None:
        self._child.close()


def _read_exactly(stream: IO[bytes], count: int) -> bytes:
    read = stream.read
    chunks, have = [], 0
    while have < count:
        piece = read(count - have)
        if not piece:
            raise EOFError
        chunks.append(piece)
        have += len(piece)
    return b"".join(chunks)


class ClipSpans:
    """The clips' spans ``[start, end)`` in samples, read ahead of the mix.

    Iterating gives the clips in order (the mix's schedule takes them from here); :meth:`upto`
    pulls clips from the source until one starts at or after a sample, so the separator knows
    the spans the mix has not reached yet.
    """

    def __init__(self, clips: Iterable[PlacedClip]) -> None:
        self._source = iter(clips)
        self._ahead: collections.deque[PlacedClip] = collections.deque()
        self.spans: list[tuple[int, int]] = []
        self._exhausted = False

    def _pull(self) -> bool:
        clip = next(self._source, None)
        if clip is None:
            self._exhausted = True
            return False
        self._ahead.append(clip)
        if clip.length > 0:
            self.spans.append((clip.start, clip.end))
        return True

    def upto(self, sample: int) -> list[tuple[int, int]]:
        """The known spans, having read every clip that starts before ``sample``."""
        while not self._exhausted and (not self.spans or self.spans[-1][0] < sample):
            if not self._pull():
                break
        return self.spans

    def forget(self, before: int) -> None:
        """Drop spans that end before ``before``."""
        self.spans = [s for s in self.spans if s[1] > before]

    def __iter__(self) -> Iterator[PlacedClip]:
        while self._ahead or (not self._exhausted and self._pull()):
            yield self._ahead.popleft()


class _Ahead:
    """The original's fixed blocks, readable a little before and ahead of the mix."""

    def __init__(self, blocks: Iterator[np.ndarray], block: int, total: int) -> None:
        self._blocks = blocks
        self._block = block
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


def _region_end(spans: list[tuple[int, int]], x: int, ramp: int, merge: int) -> int:
    """End of the region (widened spans merged across gaps under ``merge``) holding ``x``."""
    end = x
    for a, b in spans:
        a, b = a - ramp, b + ramp
        if b <= end:
            continue
        if a - end > merge:
            break
        end = max(end, b)
    return max(end, x + 1)


class SeparatedBed:
    """The original, with the dialogue removed under the clips: see the module docstring."""

    def __init__(
        self,
        blocks: Iterator[np.ndarray],
        block: int,
        total: int,
        rate: int,
        channels: int,
        clips: ClipSpans,
        ramp: int,
        prepared: Prepared | None = None,
    ) -> None:
        self._channels, self._prepared = channels, prepared
        self._ahead = _Ahead(blocks, block, total)
        self._rate, self._ramp, self._clips = rate, ramp, clips
        self._ctx = round(CONTEXT_S * rate)
        self._chunk = round(CHUNK_S * rate)
        self._merge = round(MERGE_S * rate)
        self._pieces: collections.deque[tuple[int, np.ndarray]] = collections.deque()
        self._done = 0  # separated up to here
        self._model: Callable[[np.ndarray, int], np.ndarray] | None = None
        self._process: SeparatorProcess | None = None
        #: Samples separated (kept) and fed to the model (with the context), so far.
        self.separated = self.fed = 0

    def original(self, b0: int, n: int) -> np.ndarray:
        """A copy of the original's samples ``[b0, b0 + n)``."""
        return self._ahead.read(b0, n)

    def accompaniment(self, b0: int, needed: np.ndarray) -> np.ndarray:
        """The accompaniment over ``[b0, b0 + len(needed))`` where ``needed`` (else zeros):
        read from what the child separated ahead where it covers them, else separated now."""
        if self._prepared is not None and (got := self._prepared.read(b0, needed)) is not None:
            return got
        n = len(needed)
        wanted = b0 + np.flatnonzero(needed)
        while wanted.size and wanted[-1] >= self._done:
            self._separate_from(int(wanted[np.searchsorted(wanted, self._done)]))
        out = np.zeros((self._channels, n), np.float32)
        for p0, p in self._pieces:
            lo, hi = max(b0, p0), min(b0 + n, p0 + p.shape[1])
            if lo < hi:
                out[:, lo - b0 : hi - b0] = p[:, lo - p0 : hi - p0]
        return out

    def forget(self, before: int) -> None:
        """Release what lies before ``before`` less the model's context."""
        while self._pieces and self._pieces[0][0] + self._pieces[0][1].shape[1] <= before:
            self._pieces.popleft()
        self._ahead.forget(before - self._ctx)
        self._clips.forget(before)

    def _separate_from(self, x: int) -> None:
        spans = self._clips.upto(x + self._chunk + self._merge + self._ramp)
        end = max(min(_region_end(spans, x, self._ramp, self._merge), self._ahead.total), x + 1)
        pieces = -(-(end - x) // self._chunk)
        e = x + -(-(end - x) // pieces)  # chunks of even length, none a sliver
        r0, r1 = max(0, x - self._ctx), min(e + self._ctx, self._ahead.total)
        audio = self._ahead.read(r0, r1 - r0)
        if self._model is None:
            self._model = self._start()
        acc = self._model(audio.T, self._rate).T
        self.separated, self.fed = self.separated + e - x, self.fed + r1 - r0
        self._pieces.append((x, np.ascontiguousarray(acc[:, x - r0 : e - r0])))
        self._done = e

    def _start(self) -> Callable[[np.ndarray, int], np.ndarray]:
        """The child process; where no interpreter can be started (an embedded Python),
        the model in this process (with its memory)."""
        try:
            self._process = SeparatorProcess()
        except OSError:
            log.debug("no interpreter for the separation child: separating in process")
            from dubkit.mix import spleeter

            return lambda x, rate: spleeter.separate(x, rate)[1]
        return self._process

    def close(self) -> None:
        log.debug("separated %.1f s (%.1f s with context)",
                  self.separated / self._rate, self.fed / self._rate)  # fmt: skip
        if self._process is not None:
            self._process.close()

    def __enter__(self) -> SeparatedBed:
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(MediaToolError):
            self.close()
