"""Mixing fitted dubbed clips over the original audio, in blocks.

:func:`mix` streams: the original arrives as an iterator of ``(channels, n)``
blocks of any size, and the mix leaves as ``(channels, n)`` float32 blocks,
holding only one internal block, the limiter's look-ahead and the clips that
overlap the current block in memory, whatever the media's length.

* ``"duck"`` mode keeps the original under the dub, lowered by ``duck_db``
  while a clip plays. The duck ramps down over ``ramp_ms`` *before* the clip's
  first sample and back up over ``ramp_ms`` after its last one (linear in dB);
  clips closer than two ramps keep the original ducked in between. Far from any
  clip the original passes untouched, bit for bit.
* ``"replace"`` mode drops the original (it is not even read).
* The clips (mono) are scaled by ``dub_gain_db`` (see :mod:`dubkit.mix.loudness`)
  and added to every channel of a mono or stereo mix; in a surround layout, to the
  centre channel (see :class:`dubkit.media.channels.ChannelLayout`). Ducking applies to
  every channel.
* Everything goes through a :class:`TruePeakLimiter` (ceiling
  ``true_peak_dbtp``), which leaves a signal already under the ceiling unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from dubkit.errors import ConfigError, InputError
from dubkit.media.channels import ChannelLayout

log = logging.getLogger(__name__)

MODES = ("duck", "replace")
#: Samples per internal block: output does not depend on the input's block sizes.
BLOCK = 8192
#: Largest correction :func:`loudness_gain_db` returns, either way.

_OVERSAMPLE = 4
_FIR_HALF = 10  # interpolation taps on each side of the point (20 per phase)
_KAISER_BETA = 5.0
_TP_CHUNK = 512  # samples: the true peak is interpolated in chunks this long, where needed
_PEAK_MARGIN = 4  # samples: the gain is held down this far around each estimated peak
_RELEASE_DB = 10.0  # the gain recovers this many dB per release_ms
# Once limiting is needed, aim this far under the ceiling: covers the estimator's
# small disagreements with other 4x interpolators and the gain's own modulation.
_HEADROOM_DB = 0.05


@dataclass(frozen=True, slots=True)
class MixOptions:
    """How the dub and the original are mixed."""

    mode: str = "duck"
    duck_db: float = -15.0
    ramp_ms: int = 60
    true_peak_dbtp: float = -1.0
    match_loudness: bool = True  # whether the caller should measure dub_gain_db
    #: Speech the loudness match measures, of the original (spread over the file) and of
    #: the dub (its first clips: a streamed mix starts once that much dub is in). Two
    #: minutes pin an integrated loudness well within 0.5 LU.
    loudness_ms: int = 120_000

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"mix mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.duck_db > 0:
            raise ConfigError(f"mix duck_db must be <= 0 dB, got {self.duck_db}")
        if self.ramp_ms < 0:
            raise ConfigError(f"mix ramp_ms must be >= 0, got {self.ramp_ms}")
        if self.true_peak_dbtp > 0:
            raise ConfigError(f"mix true_peak_dbtp must be <= 0 dBTP, got {self.true_peak_dbtp}")
        if self.loudness_ms < 1_000:
            raise ConfigError(f"mix loudness_ms must be at least 1000, got {self.loudness_ms}")


@dataclass(frozen=True, slots=True)
class PlacedClip:
    """A fitted clip at the mix rate: ``load()`` returns ``length`` float32 mono samples.

    ``load`` is called lazily, once, when the mix reaches ``start``; the array is
    released once the mix has passed the clip.
    """

    start: int
    length: int
    load: Callable[[], np.ndarray]

    def __post_init__(self) -> None:
        if self.start < 0 or self.length < 0:
            raise InputError(f"bad clip span: start {self.start}, length {self.length}")

    @property
    def end(self) -> int:
        return self.start + self.length


# --- true-peak limiter ----------------------------------------------------------


def _phase_kernels() -> np.ndarray:
    """Windowed-sinc kernels interpolating at offsets p/4 (p = 1..3), DC gain 1.

    Row p-1 applied (correlation) to ``x[m - H + 1 .. m + H]`` gives x(m + p/4).
    """
    j = np.arange(-_FIR_HALF + 1, _FIR_HALF + 1, dtype=np.float64)
    rows = []
    for p in range(1, _OVERSAMPLE):
        t = j - p / _OVERSAMPLE
        window = np.i0(_KAISER_BETA * np.sqrt(np.clip(1.0 - (t / _FIR_HALF) ** 2, 0.0, None)))
        k = np.sinc(t) * window
        rows.append(k / k.sum())
    return np.array(rows)


def _sliding_min(x: np.ndarray, w: int) -> np.ndarray:
    """``min(x[i:i+w])`` for every full window (SciPy's running minimum)."""
    from scipy.ndimage import minimum_filter1d

    return minimum_filter1d(x, w, mode="nearest")[w // 2 : w // 2 + len(x) - w + 1]


class TruePeakLimiter:
    """A look-ahead limiter on the true (4x oversampled) peak, for streams.

    The true peak is estimated per sample with a 4-phase windowed-sinc
    interpolator (Kaiser, like ``scipy.signal.resample_poly``), linked across
    channels. Wherever it exceeds the ceiling, the gain that brings it 0.05 dB
    under the ceiling is held over the look-ahead around the peak and averaged
    over the look-ahead, so it ramps down (attack) entirely before the peak; it
    recovers by 10 dB per ``release_ms``. Where no reduction is needed the gain
    is exactly 1 and samples pass bit for bit. Samples are finally clamped to the
    ceiling, so none lies outside [-1, 1].

    Output lags input by :attr:`latency` samples: :meth:`process` returns what is
    ready, :meth:`flush` the rest; in all exactly as many samples as went in.
    """

    def __init__(
        self,
        rate: int,
        channels: int,
        ceiling_dbtp: float = -1.0,
        lookahead_ms: float = 5.0,
        release_ms: float = 80.0,
    ) -> None:
        if rate <= 0 or channels <= 0 or lookahead_ms <= 0 or release_ms <= 0:
            raise ConfigError(
                f"limiter: bad rate {rate}, channels {channels}, "
                f"lookahead {lookahead_ms} ms or release {release_ms} ms"
            )
        self.rate = rate
        self.channels = channels
        self.ceiling_db = float(ceiling_dbtp)
        self._ceiling = 10.0 ** (self.ceiling_db / 20.0)
        self._la = max(1, round(lookahead_ms * rate / 1000))
        self._release = _RELEASE_DB / (release_ms * rate / 1000)  # dB per sample
        self._kernels = _phase_kernels()
        # No interpolated value can exceed the sample peak times this bound.
        self._overshoot = float(np.max(np.sum(np.abs(self._kernels), axis=1)))
        self._reach = self._la + _PEAK_MARGIN + _FIR_HALF
        self.latency = self._reach
        # Input from global sample index self._buf_start; silence before 0.
        self._buf = np.zeros((channels, self._reach), dtype=np.float32)
        self._buf_start = -self._reach
        self._out_pos = 0
        self._e_prev = 0.0
        self._flushed = False

    def process(self, block: np.ndarray) -> np.ndarray:
        """Feed ``(channels, n)`` float32; returns the ``(channels, m)`` samples now ready."""
        if self._flushed:
            raise InputError("limiter: process() after flush()")
        x = np.asarray(block, dtype=np.float32)
        if x.ndim != 2 or x.shape[0] != self.channels:
            raise InputError(f"limiter: expected ({self.channels}, n) audio, got {x.shape}")
        self._buf = np.concatenate([self._buf, x], axis=1)
        in_end = self._buf_start + self._buf.shape[1]
        return self._emit(in_end - self._reach)

    def flush(self) -> np.ndarray:
        """The remaining output, as if silence followed the input."""
        in_end = self._buf_start + self._buf.shape[1]
        tail = np.zeros((self.channels, self._reach), dtype=np.float32)
        self._buf = np.concatenate([self._buf, tail], axis=1)
        self._flushed = True
        return self._emit(in_end)

    def _emit(self, n1: int) -> np.ndarray:
        n0 = self._out_pos
        if n1 <= n0:
            return np.zeros((self.channels, 0), dtype=np.float32)
        lo = n0 - self._reach - self._buf_start
        window = self._buf[:, lo : n1 - self._buf_start + self._reach]
        gain_db = self._gain_db(window, n1 - n0)
        out = np.array(window[:, self._reach : self._reach + n1 - n0])
        reduce = gain_db < 0.0
        if reduce.any():
            gain = np.power(10.0, gain_db[reduce] / 20.0)
            out[:, reduce] = (out[:, reduce] * gain).astype(np.float32)
        ceiling = np.float32(self._ceiling)
        np.clip(out, -ceiling, ceiling, out=out)
        self._out_pos = n1
        keep_from = n1 - self._reach - self._buf_start
        self._buf = self._buf[:, keep_from:]
        self._buf_start += keep_from
        return out

    def _true_peak(self, x: np.ndarray) -> np.ndarray:
        """Per-sample true-peak estimate (max over channels and offsets 0..3/4).

        Interpolated only where it can matter: an interpolated value is at most
        ``overshoot`` times the largest of the samples it is made from, so a stretch
        whose samples all stay under ``ceiling / overshoot`` cannot reach the ceiling,
        and its sample peak stands for it there (the gain it gets is the same).
        """
        h = _FIR_HALF
        sample = np.max(np.abs(x), axis=0)
        peak = sample[h - 1 : x.shape[1] - h].astype(np.float64)
        hot = np.flatnonzero(sample > self._ceiling / self._overshoot)
        if hot.size == 0:
            return peak
        # Output k is made from samples [k, k + 2h): chunks of outputs near a hot sample.
        size = _TP_CHUNK
        chunks = np.unique(np.concatenate([hot // size, np.maximum(hot - 2 * h + 1, 0) // size]))
        for c in chunks:
            a, b = c * size, min((c + 1) * size, peak.size)
            if a >= b:
                continue
            seg = x[:, a : b + 2 * h - 1].astype(np.float64)
            for kernel in self._kernels:
                for ch in range(x.shape[0]):
                    y = np.correlate(seg[ch], kernel, mode="valid")
                    np.maximum(peak[a:b], np.abs(y), out=peak[a:b])
        return peak

    def _gain_db(self, x: np.ndarray, count: int) -> np.ndarray:
        """Gain (dB, <= 0) for the ``count`` samples at ``x[:, reach:reach+count]``."""
        la, margin = self._la, _PEAK_MARGIN
        if self._e_prev == 0.0 and np.max(np.abs(x)) * self._overshoot <= self._ceiling:
            return np.zeros(count)  # quiet: no true peak can reach the ceiling
        # Estimates for samples [n0 - la - margin, n1 + la + margin).
        tp = self._true_peak(x[:, 1:])
        over = tp > self._ceiling
        need = np.zeros_like(tp)
        need[over] = self.ceiling_db - _HEADROOM_DB - 20.0 * np.log10(tp[over])
        if not over.any() and self._e_prev == 0.0:
            return np.zeros(count)
        held = _sliding_min(need, la + 2 * margin + 1)
        sums = np.concatenate([[0.0], np.cumsum(held)])
        attack = (sums[la + 1 :] - sums[: -la - 1]) / (la + 1)
        steps = self._release * np.arange(count)
        q = attack - steps
        q[0] = min(q[0], self._e_prev + self._release)
        gain = np.minimum(np.minimum.accumulate(q) + steps, 0.0)
        gain[gain > -1e-9] = 0.0
        self._e_prev = float(gain[-1])
        return gain


# --- the mix ----------------------------------------------------------------------


def _fixed_blocks(
    original: Iterable[np.ndarray], channels: int, total: int
) -> Iterator[np.ndarray]:
    """Re-cut ``original`` into BLOCK-sample float32 blocks covering exactly ``total``."""
    pending: list[np.ndarray] = []
    have = 0
    source = iter(original)
    for b0 in range(0, total, BLOCK):
        want = min(BLOCK, total - b0)
        while have < want:
            piece = next(source, None)
            if piece is None:
                break
            a = np.asarray(piece)
            if np.issubdtype(a.dtype, np.integer):
                a = a.astype(np.float32) / np.float32(32768.0)
            a = a.astype(np.float32, copy=False)
            if a.ndim == 1 and channels == 1:
                a = a[np.newaxis, :]
            if a.ndim != 2 or a.shape[0] != channels:
                raise InputError(
                    f"mix: original block of shape {a.shape}, expected ({channels}, n)"
                )
            pending.append(a)
            have += a.shape[1]
        joined = np.concatenate(pending, axis=1) if pending else np.zeros((channels, 0), "f4")
        block = np.zeros((channels, want), dtype=np.float32)
        block[:, : min(want, joined.shape[1])] = joined[:, :want]
        rest = joined[:, want:]
        pending = [rest] if rest.shape[1] else []
        have = rest.shape[1]
        yield block


class _Schedule:
    """Which clips touch a block; loads each clip once, releases it when passed.

    Clips are taken from their iterable only when the mix reaches them (one ahead), so
    they can still be arriving while the mix runs; they must come in order of start.
    """

    def __init__(self, clips: Iterable[PlacedClip], ramp: int) -> None:
        self._source = iter(clips)
        self._ahead: PlacedClip | None = None
        self._last_start = -1
        self._ramp = ramp
        self.active: list[PlacedClip] = []
        self._loaded: dict[int, np.ndarray] = {}

    def _peek(self) -> PlacedClip | None:
        while self._ahead is None:
            clip = next(self._source, None)
            if clip is None:
                return None
            if clip.length <= 0:  # takes no time, plays nothing
                continue
            if clip.start < self._last_start:
                raise InputError(
                    f"mix: clip at sample {clip.start} after one at {self._last_start}"
                )
            self._last_start = clip.start
            self._ahead = clip
        return self._ahead

    def enter(self, b1: int) -> None:
        """Bring in every clip whose duck ramp starts before ``b1``."""
        while (clip := self._peek()) is not None and clip.start - self._ramp < b1:
            self.active.append(clip)
            self._ahead = None

    def samples(self, clip: PlacedClip) -> np.ndarray:
        key = id(clip)
        if key not in self._loaded:
            a = np.asarray(clip.load(), dtype=np.float32)
            if a.ndim == 2 and a.shape[0] == 1:
                a = a[0]
            if a.shape != (clip.length,):
                raise InputError(
                    f"mix: clip at sample {clip.start} loaded {a.shape}, expected ({clip.length},)"
                )
            self._loaded[key] = a
        return self._loaded[key]

    def leave(self, b1: int) -> None:
        """Release clips that end before ``b1`` and forget those whose ramp is over."""
        for clip in self.active:
            if clip.end <= b1:
                self._loaded.pop(id(clip), None)
        self.active = [c for c in self.active if c.end + self._ramp > b1]


def _duck_depth(active: Sequence[PlacedClip], b0: int, b1: int, ramp: int) -> np.ndarray:
    """0 (no duck) .. 1 (full duck) for samples [b0, b1): trapezoids around each clip."""
    t = np.arange(b0, b1, dtype=np.float64)
    depth = np.zeros(b1 - b0)
    for clip in active:
        if ramp == 0:
            inside = (t >= clip.start) & (t < clip.end)
            depth[inside] = 1.0
            continue
        up = (t - (clip.start - ramp)) / ramp
        down = ((clip.end - 1 + ramp) - t) / ramp
        np.maximum(depth, np.clip(np.minimum(up, down), 0.0, 1.0), out=depth)
    return depth


def _mix_block(
    bed: np.ndarray,
    b0: int,
    schedule: _Schedule,
    opts: MixOptions,
    ramp: int,
    gain: float,
    spread: np.ndarray | None = None,
) -> None:
    """Duck ``bed`` (samples [b0, b0+n)) under the active clips and add them, in place."""
    b1 = b0 + bed.shape[1]
    if opts.mode == "duck" and schedule.active:
        depth = _duck_depth(schedule.active, b0, b1, ramp)
        ducked = depth > 0.0
        if ducked.any():
            g = np.power(10.0, opts.duck_db * depth[ducked] / 20.0)
            bed[:, ducked] = (bed[:, ducked] * g).astype(np.float32)
    for clip in schedule.active:
        lo, hi = max(b0, clip.start), min(b1, clip.end)
        if lo < hi:
            seg = (schedule.samples(clip)[lo - clip.start : hi - clip.start] * gain).astype(
                np.float32
            )
            if spread is None:
                bed[:, lo - b0 : hi - b0] += seg
            else:
                bed[:, lo - b0 : hi - b0] += spread[:, np.newaxis] * seg


def mix(
    original: Iterable[np.ndarray],
    rate: int,
    channels: int,
    clips: Iterable[PlacedClip],
    total_samples: int,
    options: MixOptions | None = None,
    dub_gain_db: float = 0.0,
    layout: ChannelLayout | None = None,
) -> Generator[np.ndarray, None, None]:
    """Mix ``clips`` over ``original``; yields float32 ``(channels, n)`` blocks.

    The blocks cover exactly ``total_samples`` (the original is padded with
    silence or truncated). Block sizes of ``original`` do not change the output.
    ``layout`` (default: FFmpeg's default layout of ``channels``) says where the speech
    goes. See the module docstring for what happens to each part.
    """
    opts = options or MixOptions()
    if rate <= 0 or channels <= 0 or total_samples < 0:
        raise InputError(f"mix: bad rate {rate}, channels {channels} or length {total_samples}")
    layout = layout or ChannelLayout.default(channels)
    if layout.count != channels:
        raise InputError(f"mix: layout {layout.name} has {layout.count} channels, not {channels}")
    spread = layout.speech_gains()
    spread_or_none = None if np.all(spread == 1.0) else spread
    return _mix(original, rate, channels, clips, total_samples, opts, dub_gain_db, spread_or_none)


def _mix(
    original: Iterable[np.ndarray],
    rate: int,
    channels: int,
    clips: Iterable[PlacedClip],
    total: int,
    opts: MixOptions,
    dub_gain_db: float,
    spread: np.ndarray | None = None,
) -> Generator[np.ndarray, None, None]:
    ramp = opts.ramp_ms * rate // 1000
    gain = float(10.0 ** (dub_gain_db / 20.0))
    schedule = _Schedule(clips, ramp)
    limiter = TruePeakLimiter(rate, channels, opts.true_peak_dbtp)
    beds = _fixed_blocks(original, channels, total) if opts.mode == "duck" else None
    for b0 in range(0, total, BLOCK):
        n = min(BLOCK, total - b0)
        bed = next(beds) if beds is not None else np.zeros((channels, n), dtype=np.float32)
        schedule.enter(b0 + n)
        _mix_block(bed, b0, schedule, opts, ramp, gain, spread)
        schedule.leave(b0 + n)
        out = limiter.process(bed)
        if out.shape[1]:
            yield out
    tail = limiter.flush()
    if tail.shape[1]:
        yield tail
