"""The typed timeline: one frozen record per utterance, as the stages hand it along.

segment gives the utterance, speakers who says it, translate its translation (or its
error), fit where its dubbed clip goes and where it is heard. :class:`Entry` holds all of it;
:func:`totals` is the one place the run's counts are made, for the manifest and the CLI.

>>> from dubkit.translate import UtteranceResult
>>> from dubkit.types import Utterance
>>> e = Entry(UtteranceResult(Utterance(0, 900), None, error="HTTP 500"))
>>> e.status, totals([e], cues=0).failed
('failed', 1)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from dubkit.fit import Placement
from dubkit.speakers import SpeakerInfo
from dubkit.translate import UtteranceResult
from dubkit.types import Translation, Usage, Utterance

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
