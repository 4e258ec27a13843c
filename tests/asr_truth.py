"""Word error rate, and the known texts of real read speech (codec2-examples), for ASR checks."""

from __future__ import annotations

import re
from collections.abc import Sequence

#: codec2-examples recordings that read IEEE "Harvard" sentences, with the canonical texts
#: (no transcripts ship with the package; the sentences are the standard published lists).
HARVARD = {
    "hts1": "The Navy attacked the big task force. The hat brim was wide and too droopy.",
    "hts2": "These days a chicken leg is a rare dish. The juice of lemons makes fine punch.",
    "mmt1": "It's easy to tell the depth of a well.",
    "speech16k": "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue "
    "background. It's easy to tell the depth of a well. Four hours of steady work faced us.",
}


def norm(text: str) -> list[str]:
    """Lower-case words, punctuation dropped (apostrophes kept inside words)."""
    return re.findall(r"[\w']+", text.lower().replace("-", " "))


def edits(ref: Sequence[str], hyp: Sequence[str]) -> int:
    """Levenshtein distance in words (substitutions, deletions, insertions)."""
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def wer(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Corpus word error rate: all edits over all reference words."""
    errors = sum(edits(norm(r), norm(h)) for r, h in zip(refs, hyps, strict=True))
    return errors / max(1, sum(len(norm(r)) for r in refs))
