"""``--mix separate`` ahead of the mix: the accompaniment separated while the requests run.

Where a clip can play is known from the utterances, long before the translations arrive: a
clip starts at its utterance's start, or earlier by at most the fitting's borrow
(:attr:`dubkit.fit.FitOptions.borrow_ms`), and ends by the next utterance's start (the last
one, by the media's end); the mix's ramp widens each side. :func:`regions` gives those spans,
and :func:`dubkit.mix.separate.chunks_over` the chunks of the separation's grid that hold
them. :class:`Prepared` runs ``python -m dubkit.mix.prepared``, which decodes the original
itself and separates those chunks as the mix would (the same chunk, the same context, the
same model: the same samples), writing each chunk's accompaniment, float32
``(frames, channels)``, to a scratch file in the job's work folder, in order, one line on its
stdout per chunk written; the mix reads a chunk from there (waiting only where the child has
not got so far), so the dub's memory holds no more than one chunk of it. Chunks outside the
list (none, unless a clip outlasts the next utterance's start) are separated in step as before.
The scratch file holds every listed chunk until the dub ends: float32 at the media's rate, some
23 MB a minute of stereo 48 kHz.
"""

from __future__ import annotations

import collections
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np

from dubkit import tools
from dubkit.mix.separate import CONTEXT_S, Chunk

if TYPE_CHECKING:
    from dubkit.media import AudioSource

ERROR = "dialogue separation failed in its worker process"


