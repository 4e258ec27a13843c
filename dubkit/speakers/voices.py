"""Which service voice speaks for which speaker (``--voice auto``, ``--voice NAME``, ``--voices``).

Pure: a :class:`VoiceChoice` (what the user asked for) and the :class:`~dubkit.speakers.Speakers`
of a run give a :class:`Casting`. With ``auto``, each speaker gets a voice of their gender
for the target language; the speakers with the most speech are served first, each with a
voice nobody has yet while the language has one; a speaker left over reuses the voice of
the already-voiced speaker of the same gender who sounds closest (and the casting says so).
A language with no voice of a speaker's gender (Cantonese has only Kiki) gives them one of
the other gender.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dubkit.errors import ConfigError
from dubkit.languages import VOICE_GENDER, Language, resolve_voice
from dubkit.speakers import (
    AudioSource,
    ProgressFn,
    Speaker,
    SpeakerInfo,
    Speakers,
    find_speakers,
)
from dubkit.types import Utterance

log = logging.getLogger(__name__)

AUTO = "auto"
_LABEL = re.compile(r"S[1-9][0-9]*")


@dataclass(frozen=True, slots=True)
class VoiceChoice:
    """What the user asked for: ``voice`` ("auto" or a voice name) and per-speaker overrides."""

    voice: str = AUTO
    speakers: tuple[tuple[str, str], ...] = ()  # ("S1", "Ethan"), ...

    @property
    def is_auto(self) -> bool:
        return not self.voice or self.voice.strip().lower() == AUTO


def parse_voice_map(text: str) -> tuple[tuple[str, str], ...]:
    """``"S1=Ethan,S2=Cherry"`` as pairs; a malformed entry is a ConfigError."""
    pairs: list[tuple[str, str]] = []
    for item in (p.strip() for p in text.split(",")):
        if not item:
            continue
        label, sep, voice = (x.strip() for x in item.partition("="))
        label = label.upper()
        if not sep or not _LABEL.fullmatch(label) or not voice:
            raise ConfigError(
                f"--voices entry {item!r} is not SPEAKER=VOICE (e.g. S1=Ethan,S2=Cherry)"
            )
        if any(lab == label for lab, _ in pairs):
            raise ConfigError(f"--voices names {label} twice")
        pairs.append((label, voice))
    return tuple(pairs)


def check_choice(choice: VoiceChoice, target: Language) -> VoiceChoice:
    """The choice with every voice checked against ``target`` and spelt as the service does.

    Raises a one-line ConfigError for an unknown voice or one that cannot speak ``target``.
    """
    voice = AUTO if choice.is_auto else resolve_voice(choice.voice, target)
    mapped = tuple((label, resolve_voice(v, target)) for label, v in choice.speakers)
    return VoiceChoice(voice, mapped)


@dataclass(frozen=True, slots=True)
class Casting:
    """Each speaker's voice, and which speakers had to share one."""

    voices: tuple[tuple[str, str], ...]  # ("S1", "Nofish"), ... in speaker order
    #: (speaker, voice, like): ``speaker`` reuses ``voice``, first given to ``like``
    shared: tuple[tuple[str, str, str], ...] = ()

    def voice_of(self, speaker: str) -> str:
        return dict(self.voices)[speaker]

    def as_dict(self) -> dict[str, str]:
        return dict(self.voices)

    def as_heard(self, speakers: Sequence[str], heard: Sequence[str | None]) -> Casting:
        """This casting with the voices the engine used instead (``heard``, per utterance
        of ``speakers``; None where it used the voice asked for)."""
        used = {s: v for s, v in zip(speakers, heard, strict=True) if v is not None}
        return Casting(tuple((s, used.get(s, v)) for s, v in self.voices), self.shared)


def cast(speakers: Speakers, target: Language, choice: VoiceChoice) -> Casting:
    """Give every speaker of ``speakers`` a voice for ``target`` (``choice`` already checked).

    The per-speaker map is applied last, over the automatic (or forced) casting, so that
    changing one speaker's voice changes no one else's.
    """
    given: dict[str, str] = {}
    shared: list[tuple[str, str, str]] = []
    if not choice.is_auto:
        given.update((s.label, choice.voice) for s in speakers.speakers)
    else:
        for gender in ("male", "female"):
            group = [s for s in speakers.speakers if s.gender == gender]
            shared += _cast_group(group, _voices_for(target, gender), given, speakers)
    auto = {s.label: given[s.label] for s in speakers.speakers}  # in the speakers' order
    return _mapped(auto, shared, dict(choice.speakers), target)


