"""Voice activity segmentation: 16 kHz mono PCM in, speech utterances out.

The pipeline is split in two so that the timing logic can be tested on its own:

* an edge (:class:`Segmenter`) that cuts the audio into frames, asks webrtcvad
  whether each frame is speech and measures each frame's energy;
* a pure core in :mod:`dubkit.spans` (:class:`SpanTracker`, :func:`split_span`,
  :func:`choose_cut`, re-exported here)
  that turns per-frame decisions into utterances: hysteresis smoothing ->
  merging across short pauses -> padding -> dropping blips -> splitting
  over-long utterances at their quietest pause.

Everything streams: memory holds the current utterance's per-frame energies,
never the media.

>>> import numpy as np
>>> segment(np.zeros(16_000, dtype=np.int16))
[]
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import webrtcvad

from dubkit.errors import InputError
from dubkit.spans import (
    MAX_REQUEST_MS,
    FrameGate,
    SegmentOptions,
    SpanTracker,
    choose_cut,
    split_span,
)
from dubkit.types import VAD_RATE, Utterance

__all__ = [
    "MAX_REQUEST_MS",
    "FrameGate",
    "SegmentOptions",
    "Segmenter",
    "SpanTracker",
    "choose_cut",
    "segment",
    "split_span",
]

log = logging.getLogger(__name__)

#: Energy floor (dBFS) for digital silence, so that log10 never sees zero.
_FLOOR_DB = -100.0
#: Log-spaced bands (Hz) over which spectral flux is measured.
_FLUX_BAND_EDGES = np.geomspace(100.0, 7000.0, 21)
#: Frames processed per block by the VAD edge (bounds temporary arrays).
_BLOCK_FRAMES = 2048

# --------------------------------------------------------------------------- VAD edge


def frame_energy_db(frames: np.ndarray) -> np.ndarray:
    """Mean power of each row of int16 ``frames`` in dBFS (floored at -100 dB)."""
    x = frames.astype(np.float32) / 32768.0
    power = np.einsum("ij,ij->i", x, x) / max(frames.shape[1], 1)
    return np.maximum(10.0 * np.log10(power + 1e-10), _FLOOR_DB)


def band_levels_db(frames: np.ndarray) -> np.ndarray:
    """Each int16 frame's level (dB) in 20 log-spaced bands from 100 Hz to 7 kHz."""
    n = frames.shape[1]
    x = frames.astype(np.float32) * np.hanning(n).astype(np.float32)
    power = np.abs(np.fft.rfft(x, axis=1)) ** 2
    edges = np.unique(np.searchsorted(np.fft.rfftfreq(n, 1.0 / VAD_RATE), _FLUX_BAND_EDGES))
    sums = np.add.reduceat(power, edges[:-1], axis=1)[:, : len(edges) - 1]
    width = np.diff(edges).astype(np.float32)
    return 10.0 * np.log10(sums / width / (32768.0**2 * n) + 1e-10)


