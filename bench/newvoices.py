"""People dubkit's speaker rule has never heard (issue 26): turn programs of new real speech.

The rule was tuned on half of ``codec2-examples``' people and reported on the other half
(``bench/voicedata.py``). Here are eleven more people, from recordings Debian installs,
none of them heard while anything was chosen (read, acted and prompt speech, six languages):

============  ==  ========  ===============================  ================  ==================
person        mf  language  package                          licence           files
============  ==  ========  ===============================  ================  ==================
cs-v          m   Czech     fillets-ng-data-cs               GPL-2+            Fish Fillets' big
nl-v          m   Dutch     fillets-ng-data-nl               GPL-2+            fish (``v``) and
cs-m          f   Czech     fillets-ng-data-cs               GPL-2+            small fish (``m``),
nl-m          f   Dutch     fillets-ng-data-nl               GPL-2+            22.05 kHz Ogg
it-carlo      m   Italian   asterisk-core-sounds-it-wav      CC-BY-3.0         Asterisk prompts,
en-allison    f   English   asterisk-core-sounds-en-wav      CC-BY-SA-3.0      8 kHz WAV PCM16
fr-june       f   French    asterisk-core-sounds-fr-wav      CC-BY-SA-3.0      (Carlo Flora, Allison
ru-ivr        f   Russian   asterisk-core-sounds-ru-wav      CC-BY-3.0         Smith, June Wallack,
it-menardi    f   Italian   asterisk-prompt-it-menardi-wav   CC-BY-SA-3.0      ivrvoice.ru, Paola
fr-armelle    f   French    asterisk-prompt-fr-armelle       BSD-style         Dal Zot); Armelle
es-co         f   Spanish   asterisk-prompt-es-co            GPL-2             Desjardins and
                                                                               Avatar's voice
                                                                               (Colombia): 8 kHz GSM
============  ==  ========  ===============================  ================  ==================

Fish Fillets' two fish are different actors in each language, so cs-v, nl-v, cs-m and nl-m
are four people; its minor characters are left out. ``es_MX_f_Allison`` is Allison Smith
again (in Spanish) and is left out. Note that the channel differs by source: the Fillets
voices are full band, the Asterisk ones telephone band (8 kHz), so a pair from one source
(cs-v/nl-v, cs-m/nl-m, the Asterisk women) is the harder test of telling people apart.

Each file is decoded to 16 kHz mono int16 (:func:`dubkit.media.iter_pcm16`), its active
speech measured from its own noise floor and trimmed to it with 200 ms either side, and its
active level set to ``realspeech.SPEECH_DBFS``, as ``fixtures/realspeech.py`` does its
clips. A file is a *sentence* when its speech spans :data:`MIN_SPEECH_MS` to
:data:`MAX_SPEECH_MS` (digits, letters and one-word prompts are left out).

A program is laid out as ``fixtures/turns.py`` lays its turn programs (its turn order, gaps
of 850 to 1,600 ms, 200 ms of a sentence's own tone either side, the conditions' beds and the
room tone; the program ends 2 to 3 s after the last turn, at a whole second): 3 to 5 people
taking turns, 4 to 8 sentences each. For each seed there are two casts: one with two men
(each pair of the three men in turn) and one with a single man and the rest women, so that
same-gender pairs are in every program. The speech of a program
depends on its seed and cast only, so a condition differs from another by its bed alone.
The truth is each sentence's person and active speech.
"""

from __future__ import annotations

import functools
import itertools
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from voicedata import Measured, _measure, rs, turns  # noqa: E402

from dubkit.errors import InputError  # noqa: E402
from dubkit.media import iter_pcm16  # noqa: E402

FILLETS = Path("/usr/share/games/fillets-ng/sound")
ASTERISK = Path("/usr/share/asterisk/sounds")
#: A file's active speech must span this much (ms) to be a sentence ...
MIN_SPEECH_MS = 1000
#: ... and no more than this (the longest prompts are paragraphs).
MAX_SPEECH_MS = 8000
CONDITIONS = ("clean", "music12", "pink10", "babble10")
SEEDS = (0, 1, 2, 3)
#: Casts per seed: 0 has two men, 1 a single man.
CASTS = (0, 1)
TURNS_EACH = (4, 8)  # sentences per person, inclusive


