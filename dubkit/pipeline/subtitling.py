"""Subtitles only (:func:`subtitle`), and the cues and sidecars of every run."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import overload

from dubkit.pipeline.given import Given
from dubkit.pipeline.options import Options, Progress, Result
from dubkit.pipeline.outputs import checked_outputs
from dubkit.pipeline.prepare import analyze, prepare, start_translations
from dubkit.pipeline.timeline import Entry
from dubkit.subtitles import SubtitleOptions, SubtitleSource, layout, write_srt, write_vtt
from dubkit.translate import UtteranceResult
from dubkit.translate.protocol import Translator
from dubkit.types import Cue


def _sources(
    results: Sequence[UtteranceResult], speech: Sequence[tuple[tuple[int, int], ...]]
) -> list[SubtitleSource]:
    out = []
    for r, spans in zip(results, speech, strict=True):
        if r.translation is not None and r.translation.text.strip():
            out.append(SubtitleSource(r.utterance, r.translation.text, spans))
    return out


def cues_of(
    timeline: Sequence[Entry], lang: str, duration_ms: int, opts: SubtitleOptions
) -> list[Cue]:
    """The subtitle cues of one language's timeline (timed to where each dub is heard, if
    it was dubbed)."""
    return layout(
        _sources([e.result for e in timeline], [e.heard for e in timeline]), lang, duration_ms,
        opts,
    )  # fmt: skip


class LiveCues:
    """One language's cues, handed on while its timeline grows, so that a one-pass mux can
    write them as it goes (see :class:`dubkit.mux.Muxer`).

    A cue is handed on once the timeline holds :attr:`SETTLE` entries after the one it
    belongs to: the timing rules move a cue only for its near neighbours, so it will not
    change. The cues are laid out over the entries not yet handed on and a few before
    them (their context), so the work does not grow with the timeline. Whatever the rules
    did, :attr:`sent` is compared with the whole timeline's cues at the end.
    """

    SETTLE = 3

    def __init__(self, lang: str, duration_ms: int, opts: SubtitleOptions) -> None:
        self._lang, self._duration_ms, self._opts = lang, duration_ms, opts
        self.sent: list[Cue] = []
        self._done = 0  # entries whose cues have all been handed on

    def settled(self, timeline: Sequence[Entry], complete: bool) -> list[Cue]:
        """The cues not handed on yet that can no longer change (all of them once the
        timeline is ``complete``)."""
        upto = len(timeline) if complete else len(timeline) - self.SETTLE
        if upto <= self._done:
            return []
        base = max(0, self._done - self.SETTLE)
        window = timeline[base:]
        index = {e.utterance: base + j for j, e in enumerate(window)}
        cues = cues_of(window, self._lang, self._duration_ms, self._opts)
        new = [
            c for c in cues if c.utterance is not None and self._done <= index[c.utterance] < upto
        ]
        self._done = upto
        self.sent += new
        return new

    def unsettled_from(self, timeline: Sequence[Entry]) -> int | None:
        """Where the first entry whose cues may still change starts (ms); None while the
        timeline is too short to settle any."""
        first = len(timeline) - self.SETTLE
        return timeline[first].utterance.start_ms if first >= 0 else None


def write_subtitles(
    cues: Sequence[Cue], paths: Sequence[Path], lang: str, duration_ms: int, opts: SubtitleOptions
) -> None:
    """Write each sidecar; the writers refuse cues that break a hard rule."""
    for p in paths:
        writer = write_vtt if p.suffix == ".vtt" else write_srt
        writer(cues, p, lang=lang, duration_ms=duration_ms, options=opts)


@overload
def subtitle(
    input: str | Path,
    options: Options,
    translator: Translator,
    *,
    targets: None = None,
    progress: Progress | None = None,
    given: Given | None = None,
) -> Result: ...
@overload
def subtitle(
    input: str | Path,
    options: Options,
    translator: Translator,
    *,
    targets: Sequence[str],
    progress: Progress | None = None,
    given: Given | None = None,
) -> tuple[Result, ...]: ...
def subtitle(
    input: str | Path,
    options: Options,
    translator: Translator,
    *,
    targets: Sequence[str] | None = None,
    progress: Progress | None = None,
    given: Given | None = None,
) -> Result | tuple[Result, ...]:
    """Subtitles only (text modality): segment, translate, write ``<stem>.<lang>.srt``.

    ``targets`` (instead of ``options.target``): several languages from one segmentation,
    their requests sharing the translator's limits; one :class:`Result` per language.
    ``given`` utterances (a subtitle file's cue times) replace the segmentation.

    >>> Options(target="es").formats
    ('srt',)
    """
    from dubkit.pipeline.manifest import write_manifests

    path = Path(input)
    info, track, planned = prepare(path, options, translator, targets, dubbing=False)
    langs = [lang.code for lang, _ in planned]
    outputs = checked_outputs(path, langs, options, with_media=False)
    with tempfile.TemporaryDirectory(prefix="dubkit-") as work:
        audio, utterances = analyze(
            path, options.segment, Path(work), progress, info.duration_ms, None, track.index,
            given.utterances if given is not None else None,
        )  # fmt: skip
        jobs = [[job] * len(utterances) for _, job in planned]
        shared, lanes = start_translations(
            path, translator, audio, utterances, jobs, options, progress
        )
        with contextlib.closing(shared):  # an error here cancels the requests in flight
            per_lang = [[r for rs in lane for r in rs] for lane in lanes]
    out = []
    for (target, _), results, outs in zip(planned, per_lang, outputs, strict=True):
        timeline = tuple(Entry(r) for r in results)
        cues = cues_of(timeline, target.code, info.duration_ms, options.subtitles)
        write_subtitles(cues, outs.subtitles, target.code, info.duration_ms, options.subtitles)
        out.append(Result(path, target, translator.name, outs, timeline, tuple(cues)))
    write_manifests(out, info, options, [job for _, job in planned])
    return tuple(out) if targets is not None else out[0]
