"""Figures for who speaks each utterance (issue 26), on what dubkit really sends.

Run: ``.venv/bin/python bench/bench_voices.py``. The utterances are dubkit's segmenter's
on real speech (``bench/voicedata.py``): the turn programs of each half (3 to 5 people
taking turns, ``fixtures/turns.py``), and ``fixtures/realspeech.py``'s programs (every
condition, seeds 0-3) with only each half's people's utterances kept (the other half's
left out before clustering, so that the tune rows never hear the report half). The rule
is dubkit's own (:func:`dubkit.speakers.cluster`); it was tuned on the "tune" half only.
For each half:

* per person: the share of a person's utterances under their majority label, pooled over
  people and programs, and the worst person of any program;
* genders: utterances whose speaker's gender is the person's;
* same-gender pairs apart: pairs of same-gender people in a program whose majority labels
  differ (two men, two women, two voices where the language has two);
* labels: labels holding the half's speech, against its people, summed over programs.
"""

from __future__ import annotations

import sys
import textwrap
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from voicedata import (  # noqa: E402
    HALVES,
    PERSON_GENDER,
    Measured,
    half_real_programs,
    real_programs,
    turn_programs,
)

from dubkit.speakers import Speakers, VoiceFeatures, cluster  # noqa: E402

Rule = Callable[[Sequence[VoiceFeatures]], Speakers]


@dataclass
class Tally:
    kept: int = 0
    total: int = 0
    worst: float = 1.0
    worst_who: str = ""
    gender_right: int = 0
    pairs_apart: int = 0
    pairs: int = 0
    labels: int = 0
    people: int = 0
    misses: list[str] = field(default_factory=list)

    def add(self, m: Measured, found: Speakers, people: set[str]) -> None:
        by: dict[str, list[str]] = {}
        for who, info in zip(m.truth, found.utterances, strict=True):
            if who in people:
                by.setdefault(who, []).append(info.speaker)
                self.gender_right += info.gender[0] == PERSON_GENDER[who]
        major = {}
        for who, labels in by.items():
            label, n = Counter(labels).most_common(1)[0]
            major[who] = label
            self.kept += n
            self.total += len(labels)
            if n / len(labels) < self.worst:
                self.worst, self.worst_who = n / len(labels), f"{who} in {m.name}"
        for a in major:
            for b in major:
                if a < b and PERSON_GENDER[a] == PERSON_GENDER[b]:
                    self.pairs += 1
                    self.pairs_apart += major[a] != major[b]
        self.labels += len({lab for labels in by.values() for lab in labels})
        self.people += len(by)

    def row(self, what: str) -> str:
        return (
            f"| {what} | {100 * self.kept / self.total:.1f}% ({100 * self.worst:.0f}%, "
            f"{self.worst_who}) | {100 * self.gender_right / self.total:.1f}% "
            f"| {self.pairs_apart}/{self.pairs} | {self.labels}/{self.people} | {self.total} |"
        )


def tally(programs: Sequence[Measured], people: set[str], rule: Rule) -> Tally:
    t = Tally()
    for m in programs:
        t.add(m, rule(m.feats), people)
    return t


HEADER = (
    "| programs, half | per person under one label (worst) | genders right "
    "| same-gender pairs apart | labels/people | utterances |\n|---|---|---|---|---|---|"
)


def report(rule: Rule = cluster) -> list[str]:
    rows = [HEADER]
    for half, people in HALVES.items():
        rows.append(tally(turn_programs(half), set(people), rule).row(f"turns, {half}"))
        rows.append(tally(half_real_programs(half), set(people), rule).row(f"realspeech, {half}"))
    return rows


def background() -> np.ndarray:
    """The mean embedding of the tune half's voiced utterances (its people only, turn
    programs and realspeech programs): what :data:`dubkit.speakers.background.MEAN` holds."""
    tune = set(HALVES["tune"])
    rows = [f.embedding for m in [*real_programs(), *turn_programs("tune")]
            for f, who in zip(m.feats, m.truth, strict=True)
            if who in tune and f.embedded and f.voiced]  # fmt: skip
    return np.asarray(np.mean(np.array(rows), axis=0))


def write_background(path: Path) -> None:
    values = ", ".join(f"{v:.6f}" for v in background())
    path.write_text(BACKGROUND_MODULE.format(values=textwrap.fill(values, 96)) + "\n")


BACKGROUND_MODULE = '''"""The mean speaker embedding of the tune half's utterances (issue 26).

Written by ``bench/bench_voices.py --write-background``: the mean d-vector of every voiced
utterance of the "tune" half's six people (``fixtures/turns.py``), in dubkit's own
segmentation of the turn programs and the real-speech programs, every condition. The
encoder's outputs are non-negative, so any two people sit near cosine 0.5; subtracting this
mean before the cosine spreads them (:func:`dubkit.speakers.group`).
"""

# fmt: off
MEAN: tuple[float, ...] = (
{values}
)
# fmt: on'''


if __name__ == "__main__":
    if sys.argv[1:] == ["--write-background"]:
        write_background(ROOT / "dubkit" / "speakers" / "background.py")
    else:
        print("\n".join(report()))
