"""Timing repairs: order, gaps, bounds, then duration and reading speed.

Applied to the cues of all utterances together, in order:

1. Order and room: cues keep their order; each starts no earlier than it was
   placed unless the one before it needs room, and every cue is pulled inside
   ``[0, duration_ms]`` (cues placed past the end move back, keeping their
   order and gaps). A gap under ``min_gap_ms`` is opened to exactly
   ``min_gap_ms`` by shortening the earlier cue.
2. A cue longer than ``max_duration_ms`` (one that could not be split, such as
   a single word held for a long time) is cut to ``max_duration_ms``.
3. A cue shorter than ``min_duration_ms``, or read faster than ``target_cps``,
   is extended into the silence after it, never closer to the next cue than
   ``min_gap_ms``, never past ``duration_ms`` nor past ``max_duration_ms``.
4. Chaining: a gap up to ``chain_gap_ms`` is closed to exactly ``min_gap_ms``
   by extending the earlier cue (unless that makes it longer than the maximum).
5. Last resort, for cues still short because the next cue or the media's end
   follows closely (text at the very end of the media): the cue starts earlier,
   into the silence before it; a cue before it that is itself short moves
   earlier with it, into its own silence.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from dubkit.subtitles._chunks import RawCue
from dubkit.subtitles._model import SubtitleError, SubtitleOptions
from dubkit.types import Cue


def reading_chars(lines: Sequence[str]) -> int:
    """Characters read in a cue: its lines' characters (line breaks not counted)."""
    return sum(len(line) for line in lines)


def reading_ms(lines: Sequence[str], options: SubtitleOptions) -> int:
    """How long a cue should show: enough for ``target_cps``, within the duration limits."""
    read = math.ceil(reading_chars(lines) * 1000 / options.target_cps)
    return min(max(options.min_duration_ms, read), options.max_duration_ms)


def _place(raw: Sequence[RawCue], duration_ms: int, gap: int) -> tuple[list[int], list[int]]:
    """Step 1: starts and ends in order, inside the media, with gaps of at least ``gap``."""
    n = len(raw)
    step = 1 + gap
    starts: list[int] = []
    ends: list[int] = []
    for i, cue in enumerate(raw):
        earliest = i * step
        latest_end = duration_ms - (n - 1 - i) * step
        a = min(max(cue.start_ms, earliest), latest_end - 1)
        if i:
            a = max(a, starts[i - 1] + step)
            ends[i - 1] = min(ends[i - 1], a - gap)
        starts.append(a)
        ends.append(min(max(cue.end_ms, a + 1), latest_end))
    return starts, ends


def fix_timing(raw: Sequence[RawCue], duration_ms: int, options: SubtitleOptions) -> list[Cue]:
    """Apply the timing rules to cues already in reading order."""
    n = len(raw)
    if not n:
        return []
    gap = options.min_gap_ms
    room = n + (n - 1) * gap
    if room > duration_ms:
        raise SubtitleError(
            f"{n} subtitle events need at least {room} ms with {gap} ms gaps, "
            f"but the media lasts {duration_ms} ms"
        )
    starts, ends = _place(raw, duration_ms, gap)
    for i in range(n):
        ends[i] = min(ends[i], starts[i] + options.max_duration_ms)
        limit = starts[i + 1] - gap if i + 1 < n else duration_ms
        want = starts[i] + reading_ms(raw[i].lines, options)
        if ends[i] < want:
            ends[i] = max(ends[i], min(want, limit))
        if i + 1 < n:
            closed = starts[i + 1] - gap
            if (
                ends[i] < closed <= ends[i] + options.chain_gap_ms - gap
                and closed - starts[i] <= options.max_duration_ms
            ):
                ends[i] = closed
    _extend_back(starts, ends, [reading_ms(c.lines, options) for c in raw], gap)
    return [Cue(a, b, raw_cue.lines) for a, b, raw_cue in zip(starts, ends, raw, strict=True)]


def _extend_back(starts: list[int], ends: list[int], need: list[int], gap: int) -> None:
    """Step 5, from the last cue to the first (in place)."""
    for i in range(len(starts) - 1, -1, -1):
        want = ends[i] - need[i]
        if want >= starts[i]:
            continue
        if i == 0:
            starts[0] = max(want, 0)
            continue
        lower = ends[i - 1] + gap
        prev_short = ends[i - 1] - starts[i - 1] < need[i - 1]
        if prev_short:  # the short cue before may move back into its own silence
            lower -= starts[i - 1] - (ends[i - 2] + gap if i >= 2 else 0)
        new_start = max(want, lower)
        if new_start >= starts[i]:
            continue
        starts[i] = new_start
        shift = ends[i - 1] + gap - new_start
        if shift > 0:
            starts[i - 1] -= shift
            ends[i - 1] -= shift
