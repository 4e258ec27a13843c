"""Speaker analysis and voice casting: pure functions over features and speakers."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from dubkit.errors import ConfigError
from dubkit.languages import resolve
from dubkit.speakers import (
    PITCH_WEIGHT,
    SAME_ABOVE,
    SHORT_MS,
    Speaker,
    SpeakerInfo,
    Speakers,
    VoiceFeatures,
    cluster,
    find_speakers,
    gender_of,
    pitch_track,
    voice_features,
)
from dubkit.speakers.background import MEAN
from dubkit.speakers.voices import (
    VoiceChoice,
    cast,
    check_choice,
    describe,
    parse_voice_map,
)
from dubkit.translate import ArrayAudio
from dubkit.types import Utterance

RATE = 16_000


def _harmonic(f0: float, seconds: float, seed: int = 0) -> np.ndarray:
    """A voiced, speech-like int16 tone: ``f0`` with a little vibrato and 12 harmonics."""
    t = np.arange(int(seconds * RATE)) / RATE
    rng = np.random.default_rng(seed)
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.02 * np.sin(2 * np.pi * 4 * t))) / RATE
    x = sum(np.sin(k * phase) / k for k in range(1, 13)) + rng.normal(0, 0.01, t.size)
    return np.round(x / np.abs(x).max() * 8000).astype(np.int16)


def _embedding(timbre: float) -> tuple[float, ...]:
    """A unit d-vector-like embedding: the background mean (what every voice shares) plus
    a bump at ``timbre`` on a line of dimensions, so the cosine, once the background is
    taken off, falls as timbres part (about 0.94 at 0.2 apart, under 0.2 at 1.0 apart;
    raw, different people sit high, as real ReLU d-vectors do, never near 0)."""
    grid = np.arange(256) / 4
    bump = np.exp(-((grid - timbre) ** 2) / (2 * 0.3**2))
    e = np.asarray(MEAN) + 0.3 * bump / np.linalg.norm(bump)
    return tuple(e / np.linalg.norm(e))


def _feats(f0: float, timbre: float, voiced_ms: int = 2000) -> VoiceFeatures:
    return VoiceFeatures(f0, f0 * 0.85, f0 * 1.2, voiced_ms, voiced_ms, _embedding(timbre))


def test_pitch_of_a_harmonic_tone() -> None:
    for f0 in (100.0, 210.0):
        track = pitch_track(_harmonic(f0, 1.0))
        assert track.size > 40  # one every 20 ms
        assert float(np.median(track)) == pytest.approx(f0, rel=0.03)


def test_pitch_is_the_voice_s_not_the_bed_s_under_it() -> None:
    """A woman's words (210 Hz) with pauses, over a bass line (80 Hz) 18 dB under her that
    plays on through the pauses: the pauses are voiced too, but with the bass's pitch."""
    voice, bass = _harmonic(210.0, 4.0), _harmonic(80.0, 4.0, seed=1)
    words = np.zeros(4 * RATE, dtype=bool)
    for start in (0.2, 1.4, 2.6):  # 0.6 s words, 0.6 s pauses: the bass alone most of the time
        words[int(start * RATE) : int((start + 0.6) * RATE)] = True
    mixed = np.where(words, voice, 0) + np.round(bass * 10 ** (-18 / 20))
    track = pitch_track(mixed.astype(np.int16))
    assert track.size > 60  # the words' frames (one every 20 ms)
    assert float(np.median(track)) == pytest.approx(210.0, rel=0.03)
    assert voice_features(mixed.astype(np.int16)).f0_hz == pytest.approx(210.0, rel=0.03)


def test_features_of_silence_and_of_a_too_short_span() -> None:
    assert voice_features(np.zeros(RATE, np.int16)).voiced is False
    short = voice_features(_harmonic(120.0, 0.02))
    assert short.f0_hz == 0.0 and short.voiced_ms == 0


def test_gender_split() -> None:
    assert gender_of(110.0) == "male" and gender_of(205.0) == "female"
    assert gender_of(0.0) == "female"  # nothing voiced: no evidence of a man