def regions(
    starts_ms: Sequence[int], total: int, rate: int, ramp: int, borrow_ms: int
) -> list[tuple[int, int]]:
    """``[start, end)`` samples that a clip starting at one of ``starts_ms`` (sorted) can
    reach, its ramps included."""
    out = []
    for i, s in enumerate(starts_ms):
        a = max(0, (s - borrow_ms) * rate // 1000 - ramp - 1)
        nxt = starts_ms[i + 1] if i + 1 < len(starts_ms) else None
        b = total if nxt is None else min(total, -(-nxt * rate // 1000) + ramp + 1)
        if a < b:
            out.append((a, b))
    return out


def media_source(src: AudioSource, total: int) -> dict[str, object]:
    """:meth:`Prepared.start`'s ``source`` for the track the mix decodes."""
    fmt = src.fmt
    return {"media": str(src.path), "stream": src.stream, "rate": fmt.rate,
            "channels": fmt.channels, "layout": fmt.layout, "total": total}  # fmt: skip


class Prepared:
    """The child separating ahead, and the mix's reader of what it wrote."""

    def __init__(self, work: Path) -> None:
        self._child = tools.Child([sys.executable, "-m", "dubkit.mix.prepared"], stdout=True)
        self.path = work / "accompaniment.f32"
        self._file: IO[bytes] | None = None
        self._order: dict[int, int] = {}  # chunk -> its place in the file
        self._offsets = np.zeros(1, np.int64)  # frames before each chunk's, in the file
        self._channels = 1
        self.done = 0  # chunks the child has reported written

    def start(self, source: dict[str, object], chunks: Sequence[int]) -> None:
        """Separate the grid's ``chunks`` (increasing) of ``source``: ``{"media", "stream",
        "rate", "channels", "layout", "total"}`` (a media file's track, decoded as the mix
        decodes it) or ``{"raw", "rate", "channels", "total"}`` (float32 frames)."""
        spec = {**source, "chunks": list(chunks), "out": str(self.path)}
        self._channels = int(source["channels"])  # type: ignore[call-overload]
        rate, total = int(source["rate"]), int(source["total"])  # type: ignore[call-overload]
        self._order = {k: i for i, k in enumerate(chunks)}
        sizes = [Chunk.of(k, rate, total) for k in chunks]
        self._offsets = np.cumsum([0, *(c.e - c.x for c in sizes)]).astype(np.int64)
        stdin = self._child.proc.stdin
        assert stdin is not None
        try:
            stdin.write(json.dumps(spec).encode() + b"\n")
            stdin.close()
        except BrokenPipeError as e:
            raise self._child.failure(ERROR) from e

    def chunk(self, k: int) -> np.ndarray | None:
        """Chunk ``k``'s accompaniment ``(channels, frames)``, once the child has written it;
        None if it is not one of the chunks it separates."""
        i = self._order.get(k)
        if i is None:
            return None
        self._wait(i)
        at, end = int(self._offsets[i]), int(self._offsets[i + 1])
        return self._frames(at, end - at)

    def _frames(self, at: int, count: int) -> np.ndarray:
        if self._file is None:
            self._file = open(self.path, "rb")  # noqa: SIM115 (closed by close())
        ch = self._channels
        self._file.seek(4 * ch * at)
        raw = self._file.read(4 * ch * count)
        return np.frombuffer(raw, np.float32).reshape(count, ch).T

    def _wait(self, i: int) -> None:
        """Until the child has written the ``i``-th of its chunks (from 0)."""
        stdout = self._child.proc.stdout
        assert stdout is not None
        while self.done <= i:
            if not stdout.readline():
                self._child.proc.wait()
                raise self._child.failure(ERROR)
            self.done += 1

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._child.close()
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> Prepared:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ------------------------------------------------------------------ the child process


def _blocks(spec: dict[str, object]) -> Iterator[np.ndarray]:
    """The original, as the mix's blocks (``dubkit.mix._fixed_blocks``)."""
    from dubkit import media
    from dubkit.mix import BLOCK, _fixed_blocks

    channels, total = int(spec["channels"]), int(spec["total"])  # type: ignore[call-overload]
    if "raw" in spec:
        raw = np.fromfile(str(spec["raw"]), np.float32).reshape(-1, channels).T
        source: Iterator[np.ndarray] = (raw[:, i : i + BLOCK] for i in range(0, total, BLOCK))
    else:
        fmt = media.AudioFormat(int(spec["rate"]), channels, str(spec["layout"]))  # type: ignore[call-overload]
        source = media.AudioSource(Path(str(spec["media"])), int(spec["stream"]), fmt).blocks()  # type: ignore[call-overload]
    return _fixed_blocks(source, channels, total)


def child() -> None:
    """Read the spec (one JSON line, see :meth:`Prepared.start`), separate its chunks in
    order into its ``out`` file, one line on stdout per chunk written.

    Chunks are separated side by side, one per core (at most two), each by a one-thread
    model run: on cores the dub's mix and encoder share, independent chunks keep both busy
    where one chunk's two-thread run waits at every layer for its slower thread. The file
    is still written in the chunks' order; each chunk's samples are the same either way.
    """
    from concurrent.futures import Future, ThreadPoolExecutor

    from dubkit.mix import BLOCK, spleeter, spleeter_onnx
    from dubkit.mix.separate import _Ahead

    workers = spleeter_onnx.default_threads()
    spleeter.mask_model(threads=1)  # the weights load while the dub segments
    line = sys.stdin.readline()
    if not line:
        return
    spec = json.loads(line)
    rate, total = int(spec["rate"]), int(spec["total"])
    ctx = round(CONTEXT_S * rate)
    ahead = _Ahead(_blocks(spec), BLOCK, total)
    Job = tuple[int, Chunk, Future[tuple[np.ndarray, np.ndarray]]]
    pending: collections.deque[Job] = collections.deque()
    with open(spec["out"], "wb") as out, ThreadPoolExecutor(workers) as pool:

        def write_oldest() -> None:
            k, c, job = pending.popleft()
            acc = job.result()[1]
            out.write(np.ascontiguousarray(acc[c.x - c.r0 : c.e - c.r0], np.float32).tobytes())
            out.flush()
            sys.stdout.write(f"{k}\n")
            sys.stdout.flush()

        for k in spec["chunks"]:
            c = Chunk.of(int(k), rate, total)
            audio = np.ascontiguousarray(ahead.read(c.r0, c.r1 - c.r0).T, np.float32)
            ahead.forget(c.e - ctx)  # where a later chunk's context can start
            pending.append((int(k), c, pool.submit(spleeter.separate, audio, rate)))
            if len(pending) > workers:
                write_oldest()
        while pending:
            write_oldest()


if __name__ == "__main__":
    child()
