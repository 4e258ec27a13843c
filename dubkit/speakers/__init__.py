"""Who speaks each utterance: a speaker embedding and pitch, a speaker label, and the gender.

Pure analysis over 16 kHz mono int16 samples, read one utterance at a time (the whole
file is never held in memory):

* :func:`voice_features` measures one utterance: a 256-float d-vector (Resemblyzer's
  speaker encoder in numpy, :mod:`dubkit.speakers.embed`, on the 16 kHz samples) for who
  it is, and F0 every 20 ms with Praat (parselmouth's autocorrelation pitch, at 8 kHz;
  median, 10th and 90th percentiles of the voiced frames within :data:`PITCH_GATE_DB` of
  its loud frames) for the gender: the embedding carries no gender label.
* :func:`cluster` groups the whole file's utterances into speakers: average-linkage
  agglomerative clustering (scipy) on the mean cosine between two utterances' partial
  windows (each window's d-vector less the development people's mean embedding,
  :mod:`dubkit.speakers.background`: the encoder's outputs are non-negative, so any two
  people sit near cosine 0.5 before), less :data:`PITCH_WEIGHT` per octave between their
  median F0, cut where the average falls under :data:`SAME_ABOVE`. Only utterances of at
  least :data:`SHORT_MS` found speakers; a shorter one joins the speaker whose centroid is
  closest, and a cluster with less than :data:`MIN_SPEAKER_MS` of speech joins the nearest
  big one. Labels ``S1, S2, ...`` follow the order of first appearance.
* Gender is decided per *speaker*, from the speech-weighted median F0 of all of its
  utterances, so a short or odd phrase never flips a person's gender.

The background, threshold, pitch weight and short length were chosen on the "tune" half of
the real-speech people only (``fixtures/turns.py``; dubkit's own utterances, every
condition pooled) and measured on the other half (``bench/bench_voices.py``, BENCHMARKS.md,
issue 26). A dub runs this rule on what has been heard so far to label each utterance
as soon as it may (:mod:`dubkit.speakers.heard`), so that its requests start before the
segmentation ends; ``dubkit segments`` and ``speakers="whole"`` wait for the whole file.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np
import numpy.typing as npt

from dubkit.types import VAD_RATE, Utterance

if TYPE_CHECKING:
    from dubkit.speakers.embed import SpeakerEncoder

#: Below this speaker median F0 a voice is taken as a man's (adult men about 85-155 Hz,
#: women about 165-255 Hz).
GENDER_SPLIT_HZ = 160.0
#: Two groups of utterances whose average similarity (the mean cosine between their partial
#: windows, the background mean taken off each), less :data:`PITCH_WEIGHT` per octave between
#: their pitches, is at least this are one person. Chosen with the weight on the tune half
#: (issue 26, BENCHMARKS.md).
SAME_ABOVE = 0.225
#: Taken off the cosine per octave between two utterances' median F0: a man and a woman,
#: about an octave apart, stay apart where the channel makes their embeddings alike.
PITCH_WEIGHT = 0.3
#: Utterances shorter than this (ms) never found a speaker: they join the closest one.
SHORT_MS = 1500
#: A cluster with less speech than this (ms) is a fragment: it joins the nearest big one.
MIN_SPEAKER_MS = 1500

RATE_8K = 8000
PITCH_STEP_MS = 20
#: F0 is read only from frames this close to the utterance's loud frames (its 95th
#: percentile of 40 ms energy). Under music, noise or babble the pauses between words are
#: voiced too, with the bed's pitch: Praat tracked bass notes and hums there, and a woman's
#: median fell under the gender split. A bed at least this far under the voice is left out
#: (measured on the real-speech programs, BENCHMARKS.md).
PITCH_GATE_DB = 10.0


class AudioSource(Protocol):
    """Gives the int16 mono 16 kHz samples of ``[start_ms, end_ms)``."""

    def read(self, start_ms: int, end_ms: int) -> np.ndarray: ...


@dataclass(frozen=True, slots=True)
class VoiceFeatures:
    """What one utterance's voice sounds like."""

    f0_hz: float  # median F0 of the loud voiced frames; 0.0 when none is voiced
    f0_p10_hz: float
    f0_p90_hz: float
    voiced_ms: int  # how much of it is voiced (0 when no loud frame is)
    speech_ms: int  # how long it is
    embedding: tuple[float, ...]  # unit-length d-vector; () when not measured
    #: The mean of its partial windows' d-vectors, each less the background mean and unit
    #: length: two utterances' dot product is the mean cosine between their windows (lower
    #: where an utterance's windows disagree); () when not measured.
    window_mean: tuple[float, ...] = ()

    @property
    def voiced(self) -> bool:
        return self.voiced_ms > 0

    @property
    def embedded(self) -> bool:
        return any(self.embedding)


