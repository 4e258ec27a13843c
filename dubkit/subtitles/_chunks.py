"""Cutting one utterance's translation into cues, and placing them in time.

The cuts are chosen by a dynamic programme over the break opportunities: each
cue must fit the line rules; fewer cues are better; cutting at a sentence end
is best, then at clause punctuation, then between words (between characters in
spaceless scripts), and inside a word only when it alone is wider than a line.
A cue whose time would exceed the maximum duration is worth splitting, and so
is a cut that falls on a pause of the dubbed speech.

Time follows the text: a position in the text maps to the same fraction of the
utterance (or of the dubbed speech, pauses excluded, when its spans are given).
A cut close to a pause of the speech snaps to it: the cue before ends where the
speech stops, the cue after starts where it resumes.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from dubkit.subtitles._lines import LineBreaker
from dubkit.subtitles._model import SubtitleOptions
from dubkit.subtitles._text import CJK_WIDTH, Break, Kind, find_breaks, width_prefix

CUT_COST = {
    Kind.SENTENCE: 0.0,
    Kind.CLAUSE: 3.0,
    Kind.CONJUNCTION: 6.0,
    Kind.WORD: 8.0,
    Kind.CHAR: 8.0,
    Kind.FORCED: 40.0,
}
GLUE_CUT = 8.0  # extra cost of cutting between an article and its noun
PER_CUE = 6.0  # every cue costs this much: no cut without a reason
LINE_WEIGHT = 2.0  # weight of the cue's own line-breaking cost
FILL = 4.0  # weight of (width / capacity)^2: favours balanced cues
OVERLONG = 100.0  # a cue longer than max_duration (plus 1 per extra 100 ms)
NO_TIME = 30.0  # a cue squeezed to no time at all
PAUSE_BONUS = 16.0  # a cut on a pause of >= PAUSE_FULL_MS of dubbed speech
PAUSE_FULL_MS = 1500
SNAP = 0.3  # a cut snaps to a pause within this share of the shorter neighbouring span


@dataclass(frozen=True, slots=True)
class RawCue:
    start_ms: int
    end_ms: int
    lines: tuple[str, ...]


def speech_spans(
    speech: tuple[tuple[int, int], ...], start_ms: int, end_ms: int, duration_ms: int
) -> list[tuple[int, int]]:
    """Where to place text: ``speech`` clipped to the media and merged, else the utterance."""
    merged: list[tuple[int, int]] = []
    for a, b in sorted(speech):
        a, b = max(a, 0), min(b, duration_ms)
        if a >= b:
            continue
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged or [(start_ms, end_ms)]


class TimeMap:
    """Maps positions ``0..n`` of a text onto speech spans, proportionally."""

    def __init__(self, spans: list[tuple[int, int]], n: int) -> None:
        self.spans = spans
        self.n = max(n, 1)
        self.cum = [0]
        for a, b in spans:
            self.cum.append(self.cum[-1] + b - a)
        self.total = self.cum[-1]
        self._scaled = [c * self.n for c in self.cum]
        # Pause boundaries as fractions of the speech time.
        self.bounds = [c / self.total for c in self.cum[1:-1]]

    @property
    def start(self) -> int:
        return self.spans[0][0]

    @property
    def end(self) -> int:
        return self.spans[-1][1]

    def at(self, p: int) -> int:
        """The time of text position ``p`` (integer maths, floor)."""
        target = p * self.total  # in units of 1/n ms
        k = bisect.bisect_right(self._scaled, target) - 1
        k = min(max(k, 0), len(self.spans) - 1)
        return self.spans[k][0] + (target - self.cum[k] * self.n) // self.n

    def cut(self, p: int) -> tuple[int, int, float]:
        """(end of the cue before, start of the cue after, pause bonus) for a cut at ``p``."""
        if self.bounds:
            f = p / self.n
            i = bisect.bisect_left(self.bounds, f)
            near = [k for k in (i - 1, i) if 0 <= k < len(self.bounds)]
            dist, k = min((abs(self.bounds[k] - f), k) for k in near)
            left, right = self.spans[k], self.spans[k + 1]
            shorter = min(left[1] - left[0], right[1] - right[0]) / self.total
            tol = max(1.5 / self.n, SNAP * shorter)
            if dist <= tol:
                pause = right[0] - left[1]
                bonus = PAUSE_BONUS * min(pause, PAUSE_FULL_MS) / PAUSE_FULL_MS
                return left[1], right[0], bonus * (1.0 - dist / tol)
        t = self.at(p)
        return t, t, 0.0


@dataclass(frozen=True, slots=True)
class _Node:
    left: int  # a cue ending here ends at s[:left]
    right: int  # a cue starting here starts at s[right:]
    end_ms: int  # ... and ends at this time
    start_ms: int  # ... and starts at this time
    cost: float  # cost of cutting here (0 for the text's ends)


def _nodes(breaks: list[Break], tm: TimeMap, n: int) -> list[_Node]:
    nodes = [_Node(0, 0, tm.start, tm.start, 0.0)]
    for b in breaks:
        end_ms, start_ms, bonus = tm.cut(b.right)
        cost = CUT_COST[b.kind] + (GLUE_CUT if b.glue else 0.0) - bonus
        nodes.append(_Node(b.left, b.right, end_ms, start_ms, cost))
    nodes.append(_Node(n, n, tm.end, tm.end, 0.0))
    return nodes


def _cue_cost(width: int, cap2: int, dur: int, options: SubtitleOptions) -> float:
    cost = PER_CUE + FILL * (width / cap2) ** 2
    if dur > options.max_duration_ms:
        cost += OVERLONG + (dur - options.max_duration_ms) / 100
    elif dur <= 0:
        cost += NO_TIME
    return cost


def chunk(
    s: str, lang: str, tm: TimeMap, line_chars: int, options: SubtitleOptions
) -> list[RawCue]:
    """Cut the normalized text ``s`` into cues laid out in lines, timed by ``tm``."""
    cjk = lang in CJK_WIDTH
    line_w2 = 2 * line_chars
    cap2 = options.max_lines * line_w2
    prefix = width_prefix(s, cjk)
    breaks = find_breaks(s, lang, line_w2)
    lb = LineBreaker(s, prefix, breaks, line_w2, options.max_lines)
    nodes = _nodes(breaks, tm, len(s))
    inf = float("inf")
    best = [inf] * len(nodes)
    back = [-1] * len(nodes)
    best[0] = 0.0
    for j in range(1, len(nodes)):
        nj = nodes[j]
        for i in range(j - 1, -1, -1):
            ni = nodes[i]
            width = prefix[nj.left] - prefix[ni.right]
            if width > cap2:
                break
            if best[i] == inf:
                continue
            laid = lb.layout(ni.right, nj.left)
            if laid is None:
                continue
            cost = best[i] + _cue_cost(width, cap2, nj.end_ms - ni.start_ms, options)
            cost += nj.cost + LINE_WEIGHT * laid[0]
            if cost < best[j]:
                best[j], back[j] = cost, i
    if best[-1] == inf:  # cannot happen: every stretch between two breaks fits a line
        raise RuntimeError(f"no subtitle layout for {s!r}")
    cues: list[RawCue] = []
    j = len(nodes) - 1
    while j > 0:
        i = back[j]
        lines = lb.lines(nodes[i].right, nodes[j].left)
        cues.append(RawCue(nodes[i].start_ms, nodes[j].end_ms, lines))
        j = i
    return cues[::-1]
