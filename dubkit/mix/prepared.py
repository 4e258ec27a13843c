"""``--mix separate`` ahead of the mix: the accompaniment separated while the requests run.

Where a clip can play is known from the utterances, long before the translations arrive: a
clip starts at its utterance's start, or earlier by at most the fitting's borrow
(:attr:`dubkit.fit.FitOptions.borrow_ms`), and ends by the next utterance's start (the last
one, by the media's end); the mix's ramp widens each side. :func:`regions` gathers those
spans (merged across gaps under :data:`~dubkit.mix.separate.MERGE_S`) and :func:`chunks`
cuts them as the in-step separation does (even chunks of at most
:data:`~dubkit.mix.separate.CHUNK_S` seconds, :data:`~dubkit.mix.separate.CONTEXT_S` seconds
of context on each side). :class:`Prepared` runs ``python -m dubkit.mix.prepared``, which
decodes the original itself and writes each chunk's accompaniment, float32
``(frames, channels)``, to a scratch file in the job's work folder, in order, one line on its
stdout per chunk written; the mix reads from there (waiting only where the child has not
got so far), so the dub's memory holds no more than one block of it. Samples outside the
regions (none, unless the fitting changes) are separated in step as before.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np

from dubkit import tools
from dubkit.mix.separate import CHUNK_S, CONTEXT_S, MERGE_S

if TYPE_CHECKING:
    from dubkit.media import AudioSource

ERROR = "dialogue separation failed in its worker process"


def regions(
    starts_ms: Sequence[int], total: int, rate: int, ramp: int, borrow_ms: int
) -> list[tuple[int, int]]:
    """``[start, end)`` samples that a clip starting at one of ``starts_ms`` (sorted) can
    reach, its ramps included, merged where closer than ``MERGE_S``."""
    merge, out = round(MERGE_S * rate), list[tuple[int, int]]()
    for i, s in enumerate(starts_ms):
        a = max(0, (s - borrow_ms) * rate // 1000 - ramp - 1)
        nxt = starts_ms[i + 1] if i + 1 < len(starts_ms) else None
        b = total if nxt is None else min(total, -(-nxt * rate // 1000) + ramp + 1)
        if a >= b:
            continue
        if out and a - out[-1][1] <= merge:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def chunks(spans: Sequence[tuple[int, int]], rate: int) -> list[tuple[int, int]]:
    """Each region cut into even chunks of at most ``CHUNK_S`` (none a sliver)."""
    size, out = round(CHUNK_S * rate), []
    for a, b in spans:
        x = a
        while x < b:
            e = x + -(-(b - x) // -(-(b - x) // size))
            out.append((x, e))
            x = e
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
        self._xs = self._es = self._offsets = np.zeros(0, np.int64)
        self._channels = 1
        self.done = 0  # chunks the child has reported written

    def start(self, source: dict[str, object], cut: Sequence[tuple[int, int]]) -> None:
        """Separate ``cut`` (from :func:`chunks`) of ``source``: ``{"media", "stream",
        "rate", "channels", "layout", "total"}`` (a media file's track, decoded as the mix
        decodes it) or ``{"raw", "rate", "channels", "total"}`` (float32 frames)."""
        spec = {**source, "chunks": [list(c) for c in cut], "out": str(self.path)}
        self._channels = int(source["channels"])  # type: ignore[call-overload]
        self._xs = np.array([c[0] for c in cut], np.int64)
        self._es = np.array([c[1] for c in cut], np.int64)
        self._offsets = np.concatenate([[0], np.cumsum(self._es - self._xs)]).astype(np.int64)
        stdin = self._child.proc.stdin
        assert stdin is not None
        try:
            stdin.write(json.dumps(spec).encode() + b"\n")
            stdin.close()
        except BrokenPipeError as e:
            raise self._child.failure(ERROR) from e

    def read(self, b0: int, needed: np.ndarray) -> np.ndarray | None:
        """The accompaniment over ``[b0, b0 + len(needed))`` where ``needed`` (else zeros);
        None where a needed sample lies outside the chunks."""
        n = len(needed)
        wanted = b0 + np.flatnonzero(needed)
        out = np.zeros((self._channels, n), np.float32)
        if not wanted.size:
            return out
        idx = np.searchsorted(self._xs, wanted, "right") - 1
        if idx[0] < 0 or not np.all(wanted < self._es[idx]):
            return None
        for k in np.unique(idx):
            self._wait(int(k))
            x, e = int(self._xs[k]), int(self._es[k])
            lo, hi = max(b0, x), min(b0 + n, e)
            out[:, lo - b0 : hi - b0] = self._frames(int(self._offsets[k]) + lo - x, hi - lo)
        return out

    def _frames(self, at: int, count: int) -> np.ndarray:
        if self._file is None:
            self._file = open(self.path, "rb")  # noqa: SIM115 (closed by close())
        ch = self._channels
        self._file.seek(4 * ch * at)
        raw = self._file.read(4 * ch * count)
        return np.frombuffer(raw, np.float32).reshape(count, ch).T

    def _wait(self, k: int) -> None:
        """Until the child has written chunk ``k``."""
        stdout = self._child.proc.stdout
        assert stdout is not None
        while self.done <= k:
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
    order into its ``out`` file, one line on stdout per chunk written."""
    from dubkit.mix import BLOCK, spleeter
    from dubkit.mix.separate import _Ahead

    spleeter.mask_model()  # the weights load while the dub segments
    line = sys.stdin.readline()
    if not line:
        return
    spec = json.loads(line)
    rate, total = int(spec["rate"]), int(spec["total"])
    ctx = round(CONTEXT_S * rate)
    ahead = _Ahead(_blocks(spec), BLOCK, total)
    with open(spec["out"], "wb") as out:
        for x, e in spec["chunks"]:
            r0, r1 = max(0, x - ctx), min(e + ctx, total)
            audio = np.ascontiguousarray(ahead.read(r0, r1 - r0).T, np.float32)
            acc = spleeter.separate(audio, rate)[1]
            out.write(np.ascontiguousarray(acc[x - r0 : e - r0], np.float32).tobytes())
            out.flush()
            ahead.forget(e - ctx)
            sys.stdout.write(f"{x} {e}\n")
            sys.stdout.flush()


if __name__ == "__main__":
    child()
