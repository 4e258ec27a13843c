"""Who speaks each utterance: pitch and timbre, a speaker label, and that speaker's gender.

Pure analysis over 16 kHz mono int16 samples, read one utterance at a time (the whole
file is never held in memory), measured at 8 kHz (see :func:`at_8k`):

* :func:`voice_features` measures one utterance: F0 every 20 ms with Praat (parselmouth's
  autocorrelation pitch; median, 10th and 90th percentiles of the voiced frames that are
  within :data:`PITCH_GATE_DB` of its loud frames) and the mean and spread of 12 MFCCs of
  its loud frames (numpy/scipy, no model weights). The clustering uses the median F0 and
  the MFCC means; the rest is recorded for callers.
* :func:`cluster` groups utterances into speakers: average-linkage agglomerative
  clustering (scipy) over the features scaled by fixed, typical between-speaker spreads,
  cut at a distance threshold. Labels ``S1, S2, ...`` follow the order of first appearance.
* Gender is decided per *speaker*, from the speech-weighted median F0 of all of its
  utterances, so a short or odd phrase never flips a person's gender. A cluster with too
  little voiced speech (a fragment) joins the nearest speaker of its pitch side.

Measured on real speech (tests/test_voices_real.py): the threshold and scales keep each
person of the development programs in one cluster, and may merge two men with close
voices (they then share a voice, which costs nothing when voices are fewer than people).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from dubkit.types import VAD_RATE, Utterance

#: Below this speaker median F0 a voice is taken as a man's (adult men about 85-155 Hz,
#: women about 165-255 Hz).
GENDER_SPLIT_HZ = 160.0
PITCH_FLOOR_HZ = 60.0
PITCH_CEILING_HZ = 400.0
N_MFCC = 12
#: Two utterances (or groups) further apart than this, in scaled feature distance, are
#: different people.
DISTANCE_THRESHOLD = 1.0

RATE_8K = 8000
PITCH_STEP_MS = 20
#: F0 is read only from frames this close to the utterance's loud frames (its 95th
#: percentile of 40 ms energy). Under music, noise or babble the pauses between words are
#: voiced too, with the bed's pitch: Praat tracked bass notes and hums there, and a woman's
#: median fell under the gender split. A bed at least this far under the voice is left out
#: (measured on the real-speech programs, BENCHMARKS.md).
PITCH_GATE_DB = 10.0
_FRAME = 200  # 25 ms at 8 kHz
_HOP = 80  # 10 ms
_NFFT = 256
_N_MELS = 24


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
    mfcc_mean: tuple[float, ...]
    mfcc_std: tuple[float, ...]

    @property
    def voiced(self) -> bool:
        return self.voiced_ms > 0


@dataclass(frozen=True, slots=True)
class SpeakerInfo:
    """One utterance's speaker: its label, the speaker's gender, and its own median F0."""

    speaker: str  # "S1", "S2", ... in order of first appearance
    gender: str  # "male" or "female" (the speaker's, not the utterance's)
    f0_hz: float  # this utterance's median F0 (0.0: nothing voiced)


def at_8k(pcm: np.ndarray, rate: int = VAD_RATE) -> npt.NDArray[np.float64]:
    """``pcm`` (int16 at 8 or 16 kHz) as floats at 8 kHz, where both analyses run.

    The band below 4 kHz holds every harmonic Praat needs up to the 400 Hz ceiling and
    every band of the MFCCs (the 8 kHz telephone recordings people dub have no more);
    half the samples make both twice as fast.
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


def mfcc(pcm: np.ndarray, rate: int = VAD_RATE) -> npt.NDArray[np.float64]:
    """MFCC 1..12 of the loud 25 ms frames (within 30 dB of the loudest), one row per frame."""
    return _mfcc(at_8k(pcm, rate))


def _pitch(x: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], int]:
    """The F0 of the loud voiced frames, and how many frames are voiced (loud or not)."""
    import parselmouth

    if x.size * PITCH_FLOOR_HZ < 3.5 * RATE_8K:  # Praat needs three periods of the floor
        return np.zeros(0), 0
    pitch = parselmouth.Sound(x, sampling_frequency=RATE_8K).to_pitch_ac(
        time_step=PITCH_STEP_MS / 1000, pitch_floor=PITCH_FLOOR_HZ,
        pitch_ceiling=PITCH_CEILING_HZ,
    )  # fmt: skip
    f0 = np.asarray(pitch.selected_array["frequency"], dtype=np.float64)
    voiced = f0 > 0
    return f0[voiced & _loud_at(x, np.asarray(pitch.xs()))], int(voiced.sum())


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


