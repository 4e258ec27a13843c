"""The dubbed clips of one job, kept in a file of its work folder instead of in memory."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True, slots=True)
class ClipRef:
    """Where one dubbed clip's PCM16 lies in a :class:`ClipStore`."""

    offset: int
    size: int
    sample_rate: int


class ClipStore:
    """Dubbed clips appended to one file of the job's work folder, read back by reference.

    Keeps the translated speech of a long video on disk instead of in memory: a
    two-hour dub holds over 200 MB of it. Safe across threads: in a streamed dub the
    translate stage puts clips while the mix reads earlier ones.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = path.open("w+b")
        self._lock = threading.Lock()  # one file position for both

    def put(self, audio: bytes, sample_rate: int) -> ClipRef:
        with self._lock:
            self._file.seek(0, 2)
            ref = ClipRef(self._file.tell(), len(audio), sample_rate)
            self._file.write(audio)
        return ref

    def read(self, ref: ClipRef) -> np.ndarray:
        """The clip as int16 samples."""
        with self._lock:
            self._file.seek(ref.offset)
            data = self._file.read(ref.size)
        return np.frombuffer(data, dtype="<i2").astype(np.int16)

    def close(self) -> None:
        self._file.close()