def test_one_label_per_person_in_order_of_first_appearance() -> None:
    man, woman, other_man = _feats(100, 0.0), _feats(200, 1.0), _feats(85, 4.0)
    found = cluster([woman, man, woman, other_man, man])
    assert [u.speaker for u in found.utterances] == ["S1", "S2", "S1", "S3", "S2"]
    assert [s.gender for s in found.speakers] == ["female", "male", "male"]
    assert [u.f0_hz for u in found.utterances] == [200, 100, 200, 85, 100]


def test_a_short_high_phrase_does_not_flip_a_man() -> None:
    # a high-voiced man: one short phrase goes above the split, the speaker stays a man
    feats = [_feats(150, 0.0), _feats(148, 0.2), _feats(162, 0.3, voiced_ms=400), _feats(152, 0.1)]
    assert gender_of(162) == "female"
    found = cluster(feats)
    assert {u.speaker for u in found.utterances} == {"S1"}
    assert {u.gender for u in found.utterances} == {"male"}
    assert found.utterances[2].f0_hz == 162  # the utterance's own F0 is kept


def test_a_fragment_joins_the_nearest_speaker_of_its_side() -> None:
    # 300 ms of a man's voice, a little apart from him: no new person for so little
    feats = [_feats(100, 0.0), _feats(100, 0.1), _feats(112, 2.5, voiced_ms=300), _feats(210, 9.0)]
    found = cluster(feats)
    assert [u.speaker for u in found.utterances] == ["S1", "S1", "S1", "S2"]


def test_short_utterances_never_found_a_speaker() -> None:
    # two 1.2 s phrases alike, nearer the man than the woman but not his (2.4 s together,
    # more than a fragment): each joins the closest person instead of making a third
    assert SHORT_MS > 1200
    man, woman = _feats(100, 0.0), _feats(210, 9.0)
    odd = [_feats(104, 1.2, voiced_ms=1200), _feats(104, 1.25, voiced_ms=1200)]
    found = cluster([man, woman, *odd, man, woman])
    assert [u.speaker for u in found.utterances] == ["S1", "S2", "S1", "S1", "S1", "S2"]
    # at SHORT_MS they are heard as a person of their own
    long = [_feats(104, 1.2, voiced_ms=SHORT_MS), _feats(104, 1.25, voiced_ms=SHORT_MS)]
    found = cluster([man, woman, *long, man, woman])
    assert [u.speaker for u in found.utterances] == ["S1", "S2", "S3", "S3", "S1", "S2"]


def test_an_octave_between_two_alike_voices_keeps_them_apart() -> None:
    # embeddings 0.7 apart (centred cosine about 0.42, above SAME_ABOVE): one person at
    # the same pitch, two when an octave apart (PITCH_WEIGHT)
    assert SAME_ABOVE < 0.42 < SAME_ABOVE + PITCH_WEIGHT
    same = cluster([_feats(120, 0.0), _feats(125, 0.7), _feats(120, 0.0), _feats(125, 0.7)])
    assert {u.speaker for u in same.utterances} == {"S1"}
    octave = cluster([_feats(120, 0.0), _feats(240, 0.7), _feats(120, 0.0), _feats(240, 0.7)])
    assert [u.speaker for u in octave.utterances] == ["S1", "S2", "S1", "S2"]
    assert [s.gender for s in octave.speakers] == ["male", "female"]


def test_unvoiced_utterances_follow_their_neighbour() -> None:
    silent = VoiceFeatures(0.0, 0.0, 0.0, 0, 1000, (0.0,) * 256)
    found = cluster([silent, _feats(200, 1.0), silent, _feats(100, 0.0), silent])
    assert [u.speaker for u in found.utterances] == ["S1", "S1", "S1", "S2", "S2"]
    nobody = cluster([silent, silent])
    assert [u.speaker for u in nobody.utterances] == ["S1", "S1"]


def test_find_speakers_reads_one_utterance_at_a_time() -> None:
    audio = np.concatenate([_harmonic(100, 1.5), np.zeros(RATE, np.int16), _harmonic(220, 1.5, 1)])
    reads: list[tuple[int, int]] = []

    class Spy(ArrayAudio):
        def read(self, start_ms: int, end_ms: int) -> np.ndarray:
            reads.append((start_ms, end_ms))
            return super().read(start_ms, end_ms)

    utts = [Utterance(0, 1500), Utterance(2500, 4000)]
    progress: list[tuple[int, int]] = []
    found = find_speakers(Spy(audio), utts, lambda done, total: progress.append((done, total)))
    assert reads == [(0, 1500), (2500, 4000)] and progress == [(1, 2), (2, 2)]
    assert [(u.speaker, u.gender) for u in found.utterances] == [("S1", "male"), ("S2", "female")]