def _mel_filterbank(rate: int) -> npt.NDArray[np.float64]:
    def mel(f: npt.ArrayLike) -> npt.NDArray[np.float64]:
        return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)

    top = rate / 2
    points = 700.0 * (10 ** (np.linspace(mel(80.0), mel(top), _N_MELS + 2) / 2595.0) - 1.0)
    bins = np.fft.rfftfreq(_NFFT, 1.0 / rate)
    bank = np.zeros((_N_MELS, bins.size))
    for i in range(_N_MELS):
        lo, mid, hi = points[i : i + 3]
        rise = (bins - lo) / (mid - lo)
        fall = (hi - bins) / (hi - mid)
        bank[i] = np.clip(np.minimum(rise, fall), 0.0, None)
    return bank


_BANK = _mel_filterbank(RATE_8K)


def _mfcc(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    from scipy.fft import dct

    n = 1 + (x.size - _FRAME) // _HOP if x.size >= _FRAME else 0
    if n == 0:
        return np.zeros((0, N_MFCC))
    x = np.append(x[0], x[1:] - 0.97 * x[:-1])  # pre-emphasis
    idx = np.arange(_FRAME)[None, :] + _HOP * np.arange(n)[:, None]
    frames = x[idx] * np.hamming(_FRAME)
    energy = 10 * np.log10(np.sum(frames**2, axis=1) + 1e-12)
    frames = frames[energy > energy.max() - 30.0]
    power = np.abs(np.fft.rfft(frames, _NFFT)) ** 2
    logmel = np.log(power @ _BANK.T + 1e-10)
    return np.asarray(dct(logmel, type=2, axis=1, norm="ortho")[:, 1 : N_MFCC + 1])


def voice_features(pcm: np.ndarray, rate: int = VAD_RATE) -> VoiceFeatures:
    """Pitch and timbre of one utterance (int16 mono, 8 or 16 kHz)."""
    x = at_8k(pcm, rate)
    (f0, voiced), coeffs = _pitch(x), _mfcc(x)
    if f0.size:
        p10, p50, p90 = (float(v) for v in np.percentile(f0, [10, 50, 90]))
    else:
        p10 = p50 = p90 = 0.0
    zeros = (0.0,) * N_MFCC
    return VoiceFeatures(
        f0_hz=p50,
        f0_p10_hz=p10,
        f0_p90_hz=p90,
        voiced_ms=voiced * PITCH_STEP_MS if f0.size else 0,
        mfcc_mean=tuple(float(v) for v in coeffs.mean(axis=0)) if len(coeffs) else zeros,
        mfcc_std=tuple(float(v) for v in coeffs.std(axis=0)) if len(coeffs) else zeros,
    )


#: Called as ``on_progress(done, total)`` after each utterance is measured.
ProgressFn = Callable[[int, int], None]


def analyze(
    audio: AudioSource, utterances: Sequence[Utterance], on_progress: ProgressFn | None = None
) -> list[VoiceFeatures]:
    """The features of each utterance, reading one utterance's samples at a time."""
    out = []
    for u in utterances:
        out.append(voice_features(audio.read(u.start_ms, u.end_ms)))
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
    centroid: tuple[float, ...]  # mean scaled feature vector (for "who sounds closest")


@dataclass(frozen=True, slots=True)
class Speakers:
    """The speakers of a list of utterances: one :class:`SpeakerInfo` per utterance."""

    utterances: tuple[SpeakerInfo, ...]
    speakers: tuple[Speaker, ...]

    def speaker(self, label: str) -> Speaker:
        return next(s for s in self.speakers if s.label == label)


#: Fixed scales of the clustering features, about one typical step between two people:
#: 10% in F0, and 2 units per MFCC mean (spread over the 12 coefficients).
F0_SCALE = 0.10
MFCC_SCALE = 2.0
#: A cluster with less voiced speech than this is a fragment: it joins the nearest
#: speaker of the same pitch side instead of standing as a person of its own.
MIN_SPEAKER_VOICED_MS = 1500


def feature_vector(f: VoiceFeatures) -> npt.NDArray[np.float64]:
    """The scaled vector clustered on: log median F0 and the MFCC means."""
    mfcc_part = np.asarray(f.mfcc_mean) / (MFCC_SCALE * np.sqrt(N_MFCC))
    return np.r_[np.log(max(f.f0_hz, 1.0)) / F0_SCALE, mfcc_part]


def gender_of(f0_hz: float) -> str:
    """``"male"`` below :data:`GENDER_SPLIT_HZ`, else ``"female"``."""
    return "male" if 0 < f0_hz < GENDER_SPLIT_HZ else "female"


def _weighted_median(values: npt.NDArray[np.float64], weights: npt.NDArray[np.float64]) -> float:
    order = np.argsort(values)
    cum = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cum, cum[-1] / 2)])


