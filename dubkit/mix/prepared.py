"""``--mix separate`` ahead of the mix: the accompaniment separated while the requests run.

Where a clip can play is known from the utterances, long before the translations arrive: a
clip starts at its utterance's start, or earlier by at most the fitting's borrow
(:attr:`dubkit.fit.FitOptions.borrow_ms`), and ends by the next utterance's start (the last
one, by the media's end); the mix's ramp widens each side. :func:`regions` gives those spans,
and :func:`dubkit.mix.grid.chunks_over` the chunks of the separation's grid that hold
them; :class:`Reach` gives the same chunks one by one as the utterances' starts come from the
segmentation, so that the separation starts with the first utterances, not after the last.
:class:`Prepared` runs ``python -m dubkit.mix.prepared``, which decodes the original
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

import contextlib
import json
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np

from dubkit import tools
from dubkit.mix.grid import CONTEXT_S, Ahead, Chunk, chunks_over

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


class Reach:
    """The chunks over :func:`regions`, as the utterances' starts come in time order: an
    utterance's region is known once the next one's start is (the last one's, at
    :meth:`end`). Every chunk is given once, in increasing order, and all of them together
    are ``chunks_over(regions(starts, ...))``."""

    def __init__(self, total: int, rate: int, ramp: int, borrow_ms: int) -> None:
        self._args = total, rate, ramp, borrow_ms
        self._last: int | None = None  # the latest start heard, ms
        self._given = -1  # the highest chunk given

    def heard(self, starts_ms: Iterable[int]) -> list[int]:
        """The chunks that the utterances starting at ``starts_ms`` settle."""
        out: list[int] = []
        for s in starts_ms:
            if self._last is not None:
                out += self._region(self._last, max(s, self._last))
            self._last = s if self._last is None else max(s, self._last)
        return out

    def end(self) -> list[int]:
        """The chunks the last utterance's region adds, once no other will come."""
        return self._region(self._last, None) if self._last is not None else []

    def _region(self, start: int, nxt: int | None) -> list[int]:
        total, rate, ramp, borrow_ms = self._args
        spans = regions([start, *([nxt] if nxt is not None else [])], total, rate, ramp, borrow_ms)
        ks = [k for k in chunks_over(spans[:1], rate, total) if k > self._given]
        if ks:
            self._given = ks[-1]
        return ks


def media_source(src: AudioSource, total: int) -> dict[str, object]:
    """:meth:`Prepared.start`'s ``source`` for the track the mix decodes."""
    fmt = src.fmt
    return {"media": str(src.path), "stream": src.stream, "rate": fmt.rate,
            "channels": fmt.channels, "layout": fmt.layout, "total": total}  # fmt: skip


class Prepared:
    """The child separating ahead, and the mix's reader of what it wrote.

    :meth:`start` names the original; :meth:`add` lists chunks to separate (increasing, from
    any thread, while the mix reads); :meth:`close_list` says no more will come. The mix's
    :meth:`chunk` waits until it is known whether a chunk is listed.
    """

    def __init__(self, work: Path) -> None:
        self._child = tools.Child([sys.executable, "-m", "dubkit.mix.prepared"], stdout=True)
        self.path = work / "accompaniment.f32"
        self._file: IO[bytes] | None = None
        self._order: dict[int, int] = {}  # chunk -> its place in the file
        self._offsets = [0]  # frames before each chunk's, in the file
        self._channels, self._rate, self._total = 1, 1, 0
        self._listed = threading.Condition()
        self._last = -1  # the highest chunk listed
        self._closed = False
        self.done = 0  # chunks the child has reported written

    def start(self, source: dict[str, object]) -> None:
        """Name the original: ``{"media", "stream", "rate", "channels", "layout", "total"}``
        (a media file's track, decoded as the mix decodes it) or ``{"raw", "rate",
        "channels", "total"}`` (float32 frames)."""
        self._channels = int(source["channels"])  # type: ignore[call-overload]
        self._rate, self._total = int(source["rate"]), int(source["total"])  # type: ignore[call-overload]
        self._send(json.dumps({**source, "out": str(self.path)}))

    def add(self, chunks: Iterable[int]) -> None:
        """List ``chunks`` (each above every chunk listed before) for the child."""
        with self._listed:
            ks = list(chunks)
            for k in ks:
                if k <= self._last:
                    raise ValueError(f"chunk {k} listed after chunk {self._last}")
                c = Chunk.of(k, self._rate, self._total)
                self._order[k] = len(self._order)
                self._offsets.append(self._offsets[-1] + c.e - c.x)
                self._last = k
            self._listed.notify_all()
        if ks:
            self._send("".join(f"{k}\n" for k in ks).rstrip("\n"))

    def close_list(self) -> None:
        """No more chunks: the child ends once it has written those listed."""
        with self._listed:
            if self._closed:
                return
            self._closed = True
            self._listed.notify_all()
        stdin = self._child.proc.stdin
        assert stdin is not None
        with contextlib.suppress(BrokenPipeError):  # the child is gone: chunk() says so
            stdin.close()

    def _send(self, line: str) -> None:
        stdin = self._child.proc.stdin
        assert stdin is not None
        try:
            stdin.write(line.encode() + b"\n")
            stdin.flush()
        except (BrokenPipeError, ValueError) as e:  # ValueError: closed by close_list()
            raise self._child.failure(ERROR) from e

    def chunk(self, k: int) -> np.ndarray | None:
        """Chunk ``k``'s accompaniment ``(channels, frames)``, once the child has written it;
        None if it is not one of the chunks listed (known once a later one is, or the list
        is closed)."""
        with self._listed:
            self._listed.wait_for(lambda: k <= self._last or self._closed)
            i = self._order.get(k)
            if i is None:
                return None
            at, end = self._offsets[i], self._offsets[i + 1]
        self._wait(i)
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
        self.close_list()
        if self._file is not None:
            self._file.close()
        self._child.close()
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> Prepared:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class ClipReach:
    """Where the clips can play, told to the separation ahead as the utterances come (in
    time order): from each utterance's start less the fitting's borrow to the next one's
    start, each widened by the mix's ramps."""

    ahead: Prepared
    reach: Reach

    def heard(self, starts_ms: Iterable[int]) -> None:
        self.ahead.add(self.reach.heard(starts_ms))

    def end(self, complete: bool = True) -> None:
        """No more utterances: all of them were found (``complete``), or the segmentation
        stopped (the list closes as it is; the mix separates in step what it lacks)."""
        try:
            if complete:
                self.ahead.add(self.reach.end())
        finally:  # the mix must never wait for a list that will not close
            self.ahead.close_list()


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


