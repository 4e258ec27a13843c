"""SubRip and WebVTT files: written atomically, only when the cues follow the hard rules."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import pysrt

from dubkit.errors import InputError
from dubkit.files import write_text_atomic
from dubkit.subtitles._check import check
from dubkit.subtitles._model import SubtitleError, SubtitleOptions
from dubkit.types import Cue

log = logging.getLogger(__name__)

_DEFAULT = SubtitleOptions()


def _refuse_broken(
    cues: Sequence[Cue],
    path: str | Path | None,
    lang: str | None,
    duration_ms: int | None,
    options: SubtitleOptions,
) -> None:
    hard = [v for v in check(cues, lang, duration_ms, options) if v.hard]
    if hard:
        first = hard[0]
        more = f" (and {len(hard) - 1} more)" if len(hard) > 1 else ""
        raise SubtitleError(
            f"refusing to write cue {first.index}: {first.rule}: {first.message}{more}", path=path
        )


def _ms(t: pysrt.SubRipTime) -> int:
    return int(t.ordinal)


def srt_text(
    cues: Sequence[Cue],
    *,
    lang: str | None = None,
    duration_ms: int | None = None,
    options: SubtitleOptions = _DEFAULT,
) -> str:
    """The cues as SubRip text (UTF-8 text, ``\\n`` line ends, numbered from 1).

    Raises :class:`SubtitleError` if they break a hard rule (line rules only
    when ``lang`` is given, the media end only when ``duration_ms`` is).
    """
    _refuse_broken(cues, None, lang, duration_ms, options)
    items = [
        pysrt.SubRipItem(i, start=c.start_ms, end=c.end_ms, text=c.text)
        for i, c in enumerate(cues, 1)
    ]
    buf = io.StringIO()
    pysrt.SubRipFile(items, eol="\n").write_into(buf, eol="\n")
    return buf.getvalue()


def _timestamp_vtt(ms: int) -> str:
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, milli = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{milli:03d}"


def _escape_vtt(line: str) -> str:
    return line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def vtt_text(
    cues: Sequence[Cue],
    *,
    lang: str | None = None,
    duration_ms: int | None = None,
    options: SubtitleOptions = _DEFAULT,
) -> str:
    """The cues as WebVTT text (``&``, ``<``, ``>`` escaped); refuses like :func:`srt_text`."""
    _refuse_broken(cues, None, lang, duration_ms, options)
    parts = ["WEBVTT\n"]
    for i, c in enumerate(cues, 1):
        body = "\n".join(_escape_vtt(line) for line in c.lines)
        parts.append(f"{i}\n{_timestamp_vtt(c.start_ms)} --> {_timestamp_vtt(c.end_ms)}\n{body}\n")
    return "\n".join(parts)


def _write(
    kind: str,
    text_of: Callable[..., str],
    cues: Sequence[Cue],
    path: str | Path,
    lang: str | None,
    duration_ms: int | None,
    options: SubtitleOptions,
) -> Path:
    try:
        text = text_of(cues, lang=lang, duration_ms=duration_ms, options=options)
    except SubtitleError as e:
        raise SubtitleError(e.reason, path=path) from e
    out = write_text_atomic(Path(path), text)
    log.info("wrote %d %s cues to %s", len(cues), kind, out)
    return out


def write_srt(
    cues: Sequence[Cue],
    path: str | Path,
    *,
    lang: str | None = None,
    duration_ms: int | None = None,
    options: SubtitleOptions = _DEFAULT,
) -> Path:
    """Write a SubRip file (UTF-8) atomically; refuse cues that break a hard rule."""
    return _write("SRT", srt_text, cues, path, lang, duration_ms, options)


def write_vtt(
    cues: Sequence[Cue],
    path: str | Path,
    *,
    lang: str | None = None,
    duration_ms: int | None = None,
    options: SubtitleOptions = _DEFAULT,
) -> Path:
    """Write a WebVTT file (UTF-8) atomically; refuse cues that break a hard rule."""
    return _write("WebVTT", vtt_text, cues, path, lang, duration_ms, options)


def parse_srt(text: str, path: str | Path | None = None) -> list[Cue]:
    """Cues from SubRip text (pysrt), in file order."""
    try:
        items = pysrt.SubRipFile.from_string(text, error_handling=pysrt.ERROR_RAISE)
    except (pysrt.Error, ValueError) as e:
        raise InputError(f"not a valid SubRip file ({type(e).__name__})", path=path) from e
    cues = []
    for item in items:
        lines = tuple(item.text.split("\n"))
        cues.append(Cue(_ms(item.start), _ms(item.end), lines))
    return cues


def read_srt(path: str | Path) -> list[Cue]:
    """Cues from a SubRip file (UTF-8, a byte-order mark allowed)."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror or e}", path=path) from e
    except UnicodeDecodeError as e:
        raise InputError("not UTF-8 text", path=path) from e
    return parse_srt(text, path)