class Segmenter:
    """Streaming segmentation of 16 kHz mono int16 PCM.

    ``feed`` chunks of any size as they are decoded; each call returns the
    utterances completed so far; ``finish`` returns the rest. Memory holds
    less than one frame of audio plus the current utterance's frame energies.
    """

    def __init__(self, options: SegmentOptions = SegmentOptions()) -> None:
        self.options = options
        self._vad = webrtcvad.Vad(options.aggressiveness)
        self._gate = FrameGate(options)
        self._tracker = SpanTracker(options)
        self._last_bands: np.ndarray | None = None
        self._frame = VAD_RATE * options.frame_ms // 1000
        self._rest = np.empty(0, dtype=np.int16)
        self._samples = 0
        self._finished = False

    @property
    def duration_ms(self) -> int:
        """Milliseconds of audio fed so far."""
        return self._samples * 1000 // VAD_RATE

    @property
    def buffered_samples(self) -> int:
        """Audio samples held between calls (always less than one frame)."""
        return len(self._rest)

    @property
    def buffered_frames(self) -> int:
        """Per-frame history held for the current utterance."""
        return self._tracker.buffered_frames

    def feed(self, chunk: np.ndarray) -> list[Utterance]:
        """Take the next chunk (1-D int16 at 16 kHz); return utterances completed so far."""
        if self._finished:
            raise RuntimeError("Segmenter.feed after finish")
        chunk = np.asarray(chunk)
        if chunk.ndim != 1 or chunk.dtype != np.int16:
            raise InputError(
                f"audio for segmentation must be 1-D int16 at {VAD_RATE} Hz, "
                f"got {chunk.dtype} with shape {chunk.shape}"
            )
        self._samples += len(chunk)
        out: list[Utterance] = []
        pos = 0
        if len(self._rest):
            need = self._frame - len(self._rest)
            head = np.concatenate((self._rest, chunk[:need]))
            pos = len(head) - len(self._rest)
            if len(head) < self._frame:
                self._rest = head
                return out
            self._rest = np.empty(0, dtype=np.int16)
            out += self._process(head.reshape(1, -1))
        n = (len(chunk) - pos) // self._frame
        step = _BLOCK_FRAMES * self._frame
        for a in range(pos, pos + n * self._frame, step):
            b = min(a + step, pos + n * self._frame)
            out += self._process(chunk[a:b].reshape(-1, self._frame))
        self._rest = chunk[pos + n * self._frame :].copy()
        return out

    def finish(self) -> list[Utterance]:
        """End the stream; return the remaining utterances (the last partial frame is ignored)."""
        if self._finished:
            return []
        self._finished = True
        return self._tracker.finish(self.duration_ms)

    def _process(self, frames: np.ndarray) -> list[Utterance]:
        is_speech = self._vad.is_speech
        data = np.ascontiguousarray(frames).tobytes()
        size = frames.shape[1] * 2
        voiced = [is_speech(data[j : j + size], VAD_RATE) for j in range(0, len(data), size)]
        energy = frame_energy_db(frames)
        bands = band_levels_db(frames)
        prev = bands[:1] if self._last_bands is None else self._last_bands
        flux = np.abs(np.diff(np.concatenate((prev, bands)), axis=0)).mean(axis=1)
        self._last_bands = bands[-1:]
        return self._tracker.push(self._gate.apply(voiced, energy, flux), energy)


def _chunks(source: str | Path | np.ndarray | Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    if isinstance(source, (str, Path)):
        from dubkit.media import iter_pcm16

        yield from iter_pcm16(source, rate=VAD_RATE)
    elif isinstance(source, np.ndarray):
        yield source
    else:
        yield from source


def segment(
    source: str | Path | np.ndarray | Iterable[np.ndarray],
    options: SegmentOptions = SegmentOptions(),
    *,
    duration_ms: int | None = None,
) -> list[Utterance]:
    """Find the speech in ``source``: sorted, non-overlapping utterances.

    ``source`` is a media file (its first audio stream is decoded), a 1-D
    int16 array at 16 kHz, or an iterable of such chunks. Every utterance
    lies inside ``[0, duration]`` where duration is the audio's length, or
    ``duration_ms`` if that is shorter; each lasts between
    ``options.min_utterance_ms`` and ``options.max_utterance_ms``. Silence
    or music gives an empty list.
    """
    seg = Segmenter(options)
    found: list[Utterance] = []
    for chunk in _chunks(source):
        found += seg.feed(chunk)
    found += seg.finish()
    if duration_ms is not None:
        found = [
            Utterance(u.start_ms, min(u.end_ms, duration_ms))
            for u in found
            if min(u.end_ms, duration_ms) - u.start_ms >= options.min_utterance_ms
        ]
    log.info(
        "%s: %d utterances in %d ms of audio",
        source if isinstance(source, (str, Path)) else "audio",
        len(found),
        seg.duration_ms,
    )
    return found
