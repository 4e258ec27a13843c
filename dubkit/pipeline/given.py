"""Utterances given to a run instead of found by the segmenter: a subtitle file's cue times
(``--segments``), or an edited manifest's utterances (``dubkit redo``) with their voices,
texts and skips.

A :class:`Given` rides along a dub: its spans replace the segmentation, its speaker labels
are kept (the speakers found are renamed after them), its voices replace the casting's for
their utterances, and its texts replace the translations' where the request did not change
(the audio, from the cache, stays as it was heard).

>>> g = Given((GivenUtterance(Utterance(0, 900)), GivenUtterance(Utterance(1000, 1500), skip=True)))
>>> g.utterances, len(g.skipped)
([Utterance(start_ms=0, end_ms=900)], 1)
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from dubkit.errors import InputError
from dubkit.speakers import SpeakerInfo, Speakers
from dubkit.translate import Stream, UtteranceResult
from dubkit.translate.protocol import Job
from dubkit.types import Utterance


@dataclass(frozen=True, slots=True)
class GivenUtterance:
    """One utterance as the user gave it."""

    utterance: Utterance
    voice: str | None = None  # requested in this voice instead of its speaker's
    text: str | None = None  # the subtitles' text, where the request did not change
    speaker: str | None = None  # its speaker's label ("S1"), kept across runs
    skip: bool = False  # not dubbed: the original plays, no cue
    #: What a skipped utterance's manifest entry carried (written back as it was).
    gender: str | None = None


@dataclass(frozen=True, slots=True)
class Given:
    """The utterances of a run, in timeline order (skipped ones included).

    A redo of a dub in several languages gives each language's own edits over one shared
    timeline: ``items`` is the first language's, ``more`` the others' (the same spans in the
    same order; their voices, texts and skips their own), ``voices`` each language's speaker
    voices. An utterance skipped in some languages only is still analysed, and requested in
    the others; one skipped in every language is not.
    """

    items: tuple[GivenUtterance, ...]
    more: tuple[tuple[GivenUtterance, ...], ...] = ()
    #: Each language's speaker voices as ``(label, voice)`` pairs; None: the run's options'.
    voices: tuple[tuple[tuple[str, str], ...], ...] | None = None

    def __post_init__(self) -> None:
        spans = [g.utterance for g in self.items]
        if any([g.utterance for g in lang] != spans for lang in self.more):
            raise ValueError("every language of a run must give the same utterances")
        if self.voices is not None and len(self.voices) != 1 + len(self.more):
            raise ValueError("voices must give one map per language")

    def language(self, k: int) -> tuple[GivenUtterance, ...]:
        """Language ``k``'s utterances (0: :attr:`items`)."""
        return self.items if k == 0 else self.more[k - 1]

    @property
    def _on(self) -> list[int]:
        """The utterances some language translates."""
        langs = (self.items, *self.more)
        return [i for i in range(len(self.items)) if not all(lang[i].skip for lang in langs)]

    @property
    def active(self) -> tuple[GivenUtterance, ...]:
        """The utterances that are translated (not skipped in every language)."""
        return tuple(self.items[i] for i in self._on)

    @property
    def utterances(self) -> list[Utterance]:
        return [g.utterance for g in self.active]

    @property
    def skipped(self) -> tuple[GivenUtterance, ...]:
        return self.skipped_in(0)

    def skipped_in(self, k: int) -> tuple[GivenUtterance, ...]:
        """Language ``k``'s skipped utterances."""
        return tuple(g for g in self.language(k) if g.skip)

    def voices_of(self, k: int) -> tuple[tuple[str, str], ...] | None:
        """Language ``k``'s speaker voices, where the languages each have their own."""
        return self.voices[k] if self.voices is not None else None

    def jobs(self, jobs: Sequence[Job], dubbed: bool, k: int = 0) -> list[Job | None]:
        """``jobs`` (one per active utterance) for language ``k``: with each given voice
        (when it is dubbed), None where that language skips the utterance (no request)."""
        mine = [self.language(k)[i] for i in self._on]
        return [
            None if g.skip else dataclasses.replace(j, voice=g.voice) if dubbed and g.voice else j
            for j, g in zip(jobs, mine, strict=True)
        ]

    def edit(self, stream: Stream, k: int = 0) -> Iterator[list[UtteranceResult]]:
        """Language ``k``'s ``stream`` with the given texts in place of the translations'
        where the answer came from the cache (the request did not change) and the text
        differs, and each given voice noted."""
        mine = [self.language(k)[i] for i in self._on]
        for g, results in zip(mine, stream, strict=True):
            if g.voice:
                results = [dataclasses.replace(r, voice=g.voice) for r in results]
            yield _with_text(results, g.text)

    def relabel(self, found: Speakers) -> Speakers:
        """``found`` with each speaker named as the given labels name most of its
        utterances; a speaker the given labels do not name gets a new label."""
        votes: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
        for info, g in zip(found.utterances, self.active, strict=True):
            if g.speaker:
                votes[info.speaker][g.speaker] += 1
        names = {k: c.most_common(1)[0][0] for k, c in votes.items()}
        used = set(names.values()) | {g.speaker for g in self.items if g.speaker}
        n = 1
        for s in found.speakers:
            while s.label not in names:
                if f"S{n}" not in used:
                    names[s.label] = f"S{n}"
                    used.add(f"S{n}")
                n += 1
        utterances = tuple(
            SpeakerInfo(g.speaker or names[i.speaker], i.gender, i.f0_hz)
            for i, g in zip(found.utterances, self.active, strict=True)
        )
        speakers, seen = [], set()
        for s in found.speakers:  # two found speakers a label joins share its voice
            if names[s.label] not in seen:
                seen.add(names[s.label])
                speakers.append(dataclasses.replace(s, label=names[s.label]))
        return Speakers(utterances, tuple(speakers))


