"""``--mix separate``: the original's dialogue taken out where a dubbed clip plays.

Only the spans the dub covers are separated, each widened by the mix's ramp, where the bed
crossfades from the original to the separated accompaniment and back (linear, the duck's
trapezoid): far from every clip the original passes bit for bit. The accompaniment is
separated on a fixed grid (:mod:`dubkit.mix.grid`): chunks of 21.75 s from the media's start,
each read with 1 s more on each side for the model, so that chunk and context make two of
Spleeter's 512-frame segments. A chunk is separated when the mix first needs one of its
samples, and a sample's accompaniment depends on its chunk alone, not on which clips asked for
it: separated in step here or ahead by :mod:`dubkit.mix.prepared`, it is the same. Memory is
bounded by a chunk of the original and its accompaniment, whatever the media's length.

The model (:mod:`dubkit.mix.spleeter`: onnxruntime, or numpy) runs in a child process: its
weights (some 80 MB) and working memory never weigh on the dub's process. Surround layouts
need no model: the dialogue is the centre channel, dropped under each clip (the other channels
untouched).
"""

from __future__ import annotations

import contextlib
import logging
import struct
import sys
from collections.abc import Callable, Iterator
from typing import IO, TYPE_CHECKING

import numpy as np

from dubkit import tools
from dubkit.errors import MediaToolError
from dubkit.mix.grid import CHUNK_S, CONTEXT_S, Ahead, Chunk

if TYPE_CHECKING:
    from dubkit.mix.prepared import Prepared

_HEADER = struct.Struct("<qqq")
log = logging.getLogger(__name__)


def available() -> bool:
    """Whether the separation model is installed (see
    :func:`dubkit.mix.spleeter_weights.available`)."""
    from dubkit.mix import spleeter_weights

    return spleeter_weights.available()


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


class SeparatedBed:
    """The original, with the dialogue removed under the clips: see the module docstring."""

    def __init__(
        self,
        blocks: Iterator[np.ndarray],
        total: int,
        rate: int,
        channels: int,
        prepared: Prepared | None = None,
    ) -> None:
        self._channels, self._prepared = channels, prepared
        self._ahead = Ahead(blocks, total)
        self._rate, self._total = rate, total
        self._size, self._ctx = round(CHUNK_S * rate), round(CONTEXT_S * rate)
        self._pieces: dict[int, np.ndarray] = {}  # chunk -> its accompaniment
        self._model: Callable[[np.ndarray, int], np.ndarray] | None = None
        self._process: SeparatorProcess | None = None
        #: Samples separated here (kept) and fed to the model (with the context), so far.
        self.separated = self.fed = 0

    def original(self, b0: int, n: int) -> np.ndarray:
        """A copy of the original's samples ``[b0, b0 + n)``."""
        return self._ahead.read(b0, n)

    def accompaniment(self, b0: int, n: int) -> np.ndarray:
        """The accompaniment of samples ``[b0, b0 + n)``, a span of one block (far shorter
        than a chunk, so within two chunks)."""
        out = np.empty((self._channels, n), np.float32)
        for k in range(b0 // self._size, (b0 + n - 1) // self._size + 1):
            x, piece = k * self._size, self._piece(k)
            lo, hi = max(b0, x), min(b0 + n, x + piece.shape[1])
            out[:, lo - b0 : hi - b0] = piece[:, lo - x : hi - x]
        return out

    def forget(self, before: int) -> None:
        """Release the chunks that end before ``before``, and the original before the
        context of the chunk that holds it."""
        for k in [k for k in self._pieces if (k + 1) * self._size <= before]:
            del self._pieces[k]
        self._ahead.forget(before // self._size * self._size - self._ctx)

    def _piece(self, k: int) -> np.ndarray:
        if k not in self._pieces:
            got = self._prepared.chunk(k) if self._prepared is not None else None
            self._pieces[k] = got if got is not None else self._separate(k)
        return self._pieces[k]

    def _separate(self, k: int) -> np.ndarray:
        c = Chunk.of(k, self._rate, self._total)
        audio = self._ahead.read(c.r0, c.r1 - c.r0)
        if self._model is None:
            self._model = self._start()
        acc = self._model(audio.T, self._rate).T
        self.separated, self.fed = self.separated + c.e - c.x, self.fed + c.r1 - c.r0
        return np.ascontiguousarray(acc[:, c.x - c.r0 : c.e - c.r0])

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