def _mapped(
    auto: dict[str, str],
    shared: Sequence[tuple[str, str, str]],
    mapped: dict[str, str],
    target: Language,
) -> Casting:
    """The casting of ``auto`` (speaker -> voice, in order) with the per-speaker map
    ``mapped`` applied over it; a mapped label no speaker has is warned about and ignored,
    and a shared voice involving a mapped speaker is no longer shared."""
    if unknown := [lab for lab in mapped if lab not in auto]:
        log.warning(
            "--voices names %s, but no such speaker was found (found: %s); %s dub ignores it",
            ", ".join(unknown), ", ".join(auto) or "none", target.name,
        )  # fmt: skip
    kept = [x for x in shared if x[0] not in mapped and x[2] not in mapped]
    return Casting(tuple((lab, mapped.get(lab, v)) for lab, v in auto.items()), tuple(kept))


class LiveCasting:
    """:func:`cast` for speakers met one at a time (labels decided as the speech is heard):
    each speaker's voice is chosen when they first speak and never changes, since their
    first request names it. With ``auto``, a newcomer gets the first voice of their gender
    that no one has yet, else shares the voice of the already-voiced speaker of that gender
    whose pitch is closest; ``--voices`` overrides as in :func:`cast`."""

    def __init__(self, target: Language, choice: VoiceChoice) -> None:
        self.target, self.choice = target, choice  # choice already checked
        self._auto: dict[str, str] = {}  # what auto (or the forced voice) gives each speaker
        self._f0: dict[str, float] = {}
        self._shared: list[tuple[str, str, str]] = []
        self._mapped = dict(choice.speakers)

    def voice_of(self, who: SpeakerInfo) -> str:
        """``who``'s speaker's voice, chosen now if they are new."""
        label = who.speaker
        if label not in self._auto:
            self._auto[label] = self._choose(who)
            self._f0[label] = who.f0_hz
        return self._mapped.get(label, self._auto[label])

    def _choose(self, who: SpeakerInfo) -> str:
        if not self.choice.is_auto:
            return self.choice.voice
        voices = _voices_for(self.target, who.gender)
        taken = set(self._auto.values())
        free = [v for v in voices if v not in taken]
        if free:
            return free[0]
        peers = [lab for lab, v in self._auto.items() if v in voices]
        like = min(peers, key=lambda lab: abs(self._f0[lab] - who.f0_hz)) if peers else ""
        voice = self._auto[like] if like else voices[0]
        self._shared.append((who.speaker, voice, like))
        return voice

    def casting(self) -> Casting:
        """Every speaker met so far and their voice, as :func:`cast` reports it."""
        return _mapped(self._auto, self._shared, self._mapped, self.target)


def _voices_for(target: Language, gender: str) -> list[str]:
    own = [v for v in target.voices if VOICE_GENDER.get(v) == gender]
    return own or list(target.voices)


def _cast_group(
    group: Sequence[Speaker], voices: Sequence[str], given: dict[str, str], all_: Speakers
) -> list[tuple[str, str, str]]:
    """Voice ``group`` (one gender) in place in ``given``; the speakers who share a voice."""
    shared = []
    for s in sorted(group, key=lambda s: -s.voiced_ms):
        taken = set(given.values())
        free = [v for v in voices if v not in taken]
        if free:
            given[s.label] = free[0]
            continue
        peers = [all_.speaker(lab) for lab, v in given.items() if v in voices]
        like = min(peers, key=lambda p: _distance(p, s)) if peers else None
        voice = given[like.label] if like is not None else voices[0]
        given[s.label] = voice
        shared.append((s.label, voice, like.label if like is not None else ""))
    return shared


def _distance(a: Speaker, b: Speaker) -> float:
    if not a.centroid or not b.centroid:
        return abs(a.f0_hz - b.f0_hz)
    return float(np.linalg.norm(np.subtract(a.centroid, b.centroid)))


def describe(casting: Casting) -> str:
    """``S1=Nofish, S2=Cherry (S3 shares Nofish with S1)`` for summaries."""
    text = ", ".join(f"{lab}={v}" for lab, v in casting.voices)
    if casting.shared:
        notes = (f"{s} shares {v} with {like}" for s, v, like in casting.shared)
        text += " (" + "; ".join(notes) + ")"
    return text


def cast_voices(
    audio: AudioSource,
    utterances: Sequence[Utterance],
    target: Language,
    choice: VoiceChoice,
    on_progress: ProgressFn | None = None,
) -> tuple[tuple[SpeakerInfo, ...], Casting]:
    """Who speaks each utterance (read one at a time), and each speaker's voice for ``target``."""
    found = find_speakers(audio, utterances, on_progress)
    return found.utterances, cast(found, target, check_choice(choice, target))
