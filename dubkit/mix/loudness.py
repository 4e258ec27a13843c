"""Loudness matching: the gain that brings the dubbed speech to the original speech's loudness.

ITU-R BS.1770 integrated loudness (K-weighted, gated) of speech only, on both sides,
measured by FFmpeg's ``ebur128`` filter through PyAV, fed a second at a time: the measure
holds no copy of the audio (pyloudnorm, used before, made four float64 copies of it, some
70 MB for two minutes of speech at the moment the mix was about to start). A surround
original is measured over its whole layout by :func:`dubkit.media.channels.layout_loudness`.
The dub's side is its first ``MixOptions.loudness_ms`` of speech, so that a streamed mix can
start before the last translation arrives (see
:func:`dubkit.pipeline.timeline.loudness_head`); the original's is the same amount spread
over the whole file.
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


def _loudness(x: np.ndarray, rate: int) -> float | None:
    """Integrated loudness (LUFS) of ``(channels, n)`` mono or stereo audio (int16 or float);
    None when shorter than one gating block or silent."""
    import av.filter

    if x.shape[1] < round(BLOCK_S * rate) + 1:
        return None
    layout = _LAYOUTS[x.shape[0]]
    graph = av.filter.Graph()
    chain = [
        graph.add_abuffer(format="fltp", sample_rate=rate, layout=layout),
        graph.add("ebur128", "metadata=1"),
        graph.add("abuffersink"),
    ]
    for a, b in itertools.pairwise(chain):
        a.link_to(b)
    graph.configure()
    scale = np.float32(1 / 32768) if np.issubdtype(x.dtype, np.integer) else np.float32(1)
    value = None

    def drain() -> None:
        nonlocal value
        while True:
            try:
                frame = graph.pull()
            except (av.BlockingIOError, av.EOFError):
                return
            value = frame.metadata.get("lavfi.r128.I", value)

    for at in range(0, x.shape[1], _FEED):
        part = np.ascontiguousarray(x[:, at : at + _FEED], dtype=np.float32) * scale
        frame = av.AudioFrame.from_ndarray(part, format="fltp", layout=layout)
        frame.sample_rate, frame.pts = rate, at
        graph.push(frame)
        drain()
    graph.push(None)
    drain()
    if value is None or not float(value) > ABSOLUTE_GATE_LUFS:
        return None
    return float(value)


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
    dub = _planar(dub_speech)
    if layout is not None and layout.count > 2:
        orig = np.asarray(original_speech)
        if orig.ndim != 2 or orig.shape[0] != layout.count:
            raise InputError(f"loudness: expected ({layout.count}, n) original speech")
        if np.issubdtype(orig.dtype, np.integer):
            orig = orig.astype(np.float32) / 32768
        lo = layout_loudness(orig, rate, layout)
        ld = _loudness(dub, dub_rate or rate)
        ld = None if ld is None else ld + placement_gain_db(layout)
        return _clamped(lo, ld)
    orig = _planar(original_speech)
    ld = _loudness(dub, dub_rate or rate)  # a mono dub plays on each channel of a stereo one
    ld = None if ld is None else ld + 10 * np.log10(orig.shape[0])
    return _clamped(_loudness(orig, rate), ld)


def _clamped(lo: float | None, ld: float | None) -> float:
    if lo is None or ld is None:
        log.info("loudness matching skipped: speech too short or silent")
        return 0.0
    gain = lo - ld
    if abs(gain) > MAX_GAIN_DB:
        log.warning("loudness gain %.1f dB clamped to ±%.0f dB", gain, MAX_GAIN_DB)
    return float(np.clip(gain, -MAX_GAIN_DB, MAX_GAIN_DB))


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
        original, rate = audio.read_spread(spans, loudness_ms), VAD_RATE  # int16
    if dub.size == 0 or original.size == 0:
        return 0.0
    return loudness_gain_db(original, dub, rate, SERVICE_RATE, src.layout)