@dataclass(frozen=True, slots=True)
class Person:
    """One new person: who, and where their recordings are."""

    id: str
    gender: str  # "m" or "f"
    language: str
    package: str  # the Debian package holding the files
    licence: str
    folder: Path
    pattern: str  # glob under ``folder``


PEOPLE = (
    Person("cs-v", "m", "cs", "fillets-ng-data-cs", "GPL-2+", FILLETS, "*/cs/*-v-*.ogg"),
    Person("nl-v", "m", "nl", "fillets-ng-data-nl", "GPL-2+", FILLETS, "*/nl/*-v-*.ogg"),
    Person("cs-m", "f", "cs", "fillets-ng-data-cs", "GPL-2+", FILLETS, "*/cs/*-m-*.ogg"),
    Person("nl-m", "f", "nl", "fillets-ng-data-nl", "GPL-2+", FILLETS, "*/nl/*-m-*.ogg"),
    Person("it-carlo", "m", "it", "asterisk-core-sounds-it-wav", "CC-BY-3.0",
           ASTERISK / "it_IT_m_Carlo", "*.wav"),
    Person("en-allison", "f", "en", "asterisk-core-sounds-en-wav", "CC-BY-SA-3.0",
           ASTERISK / "en_US_f_Allison", "*.wav"),
    Person("fr-june", "f", "fr", "asterisk-core-sounds-fr-wav", "CC-BY-SA-3.0",
           ASTERISK / "fr_CA_f_June", "*.wav"),
    Person("ru-ivr", "f", "ru", "asterisk-core-sounds-ru-wav", "CC-BY-3.0",
           ASTERISK / "ru_RU_f_IvrvoiceRU", "*.wav"),
    Person("it-menardi", "f", "it", "asterisk-prompt-it-menardi-wav", "CC-BY-SA-3.0",
           ASTERISK / "it_IT_f_Menardi", "*.wav"),
    Person("fr-armelle", "f", "fr", "asterisk-prompt-fr-armelle", "BSD-style",
           ASTERISK / "fr", "*.gsm"),
    Person("es-co", "f", "es", "asterisk-prompt-es-co", "GPL-2", ASTERISK / "es", "*.gsm"),
)  # fmt: skip
GENDER = {p.id: p.gender for p in PEOPLE}


@functools.cache
def files(person_id: str) -> tuple[Path, ...]:
    """The person's files, sorted (none when the package is not installed)."""
    p = next(p for p in PEOPLE if p.id == person_id)
    return tuple(sorted(p.folder.glob(p.pattern))) if p.folder.is_dir() else ()


def available() -> tuple[Person, ...]:
    """The people whose package is installed (with enough files for a program)."""
    return tuple(p for p in PEOPLE if len(files(p.id)) >= 2 * TURNS_EACH[1])


@dataclass(frozen=True, slots=True)
class Clip:
    """One sentence ready to place: float audio at 16 kHz, trimmed to its speech +- 200 ms
    at ``rs.SPEECH_DBFS`` active level, and its active runs (frames) in the clip."""

    name: str
    audio: np.ndarray
    runs: tuple[tuple[int, int], ...]


@functools.cache
def clip(path: Path) -> Clip | None:
    """``path`` as a :class:`Clip` (trimmed by ``realspeech.trim``, as its clips are); None when it
    is no sentence (its speech spans under :data:`MIN_SPEECH_MS` or over :data:`MAX_SPEECH_MS`)
    or FFmpeg cannot read it (one 0.6 s GSM file of es-co)."""
    try:
        pcm = np.concatenate([*iter_pcm16(path), np.zeros(0, np.int16)])
    except InputError:
        return None
    x = pcm.astype(np.float64) / 32768.0
    x -= x.mean() if x.size else 0.0
    runs = rs.active_runs(x) if x.size >= rs.RATE // 10 else []
    if not runs or not MIN_SPEECH_MS <= (runs[-1][1] - runs[0][0]) * rs.FRAME_MS <= MAX_SPEECH_MS:
        return None
    trimmed, first, _ = rs.trim(x, runs)
    name = f"{path.parent.name}/{path.name}"
    return Clip(name, trimmed, tuple((a - first, b - first) for a, b in runs))


