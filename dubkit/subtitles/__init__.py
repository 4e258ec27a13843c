"""Subtitles: translated text and utterance times in, rule-abiding cues out, SRT/VTT files.

The rules are the Netflix Timed Text Style Guide defaults (see
:class:`SubtitleOptions`): at most 2 lines of at most 42 characters (16 for
zh/yue/ko, 13 for ja, where half-width characters count 0.5), events from 5/6 s
to 7 s, at least 84 ms between events, reading speed aimed at 17 characters a
second.

:func:`layout` is pure. It cuts each translation into cues (at sentence ends,
then clause punctuation, then between words; between characters for zh/ja/yue;
inside a word only when that word alone is wider than a line, as a last
resort, with no hyphen added), breaks each cue into balanced lines (after
punctuation or before a conjunction or preposition, never after an article or
determiner in en/es/fr/de/it/pt), times each cue by its share of the text over
the utterance (or over the dubbed speech spans, split at their pauses), then
repairs the timing (see ``_timing``). No text is lost: joining the cues' lines
with spaces (with nothing for zh/ja/yue) gives the translation back, up to
whitespace.

>>> from dubkit.types import Utterance
>>> cues = layout([SubtitleSource(Utterance(1000, 2500), "Hello there.")], "en", 10_000)
>>> cues
[Cue(start_ms=1000, end_ms=2500, lines=('Hello there.',))]
>>> print(srt_text(cues), end="")
1
00:00:01,000 --> 00:00:02,500
Hello there.
<BLANKLINE>
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

from dubkit.languages import resolve
from dubkit.subtitles._check import check, line_limit, text_width
from dubkit.subtitles._chunks import RawCue, TimeMap, chunk, speech_spans
from dubkit.subtitles._files import (
    parse_srt,
    read_srt,
    srt_text,
    vtt_text,
    write_srt,
    write_vtt,
)
from dubkit.subtitles._model import (
    HARD_RULES,
    SOFT_RULES,
    SubtitleError,
    SubtitleOptions,
    SubtitleSource,
    Violation,
)
from dubkit.subtitles._text import SPACELESS, normalize
from dubkit.subtitles._timing import fix_timing
from dubkit.types import Cue, Utterance

__all__ = [
    "HARD_RULES",
    "SOFT_RULES",
    "SubtitleError",
    "SubtitleOptions",
    "SubtitleSource",
    "Violation",
    "check",
    "joined_text",
    "layout",
    "line_limit",
    "parse_srt",
    "read_srt",
    "srt_text",
    "text_width",
    "vtt_text",
    "write_srt",
    "write_vtt",
]

log = logging.getLogger(__name__)

_DEFAULT = SubtitleOptions()


def layout(
    sources: Sequence[SubtitleSource],
    lang: str,
    duration_ms: int,
    options: SubtitleOptions = _DEFAULT,
) -> list[Cue]:
    """Cues for ``sources`` (translations in language ``lang``) in media of ``duration_ms``.

    The cues are sorted, never overlap, lie inside ``[0, duration_ms]``, are at
    least 1 ms long and follow every hard rule of :func:`check`; soft rules are
    met where the room is there. Empty or whitespace text gives no cue.
    Raises :class:`SubtitleError` if the text needs more events than the media
    has room for (each 1 ms long, ``min_gap_ms`` apart).
    """
    code = resolve(lang).code
    line_chars = line_limit(code, options)
    ordered = sorted(
        (src for src in sources if normalize(src.text)), key=lambda src: src.utterance.start_ms
    )
    if ordered and duration_ms <= 0:
        raise SubtitleError(f"media duration must be positive for subtitles, not {duration_ms}")
    # Cues keep the order of the text: utterance by utterance, then within each.
    raw: list[RawCue] = []
    owners: list[Utterance] = []  # each raw cue's utterance
    for src in ordered:
        s = normalize(src.text)
        u = src.utterance
        spans = speech_spans(src.speech, u.start_ms, u.end_ms, duration_ms)
        raw += chunk(s, code, TimeMap(spans, len(s)), line_chars, options)
        owners += [u] * (len(raw) - len(owners))
    timed = fix_timing(raw, duration_ms, options)  # one cue per raw cue, in order
    cues = [dataclasses.replace(c, utterance=u) for c, u in zip(timed, owners, strict=True)]
    log.debug("laid out %d sources in %d cues (%s)", len(ordered), len(cues), code)
    return cues


def joined_text(cues: Sequence[Cue], lang: str) -> str:
    """The cues' text as one string: lines and cues joined by a space (nothing for zh/ja/yue)."""
    sep = "" if resolve(lang).code in SPACELESS else " "
    return sep.join(sep.join(c.lines) for c in cues)
