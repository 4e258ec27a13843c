"""Figures for who speaks each utterance, on people dubkit's speaker rule never heard (issue 26).

Run: ``nice -n 10 .venv/bin/python bench/bench_newvoices.py``, once the recordings are installed
(not by ``scripts/setup.sh``: some 250 MB that only this benchmark reads)::

    apt-get install -y --no-install-recommends fillets-ng-data-cs fillets-ng-data-nl \
        asterisk-core-sounds-en-wav asterisk-core-sounds-fr-wav asterisk-core-sounds-it-wav \
        asterisk-core-sounds-ru-wav asterisk-prompt-it-menardi-wav asterisk-prompt-fr-armelle \
        asterisk-prompt-es-co

The programs are
``bench/newvoices.py``'s: eleven new people (Fish Fillets' Czech and Dutch voice actors, GPL-2+;
Asterisk's telephone prompts in six languages, CC-BY-3.0, CC-BY-SA-3.0, BSD and GPL-2; see its
table) taking turns, 3 to 5 a program and 4 to 8 sentences each, two casts a seed (one with
two men, one with one man and the rest women), over the conditions clean, music12, pink10 and
babble10, seeds 0-3. Each program is cut by dubkit's segmenter with its defaults and every
utterance measured by :func:`dubkit.speakers.analyze`, cached under ``bench/.cache/voices/``
by ``bench/voicedata.py``'s own measuring (a second run only clusters). The rule is dubkit's
default, :func:`dubkit.speakers.cluster`, unchanged, and the measures are
``bench/bench_voices.py``'s:

* per person: the share of a person's utterances under their majority label, pooled over
  people and programs, and the worst person of any program;
* genders: utterances whose speaker's gender is the person's;
* same-gender pairs apart: pairs of same-gender people in a program whose majority labels
  differ;
* labels: labels holding the people's speech, against the people, summed over programs.

Then, for each person over all their programs: the share under their label, the share given
their gender, and the median F0 of their utterances (it-carlo's prompts sit near 180 Hz, above
dubkit's 160 Hz split: Praat and the harmonics' spacing of the raw files agree).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the speaker child runs
os.environ.setdefault("OMP_NUM_THREADS", "1")

import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import newvoices as nv  # noqa: E402
import voicedata  # noqa: E402
from bench_voices import Rule, Tally, tally  # noqa: E402

from dubkit.speakers import cluster  # noqa: E402

# bench_voices' Tally reads each person's gender from this table; the new ids are not in it.
voicedata.PERSON_GENDER.update(nv.GENDER)

HEADER = (
    "| condition | per person under one label (worst) | genders right "
    "| same-gender pairs apart | labels/people | utterances |\n|---|---|---|---|---|---|"
)


def per_person(
    programs: Sequence[voicedata.Measured], rule: Rule
) -> dict[str, tuple[Tally, float]]:
    """Each person's :class:`bench_voices.Tally` over ``programs`` (their utterances under
    their majority label, program by program; their genders; ``people`` counts their
    programs), and the median F0 (Hz) of their voiced utterances."""
    out = {}
    for p in nv.PEOPLE:
        f0 = [f.f0_hz for m in programs for who, f in zip(m.truth, m.feats, strict=True)
              if who == p.id and f.voiced]  # fmt: skip
        out[p.id] = (tally(programs, {p.id}, rule), float(np.median(f0)) if f0 else 0.0)
    return out


def report(rule: Rule = cluster) -> list[str]:
    people = {p.id for p in nv.available()}
    by_condition = {c: nv.programs([c]) for c in nv.CONDITIONS}
    every = [m for progs in by_condition.values() for m in progs]
    rows = [HEADER]
    rows += [tally(progs, people, rule).row(c) for c, progs in by_condition.items()]
    rows.append(tally(every, people, rule).row(f"**all** ({len(every)} programs)"))
    rows += ["", "| person | gender | language | source | under their label | gender right "
             "| median F0 | programs |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    counts = per_person(every, rule)
    for p in nv.PEOPLE:
        t, hz = counts[p.id]
        if t.total:
            rows.append(f"| {p.id} | {p.gender} | {p.language} | {p.package} "
                        f"| {t.kept}/{t.total} ({100 * t.kept / t.total:.0f}%) "
                        f"| {t.gender_right}/{t.total} | {hz:.0f} Hz | {t.people} |")  # fmt: skip
    return rows


def main() -> int:
    people = nv.available()
    missing = [p.id for p in nv.PEOPLE if p not in people]
    if sum(p.gender == "m" for p in people) < 2 or sum(p.gender == "f" for p in people) < 2:
        print("bench_newvoices: the recordings are not installed (see this file's docstring for "
              "the apt-get command)")  # fmt: skip
        return 2
    start = time.perf_counter()
    rows = report()
    print(f"new voices, dubkit.speakers.cluster, {len(nv.CONDITIONS)} conditions x seeds "
          f"{nv.SEEDS[0]}-{nv.SEEDS[-1]} x {len(nv.CASTS)} casts"
          + (f" (missing: {', '.join(missing)})" if missing else ""))  # fmt: skip
    print("\n".join(rows))
    print(f"\n{time.strftime('%Y-%m-%d')} {platform.machine()} Python "
          f"{platform.python_version()}, {os.cpu_count()} CPUs, "
          f"{time.perf_counter() - start:.0f} s")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