#: Memory free for a second chunk's run beside the first: each run's working set is some
#: 300-350 MB (the child peaks near 1 GB with two, 650 MB with one).
SECOND_RUN_BYTES = 2 << 30


def side_by_side(cores: int, available: int | None) -> tuple[int, int]:
    """(chunks separated at once, threads for each run): two one-thread runs where there
    are two cores and :data:`SECOND_RUN_BYTES` of memory free (``available``; None: not
    known, taken as enough), else one run on the cores."""
    if cores >= 2 and (available is None or available >= SECOND_RUN_BYTES):
        return 2, 1
    return 1, cores


def _available_memory() -> int | None:
    """The kernel's estimate of the memory free for new work (``MemAvailable``), if known."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def child() -> None:
    """Read the spec (one JSON line, see :meth:`Prepared.start`), then chunk numbers, one a
    line, until stdin closes; separate each into the spec's ``out`` file, in order, and
    write one line on stdout per chunk written.

    Chunks are separated side by side, one per core (at most two), each by a one-thread
    model run: on cores the dub's mix and encoder share, independent chunks keep both busy
    where one chunk's two-thread run waits at every layer for its slower thread. With one
    core, or too little memory free for a second run (:func:`side_by_side`), one chunk at a
    time. The file is still written in the chunks' order; each chunk's samples are the same
    either way.
    """
    import os
    import queue
    import traceback
    from concurrent.futures import Future, ThreadPoolExecutor

    from dubkit.mix import spleeter, spleeter_onnx

    cores = spleeter_onnx.default_threads()
    workers, threads = side_by_side(cores, _available_memory())
    # Below the dub's own work (the segmentation and the requests start sooner); the
    # separation takes what CPU they leave, and all of it whenever the mix waits for it.
    os.nice(10)
    spleeter.mask_model(threads=threads)  # the weights load while the dub segments
    line = sys.stdin.readline()
    if not line:
        return
    spec = json.loads(line)
    rate, total = int(spec["rate"]), int(spec["total"])
    ctx = round(CONTEXT_S * rate)
    ahead = Ahead(_blocks(spec), total)
    room = threading.Semaphore(workers + 1)  # chunks separated or waiting to be written
    done: queue.Queue[tuple[Chunk, Future[tuple[np.ndarray, np.ndarray]]] | None] = queue.Queue()

    def write(out: IO[bytes]) -> None:
        try:
            while (job := done.get()) is not None:
                c, result = job
                acc = result.result()[1]
                out.write(np.ascontiguousarray(acc[c.x - c.r0 : c.e - c.r0], np.float32).tobytes())
                out.flush()
                sys.stdout.write(f"{c.k}\n")
                sys.stdout.flush()
                room.release()
        except BaseException:  # the parent sees the child end early, with this on stderr
            traceback.print_exc()
            sys.stderr.flush()
            os._exit(1)

    with open(spec["out"], "wb") as out, ThreadPoolExecutor(workers) as pool:
        writer = threading.Thread(target=write, args=(out,), name="writer", daemon=True)
        writer.start()
        try:
            while line := sys.stdin.readline():
                c = Chunk.of(int(line), rate, total)
                audio = np.ascontiguousarray(ahead.read(c.r0, c.r1 - c.r0).T, np.float32)
                ahead.forget(c.e - ctx)  # where a later chunk's context can start
                room.acquire()
                done.put((c, pool.submit(spleeter.separate, audio, rate)))
        finally:
            done.put(None)  # on an error too: what was separated is written, then we end
        writer.join()


if __name__ == "__main__":
    child()