def _speakers(*people: tuple[str, int, tuple[float, ...]]) -> Speakers:
    speakers = tuple(
        Speaker(f"S{i}", g, 110.0 if g == "male" else 210.0, ms, c)
        for i, (g, ms, c) in enumerate(people, 1)
    )
    return Speakers(tuple(SpeakerInfo(s.label, s.gender, s.f0_hz) for s in speakers), speakers)


def test_two_men_into_spanish_get_two_voices_and_a_woman_hers() -> None:
    found = _speakers(("male", 5000, (0.0,)), ("female", 3000, (5.0,)), ("male", 4000, (2.0,)))
    casting = cast(found, resolve("es"), VoiceChoice())
    assert casting.as_dict() == {"S1": "Nofish", "S2": "Cherry", "S3": "Ethan"}
    assert casting.shared == ()


def test_more_men_than_voices_reuse_the_closest() -> None:
    found = _speakers(
        ("male", 9000, (0.0,)), ("male", 8000, (10.0,)), ("male", 500, (9.0,)),
        ("female", 100, (50.0,)), ("female", 90, (51.0,)),
    )  # fmt: skip
    casting = cast(found, resolve("de"), VoiceChoice())
    assert casting.as_dict() == {
        "S1": "Nofish", "S2": "Ethan", "S3": "Ethan", "S4": "Cherry", "S5": "Cherry"
    }  # fmt: skip
    assert casting.shared == (("S3", "Ethan", "S2"), ("S5", "Cherry", "S4"))
    assert "S3 shares Ethan with S2" in describe(casting)


def test_chinese_has_more_voices_and_cantonese_only_kiki() -> None:
    found = _speakers(*[("male", 1000 - i, (float(i),)) for i in range(5)])
    assert len(set(cast(found, resolve("zh"), VoiceChoice()).as_dict().values())) == 5
    assert set(cast(found, resolve("yue"), VoiceChoice()).as_dict().values()) == {"Kiki"}


def test_forced_voice_and_per_speaker_map() -> None:
    found = _speakers(("male", 5000, (0.0,)), ("female", 3000, (5.0,)), ("male", 4000, (2.0,)))
    es = resolve("es")
    forced = cast(found, es, check_choice(VoiceChoice("ethan"), es))
    assert set(forced.as_dict().values()) == {"Ethan"}
    mapped = cast(found, es, check_choice(VoiceChoice("auto", (("S2", "nofish"),)), es))
    # S2 is mapped; no one else's voice changes for it
    assert mapped.as_dict() == {"S1": "Nofish", "S2": "Nofish", "S3": "Ethan"}
    both = cast(found, es, check_choice(VoiceChoice("Cherry", (("S3", "Ethan"),)), es))
    assert both.as_dict() == {"S1": "Cherry", "S2": "Cherry", "S3": "Ethan"}


def test_voice_map_parsing_and_checks() -> None:
    assert parse_voice_map("s1=Ethan, S2=Cherry,") == (("S1", "Ethan"), ("S2", "Cherry"))
    assert parse_voice_map("") == ()
    for bad in ("S1", "S0=Ethan", "X=Ethan", "S1=", "S1=Ethan,S1=Cherry"):
        with pytest.raises(ConfigError):
            parse_voice_map(bad)
    es = resolve("es")
    for choice in (VoiceChoice("Kiki"), VoiceChoice("auto", (("S1", "Nobody"),))):
        with pytest.raises(ConfigError, match="does not speak Spanish"):
            check_choice(choice, es)
    assert check_choice(VoiceChoice("AUTO"), es).is_auto


