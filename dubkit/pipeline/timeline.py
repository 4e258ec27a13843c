"""The typed timeline: one frozen record per utterance, as the stages hand it along.

segment gives the utterance, speakers who says it, translate its translation (or its
error), fit where its dubbed clip goes and where it is heard. :class:`Entry` holds all of it;
:func:`place_in_order` builds the entries of a dub as the translations arrive, and
:func:`totals` is the one place the run's counts are made, for the manifest and the CLI.

>>> from dubkit.translate import UtteranceResult
>>> from dubkit.types import Utterance
>>> e = Entry(UtteranceResult(Utterance(0, 900), None, error="HTTP 500"))
>>> e.status, totals([e], cues=0).failed
('failed', 1)
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from dubkit.fit import (
    FitOptions,
    Placement,
    Planner,
    heard_spans,
    render,
    sample_span,
    speech_spans,
    trim_silence,
    trimmed_ms,
)
from dubkit.mix import PlacedClip
from dubkit.mix.loudness import RunningGain
from dubkit.pipeline.growing import Growing
from dubkit.speakers import SpeakerInfo
from dubkit.translate import UtteranceResult
from dubkit.translate.clips import ClipStore
from dubkit.types import SERVICE_RATE, Translation, Usage, Utterance

#: What became of an utterance: translated, translated to nothing (music, a cough), failed.
STATUSES = ("ok", "empty", "failed")


@dataclass(frozen=True, slots=True)
class Entry:
    """One utterance (or one piece of a split one) on the timeline."""

    result: UtteranceResult  # the translate stage's: utterance, translation or error, attempts
    speaker: SpeakerInfo | None = None  # who says it (dubs only)
    placement: Placement | None = None  # where its dubbed clip goes (None: no clip)
    heard: tuple[tuple[int, int], ...] = ()  # where the dub is audible, ms on the timeline

    @property
    def utterance(self) -> Utterance:
        return self.result.utterance

    @property
    def translation(self) -> Translation | None:
        return self.result.translation

    @property
    def status(self) -> str:
        """One of :data:`STATUSES`."""
        if self.result.error is not None:
            return "failed"
        t = self.result.translation
        return "ok" if t is not None and t.text.strip() else "empty"


@dataclass(frozen=True, slots=True)
class Totals:
    """The counts of a run, the same wherever they are shown."""

    utterances: int
    translated: int
    empty: int
    failed: int
    cached: int
    sped_up: int  # clips played faster than recorded
    max_ratio: float
    borrowed: int
    over_cap: int
    cut: int
    cues: int
    usage: Usage = field(default_factory=Usage)  # billed tokens (cached answers cost nothing)


def totals(entries: Sequence[Entry], cues: int) -> Totals:
    """The counts of ``entries`` (and of ``cues`` subtitle events)."""
    placed = [e.placement for e in entries if e.placement is not None]
    status = [e.status for e in entries]
    usage = Usage()
    for e in entries:
        if e.translation is not None and not e.result.cached:
            usage = usage + e.translation.usage
    return Totals(
        utterances=len(entries),
        translated=status.count("ok"),
        empty=status.count("empty"),
        failed=status.count("failed"),
        cached=sum(1 for e in entries if e.result.cached),
        sped_up=sum(1 for p in placed if p.ratio > 1.0),
        max_ratio=round(max((p.ratio for p in placed), default=1.0), 4),
        borrowed=sum(1 for p in placed if p.rule == "borrowed"),
        over_cap=sum(1 for p in placed if p.rule == "over_cap"),
        cut=sum(1 for p in placed if p.rule == "cut"),
        cues=cues,
        usage=usage,
    )


# --- the timeline of a dub, built as the translations arrive ------------------------


@dataclass(frozen=True, slots=True)
class _Clip:
    """One dubbed clip, its audio left in the clip store until it is mixed."""

    load: Callable[[], np.ndarray]  # int16 at SERVICE_RATE
    trim: tuple[int, int]
    spans: tuple[tuple[int, int], ...]  # where it is audible, ms from the trimmed start


@dataclass(frozen=True, slots=True)
class Fitted:
    """One timeline entry as the streamed dub hands it on: with its clip for the mix."""

    entry: Entry
    placed: PlacedClip | None  # the clip at the mix rate, at its gain (None: nothing to play)


def _clip(r: UtteranceResult, store: ClipStore, fit: FitOptions) -> tuple[_Clip | None, np.ndarray]:
    """Trim the result's clip and note its pauses, reading it once; its voiced samples."""
    if r.clip is None:
        return None, np.zeros(0, np.int16)
    samples = store.read(r.clip)
    trim = trim_silence(samples, SERVICE_RATE, fit)
    if trim[1] <= trim[0]:
        return None, np.zeros(0, np.int16)
    voiced = samples[trim[0] : trim[1]]
    spans = speech_spans(voiced, SERVICE_RATE, 0)
    return _Clip(functools.partial(store.read, r.clip), trim, spans), voiced


def place_in_order(
    stream: Iterator[list[UtteranceResult]],
    utterances: Sequence[Utterance] | Growing[Utterance],
    speakers: Sequence[SpeakerInfo] | Growing[SpeakerInfo],
    store: ClipStore,
    duration_ms: int,
    rate: int,
    fit: FitOptions,
    gain: RunningGain | None = None,
) -> Iterator[Fitted]:
    """The timeline, entry by entry: each result placed as soon as it and every earlier one
    are in. ``speakers[i]`` says utterance ``i`` (and each piece of it, if it was split).
    Each clip plays at the ``gain`` its speech and the speech before it call for (none: 0 dB).
    ``utterances`` and ``speakers`` may still be growing (the next utterance is waited for).
    """
    planner = Planner(duration_ms, fit)
    utterances = utterances if isinstance(utterances, Growing) else Growing.of(utterances)
    speakers = speakers if isinstance(speakers, Growing) else Growing.of(speakers)
    for i, results in enumerate(stream):
        nxt_utt = utterances.get(i + 1)
        after = nxt_utt.start_ms if nxt_utt is not None else None
        who = speakers.get(i)
        for k, r in enumerate(results):  # the pieces of a split utterance, in order
            nxt = results[k + 1].utterance.start_ms if k + 1 < len(results) else after
            clip, voiced = _clip(r, store, fit)
            db = gain.next(voiced) if gain is not None and len(voiced) else 0.0
            length = None if clip is None else trimmed_ms(clip.trim, SERVICE_RATE)
            p = planner.place(r.utterance, nxt, length)
            if clip is None or p is None:
                yield Fitted(Entry(r, who, p), None)
                continue
            entry = Entry(r, who, p, heard_spans(clip.spans, p))
            yield Fitted(entry, _placed(clip, p, rate, fit, db))


def _placed(clip: _Clip, p: Placement, rate: int, fit: FitOptions, gain_db: float) -> PlacedClip:
    start, length = sample_span(p, rate)
    scale = np.float32(10.0 ** (gain_db / 20.0))

    def load() -> np.ndarray:
        out = render(clip.load(), SERVICE_RATE, clip.trim, p, rate, fit)
        return out if gain_db == 0.0 else out * scale

    return PlacedClip(start, length, load)
