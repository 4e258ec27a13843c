"""Loudness matching: the gain that brings the dubbed speech to the original speech's loudness.

ITU-R BS.1770 integrated loudness (K-weighted, gated) of speech only, on both sides,
measured by FFmpeg's ``ebur128`` filter through PyAV, fed a second at a time: the measure
holds no copy of the audio (pyloudnorm, used before, made four float64 copies of it, some
70 MB for two minutes of speech at the moment the mix was about to start). A surround
original is measured over its whole layout by :func:`dubkit.media.channels.layout_loudness`.
A streamed dub's gain is a :class:`RunningGain`: each clip is matched with the dub's speech
so far, up to ``MixOptions.loudness_ms`` of it, so the mix starts with the first clip
instead of waiting for minutes of translations; the original's side is the same amount of
speech spread over the whole file.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from dubkit.errors import InputError
from dubkit.media.channels import ChannelLayout, layout_loudness, placement_gain_db
from dubkit.types import SERVICE_RATE, VAD_RATE, Utterance

if TYPE_CHECKING:
    from dubkit.media import AudioSource
    from dubkit.media.scratch import FileAudio

log = logging.getLogger(__name__)

#: The largest gain loudness matching applies, either way.
MAX_GAIN_DB = 30.0


#: BS.1770's gating block, and its absolute gate: a measure at or under it is silence.
BLOCK_S = 0.4
ABSOLUTE_GATE_LUFS = -70.0
_LAYOUTS = {1: "mono", 2: "stereo"}
_FEED = 1 << 15  # samples per frame fed to the meter


def _planar(x: np.ndarray) -> np.ndarray:
    """``(n,)`` or ``(channels, n)`` audio, int16 or float, as ``(channels, n)``."""
    a = np.asarray(x)
    if a.ndim == 1:
        a = a[np.newaxis]
    if a.ndim != 2 or a.shape[0] not in _LAYOUTS:
        raise InputError(f"loudness: audio must be (n,) or (1-2, n), got shape {np.shape(x)}")
    return a


class _Meter:
    """BS.1770 integrated loudness of audio pushed in pieces, as if joined (FFmpeg's
    ``ebur128``): the value after each piece is the loudness of everything pushed so far."""

    def __init__(self, rate: int, layout: str) -> None:
        import av.filter

        self._rate, self._layout, self._at = rate, layout, 0
        self._graph = av.filter.Graph()
        chain = [
            self._graph.add_abuffer(format="fltp", sample_rate=rate, layout=layout),
            self._graph.add("ebur128", "metadata=1"),
            self._graph.add("abuffersink"),
        ]
        for a, b in itertools.pairwise(chain):
            a.link_to(b)
        self._graph.configure()
        self._value: str | None = None

    def push(self, x: np.ndarray) -> None:
        """Add ``(channels, n)`` audio, int16 or float."""
        import av

        scale = np.float32(1 / 32768) if np.issubdtype(x.dtype, np.integer) else np.float32(1)
        for at in range(0, x.shape[1], _FEED):
            part = np.ascontiguousarray(x[:, at : at + _FEED], dtype=np.float32) * scale
            frame = av.AudioFrame.from_ndarray(part, format="fltp", layout=self._layout)
            frame.sample_rate, frame.pts = self._rate, self._at
            self._at += part.shape[1]
            self._graph.push(frame)
            self._drain()

    def close(self) -> None:
        """Measure the last partial block too; nothing can be pushed after."""
        self._graph.push(None)
        self._drain()

    def _drain(self) -> None:
        import av

        while True:
            try:
                frame = self._graph.pull()
            except (av.BlockingIOError, av.EOFError):
                return
            self._value = frame.metadata.get("lavfi.r128.I", self._value)

    @property
    def lufs(self) -> float | None:
        """The loudness so far; None while under one gating block or silent."""
        if self._value is None or not float(self._value) > ABSOLUTE_GATE_LUFS:
            return None
        return float(self._value)


def _loudness(x: np.ndarray, rate: int) -> float | None:
    """Integrated loudness (LUFS) of ``(channels, n)`` mono or stereo audio (int16 or float);
    None when shorter than one gating block or silent."""
    if x.shape[1] < round(BLOCK_S * rate) + 1:
        return None
    meter = _Meter(rate, _LAYOUTS[x.shape[0]])
    meter.push(x)
    meter.close()
    return meter.lufs


def _original_side(
    original_speech: np.ndarray, rate: int, layout: ChannelLayout | None
) -> tuple[float | None, float]:
    """The original speech's loudness, and what placing the mono dub in its layout adds to
    the dub's (3.01 dB on stereo, where it plays on both channels)."""
    if layout is not None and layout.count > 2:
        orig = np.asarray(original_speech)
        if orig.ndim != 2 or orig.shape[0] != layout.count:
            raise InputError(f"loudness: expected ({layout.count}, n) original speech")
        if np.issubdtype(orig.dtype, np.integer):
            orig = orig.astype(np.float32) / 32768
        return layout_loudness(orig, rate, layout), placement_gain_db(layout)
    orig = _planar(original_speech)
    return _loudness(orig, rate), float(10 * np.log10(orig.shape[0]))


