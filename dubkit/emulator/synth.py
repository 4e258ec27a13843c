"""The synthetic translation: speech-like PCM16 audio and pseudo-text, deterministic.

The audio is additive glottal-source synthesis: harmonics of a moving pitch
contour, shaped by vowel formant envelopes that change per syllable, with
syllable-rate (about 4-5 Hz) amplitude modulation, fricative noise bursts, short
pauses between words, a longer pause every few seconds, and 50-300 ms of
near-silence (a -70 dBFS noise floor) at the head and tail. Speech is scaled to
-20 dBFS RMS. Its length is 0.6x-1.6x the input's speech span, drawn from a hash
of the request, so some answers are longer than their input.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

import numpy as np

from dubkit.emulator.text import pseudo_text
from dubkit.types import SERVICE_RATE, VAD_RATE

RATE = SERVICE_RATE
TARGET_RMS = 32767 * 10 ** (-20 / 20)
NOISE_FLOOR = 32767 * 10 ** (-70 / 20)
MIN_RATIO, MAX_RATIO = 0.6, 1.6
_BANDWIDTH_HZ = 5500.0

#: Mean pitch per voice (Hz): men's voices 105-150 Hz, women's 200-240 Hz, each its own
#: and the two men every language has (Nofish, Ethan) well apart, so a test can tell
#: from the dub's F0 which voice spoke.
VOICE_PITCH: dict[str, float] = {
    "Cherry": 215.0, "Nofish": 132.0, "Ethan": 106.0, "Jada": 232.0, "Dylan": 118.0,
    "Sunny": 200.0, "Peter": 142.0, "Eric": 152.0, "Kiki": 240.0,
}
#: (F1, F2, F3) of a few vowels, Hz.
_VOWELS = np.array(
    [(730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480),
     (570, 840, 2410), (660, 1720, 2410), (440, 1020, 2240), (390, 1990, 2550)],
    dtype=np.float64,
)
_BANDWIDTHS = np.array([90.0, 110.0, 170.0])
_FORMANT_GAINS = np.array([1.0, 0.7, 0.35])


@dataclass(frozen=True, slots=True)
class SyntheticAnswer:
    """One synthetic translation: text, and PCM16 mono 24 kHz (empty without audio)."""

    text: str
    pcm: np.ndarray
    output_ms: int


def _seed(*parts: object) -> int:
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little")


def speech_span_ms(pcm: np.ndarray, rate: int = VAD_RATE) -> int:
    """Milliseconds from the first to the last 20 ms frame holding speech energy."""
    frame = rate // 50
    n = len(pcm) // frame
    if n == 0:
        return len(pcm) * 1000 // rate
    frames = pcm[: n * frame].astype(np.float64).reshape(n, frame)
    rms = np.sqrt(np.mean(frames**2, axis=1))
    loud = np.flatnonzero(rms > max(100.0, 0.05 * float(rms.max())))
    if len(loud) == 0:
        return len(pcm) * 1000 // rate
    return int(loud[-1] - loud[0] + 1) * 20


def synthesize_answer(
    pcm16k: np.ndarray,
    sha256: str,
    target: str,
    voice: str | None,
    seed: int | None,
    *,
    canned: bool = False,
) -> SyntheticAnswer:
    """The deterministic synthetic translation of one request.

    Length and text depend on the audio, target and seed (so a text-only request
    gets the same text as the same request with audio); the waveform also on the voice.
    ``canned`` cuts the waveform from :func:`speech_bank` instead of synthesizing it.
    """
    rng = np.random.default_rng(_seed(sha256, target, seed))
    ratio = rng.uniform(MIN_RATIO, MAX_RATIO)
    output_ms = max(300, round(speech_span_ms(pcm16k) * ratio))
    text = pseudo_text(rng, target, output_ms)
    if voice is None:
        return SyntheticAnswer(text, np.zeros(0, dtype=np.int16), output_ms)
    audio_rng = np.random.default_rng(_seed(sha256, target, seed, voice))
    n, pitch = output_ms * RATE // 1000, VOICE_PITCH.get(voice, 180.0)
    if canned:
        bank = speech_bank(pitch)
        at = int(audio_rng.integers(0, max(1, len(bank) - n)))
        pcm = np.resize(np.roll(bank, -at), n)
    else:
        pcm = synth_speech(audio_rng, n, pitch)
    return SyntheticAnswer(text, pcm, output_ms)


@functools.cache
def speech_bank(pitch: float) -> np.ndarray:
    """30 s of synthetic speech at ``pitch``, made once (read-only), for canned answers."""
    bank = synth_speech(np.random.default_rng(round(pitch * 1000)), 30 * RATE, pitch)
    bank.setflags(write=False)
    return bank


def synth_speech(rng: np.random.Generator, n: int, pitch: float) -> np.ndarray:
    """``n`` samples of speech-like PCM16 at 24 kHz, with silent-ish head and tail."""
    head = min(int(rng.integers(50, 301)) * RATE // 1000, n // 5)
    tail = min(int(rng.integers(50, 301)) * RATE // 1000, n // 5)
    body = n - head - tail
    out = rng.normal(0.0, NOISE_FLOOR, n)
    if body > 0:
        out[head : head + body] += _voice(rng, body, pitch)
    return np.clip(np.round(out), -32768, 32767).astype(np.int16)


def _plan(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-sample amplitude envelope, vowel index and fricative mask for ``n`` samples."""
    env = np.zeros(n)
    vowel = np.zeros(n, dtype=np.int64)
    fric = np.zeros(n)
    t = 0
    next_long_pause = int(rng.uniform(2.5, 4.0) * RATE)
    while t < n:
        for _ in range(int(rng.integers(1, 4))):
            length = min(int(rng.uniform(0.17, 0.26) * RATE), n - t)
            if length <= 0:
                break
            x = np.linspace(0.0, 1.0, length, endpoint=False)
            env[t : t + length] = rng.uniform(0.6, 1.0) * np.sin(np.pi * x) ** 0.6
            vowel[t : t + length] = int(rng.integers(len(_VOWELS)))
            burst = min(length, int(rng.uniform(0.02, 0.06) * RATE))
            if rng.random() < 0.6:
                fric[t : t + burst] = np.hanning(burst) * rng.uniform(0.2, 0.45)
            t += length
        gap = rng.uniform(0.05, 0.14)
        if t >= next_long_pause and n - t > RATE:
            gap = rng.uniform(0.3, 0.5)
            next_long_pause = t + int(rng.uniform(2.5, 4.0) * RATE)
        t += int(gap * RATE)
    return env, vowel, fric


