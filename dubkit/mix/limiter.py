"""A look-ahead true-peak limiter for streamed audio (the mix's last stage)."""

from __future__ import annotations

import numpy as np

from dubkit.errors import ConfigError, InputError

_OVERSAMPLE = 4
_FIR_HALF = 10  # interpolation taps on each side of the point (20 per phase)
_KAISER_BETA = 5.0
_TP_CHUNK = 512  # samples: the true peak is interpolated in chunks this long, where needed
_PEAK_MARGIN = 4  # samples: the gain is held down this far around each estimated peak
_RELEASE_DB = 10.0  # the gain recovers this many dB per release_ms
# Once limiting is needed, aim this far under the ceiling: covers the estimator's
# small disagreements with other 4x interpolators and the gain's own modulation.
_HEADROOM_DB = 0.05


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