@dataclass(frozen=True, slots=True)
class SpeakerInfo:
    """One utterance's speaker: its label, the speaker's gender, and its own median F0."""

    speaker: str  # "S1", "S2", ... in order of first appearance
    gender: str  # "male" or "female" (the speaker's, not the utterance's)
    f0_hz: float  # this utterance's median F0 (0.0: nothing voiced)


def at_8k(pcm: np.ndarray, rate: int = VAD_RATE) -> npt.NDArray[np.float64]:
    """``pcm`` (int16 at 8 or 16 kHz) as floats at 8 kHz, where the pitch is read.

    The band below 4 kHz holds every harmonic Praat needs up to the 400 Hz ceiling (the
    8 kHz telephone recordings people dub have no more); half the samples make it twice
    as fast.
    """
    from dubkit.media import resample

    if rate == 2 * RATE_8K:  # the resampler works in float32, which holds int16 exactly
        return resample(pcm.astype(np.float32) / 32768, rate, RATE_8K).astype(np.float64)
    if rate != RATE_8K:
        raise ValueError(f"speaker analysis takes 8 or 16 kHz audio, got {rate} Hz")
    return pcm.astype(np.float64) / 32768.0


def pitch_track(pcm: np.ndarray, rate: int = VAD_RATE) -> npt.NDArray[np.float64]:
    """F0 in Hz every 20 ms where voiced (Praat autocorrelation) and loud (within
    :data:`PITCH_GATE_DB` of the loud frames); the other frames dropped."""
    return _pitch(at_8k(pcm, rate))[0]


def _pitch(x: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], int]:
    """The F0 of the loud voiced frames, and how many frames are voiced (loud or not)."""
    from dubkit.pitch import praat_pitch

    read = praat_pitch(x, RATE_8K, PITCH_STEP_MS / 1000)
    if read is None:
        return np.zeros(0), 0
    f0, times = read
    voiced = f0 > 0
    return f0[voiced & _loud_at(x, times)], int(voiced.sum())


def _loud_at(x: npt.NDArray[np.float64], times: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    """Whether the 40 ms of ``x`` (at 8 kHz) around each of ``times`` (s) is within
    :data:`PITCH_GATE_DB` of the loud ones (their 95th percentile)."""
    if times.size == 0:
        return np.zeros(0, dtype=bool)
    half = RATE_8K * PITCH_STEP_MS // 1000
    centre = np.round(times * RATE_8K).astype(np.int64)
    lo, hi = np.clip(centre - half, 0, x.size), np.clip(centre + half, 0, x.size)
    energy = np.concatenate(([0.0], np.cumsum(x * x)))
    db = 10 * np.log10((energy[hi] - energy[lo]) / np.maximum(hi - lo, 1) + 1e-12)
    return np.asarray(db > np.percentile(db, 95) - PITCH_GATE_DB)


def voice_features(
    pcm: np.ndarray, rate: int = VAD_RATE, encoder: SpeakerEncoder | None = None
) -> VoiceFeatures:
    """Pitch of one utterance (int16 mono, 8 or 16 kHz) and, given an ``encoder`` and
    16 kHz samples, its embedding (else ``()``)."""
    f0, voiced = _pitch(at_8k(pcm, rate))
    if f0.size:
        p10, p50, p90 = (float(v) for v in np.percentile(f0, [10, 50, 90]))
    else:
        p10 = p50 = p90 = 0.0
    embedding: tuple[float, ...] = ()
    window_mean: tuple[float, ...] = ()
    if encoder is not None and rate == VAD_RATE and pcm.size:
        parts = encoder.partials(pcm)
        mean = parts.mean(axis=0)
        embedding = tuple(float(v) for v in mean / max(float(np.linalg.norm(mean)), 1e-12))
        window_mean = tuple(float(v) for v in centred(parts.astype(np.float64)).mean(axis=0))
    return VoiceFeatures(
        f0_hz=p50,
        f0_p10_hz=p10,
        f0_p90_hz=p90,
        voiced_ms=voiced * PITCH_STEP_MS if f0.size else 0,
        speech_ms=pcm.size * 1000 // rate,
        embedding=embedding,
        window_mean=window_mean,
    )


#: Called as ``on_progress(done, total)`` after each utterance is measured.
ProgressFn = Callable[[int, int], None]


def analyze(
    audio: AudioSource,
    utterances: Sequence[Utterance],
    on_progress: ProgressFn | None = None,
    encoder: SpeakerEncoder | None = None,
) -> list[VoiceFeatures]:
    """The features of each utterance, reading one utterance's samples at a time; the
    encoder is loaded here unless given (:class:`~dubkit.errors.ConfigError` without it)."""
    from dubkit.speakers.embed import SpeakerEncoder

    enc = encoder if encoder is not None else SpeakerEncoder()
    out = []
    for u in utterances:
        out.append(voice_features(audio.read(u.core_start_ms, u.end_ms), encoder=enc))
        if on_progress is not None:
            on_progress(len(out), len(utterances))
    return out


@dataclass(frozen=True, slots=True)
class Speaker:
    """One person found in the audio."""

    label: str  # "S1", "S2", ...
    gender: str  # "male" or "female", from the speech-weighted median F0 of all utterances
    f0_hz: float  # that median
    voiced_ms: int  # how much voiced speech they have
    centroid: tuple[float, ...]  # unit-length speech-weighted mean embedding (who is closest)


@dataclass(frozen=True, slots=True)
class Speakers:
    """The speakers of a list of utterances: one :class:`SpeakerInfo` per utterance."""

    utterances: tuple[SpeakerInfo, ...]
    speakers: tuple[Speaker, ...]

    def speaker(self, label: str) -> Speaker:
        return next(s for s in self.speakers if s.label == label)


def gender_of(f0_hz: float) -> str:
    """``"male"`` below :data:`GENDER_SPLIT_HZ`, else ``"female"``."""
    return "male" if 0 < f0_hz < GENDER_SPLIT_HZ else "female"


def _weighted_median(values: npt.NDArray[np.float64], weights: npt.NDArray[np.float64]) -> float:
    order = np.argsort(values)
    cum = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cum, cum[-1] / 2)])


