"""The checked-in test media are what fixtures/README.md says they are (checked with PyAV)."""

from __future__ import annotations

import importlib.util
import itertools
import json
import sys
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import av
import numpy as np
import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
RATE = 48_000


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_fixtures", FIXTURES / "make_fixtures.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_fixtures", module)  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


mf = _load_generator()


@cache
def truth(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    return data


@cache
def decoded(name: str) -> np.ndarray:
    """The first audio stream of a fixture, decoded to float32 (channels, n) at its own rate."""
    with av.open(str(FIXTURES / name)) as container:
        stream = container.streams.audio[0]
        planar, channels = stream.format.is_planar, len(stream.layout.channels)
        x = np.concatenate([f.to_ndarray() for f in container.decode(stream)], axis=1)
    if not planar:  # packed: (1, n * channels), interleaved
        x = x.reshape(-1, channels).T
    result: np.ndarray = mf.as_float(x).astype(np.float32)
    return result


def streams(name: str) -> list[tuple[str, str]]:
    with av.open(str(FIXTURES / name)) as container:
        return [(s.type, s.codec_context.name) for s in container.streams]


def container_seconds(name: str) -> float:
    with av.open(str(FIXTURES / name)) as container:
        assert container.duration is not None
        return float(container.duration) / av.time_base


# ---------------------------------------------------------------- ground truth


@pytest.mark.parametrize(
    ("name", "count", "seconds"), [("speech", (7, 8), 30), ("music", (5, 9), 20)]
)
def test_ground_truth_is_consistent(name: str, count: tuple[int, int], seconds: int) -> None:
    data = truth(name)
    utts = [mf.Placed(u["start_ms"], u["end_ms"], u["text"]) for u in data["utterances"]]
    assert count[0] <= len(utts) <= count[1]
    assert abs(data["duration_ms"] - seconds * 1000) <= 1500
    assert 500 <= utts[0].start_ms <= 1000  # silence at the head
    assert utts[-1].end_ms < data["duration_ms"]
    assert all(0 < u.start_ms < u.end_ms for u in utts)
    assert all(u.text.strip() and u.text.isascii() for u in utts)
    assert all(300 <= p <= 2000 for p in mf.pauses_ms(utts))


def test_speech_pauses_cover_the_range() -> None:
    utts = [mf.Placed(u["start_ms"], u["end_ms"], u["text"]) for u in truth("speech")["utterances"]]
    gaps = mf.pauses_ms(utts)
    assert min(gaps) <= 400 and max(gaps) >= 1900
    assert len(set(gaps)) >= len(gaps) - 1  # varied, not one repeated value
    assert any(6000 <= u.end_ms - u.start_ms <= 8000 and u.text.count(".") == 2 for u in utts)


def test_wav_edges_are_the_ground_truth() -> None:
    """speech.wav is the track the truth was measured on: edges agree to the millisecond."""
    x = decoded("speech.wav")
    data = truth("speech")
    k = mf.WAV_RATE // 1000
    assert x.shape == (1, data["duration_ms"] * k)
    bounds = [0] + [u["end_ms"] for u in data["utterances"]]
    for prev_end, u in zip(bounds, data["utterances"], strict=False):
        lo = (prev_end + u["start_ms"]) // 2 * k
        first, last = mf.speech_edges(x[:, lo : u["end_ms"] * k + 150 * k], mf.WAV_RATE)
        start_ms, end_ms = mf.samples_to_ms(lo + first, lo + last, mf.WAV_RATE)
        # measured at 48 kHz, stored at 16 kHz: the resampling moves a crossing by a few ms at most
        assert abs(start_ms - u["start_ms"]) <= 3 and abs(end_ms - u["end_ms"]) <= 3


def test_noise_floor_is_low_but_not_digital_silence() -> None:
    head = decoded("speech.wav")[:, : 400 * mf.WAV_RATE // 1000]
    assert -66 < mf.rms_dbfs(head) < -54
    assert np.count_nonzero(head) > head.size // 2


# ---------------------------------------------------------------- containers


def test_speech_mp4_streams_and_duration() -> None:
    assert streams("speech.mp4") == [("video", "h264"), ("audio", "aac")]
    with av.open(str(FIXTURES / "speech.mp4")) as c:
        video, audio = c.streams.video[0], c.streams.audio[0]
        assert (video.codec_context.width, video.codec_context.height) == (320, 180)
        assert 10 <= float(video.average_rate or 0) <= 15
        assert audio.codec_context.sample_rate == RATE and audio.codec_context.channels == 2
        first_frames = [f.to_ndarray() for _, f in zip(range(3), c.decode(video=0), strict=False)]
    assert not np.array_equal(first_frames[0], first_frames[2])  # the pattern moves
    assert abs(container_seconds("speech.mp4") * 1000 - truth("speech")["duration_ms"]) < 100


@pytest.mark.parametrize("name", ["speech.mp4", "speech.mkv"])
def test_decoded_speech_edges_match_ground_truth(name: str) -> None:
    """After lossy coding the loud regions still sit on the truth (AAC/Opus delay compensated)."""
    x = decoded(name)
    utts = truth("speech")["utterances"]
    loud = np.abs(x).max(axis=0) > mf.EDGE_THRESHOLD
    for u in utts:
        lo, hi = u["start_ms"] * 48, u["end_ms"] * 48
        onset = np.flatnonzero(loud[lo - 150 * 48 : lo + 150 * 48])
        assert onset.size and abs(onset[0] / 48 - 150) <= 20, (name, u["text"])
        assert mf.rms_dbfs(x[:, lo:hi]) > -35
    gaps = [(a["end_ms"] + 40, b["start_ms"] - 40) for a, b in itertools.pairwise(utts)]
    assert all(mf.rms_dbfs(x[:, a * 48 : b * 48]) < -50 for a, b in gaps)


def test_speech_mkv_copies_video_and_tags_audio() -> None:
    assert streams("speech.mkv") == [("video", "h264"), ("audio", "opus")]
    with av.open(str(FIXTURES / "speech.mkv")) as mkv, av.open(str(FIXTURES / "speech.mp4")) as mp4:
        assert mkv.format.name.startswith("matroska")
        assert mkv.streams.audio[0].language == "eng"
        mkv_video = [bytes(p) for p in mkv.demux(video=0) if p.size]
        mp4_video = [bytes(p) for p in mp4.demux(video=0) if p.size]
    assert mkv_video == mp4_video
    assert abs(container_seconds("speech.mkv") - container_seconds("speech.mp4")) < 0.1


def test_noaudio_and_silent() -> None:
    assert streams("noaudio.mp4") == [("video", "h264")]
    assert 2.5 <= container_seconds("noaudio.mp4") <= 3.5
    assert streams("silent.mp4") == [("video", "h264"), ("audio", "aac")]
    assert 4.5 <= container_seconds("silent.mp4") <= 5.5
    silent = decoded("silent.mp4")
    assert silent.shape[1] >= 4.9 * RATE and float(np.abs(silent).max()) < 1e-4


def test_music_bed_sits_under_the_speech() -> None:
    data = truth("music")
    bed_db = data["music_bed_only"]["rms_dbfs"]
    assert 12 <= data["speech_rms_dbfs"] - bed_db <= 18
    assert streams("music.mp4") == [("video", "h264"), ("audio", "aac")]
    x = decoded("music.mp4")
    utts = data["utterances"]
    pauses = [
        x[:, (a["end_ms"] + 50) * 48 : (b["start_ms"] - 50) * 48]
        for a, b in itertools.pairwise(utts)
    ]
    assert abs(mf.rms_dbfs(np.concatenate(pauses, axis=1)) - bed_db) < 4
    assert not np.allclose(x[0], x[1], atol=1e-3)  # the bed is stereo


@pytest.mark.parametrize("name", ["truncated.mp4", "notmedia.mp4"])
def test_broken_files_do_not_open(name: str) -> None:
    with pytest.raises(av.error.InvalidDataError):
        av.open(str(FIXTURES / name)).close()


def test_truncated_is_a_prefix_of_speech() -> None:
    whole = (FIXTURES / "speech.mp4").read_bytes()
    part = (FIXTURES / "truncated.mp4").read_bytes()
    assert whole.startswith(part) and 0.35 <= len(part) / len(whole) <= 0.45


def test_checked_in_media_stay_small() -> None:
    sizes = {name: (FIXTURES / name).stat().st_size for name in mf.OUTPUTS}
    assert sum(v for k, v in sizes.items() if k != "speech.wav") < 1_000_000
    assert sum(sizes.values()) < 3_000_000


# ---------------------------------------------------------------- pure helpers


def test_speech_edges_on_int_and_float() -> None:
    x = np.zeros(1000, dtype=np.int16)
    x[100] = 400  # 0.0122 full scale: above the default 0.01
    x[700] = -400
    x[800] = 300  # 0.0092: below
    assert mf.speech_edges(x, RATE) == (100, 701)
    assert mf.speech_edges(x.astype(np.float32) / 32768, RATE, 0.005) == (100, 801)
    assert mf.speech_edges(np.stack([x, np.roll(x, 50)]), RATE) == (100, 751)
    with pytest.raises(ValueError):
        mf.speech_edges(np.zeros(10), RATE)


def test_place_clips_measures_what_it_placed() -> None:
    clip = np.concatenate([np.zeros(30), np.full(960, 0.5), np.zeros(5)])
    script = mf.Script(10, (mf.Line(("a",), 300), mf.Line(("b.", "c."), 0)), 50)
    track, placed = mf.place_clips([clip[30:-5], clip[30:-5]], script, RATE)
    assert [(p.start_ms, p.end_ms, p.text) for p in placed] == [(10, 30, "a"), (330, 350, "b. c.")]
    assert track.size == 400 * 48 and mf.pauses_ms(placed) == [300]


def test_music_bed_is_seeded_and_music_like() -> None:
    a = mf.music_bed(RATE * 3, RATE, 7)
    assert np.array_equal(a, mf.music_bed(RATE * 3, RATE, 7))
    assert not np.array_equal(a, mf.music_bed(RATE * 3, RATE, 8))
    assert a.shape == (2, RATE * 3) and abs(float(np.abs(a).max()) - 0.5) < 1e-9
    spectrum = np.abs(np.fft.rfft(a[0, RATE : 2 * RATE]))
    freqs = np.fft.rfftfreq(RATE, 1 / RATE)
    low = spectrum[(freqs > 40) & (freqs < 150)].sum()  # bass and kick
    mid = spectrum[(freqs > 200) & (freqs < 2000)].sum()  # chords and harmonics
    high = spectrum[freqs > 5000].sum()  # hi-hat
    assert low > 0 and mid > 0 and high > 0
    assert spectrum.max() < 0.2 * spectrum.sum()  # not a single tone


def test_commands_are_argument_lists() -> None:
    cmd = mf.mp4_cmd("ffmpeg", mf.video_source("3"), ["-i", "a.wav"], Path("out dir/x.mp4"))
    assert cmd[-1] == "out dir/x.mp4" and "-threads" in cmd and "+bitexact" in cmd
    assert mf.espeak_cmd("Hello there.", Path("t.wav"))[-1] == "Hello there."
