"""Speakers decided as the speech is heard: the requests start while the segmentation goes
on, and a label (and its voice) never changes once a request has named it (issue 26 item 3).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest

import dubkit
from dubkit.languages import resolve
from dubkit.mix import MixOptions
from dubkit.pipeline import Options
from dubkit.pipeline.growing import Growing
from dubkit.segment import segment
from dubkit.speakers import SpeakerInfo, analyze
from dubkit.speakers.heard import LOOKAHEAD_MS, AsHeard
from dubkit.speakers.voices import LiveCasting, VoiceChoice
from dubkit.translate import ArrayAudio, translate_in_order
from dubkit.translate.protocol import Job
from dubkit.types import Utterance
from tests.conftest import KEY, translator_for
from tests.realspeech_set import rs, write_wav

# ------------------------------------------------------------------ the growing list


def test_a_reader_waits_for_the_item_and_gets_none_past_the_end() -> None:
    g: Growing[int] = Growing()

    def produce() -> None:
        time.sleep(0.2)
        g.extend([7, 8])
        time.sleep(0.1)
        g.close()

    threading.Thread(target=produce).start()
    assert g.get(1) == 8  # waited for it
    assert g.get(2) is None and g.all() == [7, 8]


def test_a_reader_gets_the_producers_error() -> None:
    g: Growing[int] = Growing()
    g.append(1)
    threading.Timer(0.1, g.fail, [OSError("input.mp4: decoding failed")]).start()
    assert g.get(0) == 1
    with pytest.raises(OSError, match="decoding failed"):
        g.get(1)
    with pytest.raises(OSError):
        g.until(lambda items: len(items) > 5)


def test_until_returns_as_soon_as_enough_is_there() -> None:
    g: Growing[int] = Growing()
    g.extend([1, 2, 3])
    assert g.until(lambda items: sum(items) >= 3) == [1, 2, 3]  # not closed, enough


# ------------------------------------------------------------------ the rule, on real speech


@pytest.fixture(scope="module")
def turns_measured() -> tuple[object, list[Utterance], list[object]]:
    prog = rs.program("turns", 0)
    utts = segment(prog.audio)
    return prog, utts, analyze(ArrayAudio(prog.audio), utts)


def test_labels_are_given_once_after_their_lookahead_and_never_change(
    turns_measured: tuple[object, list[Utterance], list[object]],
) -> None:
    prog, utts, feats = turns_measured
    heard = AsHeard()
    given: list[SpeakerInfo] = []
    for j, (u, f) in enumerate(zip(utts, feats, strict=True)):
        new = heard.add(u.start_ms, u.end_ms, f)  # type: ignore[arg-type]
        given += new
        # labelled exactly those whose look-ahead this utterance's start has reached
        expected = next(
            (i for i in range(j + 1) if u.start_ms < utts[i].end_ms + LOOKAHEAD_MS), j + 1
        )
        assert len(given) == expected, (j, len(given), expected)
    given += heard.finish()
    assert heard.speakers().utterances == tuple(given)  # what was given is what stays
    # on this program (three people taking turns): three labels, each person under one
    by: dict[str, list[str]] = defaultdict(list)
    for u, w in zip(utts, given, strict=True):
        person = prog.sentence_at(u.start_ms, u.end_ms)  # type: ignore[attr-defined]
        if person is not None:
            by[person.speaker].append(w.speaker)
            assert w.gender[0] == person.gender, (person.speaker, w)
    assert len({w.speaker for w in given}) == 3
    for person, labels in by.items():
        assert Counter(labels).most_common(1)[0][1] == len(labels), (person, labels)
    assert len({Counter(labels).most_common(1)[0][0] for labels in by.values()}) == 3


def test_a_voice_is_chosen_at_a_speakers_first_line_and_kept() -> None:
    live = LiveCasting(resolve("es"), VoiceChoice())
    lines = [("S1", "male", 110.0), ("S2", "female", 210.0), ("S1", "male", 130.0),
             ("S3", "male", 100.0), ("S4", "male", 135.0)]  # fmt: skip
    voices = [live.voice_of(SpeakerInfo(*w)) for w in lines]
    assert voices == ["Nofish", "Cherry", "Nofish", "Ethan", "Nofish"]
    casting = live.casting()
    assert casting.as_dict() == {"S1": "Nofish", "S2": "Cherry", "S3": "Ethan", "S4": "Nofish"}
    assert casting.shared == (("S4", "Nofish", "S1"),)  # closest in pitch
    mapped = LiveCasting(resolve("es"), VoiceChoice("auto", (("S2", "Nofish"), ("S9", "Ethan"))))
    assert [mapped.voice_of(SpeakerInfo(*w)) for w in lines[:2]] == ["Nofish", "Nofish"]
    assert mapped.casting().as_dict() == {"S1": "Nofish", "S2": "Nofish"}


# ------------------------------------------------------------------ requests as items come


def test_requests_start_before_the_items_end(emulator: object) -> None:
    """The source waits for the first answer before it gives its second item: a translation
    that waited for the whole list would never get there."""
    pcm = (np.sin(np.arange(16_000 * 3) / 7) * 8000).astype(np.int16)
    first_answer = threading.Event()
    job = Job("es", voice="Cherry")

    def items():  # type: ignore[no-untyped-def]
        yield Utterance(0, 1000), job
        assert first_answer.wait(30), "the first request waited for the last item"
        yield Utterance(1000, 2000), job

    stream = translate_in_order(
        translator_for(emulator),
        ArrayAudio(pcm),
        (),
        Job(""),
        items=items(),  # type: ignore[arg-type]
    )
    got = []
    for rs_ in stream:
        first_answer.set()
        got += rs_
    assert [r.utterance for r in got] == [Utterance(0, 1000), Utterance(1000, 2000)]
    assert all(r.ok for r in got)


def test_an_items_error_reaches_the_consumer(emulator: object) -> None:
    def items():  # type: ignore[no-untyped-def]
        yield Utterance(0, 1000), Job("es")
        raise OSError("talk.mp4: the input ended early")

    pcm = np.zeros(16_000, np.int16)
    with pytest.raises(OSError, match="ended early"):
        list(translate_in_order(translator_for(emulator), ArrayAudio(pcm), (), Job(""),
                                items=items()))  # type: ignore[arg-type]  # fmt: skip


# ------------------------------------------------------------------ the dub, end to end


@pytest.fixture(scope="module")
def turns_wav(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    prog = rs.program("turns", 0)
    return write_wav(prog.audio, tmp_path_factory.mktemp("heard") / "turns.wav"), prog


@pytest.mark.slow
def test_the_dub_translates_while_the_segmentation_goes_on_and_voices_hold(
    tmp_path: Path, turns_wav: tuple[Path, object]
) -> None:
    """The segmentation is held at two thirds of the input until the first answer is in:
    only a dub that sends requests as the speech is heard gets past it. Each request's
    voice is the one the manifest gives its utterance, one voice per speaker."""
    from dubkit.emulator import Emulator, EmulatorConfig

    src, prog = turns_wav
    answered = threading.Event()
    held = []

    def progress(stage: str, done: int, total: int) -> None:
        if stage == "translate" and done:
            answered.set()
        if stage == "segment" and total and done >= 2 * total // 3 and not held:
            held.append(answered.wait(60))

    with Emulator(EmulatorConfig(api_key=KEY)) as emu:
        opts = Options(target="es", out_dir=tmp_path, mix=MixOptions(mode="replace"))
        result = dubkit.dub(src, opts, translator_for(emu), progress=progress)
        records = emu.records
    assert held == [True]
    manifest = json.loads(result.outputs.manifest.read_text())
    assert manifest["voices"] == {"S1": "Nofish", "S2": "Cherry", "S3": "Ethan"}
    pcm = prog.audio  # type: ignore[attr-defined]
    asked = {r.audio_sha256: r.voice for r in records if r.ok}
    for it in manifest["utterances"]:
        span = pcm[it["start_ms"] * 16 : it["end_ms"] * 16]
        sha = hashlib.sha256(span.astype("<i2").tobytes()).hexdigest()
        assert asked[sha] == it["voice"] == manifest["voices"][it["speaker"]], it
    assert len(asked) == len(manifest["utterances"])
    # `dubkit segments` shows the labels the dub used, the ones --voices names
    from dubkit.cli.segments import speakers_of
    from dubkit.segment import SegmentOptions

    utts, who = speakers_of(src, SegmentOptions())
    items = manifest["utterances"]
    assert [(u.start_ms, w.speaker) for u, w in zip(utts, who, strict=True)] == [
        (it["start_ms"], it["speaker"]) for it in items
    ]


def test_whole_file_speakers_still_cast_the_same_people(
    tmp_path: Path, turns_wav: tuple[Path, object], cloud: object
) -> None:
    src, _ = turns_wav
    opts = Options(target="es", out_dir=tmp_path, speakers="whole", mix=MixOptions(mode="replace"))
    result = dubkit.dub(src, opts, cloud)  # type: ignore[arg-type]
    manifest = json.loads(result.outputs.manifest.read_text())
    assert manifest["voices"] == {"S1": "Nofish", "S2": "Cherry", "S3": "Ethan"}
    assert not result.failed


@pytest.mark.slow
def test_segments_and_the_dub_label_alike_where_the_onset_rule_lengthens_starts(
    tmp_path: Path, cloud: object
) -> None:
    """Under pink noise the onset rule starts utterances earlier than its 90 ms pad, so an
    utterance's request span (from ``start_ms``) is longer than the speech the speakers are
    read from (from ``core_start_ms``). `dubkit segments` and the dub must read the same
    spans: on this program, features read from the padded starts label differently, so the
    labels below part if either path reads the other's."""
    from dubkit.cli.segments import speakers_of
    from dubkit.segment import SegmentOptions
    from tests.realspeech_set import turns

    prog = turns.program(rs, turns.TUNE, "pink10", 2)
    src = write_wav(prog.audio, tmp_path / "pink.wav")
    utts, who = speakers_of(src, SegmentOptions())
    assert max(u.lead_ms for u in utts) > SegmentOptions().pad_before_ms
    assert len({w.speaker for w in who}) >= 2
    opts = Options(target="es", out_dir=tmp_path, mix=MixOptions(mode="replace"))
    result = dubkit.dub(src, opts, cloud)  # type: ignore[arg-type]
    items = json.loads(result.outputs.manifest.read_text())["utterances"]
    assert [(u.start_ms, u.end_ms, w.speaker) for u, w in zip(utts, who, strict=True)] == [
        (it["start_ms"], it["end_ms"], it["speaker"]) for it in items
    ]