def _unit(v: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return v / max(float(np.linalg.norm(v)), 1e-12)


def centred(embeddings: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Each row less the background mean (:mod:`dubkit.speakers.background`), unit length."""
    from dubkit.speakers.background import MEAN

    x = embeddings - np.asarray(MEAN)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _window_means(feats: Sequence[VoiceFeatures]) -> npt.NDArray[np.float64]:
    """Each utterance's :attr:`VoiceFeatures.window_mean`; where it was not measured, its
    embedding less the background mean, unit length (as if it had one window)."""
    if all(f.window_mean for f in feats):
        return np.array([f.window_mean for f in feats], dtype=np.float64)
    return np.array(
        [f.window_mean or tuple(centred(np.array([f.embedding]))[0]) for f in feats],
        dtype=np.float64,
    )


def _linked(
    embeddings: npt.NDArray[np.float64], octaves: npt.NDArray[np.float64], same_above: float
) -> npt.NDArray[np.int64]:
    """Average-linkage cluster ids: one less the dot product of two rows (for window
    means, their mean cosine), plus :data:`PITCH_WEIGHT` per octave, cut at
    ``1 - same_above``."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import pdist

    if len(embeddings) == 1:
        return np.zeros(1, dtype=np.int64)
    n = len(embeddings)
    upper = np.triu_indices(n, 1)  # condensed order: one float per pair
    dist = 1 - (embeddings @ embeddings.T)[upper]
    dist += PITCH_WEIGHT * pdist(octaves[:, None], "cityblock")
    np.clip(dist, 0.0, None, out=dist)
    tree = linkage(dist, method="average")
    return np.asarray(fcluster(tree, t=1 - same_above, criterion="distance"), dtype=np.int64)


def group(
    embeddings: npt.NDArray[np.float64],
    speech_ms: npt.NDArray[np.float64],
    f0_hz: npt.NDArray[np.float64],
    same_above: float = SAME_ABOVE,
    min_ms: float = MIN_SPEAKER_MS,
) -> npt.NDArray[np.int64]:
    """Whole-file cluster ids (from 0, in order of first appearance) of ``embeddings``
    (:func:`cluster` passes each utterance's window mean) with median F0 ``f0_hz``
    (all > 0): the utterances of at least :data:`SHORT_MS` (all, when none is) clustered by
    :func:`_linked`; each shorter one joins the cluster whose speech-weighted centroid is
    closest; then a cluster with less than ``min_ms`` of speech joins the big
    cluster (the longest, when none is big) whose centroid is closest."""
    long = np.flatnonzero(speech_ms >= SHORT_MS)
    long = long if len(long) else np.arange(len(embeddings))
    ids = np.full(len(embeddings), -1, dtype=np.int64)
    ids[long] = _linked(embeddings[long], np.log2(f0_hz[long]), same_above)
    cents = _centroids(embeddings, speech_ms, ids)
    labels, matrix = list(cents), np.array(list(cents.values()))
    short = ids < 0
    if short.any():
        ids[short] = np.asarray(labels)[np.argmax(embeddings[short] @ matrix.T, axis=1)]
        cents = _centroids(embeddings, speech_ms, ids)
    size = {c: float(speech_ms[ids == c].sum()) for c in cents}
    big = [c for c, ms in size.items() if ms >= min_ms] or [max(size, key=lambda c: size[c])]
    to = {c: c if c in big else max(big, key=lambda b: float(cents[b] @ cents[c])) for c in cents}
    order: dict[int, int] = {}
    return np.array([order.setdefault(to[int(c)], len(order)) for c in ids], dtype=np.int64)


def _centroids(
    embeddings: npt.NDArray[np.float64],
    speech_ms: npt.NDArray[np.float64],
    ids: npt.NDArray[np.int64],
) -> dict[int, npt.NDArray[np.float64]]:
    """The unit speech-weighted mean embedding of each cluster id >= 0."""
    return {int(c): _unit(speech_ms[ids == c] @ embeddings[ids == c])
            for c in np.unique(ids[ids >= 0])}  # fmt: skip


def _speaker(label: str, members: Sequence[VoiceFeatures]) -> Speaker:
    f0 = np.array([f.f0_hz for f in members])
    weight = np.array([f.voiced_ms for f in members], dtype=np.float64)
    median = _weighted_median(f0, weight + 1)
    ms = np.array([f.speech_ms for f in members], dtype=np.float64)
    vectors = np.array([f.embedding for f in members if f.embedded], dtype=np.float64)
    shares = np.array([m for m, f in zip(ms, members, strict=True) if f.embedded])
    centroid = tuple(float(v) for v in _unit(shares @ vectors)) if len(vectors) else ()
    return Speaker(label, gender_of(median), median, int(weight.sum()), centroid)


def cluster(feats: Sequence[VoiceFeatures], same_above: float = SAME_ABOVE) -> Speakers:
    """Label each utterance with its speaker (see the module doc).

    An utterance with no embedding or nothing voiced takes the speaker of the nearest one
    before it that has both (after it, at the start); with none at all, everyone is S1.
    """
    known = [i for i, f in enumerate(feats) if f.voiced and f.embedded]
    if not known:
        lone = Speaker("S1", "female", 0.0, 0, ())
        return Speakers(tuple(SpeakerInfo("S1", "female", 0.0) for _ in feats), (lone,))
    ms = np.array([feats[i].speech_ms for i in known], dtype=np.float64)
    f0 = np.array([feats[i].f0_hz for i in known], dtype=np.float64)
    ids = group(_window_means([feats[i] for i in known]), ms, f0, same_above)
    owner = np.full(len(feats), -1, dtype=np.int64)
    owner[known] = ids
    for i in range(len(feats)):  # the others: the previous known one's speaker
        if owner[i] < 0:
            owner[i] = owner[i - 1] if i > 0 and owner[i - 1] >= 0 else int(ids[0])
    labels: dict[int, str] = {}
    for c in owner.tolist():
        labels.setdefault(int(c), f"S{len(labels) + 1}")
    speakers = [
        _speaker(label, [feats[known[i]] for i in np.flatnonzero(ids == c)])
        for c, label in labels.items()
    ]
    by_label = {s.label: s for s in speakers}
    infos = tuple(
        SpeakerInfo(labels[int(c)], by_label[labels[int(c)]].gender, f.f0_hz)
        for c, f in zip(owner, feats, strict=True)
    )
    return Speakers(infos, tuple(speakers))


def find_speakers(
    audio: AudioSource,
    utterances: Sequence[Utterance],
    on_progress: ProgressFn | None = None,
    encoder: SpeakerEncoder | None = None,
) -> Speakers:
    """Measure each utterance (one at a time) and group them into speakers."""
    return cluster(analyze(audio, utterances, on_progress, encoder))
