"""Fitting dubbed clips to their time slots, without drift.

Planning (:func:`plan`) is pure integer-millisecond arithmetic; :func:`render`
applies one placement to one clip (trim, Rubber Band time-stretch with the pitch
kept, polyphase resampling, exact length).

Every clip starts where its utterance starts. Its *slot* runs to the next
utterance's start less ``gap_ms`` (or to the media's end). A clip that does not
fit is handled by one rule, escalating in this order, and the last step reached
is reported as :attr:`Placement.rule`:

1. ``"fit"``: the trimmed clip fits its slot; it plays at normal speed
   (clips shorter than their slot are never slowed down).
2. ``"sped_up"``: sped up (pitch kept) by the smallest ratio that fills the
   slot exactly, at most ``max_ratio``.
3. ``"borrowed"``: still too long at ``max_ratio``: the clip starts earlier, by
   as little as needed, into the silence before its utterance: at most
   ``borrow_ms``, never before 0 and never before the previous placed clip's
   end plus ``gap_ms``. It plays at (just under) ``max_ratio`` and ends at the
   slot's end.
4. ``"over_cap"``: still too long with all the borrowable time: sped up past
   the soft cap, by the smallest ratio (at most ``hard_max_ratio``) that fills
   the borrowed start to the slot's end. A placement at this step has borrowed
   whatever room there was, so its ``start_ms`` may be earlier than the
   utterance's.
5. ``"cut"``: too long even at ``hard_max_ratio``: played at
   ``hard_max_ratio`` over the same span, the end is dropped (``cut_ms`` of
   the trimmed clip) and faded out over ``fade_ms``. When there is no room at
   all (utterances closer than ``gap_ms``, or past the media's end) the
   placement is empty, ``start_ms == end_ms`` at the utterance start, and the
   whole clip is cut.

Hence ``start_ms == utterance.start_ms`` for ``"fit"`` and ``"sped_up"`` (an
utterance starting past ``duration_ms`` counts as starting there), and
``utterance.start_ms - start_ms`` is the time borrowed for the later rules.
Clips are never moved later than their utterance start, so nothing
accumulates: the 500th clip is placed as exactly as the first. Placements never
overlap (each ends at least ``gap_ms`` before the next utterance's start) and
stay inside ``[0, duration_ms]``.

On the sample grid a placement covers ``[ms_to_samples(start_ms),
ms_to_samples(end_ms))`` (see :func:`sample_span`): adjacent placements never
share a sample, and :func:`render` returns exactly that many samples.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dubkit import media
from dubkit.errors import ConfigError, InputError
from dubkit.types import Utterance

log = logging.getLogger(__name__)

RULES = ("fit", "sped_up", "borrowed", "over_cap", "cut")

_TRIM_WINDOW_MS = 10
# Extra input kept past the audible end of a cut clip, so Rubber Band's own end
# handling falls in the part that is dropped.
_CUT_MARGIN_MS = 60


@dataclass(frozen=True, slots=True)
class FitOptions:
    """How clips are trimmed and fitted; see the module docstring for the rule."""

    max_ratio: float = 1.3
    hard_max_ratio: float = 1.5
    gap_ms: int = 80
    borrow_ms: int = 400
    fade_ms: int = 40
    silence_db: float = -45.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.max_ratio) and math.isfinite(self.hard_max_ratio)):
            raise ConfigError(
                f"fit ratios must be finite, got {self.max_ratio} and {self.hard_max_ratio}"
            )
        if not 1.0 <= self.max_ratio <= self.hard_max_ratio:
            raise ConfigError(
                f"fit ratios must satisfy 1 <= max_ratio ({self.max_ratio}) "
                f"<= hard_max_ratio ({self.hard_max_ratio})"
            )
        for name in ("gap_ms", "borrow_ms", "fade_ms"):
            if getattr(self, name) < 0:
                raise ConfigError(f"fit option {name} must be >= 0, got {getattr(self, name)}")
        if self.silence_db >= 0:
            raise ConfigError(f"fit option silence_db must be < 0 dBFS, got {self.silence_db}")


@dataclass(frozen=True, slots=True)
class Placement:
    """Where one fitted clip plays on the timeline, and how it was made to fit."""

    index: int  # position in the utterance list
    start_ms: int  # == utterance start unless the clip borrowed time (rules 3-5)
    end_ms: int
    slot_end_ms: int  # the room it had: next utterance start - gap, or media end
    clip_ms: int  # trimmed clip length before stretching
    ratio: float  # speed-up applied, >= 1.0 (1.0 = none)
    rule: str  # one of RULES
    cut_ms: int  # trimmed-clip audio dropped at the end (0 unless rule == "cut")

    @property
    def duration_ms(self) -> int:
        return self.end_ms - self.start_ms


def ms_to_samples(ms: int, rate: int) -> int:
    """The sample index of a timeline position: ``round(ms * rate / 1000)``, halves up."""
    return (ms * rate + 500) // 1000


def sample_span(placement: Placement, rate: int) -> tuple[int, int]:
    """``(first sample, sample count)`` of a placement at ``rate``."""
    first = ms_to_samples(placement.start_ms, rate)
    return first, ms_to_samples(placement.end_ms, rate) - first


def trimmed_ms(trim: tuple[int, int], rate: int) -> int:
    """Length in ms (rounded up) of the ``[start, end)`` samples from :func:`trim_silence`."""
    return -(-(trim[1] - trim[0]) * 1000 // rate)


def trim_silence(
    samples: np.ndarray, rate: int, options: FitOptions | None = None
) -> tuple[int, int]:
    """``[start, end)`` sample indices of the speech inside a clip.

    The clip is cut into 10 ms windows; the span runs from the first to the last
    window whose RMS level reaches ``options.silence_db`` dBFS. Integer input is
    read as PCM (full scale 32768), float input as [-1, 1]. A clip that is
    silent throughout gives ``(0, 0)``.
    """
    opts = options or FitOptions()
    x = np.asarray(samples)
    if x.ndim != 1:
        raise InputError(f"trim_silence wants mono samples, got shape {x.shape}")
    scale = 32768.0 if np.issubdtype(x.dtype, np.integer) else 1.0
    win = max(1, rate * _TRIM_WINDOW_MS // 1000)
    n_win = -(-len(x) // win)
    if n_win == 0:
        return 0, 0
    padded = np.zeros(n_win * win, dtype=np.float64)
    padded[: len(x)] = x / scale
    power = np.mean(padded.reshape(n_win, win) ** 2, axis=1)
    loud = np.flatnonzero(power >= 10.0 ** (opts.silence_db / 10.0))
    if loud.size == 0:
        return 0, 0
    return int(loud[0]) * win, min(len(x), (int(loud[-1]) + 1) * win)


def _check_inputs(
    utterances: Sequence[Utterance], clip_ms: Sequence[int | None], duration_ms: int
) -> None:
    if len(utterances) != len(clip_ms):
        raise InputError(
            f"plan: {len(utterances)} utterances but {len(clip_ms)} clip lengths"
        )
    if duration_ms < 0:
        raise InputError(f"plan: negative media duration {duration_ms} ms")
    for i in range(1, len(utterances)):
        if utterances[i].start_ms < utterances[i - 1].start_ms:
            raise InputError(f"plan: utterance {i} starts before utterance {i - 1}")


def _place(
    index: int, start: int, slot_end: int, floor: int, clip: int, opts: FitOptions
) -> Placement:
    """One clip of ``clip`` ms at utterance ``start``; ``floor`` = earliest borrowable ms."""
    room = slot_end - start
    if clip <= room:
        return Placement(index, start, start + clip, slot_end, clip, 1.0, "fit", 0)
    if clip <= room * opts.max_ratio:
        ratio = min(clip / room, opts.max_ratio)
        return Placement(index, start, slot_end, slot_end, clip, ratio, "sped_up", 0)
    earliest = max(floor, start - opts.borrow_ms)
    avail = slot_end - earliest
    if avail > 0 and clip <= avail * opts.max_ratio:
        length = min(avail, max(room + 1, math.ceil(clip / opts.max_ratio)))
        ratio = min(clip / length, opts.max_ratio)
        return Placement(index, slot_end - length, slot_end, slot_end, clip, ratio, "borrowed", 0)
    if avail > 0 and clip <= avail * opts.hard_max_ratio:
        ratio = min(clip / avail, opts.hard_max_ratio)
        return Placement(index, earliest, slot_end, slot_end, clip, ratio, "over_cap", 0)
    if avail > 0:
        kept = min(clip - 1, math.floor(avail * opts.hard_max_ratio))
        return Placement(
            index, earliest, slot_end, slot_end, clip, opts.hard_max_ratio, "cut", clip - kept
        )
    return Placement(index, start, start, slot_end, clip, opts.hard_max_ratio, "cut", clip)


class Planner:
    """Places clips one at a time, in timeline order, as their lengths become known.

    A placement needs only its utterance, the start of the next one (both known from
    segmentation) and the clips placed before it, so a streamed dub places each clip as
    soon as its translation arrives. :func:`plan` is the same over a whole list.
    """

    def __init__(self, duration_ms: int, options: FitOptions | None = None) -> None:
        self.duration_ms = duration_ms
        self.options = options or FitOptions()
        self._prev_end: int | None = None  # end of the previous placed clip
        self._count = 0  # utterances seen: the next one's index

    def place(
        self, utt: Utterance, next_start_ms: int | None, clip_ms: int | None
    ) -> Placement | None:
        """The next utterance's placement (None without a clip); ``next_start_ms`` is the
        start of the utterance after it, None for the last."""
        i = self._count
        self._count += 1
        if clip_ms is None or clip_ms <= 0:
            return None
        opts, duration_ms, prev_end = self.options, self.duration_ms, self._prev_end
        start = min(utt.start_ms, duration_ms)
        nxt = duration_ms if next_start_ms is None else next_start_ms - opts.gap_ms
        lowest = 0 if prev_end is None else prev_end
        slot_end = max(lowest, min(nxt, duration_ms))
        floor = 0 if prev_end is None else prev_end + opts.gap_ms
        placed = _place(i, start, slot_end, min(floor, start), clip_ms, opts)
        if placed.rule != "fit":
            log.debug("utterance %d: %s (ratio %.3f, cut %d ms)", i, placed.rule,
                      placed.ratio, placed.cut_ms)  # fmt: skip
        if placed.end_ms > placed.start_ms:  # an empty placement takes no room
            self._prev_end = placed.end_ms
        return placed


def plan(
    utterances: Sequence[Utterance],
    clip_ms: Sequence[int | None],
    duration_ms: int,
    options: FitOptions | None = None,
) -> list[Placement | None]:
    """Place each utterance's trimmed clip on the timeline (see the module docstring).

    ``clip_ms[i]`` is the trimmed length of utterance ``i``'s dubbed clip, or
    None (or 0) where there is none (failed or empty): its entry in the result
    is None, and its time is left free. Utterances must be sorted by start.
    """
    _check_inputs(utterances, clip_ms, duration_ms)
    planner = Planner(duration_ms, options)
    nexts: list[int | None] = [u.start_ms for u in utterances[1:]]
    nexts.append(None)
    return [planner.place(u, n, c) for u, n, c in zip(utterances, nexts, clip_ms, strict=False)]


def _stretch(x: np.ndarray, rate: int, ratio: float) -> np.ndarray:
    """Speed ``x`` up by ``ratio`` (> 1 = shorter) with Rubber Band, pitch kept."""
    if ratio <= 1.0 + 1e-4 or len(x) == 0:
        return x
    import pedalboard

    y = pedalboard.time_stretch(x[np.newaxis, :], float(rate), stretch_factor=float(ratio))
    return np.asarray(y[0], dtype=np.float32)


def resample(x: np.ndarray, in_rate: int, out_rate: int) -> np.ndarray:
    """Resample mono audio to float32 at ``out_rate`` (:func:`dubkit.media.resample`: FFmpeg's
    resampler, time-aligned, ``ceil(len(x) * out_rate / in_rate)`` samples long)."""
    return media.resample(x, in_rate, out_rate)


def _exact_length(y: np.ndarray, n: int) -> np.ndarray:
    if len(y) >= n:
        return np.ascontiguousarray(y[:n], dtype=np.float32)
    out = np.zeros(n, dtype=np.float32)
    out[: len(y)] = y
    return out


def render(
    samples_int16: np.ndarray,
    in_rate: int,
    trim: tuple[int, int],
    placement: Placement,
    out_rate: int,
    options: FitOptions | None = None,
) -> np.ndarray:
    """The fitted clip: float32 mono at ``out_rate``, ready to drop on the timeline.

    Exactly ``sample_span(placement, out_rate)[1]`` samples long, i.e.
    ``ms_to_samples(end_ms) - ms_to_samples(start_ms)``; its first sample belongs
    at sample ``ms_to_samples(placement.start_ms, out_rate)``. ``trim`` is the
    ``[start, end)`` of the speech in ``samples_int16`` (from :func:`trim_silence`)
    and must be the clip :func:`plan` was given (its length in ms must equal
    ``placement.clip_ms``).
    """
    opts = options or FitOptions()
    a, b = trim
    if not 0 <= a <= b <= len(samples_int16):
        raise InputError(f"render: trim {trim} outside a clip of {len(samples_int16)} samples")
    if abs(trimmed_ms(trim, in_rate) - placement.clip_ms) > 1:
        raise InputError(
            f"render: utterance {placement.index} was planned for a {placement.clip_ms} ms clip,"
            f" got {trimmed_ms(trim, in_rate)} ms"
        )
    _, n_out = sample_span(placement, out_rate)
    x = np.asarray(samples_int16[a:b], dtype=np.float32) / np.float32(32768.0)
    if n_out == 0 or len(x) == 0:
        return np.zeros(n_out, dtype=np.float32)
    target_in = n_out * in_rate / out_rate
    if placement.rule == "cut":
        ratio = placement.ratio
        keep = math.ceil(target_in * ratio) + in_rate * _CUT_MARGIN_MS // 1000
        x = x[:keep]
    else:
        ratio = len(x) / target_in
    y = _exact_length(resample(_stretch(x, in_rate, ratio), in_rate, out_rate), n_out)
    if placement.rule == "cut":
        n_fade = min(n_out, opts.fade_ms * out_rate // 1000)
        if n_fade:
            y[n_out - n_fade :] *= np.linspace(1.0, 0.0, n_fade, dtype=np.float32)
    return y


def heard_spans(
    spans: Sequence[tuple[int, int]], p: Placement
) -> tuple[tuple[int, int], ...]:
    """Where a placed clip is audible on the timeline: its audible ``spans`` (ms from the
    trimmed clip's start) scaled by the stretch and cut at the placement's end."""
    scaled = (
        (p.start_ms + round(s / p.ratio), min(p.end_ms, p.start_ms + round(e / p.ratio)))
        for s, e in spans
    )
    return tuple((a, b) for a, b in scaled if a < b)  # a span cut or rounded away is not heard


def speech_spans(
    samples: np.ndarray, rate: int, start_ms: int, min_pause_ms: int = 250
) -> tuple[tuple[int, int], ...]:
    """Where a clip is audible, as ``[start, end)`` ms spans from ``start_ms``, split at pauses."""
    frame = rate // 50  # 20 ms
    n = len(samples) // frame
    if n == 0:
        return ()
    rms = np.sqrt(np.mean(samples[: n * frame].reshape(n, frame).astype(np.float64) ** 2, axis=1))
    loud = rms > max(rms.max() * 10 ** (-35 / 20), 1e-5)
    spans: list[tuple[int, int]] = []
    i = 0
    while i < n:
        if not loud[i]:
            i += 1
            continue
        j = i
        while j < n and loud[j]:
            j += 1
        s, e = start_ms + i * 20, start_ms + j * 20
        if spans and s - spans[-1][1] < min_pause_ms:
            spans[-1] = (spans[-1][0], e)
        else:
            spans.append((s, e))
        i = j
    return tuple(spans)