def test_an_unknown_speakers_mode_is_refused() -> None:
    from dubkit.errors import ConfigError

    with pytest.raises(ConfigError, match="heard or whole"):
        Options(target="es", speakers="later")


def test_segments_labels_as_heard_or_from_the_whole_file(turns_wav: tuple[Path, object]) -> None:
    from tests.conftest import run_cli

    src, _ = turns_wav
    runs = {m: run_cli("segments", src, "--json", "--speakers", m) for m in ("heard", "whole")}
    assert all(r.returncode == 0 for r in runs.values()), {m: r.stderr for m, r in runs.items()}
    heard, whole = (json.loads(runs[m].stdout) for m in ("heard", "whole"))
    assert [(r["start_ms"], r["end_ms"]) for r in heard] == [
        (r["start_ms"], r["end_ms"]) for r in whole
    ]
    assert len({r["speaker"] for r in heard}) == len({r["speaker"] for r in whole}) == 3
    bad = run_cli("segments", src, "--speakers", "later")
    assert bad.returncode == 2 and "--speakers" in bad.stderr


def test_as_heard_the_original_level_is_read_on_the_same_speech_whenever_it_is_found() -> None:
    """The first ``loudness_ms`` of speech, whatever the segmentation had found by the time
    the mix asked: the dub's samples do not depend on the threads' timing."""
    import dataclasses

    from dubkit.pipeline.dubbing import _Shared, _speech_for_loudness

    utts = [Utterance(i * 10_000, i * 10_000 + 4_000) for i in range(60)]  # 4 s each
    opts = Options(target="es", mix=MixOptions(loudness_ms=10_000))
    early: Growing[Utterance] = Growing()
    early.extend(utts[:5])  # 20 s found so far, the segmentation still running
    run = _Shared(None, None, None, early, Growing(), None, opts, Path("."), as_heard=True)  # type: ignore[arg-type]
    done = dataclasses.replace(run, utterances=Growing.of(utts))
    assert _speech_for_loudness(run) == _speech_for_loudness(done) == utts[:2]
    whole = dataclasses.replace(done, as_heard=False)  # the whole file: every utterance
    assert _speech_for_loudness(whole) == utts
