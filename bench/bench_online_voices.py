"""What deciding voices before the whole file is heard would cost (not a test, not the product).

Run: ``.venv/bin/python bench/bench_online_voices.py``. A dub's requests wait for the
segmentation and speaker analysis of the whole file, because each request names its voice
and a speaker's voice is cast from all of their speech (``dubkit.speakers.cluster``). That
wait is most of the head of a paced dub (BENCHMARKS.md, issue 15). Starting requests as the
segmentation goes would need each utterance's speaker, and its speaker's gender, decided
from the speech heard up to it, never revised (a request already sent keeps its voice).

This measures that trade on real speech (``fixtures/realspeech.py``, every program, seeds
0-3) with the product's own features (speaker embeddings and pitch), side by side:

* whole file: ``dubkit.speakers.cluster`` (average linkage over every utterance, fragments
  absorbed, gender from each speaker's speech-weighted median F0);
* as heard: each voiced utterance, in timeline order, joins the speaker whose centroid
  (speech-weighted mean embedding) so far is closest in cosine, or, when it lasts at least
  ``NEW_MIN_MS`` and every cosine is under ``NEW_BELOW``, starts a new one, whose gender is
  its first utterance's; an unvoiced one takes the previous speaker (issue 26's online
  rule; the whole-file clustering measured better there, so it is not the product's).

Figures per program (the test's): share of utterances whose speaker's gender is the
person's, the smallest share of one person's utterances under their most frequent label,
and how many labels were made for how many people. Utterances of the bed alone (no
person) are left out.
"""

from __future__ import annotations

import platform
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "fixtures"))
sys.path.insert(0, str(ROOT))

import realspeech as rs  # noqa: E402

from dubkit.segment import segment  # noqa: E402
from dubkit.speakers import (  # noqa: E402
    VoiceFeatures,
    analyze,
    cluster,
    gender_of,
)
from dubkit.translate import ArrayAudio  # noqa: E402

SEEDS = (0, 1, 2, 3)
#: The online rule of issue 26 (chosen on the development half there): a new speaker needs
#: an utterance of at least NEW_MIN_MS whose cosine to every known centroid is under NEW_BELOW.
NEW_BELOW = 0.76
NEW_MIN_MS = 500


def as_heard(feats: list[VoiceFeatures]) -> list[tuple[str, str]]:
    """(label, gender) of each utterance, each decided when it is heard, never revised."""
    sums: list[np.ndarray] = []
    genders: list[str] = []
    out: list[tuple[str, str]] = []
    pending = 0  # unvoiced utterances before the first voiced one
    for f in feats:
        if not (f.voiced and f.embedded):
            if out:
                out.append(out[-1])
            else:
                pending += 1
            continue
        v = np.asarray(f.embedding)
        sims = [float(s @ v) / float(np.linalg.norm(s)) for s in sums]
        if sims and (f.speech_ms < NEW_MIN_MS or max(sims) >= NEW_BELOW):
            k = int(np.argmax(sims))
        else:
            sums.append(np.zeros(v.shape))
            genders.append(gender_of(f.f0_hz))
            k = len(sums) - 1
        sums[k] += f.speech_ms * v
        label = (f"S{k + 1}", genders[k])
        out += [label] * (pending + 1)
        pending = 0
    return out + [("S1", "female")] * pending


def figures(
    truths: list[object | None], decided: list[tuple[str, str]]
) -> tuple[float, float, str]:
    pairs = [(t, d) for t, d in zip(truths, decided, strict=True) if t is not None]
    truths, decided = [t for t, _ in pairs], [d for _, d in pairs]
    right = sum(g[0] == t.gender for t, (_, g) in zip(truths, decided, strict=True))  # type: ignore[attr-defined]
    by_person: dict[str, list[str]] = defaultdict(list)
    for t, (label, _) in zip(truths, decided, strict=True):
        by_person[t.speaker].append(label)  # type: ignore[attr-defined]
    kept = min(Counter(ls).most_common(1)[0][1] / len(ls) for ls in by_person.values())
    labels = len({label for label, _ in decided})
    return right / len(truths), kept, f"{labels} for {len(by_person)}"


def main() -> int:
    if not rs.available():
        print("Debian's codec2-examples is not installed (scripts/setup.sh installs it)")
        return 1
    print(f"# {platform.processor() or platform.machine()}, Python {platform.python_version()}")
    print("| program | seed | utterances | gender right: whole file / as heard "
          "| one label per person (min): whole file / as heard | labels: whole file / as heard |")
    print("|---|---|---|---|---|---|")
    for name in rs.CONDITIONS:
        for seed in SEEDS:
            prog = rs.program(name, seed)
            utts = segment(prog.audio)
            feats = analyze(ArrayAudio(prog.audio), utts)
            truths = [prog.sentence_at(u.start_ms, u.end_ms) for u in utts]
            whole = [(w.speaker, w.gender) for w in cluster(feats).utterances]
            a, b = figures(truths, whole), figures(truths, as_heard(feats))
            print(f"| {name} | {seed} | {len(utts)} | {a[0]:.0%} / {b[0]:.0%} "
                  f"| {a[1]:.0%} / {b[1]:.0%} | {a[2]} / {b[2]} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
