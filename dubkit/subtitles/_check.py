"""The rule checker: every way a list of cues breaks the subtitle rules."""

from __future__ import annotations

from collections.abc import Sequence

from dubkit.languages import resolve
from dubkit.subtitles._model import SubtitleOptions, Violation
from dubkit.subtitles._text import CJK_WIDTH, width2
from dubkit.subtitles._timing import reading_chars
from dubkit.types import Cue


def line_limit(lang: str, options: SubtitleOptions) -> int:
    """Characters a line may hold: the option, else the language's Netflix limit."""
    if options.max_line_chars is not None:
        return options.max_line_chars
    return resolve(lang).max_line_chars


def text_width(text: str, lang: str) -> float:
    """Width of one line as the limits count it (0.5 per half-width character in zh/ja/ko/yue)."""
    return width2(text, resolve(lang).code in CJK_WIDTH) / 2


def _line_violations(
    i: int, cue: Cue, max_lines: int, limit: int | None, cjk: bool
) -> list[Violation]:
    out = []
    if not 1 <= len(cue.lines) <= max_lines:
        out.append(Violation(i, "lines", True, f"{len(cue.lines)} lines (at most {max_lines})"))
    for line in cue.lines:
        if not line.strip() or line != " ".join(line.split()):
            out.append(Violation(i, "lines", True, f"empty or badly spaced line {line!r}"))
        elif limit is not None and width2(line, cjk) > 2 * limit:
            w = width2(line, cjk) / 2
            out.append(
                Violation(i, "line_chars", True, f"line of {w:g} characters (at most {limit})")
            )
    return out


def _time_violations(
    i: int, cue: Cue, prev: Cue | None, duration_ms: int | None, gap: int
) -> list[Violation]:
    out = []
    end_limit = duration_ms if duration_ms is not None else cue.end_ms
    if cue.start_ms < 0 or cue.end_ms - cue.start_ms < 1 or cue.end_ms > end_limit:
        out.append(
            Violation(
                i, "bounds", True,
                f"[{cue.start_ms}, {cue.end_ms}) ms is empty or outside [0, {end_limit}]",
            )
        )
    if prev is None:
        return out
    if cue.start_ms < prev.start_ms:
        out.append(Violation(i, "order", True, f"starts at {cue.start_ms} ms, before cue {i - 1}"))
    elif cue.start_ms < prev.end_ms:
        out.append(Violation(i, "overlap", True, f"starts before cue {i - 1} ends"))
    elif cue.start_ms - prev.end_ms < gap:
        got = cue.start_ms - prev.end_ms
        out.append(Violation(i, "min_gap", True, f"{got} ms after cue {i - 1} (at least {gap})"))
    return out


def _soft_violations(i: int, cue: Cue, options: SubtitleOptions) -> list[Violation]:
    out = []
    dur = cue.end_ms - cue.start_ms
    if dur < options.min_duration_ms:
        out.append(
            Violation(i, "min_duration", False, f"{dur} ms (at least {options.min_duration_ms})")
        )
    if dur > options.max_duration_ms:
        out.append(
            Violation(i, "max_duration", False, f"{dur} ms (at most {options.max_duration_ms})")
        )
    chars = reading_chars(cue.lines)
    if dur > 0 and chars * 1000 > options.target_cps * dur:
        cps = chars * 1000 / dur
        out.append(
            Violation(
                i, "reading_speed", False,
                f"{cps:.1f} characters/s (aimed at {options.target_cps:g})",
            )
        )
    return out


def check(
    cues: Sequence[Cue],
    lang: str | None,
    duration_ms: int | None,
    options: SubtitleOptions = SubtitleOptions(),  # noqa: B008 (frozen, immutable)
) -> list[Violation]:
    """Every rule the cues break, in cue order.

    Hard rules: ``lines`` (1..max_lines non-empty lines), ``line_chars``,
    ``order``, ``overlap``, ``bounds`` (inside ``[0, duration_ms]``, at least
    1 ms long), ``min_gap``. Soft rules: ``min_duration``, ``max_duration``,
    ``reading_speed``. With ``lang`` None the line width is not checked; with
    ``duration_ms`` None the end of the media is not.
    """
    limit = line_limit(lang, options) if lang is not None else None
    cjk = lang is not None and resolve(lang).code in CJK_WIDTH
    out: list[Violation] = []
    prev: Cue | None = None
    for i, cue in enumerate(cues):
        out += _line_violations(i, cue, options.max_lines, limit, cjk)
        out += _time_violations(i, cue, prev, duration_ms, options.min_gap_ms)
        out += _soft_violations(i, cue, options)
        prev = cue
    return out
