"""Channel layouts: where dubbed speech goes, and BS.1770 loudness over a whole layout.

A dub keeps the layout of the track it dubs (mono, stereo, 5.1, 7.1, ...). Speech goes
to the front centre channel (FC) where the layout has one, else to every channel but
the LFE. Loudness over a layout follows ITU-R BS.1770-4: each channel's K-weighted,
gated power is weighted (1.0 front, 1.41 for the surrounds at 60-120 degrees, LFE
excluded). pyloudnorm does the K-weighting and blocks; its own sum handles at most five
channels in a fixed order and weights a 5.1 file's fourth channel (the LFE) as a surround,
so the weighted sum and the gating are done here, on pyloudnorm's per-block measures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_LFE = frozenset({"LFE", "LFE2", "LFE_LOW", "LOW_FREQUENCY", "LOW_FREQUENCY_2"})
#: Surround channels at 60-120 degrees (BS.1770-4 weight 1.41).
_SIDE = frozenset({"SL", "SR"})
_BACK = frozenset({"BL", "BR"})
_COMMON = {
    "mono": ("FC",),
    "stereo": ("FL", "FR"),
    "5.1": ("FL", "FR", "FC", "LFE", "BL", "BR"),
    "5.1(side)": ("FL", "FR", "FC", "LFE", "SL", "SR"),
    "7.1": ("FL", "FR", "FC", "LFE", "BL", "BR", "SL", "SR"),
}
ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0


@dataclass(frozen=True, slots=True)
class ChannelLayout:
    """A layout by FFmpeg's name and its channels in order, e.g. ``5.1``: FL FR FC LFE BL BR."""

    name: str
    channels: tuple[str, ...]

    @classmethod
    def named(cls, name: str) -> ChannelLayout:
        """The layout FFmpeg calls ``name`` ("mono", "stereo", "5.1", "7.1", "6 channels"...)."""
        if name in _COMMON:
            return cls(name, _COMMON[name])
        import av

        layout = av.AudioLayout(name)
        return cls(layout.name, tuple(c.name for c in layout.channels))

    @classmethod
    def default(cls, channels: int) -> ChannelLayout:
        """FFmpeg's default layout for ``channels`` channels."""
        return cls.named({1: "mono", 2: "stereo"}.get(channels) or f"{channels}c")

    @property
    def count(self) -> int:
        return len(self.channels)

    def speech_gains(self) -> np.ndarray:
        """Per-channel gain of dubbed (mono) speech: 1 on FC if present, else 1 but on LFE.

        Mono and stereo give all ones, as before layouts were known.
        """
        if self.count > 2 and "FC" in self.channels:
            return np.array([1.0 if c == "FC" else 0.0 for c in self.channels], np.float32)
        return np.array([0.0 if c in _LFE else 1.0 for c in self.channels], np.float32)

    def loudness_weights(self) -> np.ndarray:
        """BS.1770-4 channel weights: LFE 0, surrounds 1.41, the rest 1.0."""
        surround = _SIDE if _SIDE & set(self.channels) else _SIDE | _BACK
        return np.array(
            [0.0 if c in _LFE else 1.41 if c in surround else 1.0 for c in self.channels]
        )


def _block_powers(x: np.ndarray, rate: int) -> np.ndarray:
    """Each channel's K-weighted mean square per 400 ms gating block: ``(channels, blocks)``."""
    import pyloudnorm

    meter = pyloudnorm.Meter(rate)
    rows = []
    for ch in x:
        meter.integrated_loudness(np.asarray(ch, dtype=np.float64))
        level = np.asarray(meter.blockwise_loudness, dtype=np.float64)
        rows.append(np.power(10.0, (level + 0.691) / 10.0))
    return np.array(rows)


def layout_loudness(x: np.ndarray, rate: int, layout: ChannelLayout) -> float | None:
    """BS.1770-4 integrated loudness (LUFS) of ``(channels, n)`` audio in ``layout``.

    None when it is shorter than one gating block or silent (every block gated).
    """
    import pyloudnorm

    if x.ndim != 2 or x.shape[0] != layout.count:
        raise ValueError(f"loudness: expected ({layout.count}, n) audio, got {x.shape}")
    if x.shape[1] < round(pyloudnorm.Meter(rate).block_size * rate) + 1:
        return None
    weights = layout.loudness_weights()
    used = weights > 0
    power = weights[used] @ _block_powers(x[used], rate)
    with np.errstate(divide="ignore"):
        level = -0.691 + 10.0 * np.log10(power)
    keep = level >= ABSOLUTE_GATE_LUFS
    if not keep.any():
        return None
    relative = -0.691 + 10.0 * np.log10(np.mean(power[keep])) + RELATIVE_GATE_LU
    keep &= level > relative
    if not keep.any():
        return None
    return float(-0.691 + 10.0 * np.log10(np.mean(power[keep])))


def placement_gain_db(layout: ChannelLayout) -> float:
    """How much louder (dB, BS.1770) mono speech plays once spread by :meth:`speech_gains`.

    K-weighting is linear, so speech ``s`` sent at gain ``g_i`` to channel ``i`` measures
    ``L(s) + 10 log10(sum w_i g_i^2)``: 0 dB in FC alone, +3.01 dB on both stereo channels.
    """
    g = layout.speech_gains().astype(np.float64)
    return float(10.0 * np.log10(np.sum(layout.loudness_weights() * g**2)))