def _with_text(results: list[UtteranceResult], text: str | None) -> list[UtteranceResult]:
    if not results:  # skipped in this language
        return results
    first = results[0]
    t = first.translation
    if text is None or t is None or not first.cached or len(results) > 1 or t.text == text:
        return results
    return [dataclasses.replace(first, translation=dataclasses.replace(t, text=text), edited=True)]


def from_cues(path: Path, duration_ms: int) -> Given:
    """The cue times of the subtitle file ``path`` (SRT or WebVTT) as utterances, in
    order, cut to the media's ``duration_ms``; overlapping cues are refused."""
    from dubkit.subtitles import parse_srt

    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror or e}", path=path) from e
    except UnicodeDecodeError as e:
        raise InputError("not UTF-8 text", path=path) from e
    cues = parse_srt(_vtt_as_srt(text) if text.lstrip().startswith("WEBVTT") else text, path)
    spans = sorted((c.start_ms, min(c.end_ms, duration_ms)) for c in cues)
    spans = [(a, b) for a, b in spans if b > a]
    if not spans:
        raise InputError("no cue inside the media to take utterances from", path=path)
    for (a, b), (c, _) in itertools.pairwise(spans):
        if c < b:
            raise InputError(f"cues [{a}, {b}) and [{c}, ...) ms overlap", path=path)
    return Given(tuple(GivenUtterance(Utterance(a, b)) for a, b in spans))


def _vtt_as_srt(text: str) -> str:
    """WebVTT's cue blocks in SubRip's shape (numbered, comma decimals, settings dropped),
    for pysrt: the header, notes, styles and regions left out."""
    blocks: list[str] = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        lines = block.strip("\n").split("\n")
        at = next((k for k, line in enumerate(lines) if "-->" in line), None)
        if at is None:
            continue
        start, _, end = lines[at].partition("-->")
        times = [_srt_time(start.strip()), _srt_time(end.split()[0] if end.split() else "")]
        blocks.append("\n".join([str(len(blocks) + 1), " --> ".join(times), *lines[at + 1 :]]))
    return "\n\n".join(blocks) + "\n"


def _srt_time(t: str) -> str:
    return ("00:" + t if t.count(":") == 1 else t).replace(".", ",")