def loudness_gain_db(
    original_speech: np.ndarray,
    dub_speech: np.ndarray,
    rate: int,
    dub_rate: int | None = None,
    layout: ChannelLayout | None = None,
) -> float:
    """Gain (dB) that brings the dub's speech to the original speech's loudness.

    Both are BS.1770 integrated loudness (FFmpeg's ebur128: K-weighted, gated), so
    pass speech only. ``original_speech`` may be ``(2, n)``: the mono dub is then
    measured as played on both channels, as :func:`mix` plays it (3.01 dB louder). Returns
    0.0 when either side is shorter than one 400 ms block or silent (all gated),
    and is clamped to ``±MAX_GAIN_DB``. ``dub_rate`` (default ``rate``) lets each side be
    measured at its own rate, so neither needs resampling.

    With a surround ``layout`` (more than two channels), ``original_speech`` is
    ``(channels, n)`` in that layout and is measured over the whole layout (BS.1770-4
    channel weights, LFE excluded); the dub is measured as :func:`mix` places it
    (in the centre channel).
    """
    if np.ndim(dub_speech) != 1 and np.shape(dub_speech)[0] != 1:
        raise InputError(f"loudness: dub speech must be mono, got shape {np.shape(dub_speech)}")
    lo, placement_db = _original_side(original_speech, rate, layout)
    ld = _loudness(_planar(dub_speech), dub_rate or rate)
    return _clamped(lo, None if ld is None else ld + placement_db)


def _gain(lo: float, ld: float) -> float:
    return float(np.clip(lo - ld, -MAX_GAIN_DB, MAX_GAIN_DB))


def _clamped(lo: float | None, ld: float | None) -> float:
    if lo is None or ld is None:
        log.info("loudness matching skipped: speech too short or silent")
        return 0.0
    if abs(lo - ld) > MAX_GAIN_DB:
        log.warning("loudness gain %.1f dB clamped to ±%.0f dB", lo - ld, MAX_GAIN_DB)
    return _gain(lo, ld)


class RunningGain:
    """The dub's gain, decided clip by clip as the translations arrive, so that neither the
    mix nor its encoder ever waits for it.

    Each clip gets the gain that the dub's speech so far, its own included, calls for
    against the original speech. Once ``budget`` samples of the dub's speech are in (two
    minutes by default: enough to pin an integrated loudness well within 0.5 LU), the gain
    is final for every later clip, and equals what a measure of those two minutes at once
    gives. A clip's gain never depends on later clips, so the same answers give the same
    samples whatever order they arrive in. Before the first 400 ms of dubbed speech (one
    gating block) no measure exists, and a clip that short plays at 0 dB.
    """

    def __init__(self, original_lufs: float | None, placement_db: float, budget: int) -> None:
        self._target, self._placement_db, self._left = original_lufs, placement_db, budget
        self._meter = _Meter(SERVICE_RATE, "mono")
        self._db = 0.0
        self._final = original_lufs is None

    def next(self, voiced: np.ndarray) -> float:
        """The gain (dB) of the next clip, whose speech is ``voiced`` (mono, SERVICE_RATE)."""
        if self._final or self._target is None:
            return self._db
        piece = voiced[: self._left]
        self._left -= len(piece)
        if len(piece):
            self._meter.push(piece[np.newaxis])
        if self._left <= 0:
            self._meter.close()
            self._final = True
        ld = self._meter.lufs
        if ld is not None:
            ld += self._placement_db
            final = self._final
            self._db = _clamped(self._target, ld) if final else _gain(self._target, ld)
        return self._db


def running_gain(
    audio: FileAudio, utterances: Sequence[Utterance], src: AudioSource, loudness_ms: int
) -> RunningGain:
    """The dub's :class:`RunningGain` against the original speech: ``loudness_ms`` of it
    spread over the file (a surround original measured over its whole layout, decoded again
    at full quality)."""
    spans = [(u.start_ms, u.end_ms) for u in utterances]
    if src.layout.count > 2:
        original, rate = src.read_spans(spans, loudness_ms), src.fmt.rate
    else:
        original, rate = audio.read_spread(spans, loudness_ms), VAD_RATE  # int16
    lo, placement_db = _original_side(original, rate, src.layout) if original.size else (None, 0)
    if lo is None:
        log.info("loudness matching skipped: the original's speech is too short or silent")
    return RunningGain(lo, placement_db, loudness_ms * SERVICE_RATE // 1000)
