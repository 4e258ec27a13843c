"""Line breaking inside one cue: the fewest lines, balanced, at the best places.

A cue's text is kept on one line when it fits (Netflix: "text should usually be
kept to one line, unless it exceeds the character limitation"). Otherwise it
takes the fewest lines that fit, and among those the breaks that minimize a
cost: punctuation is cheapest, then before a conjunction or preposition, then
any word boundary; unbalanced lines cost more; a line never ends with an
article or determiner, never breaks inside a word unless the word alone is
wider than a line.
"""

from __future__ import annotations

import bisect

from dubkit.subtitles._text import Break, Kind, breaks_inside

#: Cost of ending a line at a break of each kind.
LINE_COST = {
    Kind.SENTENCE: 0.0,
    Kind.CLAUSE: 0.3,
    Kind.CONJUNCTION: 0.8,
    Kind.WORD: 2.0,
    Kind.CHAR: 3.0,  # may split a word: no spaces tell
    Kind.FORCED: 12.0,
}
#: Weight of line imbalance: squared deviation from the mean width, relative to the limit.
BALANCE = 20.0


class LineBreaker:
    """Lays out pieces of one normalized text ``s`` into lines of at most ``line_w2``."""

    def __init__(
        self, s: str, prefix: list[int], breaks: list[Break], line_w2: int, max_lines: int
    ) -> None:
        self.s = s
        self.prefix = prefix
        self.breaks = [b for b in breaks if not b.glue]  # glue breaks never end a line
        self.keys = [b.left for b in self.breaks]
        self.line_w2 = line_w2
        self.max_lines = max_lines
        self._memo: dict[tuple[int, int], tuple[float, list[Break]] | None] = {}

    def width(self, start: int, end: int) -> int:
        return self.prefix[end] - self.prefix[start]

    def count(self, start: int, end: int) -> int:
        """The fewest lines ``s[start:end]`` fits in, or ``max_lines + 1`` if more are needed."""
        lines = 1
        x = start
        while self.width(x, end) > self.line_w2:
            if lines >= self.max_lines:
                return self.max_lines + 1
            # The farthest allowed break whose line still fits.
            limit = bisect.bisect_right(self.prefix, self.prefix[x] + self.line_w2) - 1
            k = bisect.bisect_right(self.keys, min(limit, end - 1)) - 1
            while k >= 0 and self.breaks[k].right >= end:
                k -= 1
            if k < 0 or self.keys[k] <= x:
                return self.max_lines + 1
            x = self.breaks[k].right
            lines += 1
        return lines

    def fits(self, start: int, end: int) -> bool:
        return self.count(start, end) <= self.max_lines

    def layout(self, start: int, end: int) -> tuple[float, list[Break]] | None:
        """Cost and line breaks of the best layout of ``s[start:end]``; None if none fits."""
        key = (start, end)
        if key not in self._memo:
            n_lines = self.count(start, end)
            if n_lines > self.max_lines:
                self._memo[key] = None
            elif n_lines == 1:
                self._memo[key] = (0.0, [])
            else:
                self._memo[key] = self._best(start, end, self._cands(start, end), n_lines)
        return self._memo[key]

    def _cands(self, start: int, end: int) -> list[Break]:
        """The breaks inside ``s[start:end]`` that leave both ends a line's room."""
        inside = breaks_inside(self.breaks, self.keys, start, end)
        # A break can end the first line only within a line of ``start``, and
        # start the last line only within a line of ``end``.
        first_max = bisect.bisect_right(self.prefix, self.prefix[start] + self.line_w2) - 1
        last_min = bisect.bisect_left(self.prefix, self.prefix[end] - self.line_w2)
        if self.max_lines == 2:
            lo = bisect.bisect_left(self.keys, last_min - 1, inside.start, inside.stop)
            hi = bisect.bisect_right(self.keys, first_max, inside.start, inside.stop)
            return [b for b in self.breaks[lo:hi] if b.right >= last_min]
        return [self.breaks[i] for i in inside]

    def lines(self, start: int, end: int) -> tuple[str, ...]:
        """The lines of the best layout of ``s[start:end]`` (which must fit)."""
        best = self.layout(start, end)
        if best is None:
            raise ValueError(f"text does not fit in {self.max_lines} lines: {self.s[start:end]!r}")
        out = []
        x = start
        for b in best[1]:
            out.append(self.s[x : b.left])
            x = b.right
        out.append(self.s[x:end])
        return tuple(out)

    def _best(
        self, start: int, end: int, cands: list[Break], n_lines: int
    ) -> tuple[float, list[Break]]:
        """Dynamic programme: ``n_lines - 1`` breaks among ``cands`` at the least cost."""
        mean = self.width(start, end) / n_lines
        scale = float(self.line_w2 * self.line_w2)

        def line_cost(a: int, b: int) -> float | None:
            w = self.width(a, b)
            if w > self.line_w2:
                return None
            return BALANCE * (w - mean) ** 2 / scale

        if n_lines == 2:
            return self._best_pair(start, end, cands, mean, scale)
        inf = float("inf")
        # best[j][k]: cost of j+1 lines whose last break is cands[k].
        best: list[list[float]] = []
        back: list[list[int]] = []
        for j in range(n_lines - 1):
            row = [inf] * len(cands)
            prev = [-1] * len(cands)
            for k, b in enumerate(cands):
                if j == 0:
                    c = line_cost(start, b.left)
                    if c is not None:
                        row[k] = c + LINE_COST[b.kind]
                    continue
                for p in range(k):
                    if best[j - 1][p] == inf:
                        continue
                    c = line_cost(cands[p].right, b.left)
                    if c is None:
                        continue
                    total = best[j - 1][p] + c + LINE_COST[b.kind]
                    if total < row[k]:
                        row[k], prev[k] = total, p
            best.append(row)
            back.append(prev)
        final = inf
        last = -1
        for k, b in enumerate(cands):
            c = line_cost(b.right, end)
            if c is None or best[-1][k] == inf:
                continue
            # Ties go to the later break: a bottom-heavy pair reads better.
            if best[-1][k] + c <= final:
                final, last = best[-1][k] + c, k
        if last < 0:
            raise ValueError(f"no line layout for {self.s[start:end]!r}")
        chosen = []
        for j in range(n_lines - 2, -1, -1):
            chosen.append(cands[last])
            last = back[j][last]
        return final, chosen[::-1]

    def _best_pair(
        self, start: int, end: int, cands: list[Break], mean: float, scale: float
    ) -> tuple[float, list[Break]]:
        """The fast path of :meth:`_best` for two lines."""
        pre, cap = self.prefix, self.line_w2
        final = float("inf")
        chosen: Break | None = None
        for b in cands:
            w1 = pre[b.left] - pre[start]
            w2 = pre[end] - pre[b.right]
            if w1 > cap or w2 > cap:
                continue
            cost = LINE_COST[b.kind] + BALANCE * ((w1 - mean) ** 2 + (w2 - mean) ** 2) / scale
            if cost <= final:  # ties go to the later break (bottom-heavy)
                final, chosen = cost, b
        if chosen is None:
            raise ValueError(f"no line layout for {self.s[start:end]!r}")
        return final, [chosen]