def test_split_pieces_keep_their_utterance_speaker(tmp_path: Path) -> None:
    from dubkit.fit import FitOptions
    from dubkit.pipeline.timeline import place_in_order
    from dubkit.translate import UtteranceResult
    from dubkit.translate.clips import ClipStore

    utts = [Utterance(0, 1000), Utterance(2000, 5000)]
    who = (SpeakerInfo("S1", "male", 100.0), SpeakerInfo("S2", "female", 200.0))
    pieces = [Utterance(2000, 3500), Utterance(3500, 5000)]  # the second utterance, halved
    stream = iter([
        [UtteranceResult(utts[0], None, error="HTTP 500")],
        [UtteranceResult(u, None, error="HTTP 500") for u in pieces],
    ])  # fmt: skip
    store = ClipStore(tmp_path / "clips.s16")
    fitted = place_in_order(stream, utts, who, store, 6000, 48_000, FitOptions())
    entries = [f.entry for f in fitted]
    store.close()
    assert [e.utterance for e in entries] == [utts[0], *pieces]
    assert [e.speaker.speaker for e in entries if e.speaker] == ["S1", "S2", "S2"]


def test_summary_names_the_map_and_the_shared_voices() -> None:
    from dubkit.cli.dub import _voices

    s = {
        "voices": {"S1": "Nofish", "S2": "Ethan", "S3": "Ethan"},
        "voices_shared": [{"speaker": "S3", "voice": "Ethan", "like": "S2"}],
    }
    text = _voices(s)
    assert text.startswith("S1=Nofish, S2=Ethan, S3=Ethan")
    assert text.endswith("; more speakers than voices, sharing: S3 with S2 (Ethan)")


def _same(a: object, b: object) -> bool:
    """Equal field by field, the floats to 1e-5 of each other. The child runs BLAS on one
    thread and this process may not; on some CPUs (AMD EPYC) OpenBLAS rounds the encoder's
    float32 products differently with the thread count, which moves the centroids by about
    1e-6. What the child sends back is exact (:func:`_round_trip`)."""
    if isinstance(a, float) or isinstance(b, float):
        return (
            isinstance(a, float | int)
            and isinstance(b, float | int)
            and math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-7)
        )
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        return type(a) is type(b) and all(
            _same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a)
        )
    if isinstance(a, tuple | list):
        return isinstance(b, tuple | list) and len(a) == len(b) and all(map(_same, a, b))
    return a == b


def _round_trip(found: Speakers) -> Speakers:
    """``found`` through the child's writer (its line on stdout) and the dub's reader."""
    import contextlib
    import io

    from dubkit.speakers.process import _speakers, _write

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        _write({"speakers": dataclasses.asdict(found)})
    return _speakers(json.loads(out.getvalue())["speakers"])


def _raw_people(tmp_path: Path) -> tuple[Path, list[Utterance]]:
    """A raw 16 kHz int16 file of two 'people' (120 Hz and 220 Hz) taking turns, with gaps."""
    parts, utts, at = [], [], 0
    for i, f0 in enumerate([120.0, 220.0, 120.0, 220.0, 120.0]):
        parts += [_harmonic(f0, 1.5, seed=i), np.zeros(8000, np.int16)]
        utts.append(Utterance(at, at + 1500))
        at += 2000
    raw = tmp_path / "source.s16"
    raw.write_bytes(np.concatenate(parts).astype("<i2").tobytes())
    return raw, utts


def test_the_speaker_process_finds_what_the_analysis_finds_in_process(tmp_path: Path) -> None:
    from dubkit.media.scratch import FileAudio
    from dubkit.speakers.process import SpeakerProcess

    raw, utts = _raw_people(tmp_path)
    seen: list[tuple[int, int]] = []
    with SpeakerProcess() as child:
        got = child.find(raw, utts, lambda done, total: seen.append((done, total)))
    here = find_speakers(FileAudio(raw), utts)
    assert _same(got, here)
    assert _round_trip(here) == here  # the floats come back whole
    assert [s.gender for s in got.speakers] == ["male", "female"]
    assert seen[-1] == (len(utts), len(utts))