def _smooth(x: np.ndarray, ms: int) -> np.ndarray:
    from scipy.signal import oaconvolve  # FFT convolution: the kernels are long

    width = max(1, ms * RATE // 1000)
    kernel = np.hanning(width + 2)[1:-1]
    return np.asarray(oaconvolve(x, kernel / kernel.sum(), mode="same"))


def _pitch(rng: np.random.Generator, n: int, pitch: float) -> np.ndarray:
    t = np.arange(n) / RATE
    knots = max(2, int(n / RATE * 5) + 2)
    accents = np.interp(t, np.linspace(0, t[-1] if n > 1 else 1, knots),
                        rng.uniform(-0.1, 0.1, knots))
    drift = 0.08 * np.sin(2 * np.pi * rng.uniform(0.2, 0.45) * t + rng.uniform(0, 6.28))
    declination = np.interp(t, [0, t[-1] if n > 1 else 1], [1.08, 0.92])
    jitter = _smooth(rng.normal(0, 0.01, n), 10)
    return pitch * declination * (1 + accents + drift + jitter)


def _voice(rng: np.random.Generator, n: int, pitch: float) -> np.ndarray:
    env, vowel, fric = _plan(rng, n)
    f0 = _pitch(rng, n, pitch)
    formants = np.stack([_smooth(_VOWELS[vowel, j], 40) for j in range(3)])
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    s1, s_prev = np.sin(phase), np.zeros(n)
    two_cos = 2 * np.cos(phase)
    sk = s1
    voiced = np.zeros(n)
    for k in range(1, int(_BANDWIDTH_HZ / f0.max()) + 1):
        fk = k * f0
        peaks = sum(
            g / (1 + ((fk - formants[j]) / (_BANDWIDTHS[j] / 2)) ** 2)
            for j, g in enumerate(_FORMANT_GAINS)
        )
        voiced += (0.08 + peaks) / k**0.7 * sk
        sk, s_prev = two_cos * sk - s_prev, sk
    noise = np.diff(rng.normal(0, 1, n + 1))
    breath = 0.03 * noise * env
    signal = voiced * env / (np.sqrt(np.mean(voiced**2)) + 1e-9) + noise * fric + breath
    active = env > 0.05
    rms = np.sqrt(np.mean(signal[active] ** 2)) if active.any() else 1.0
    return signal * (TARGET_RMS / max(rms, 1e-9))