def _groups(vectors: npt.NDArray[np.float64], threshold: float) -> npt.NDArray[np.int64]:
    """Average-linkage clusters of ``vectors`` cut at ``threshold`` (ids from 1)."""
    from scipy.cluster.hierarchy import fcluster, linkage

    if len(vectors) == 1:
        return np.ones(1, dtype=np.int64)
    tree = linkage(vectors, method="average", metric="euclidean")
    return np.asarray(fcluster(tree, t=threshold, criterion="distance"), dtype=np.int64)


def _absorb_fragments(
    ids: npt.NDArray[np.int64], vectors: npt.NDArray[np.float64], feats: Sequence[VoiceFeatures]
) -> npt.NDArray[np.int64]:
    """Merge each cluster with too little voiced speech into the nearest big one of its side."""
    voiced = np.array([f.voiced_ms for f in feats], dtype=np.float64)
    f0 = np.array([f.f0_hz for f in feats])
    info = {}
    for c in np.unique(ids):
        m = ids == c
        info[int(c)] = (voiced[m].sum(), gender_of(_weighted_median(f0[m], voiced[m] + 1)),
                        vectors[m].mean(axis=0))  # fmt: skip
    big = [c for c, (v, _, _) in info.items() if v >= MIN_SPEAKER_VOICED_MS]
    out = ids.copy()
    for c, (v, side, centre) in info.items():
        near = [b for b in big if info[b][1] == side]
        if v < MIN_SPEAKER_VOICED_MS and near:
            best = min(near, key=lambda b: float(np.linalg.norm(info[b][2] - centre)))
            out[ids == c] = best
    return out


def _speaker(
    label: str, members: Sequence[VoiceFeatures], vectors: npt.NDArray[np.float64]
) -> Speaker:
    f0 = np.array([f.f0_hz for f in members])
    weight = np.array([f.voiced_ms for f in members], dtype=np.float64)
    median = _weighted_median(f0, weight + 1)
    centroid = tuple(float(v) for v in vectors.mean(axis=0))
    return Speaker(label, gender_of(median), median, int(weight.sum()), centroid)


def cluster(feats: Sequence[VoiceFeatures], threshold: float = DISTANCE_THRESHOLD) -> Speakers:
    """Label each utterance with its speaker (see the module doc).

    An utterance with nothing voiced takes the speaker of the nearest voiced utterance
    before it (after it, at the start); with nothing voiced at all, everyone is S1.
    """
    voiced = [i for i, f in enumerate(feats) if f.voiced]
    if not voiced:
        lone = Speaker("S1", "female", 0.0, 0, ())
        return Speakers(tuple(SpeakerInfo("S1", "female", 0.0) for _ in feats), (lone,))
    vectors = np.stack([feature_vector(feats[i]) for i in voiced])
    ids = _absorb_fragments(_groups(vectors, threshold), vectors, [feats[i] for i in voiced])
    owner = np.zeros(len(feats), dtype=np.int64)
    owner[voiced] = ids
    for i in range(len(feats)):  # unvoiced: the previous voiced one's speaker
        if owner[i] == 0:
            owner[i] = owner[i - 1] if i > 0 and owner[i - 1] else int(ids[0])
    labels: dict[int, str] = {}
    for c in owner.tolist():
        labels.setdefault(int(c), f"S{len(labels) + 1}")
    speakers = [
        _speaker(label, [feats[voiced[i]] for i in np.flatnonzero(ids == c)], vectors[ids == c])
        for c, label in labels.items()
    ]
    by_label = {s.label: s for s in speakers}
    infos = tuple(
        SpeakerInfo(labels[int(c)], by_label[labels[int(c)]].gender, f.f0_hz)
        for c, f in zip(owner, feats, strict=True)
    )
    return Speakers(infos, tuple(speakers))


def find_speakers(
    audio: AudioSource, utterances: Sequence[Utterance], on_progress: ProgressFn | None = None
) -> Speakers:
    """Measure each utterance (one at a time) and group them into speakers."""
    return cluster(analyze(audio, utterances, on_progress))
