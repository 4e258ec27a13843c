"""Loudness matching: the gain that brings the dubbed speech to the original speech's loudness.

ITU-R BS.1770 integrated loudness (pyloudnorm: K-weighted, gated) of speech only, on both
sides. The dub's side is its first ``MixOptions.loudness_ms`` of speech, so that a streamed
mix can start before the last translation arrives (:func:`loudness_head`); the original's is
the same amount spread over the whole file.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from dubkit.channels import ChannelLayout, layout_loudness, placement_gain_db
from dubkit.errors import InputError
from dubkit.types import SERVICE_RATE, VAD_RATE, Utterance

if TYPE_CHECKING:
    from dubkit.media import AudioSource
    from dubkit.timeline import Fitted
    from dubkit.workspace import FileAudio

log = logging.getLogger(__name__)

#: The largest gain loudness matching applies, either way.
MAX_GAIN_DB = 30.0


def _frames(x: np.ndarray) -> np.ndarray:
    """``(n,)`` or ``(channels, n)`` audio as pyloudnorm's ``(n,)``/``(n, channels)`` float64."""
    a = np.asarray(x)
    scale = 32768.0 if np.issubdtype(a.dtype, np.integer) else 1.0
    a = a.astype(np.float64) / scale
    if a.ndim == 2:
        a = a[0] if a.shape[0] == 1 else a.T
    elif a.ndim != 1:
        raise InputError(f"loudness: audio must be (n,) or (channels, n), got shape {a.shape}")
    return a


def _loudness(frames: np.ndarray, rate: int) -> float | None:
    import pyloudnorm

    meter = pyloudnorm.Meter(rate)
    if frames.shape[0] < round(meter.block_size * rate) + 1:
        return None
    value = float(meter.integrated_loudness(frames))
    return value if np.isfinite(value) else None


def loudness_gain_db(
    original_speech: np.ndarray,
    dub_speech: np.ndarray,
    rate: int,
    dub_rate: int | None = None,
    layout: ChannelLayout | None = None,
) -> float:
    """Gain (dB) that brings the dub's speech to the original speech's loudness.

    Both are BS.1770 integrated loudness (pyloudnorm, K-weighted, gated), so
    pass speech only. ``original_speech`` may be ``(channels, n)``: the mono dub
    is then measured copied to every channel, as :func:`mix` plays it. Returns
    0.0 when either side is shorter than one 400 ms block or silent (all gated),
    and is clamped to ``±MAX_GAIN_DB``. ``dub_rate`` (default ``rate``) lets each side be
    measured at its own rate, so neither needs resampling.

    With a surround ``layout`` (more than two channels), ``original_speech`` is
    ``(channels, n)`` in that layout and is measured over the whole layout (BS.1770-4
    channel weights, LFE excluded); the dub is measured as :func:`mix` places it
    (in the centre channel).
    """
    dub = _frames(dub_speech)
    if dub.ndim != 1:
        raise InputError(f"loudness: dub speech must be mono, got shape {np.shape(dub_speech)}")
    if layout is not None and layout.count > 2:
        orig = _frames(original_speech).T if np.ndim(original_speech) == 2 else None
        if orig is None or orig.shape[0] != layout.count:
            raise InputError(f"loudness: expected ({layout.count}, n) original speech")
        lo = layout_loudness(orig, rate, layout)
        ld = _loudness(dub, dub_rate or rate)
        ld = None if ld is None else ld + placement_gain_db(layout)
        return _clamped(lo, ld)
    orig = _frames(original_speech)
    if orig.ndim == 2:
        dub = np.repeat(dub[:, np.newaxis], orig.shape[1], axis=1)
    return _clamped(_loudness(orig, rate), _loudness(dub, dub_rate or rate))


def _clamped(lo: float | None, ld: float | None) -> float:
    if lo is None or ld is None:
        log.info("loudness matching skipped: speech too short or silent")
        return 0.0
    gain = lo - ld
    if abs(gain) > MAX_GAIN_DB:
        log.warning("loudness gain %.1f dB clamped to ±%.0f dB", gain, MAX_GAIN_DB)
    return float(np.clip(gain, -MAX_GAIN_DB, MAX_GAIN_DB))


def loudness_head(
    fitted: Iterator[Fitted], loudness_ms: int
) -> tuple[list[Fitted], np.ndarray]:
    """The first results, up to ``loudness_ms`` of dubbed speech, and that speech.

    The dub's gain is set from them before the mix starts, so that it never waits for the
    last translation: the service speaks every clip at one level, so its first two minutes
    (or all of it, when shorter) stand for the whole.
    """
    head: list[Fitted] = []
    speech: list[np.ndarray] = []
    need = loudness_ms * SERVICE_RATE // 1000
    for f in fitted:
        head.append(f.without_speech())
        speech.append(f.voiced)
        need -= len(f.voiced)
        if need <= 0:
            break
    return head, np.concatenate(speech) if speech else np.zeros(0, np.float32)


def dub_gain(
    audio: FileAudio,
    utterances: Sequence[Utterance],
    dub: np.ndarray,
    src: AudioSource,
    loudness_ms: int,
) -> float:
    """The gain that brings the dubbed speech to the loudness of the original speech (a
    surround original is measured over its whole layout, decoded again at full quality)."""
    spans = [(u.start_ms, u.end_ms) for u in utterances]
    if src.layout.count > 2:
        original, rate = src.read_spans(spans, loudness_ms), src.fmt.rate
    else:
        original = audio.read_spread(spans, loudness_ms).astype(np.float32) / 32768
        rate = VAD_RATE
    if dub.size == 0 or original.size == 0:
        return 0.0
    return loudness_gain_db(original, dub, rate, SERVICE_RATE, src.layout)