def sentences(person_id: str, count: int, rng: np.random.Generator) -> list[Clip]:
    """``count`` of the person's sentences, drawn at random (files decoded as drawn)."""
    out: list[Clip] = []
    for i in rng.permutation(len(files(person_id))):
        c = clip(files(person_id)[i])
        if c is not None:
            out.append(c)
            if len(out) == count:
                break
    return out


def cast(seed: int, k: int) -> tuple[str, ...]:
    """The people of cast ``k`` of ``seed``, in no particular order: 3 to 5; cast 0 has two
    men (each pair of men in turn), cast 1 one man; the women dealt in turn from a shuffled
    deck, program after program, so that every woman speaks in several programs."""
    people = available()
    men = [p.id for p in people if p.gender == "m"]
    women = np.random.default_rng(rs.SEED + 3).permutation(
        [p.id for p in people if p.gender == "f"]).tolist()  # fmt: skip
    pairs = list(itertools.combinations(men, 2))

    def size(s: int, c: int) -> tuple[list[str], int]:
        chosen = list(pairs[s % len(pairs)]) if c == 0 and pairs else [men[s % len(men)]]
        return chosen, 3 + (s + c) % 3 - len(chosen)

    dealt = sum(size(s, c)[1] for s in range(seed) for c in CASTS)
    dealt += sum(size(seed, c)[1] for c in CASTS if c < k)
    chosen, n_women = size(seed, k)
    chosen += [women[(dealt + i) % len(women)] for i in range(n_women)]
    rng = np.random.default_rng(rs.SEED + 7919 * seed + 101 * k + 3)
    return tuple(rng.permutation(chosen).tolist())


def program(condition: str, seed: int, k: int) -> object:
    """A ``rs.Program``: cast ``k`` of ``seed`` taking turns over ``condition``'s bed (laid
    out as ``turns.program`` does, one sentence a turn)."""
    rng = np.random.default_rng(rs.SEED + 7919 * seed + 101 * k + 5)
    people = cast(seed, k)
    said = {p: sentences(p, int(rng.integers(TURNS_EACH[0], TURNS_EACH[1] + 1)), rng)
            for p in people}  # fmt: skip
    order = turns._order(people, {p: len(said[p]) for p in people}, rng)
    pos_ms, placed, taken = 1500, [], {p: 0 for p in people}
    for p in order:
        c = said[p][taken[p]]
        taken[p] += 1
        placed.append((pos_ms, p, c))
        pos_ms += (c.runs[-1][1] - c.runs[0][0]) * rs.FRAME_MS + 400 + int(rng.uniform(450, 1200))
    n_samples = -(-(pos_ms + 2000) // 1000) * rs.RATE  # whole seconds: quick FFTs for the beds
    speech = np.zeros(n_samples)
    truth = []
    for start_ms, p, c in placed:
        first = c.runs[0][0]
        at = (start_ms - first * rs.FRAME_MS) * rs.RATE // 1000  # its own tone before it
        speech[at : at + len(c.audio)] += c.audio
        words = tuple((start_ms + (a - first) * rs.FRAME_MS, start_ms + (b - first) * rs.FRAME_MS)
                      for a, b in c.runs)  # fmt: skip
        truth.append(rs.Sentence(words[0][0], words[-1][1], p, GENDER[p], c.name, words))
    pcm = turns.over(rs, condition, speech, seed)
    return rs.Program(f"newvoices-{condition}", pcm, tuple(truth), ())


def programs(conditions: Sequence[str] = CONDITIONS) -> list[Measured]:
    """Every program measured (dubkit's segmenter, then :func:`dubkit.speakers.analyze`),
    cached under ``bench/.cache/voices/`` as ``bench/voicedata.py`` caches its own."""
    return [
        _measure(f"newvoices-{c}-{s}-{k}", program(c, s, k))
        for c in conditions
        for s in SEEDS
        for k in CASTS
    ]


if __name__ == "__main__":
    for p in PEOPLE:
        print(p.id, p.gender, p.language, len(files(p.id)), "files")
    for s in SEEDS:
        for k in CASTS:
            prog = program("clean", s, k)
            said = [x.speaker for x in prog.sentences]  # type: ignore[attr-defined]
            print(s, k, len(prog.audio) / rs.RATE, "s", {p: said.count(p) for p in cast(s, k)})  # type: ignore[attr-defined]