def test_the_speaker_process_measures_utterances_as_the_file_grows(tmp_path: Path) -> None:
    """As a dub feeds it: each utterance sent once its samples are written, the rest of
    the file written after; the same speakers as the whole file's in this process."""
    from dubkit.media.scratch import FileAudio
    from dubkit.speakers.process import SpeakerProcess

    whole, utts = _raw_people(tmp_path)
    data = whole.read_bytes()
    raw = tmp_path / "growing.s16"
    with SpeakerProcess() as child, raw.open("wb") as f:
        child.begin(raw)
        for i, u in enumerate(utts):
            f.write(data[u.start_ms * 32 if i else 0 : (u.end_ms + 500) * 32])
            f.flush()
            child.feed([u])
        f.write(data[(utts[-1].end_ms + 500) * 32 :])
        f.flush()
        got = child.finish()
    assert _same(got, find_speakers(FileAudio(whole), utts))
    assert [u.speaker for u in got.utterances] == ["S1", "S2", "S1", "S2", "S1"]


def test_a_failing_speaker_process_is_one_error_naming_the_input(tmp_path: Path) -> None:
    from dubkit.errors import MediaToolError
    from dubkit.speakers.process import SpeakerProcess

    child = SpeakerProcess()
    with child, pytest.raises(MediaToolError, match=r"talk\.mp4: speaker analysis failed"):
        child.find(tmp_path / "missing.s16", [Utterance(0, 1000)], source=Path("talk.mp4"))
    assert child._child.proc.poll() is not None  # nothing left running
    unused = SpeakerProcess()
    unused.close()  # never asked: the child is stopped, not left waiting on its input
    assert unused._child.proc.poll() is not None


def test_the_speaker_process_labels_as_heard_what_the_rule_gives_in_process(
    tmp_path: Path,
) -> None:
    """As heard: the labels come through the child as they are decided, in order, and are
    what :func:`~dubkit.speakers.heard.labels_of` gives for the same utterances."""
    from dubkit.media.scratch import FileAudio
    from dubkit.speakers import analyze
    from dubkit.speakers.heard import LOOKAHEAD_MS, labels_of
    from dubkit.speakers.process import SpeakerProcess

    whole, utts = _raw_people(tmp_path)
    with SpeakerProcess() as child:
        child.begin(whole, as_heard=True)
        child.feed(utts)
        child.end()
        got = list(child.labels())
        found = child.finish()
    spans = [(u.start_ms, u.end_ms) for u in utts]
    expected = labels_of(analyze(FileAudio(whole), utts), spans, LOOKAHEAD_MS)
    assert tuple(got) == found.utterances == expected.utterances
    assert [s.label for s in found.speakers] == [s.label for s in expected.speakers]


def test_the_speaker_process_steps_below_the_dub_once_its_first_label_is_out(
    tmp_path: Path,
) -> None:
    """At the dub's priority until the first request can leave (its label decides the
    voice), then below it, so that the encoder and the mix go first."""
    from dubkit.speakers.process import NICE_ONCE_LABELLING, SpeakerProcess

    parts, utts = [], []
    for i in range(12):  # 18 s of speech: the first label needs LOOKAHEAD_MS after it
        parts += [_harmonic(120.0 if i % 2 else 220.0, 1.5, seed=i), np.zeros(8000, np.int16)]
        utts.append(Utterance(i * 2000, i * 2000 + 1500))
    whole = tmp_path / "source.s16"
    whole.write_bytes(np.concatenate(parts).astype("<i2").tobytes())
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    with SpeakerProcess() as child:
        pid = child._child.proc.pid
        assert os.getpriority(os.PRIO_PROCESS, pid) == ours
        child.begin(whole, as_heard=True)
        child.feed(utts)
        labels = child.labels()
        next(labels)  # the first label is out; the child waits for more utterances
        assert os.getpriority(os.PRIO_PROCESS, pid) == min(19, ours + NICE_ONCE_LABELLING)
        child.end()
        assert len([1, *labels]) == len(utts)


def test_a_speaker_process_failing_as_heard_is_one_error_naming_the_input(
    tmp_path: Path,
) -> None:
    from dubkit.errors import MediaToolError
    from dubkit.speakers.process import SpeakerProcess

    with SpeakerProcess() as child:
        child.begin(tmp_path / "missing.s16", as_heard=True, source=Path("talk.mp4"))
        child.feed([Utterance(0, 1000)])
        child.end()
        with pytest.raises(MediaToolError, match=r"talk\.mp4: speaker analysis failed"):
            list(child.labels())
