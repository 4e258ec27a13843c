"""The moviepy bridge against the emulator: a subclip dubbed, captions burned, an audio clip."""

from __future__ import annotations

import json
import subprocess
import sys
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from moviepy import AudioClip, AudioFileClip, ColorClip, VideoFileClip

from dubkit.emulator import Emulator, EmulatorConfig
from dubkit.errors import ConfigError, InputError
from dubkit.moviepy import (
    DubbedClip,
    burn_subtitles,
    dub_clip,
    find_font,
    render_wav,
    subtitle_clips,
)
from dubkit.pipeline import Options
from dubkit.segment import SegmentOptions
from dubkit.translate.cloud import CloudConfig, CloudTranslator
from dubkit.types import Cue

ROOT = Path(__file__).resolve().parent.parent
SPEECH = ROOT / "fixtures" / "speech.mp4"
TRUTH = json.loads((ROOT / "fixtures" / "speech.json").read_text())["utterances"]
KEY = "sk-test"
CUT = (4.0, 14.0)  # seconds: cuts utterance 2 (3016-5443) and holds utterance 3 (5793-13615)
FPS = 44_100


@dataclass(frozen=True)
class Dubbed:
    source: Any  # the subclip that was dubbed
    dubbed: DubbedClip
    records: tuple[Any, ...]
    out_dir: Path


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig(api_key=KEY)) as emu:
        yield emu


def _translator(emu: Emulator) -> CloudTranslator:
    return CloudTranslator(CloudConfig(api_key=KEY, base_url=emu.base_url))


@pytest.fixture(scope="module")
def subclip_dub(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dubbed]:
    out = tmp_path_factory.mktemp("moviepy-out")
    video = VideoFileClip(str(SPEECH))
    clip = video.subclipped(*CUT)
    before = len(emulator.records)
    # cut at every pause of the fixture (the defaults would join utterances 2 and 3)
    opts = Options(target="es", out_dir=out, segment=SegmentOptions(min_pause_ms=300))
    result = dub_clip(clip, opts, _translator(emulator), name="cut")
    yield Dubbed(clip, result, tuple(emulator.records[before:]), out)
    video.close()


def _relative_truth() -> list[tuple[int, int]]:
    """Ground-truth speech inside the cut, in ms from the cut's start."""
    a, b = round(CUT[0] * 1000), round(CUT[1] * 1000)
    return [
        (max(u["start_ms"], a) - a, min(u["end_ms"], b) - a)
        for u in TRUTH
        if u["end_ms"] > a and u["start_ms"] < b
    ]


def _near(start_ms: int, truth_ms: int) -> bool:
    """A detected onset matches a true one (the segmenter pads about 100 ms before speech)."""
    return truth_ms - 150 <= start_ms <= truth_ms + 30


@pytest.mark.slow  # shares one dub of a 10 s subclip (about 5 s)
def test_dubbed_subclip_keeps_duration_and_video(subclip_dub: Dubbed) -> None:
    clip = subclip_dub.dubbed.clip
    assert clip.duration == pytest.approx(CUT[1] - CUT[0], abs=1e-9)
    assert clip.audio is not None
    assert clip.audio.duration == pytest.approx(clip.duration, abs=1e-9)
    for t in (0.0, 3.3, 9.9):  # the picture is the input's, frame for frame
        assert np.array_equal(clip.get_frame(t), subclip_dub.source.get_frame(t))


@pytest.mark.slow  # shares one dub of a 10 s subclip (about 5 s)
def test_dubbed_audio_differs_where_speech_is(subclip_dub: Dubbed) -> None:
    original = subclip_dub.source.audio.to_soundarray(fps=FPS)
    dubbed = subclip_dub.dubbed.clip.audio.to_soundarray(fps=FPS)
    assert original.shape == dubbed.shape == (round((CUT[1] - CUT[0]) * FPS), 2)
    assert np.abs(dubbed).max() <= 1.0
    spans = _relative_truth()
    assert len(spans) == 2
    for start, end in spans:
        a, b = start * FPS // 1000, end * FPS // 1000
        diff = np.sqrt(np.mean((dubbed[a:b] - original[a:b]) ** 2))
        level = np.sqrt(np.mean(original[a:b] ** 2))
        assert diff > 0.5 * level, (start, end, diff, level)


@pytest.mark.slow  # shares one dub of a 10 s subclip (about 5 s)
def test_cues_and_utterances_are_relative_to_the_subclip(subclip_dub: Dubbed) -> None:
    d = subclip_dub.dubbed
    limit = round((CUT[1] - CUT[0]) * 1000)
    assert d.cues, "the emulator answers with text, so there are cues"
    assert all(0 <= c.start_ms < c.end_ms <= limit for c in d.cues)
    assert all(a.end_ms <= b.start_ms for a, b in zip(d.cues, d.cues[1:], strict=False))
    starts = [r.utterance.start_ms for r in d.result.results]
    truth = _relative_truth()
    assert len(starts) >= len(truth)
    # utterance 3 starts 1793 ms into the cut (5793 ms into the file)
    assert any(_near(s, truth[1][0]) for s in starts), starts
    assert min(starts) < 500  # the cut-off utterance 2 is heard from the cut's start
    assert len(subclip_dub.records) == len(starts)
    assert all(r.ok and r.target_lang == "es" for r in subclip_dub.records)


@pytest.mark.slow  # shares one dub of a 10 s subclip (about 5 s)
def test_pipeline_files_kept_in_out_dir(subclip_dub: Dubbed) -> None:
    outputs = subclip_dub.dubbed.result.outputs
    out = subclip_dub.out_dir
    assert outputs.media == out / "cut.es.wav" and outputs.media.stat().st_size > 0
    assert outputs.subtitles == (out / "cut.es.srt",) and outputs.subtitles[0].stat().st_size > 0
    manifest = json.loads(outputs.manifest.read_text())
    assert manifest  # a manifest was written; its layout belongs to dubkit.pipeline.manifest


@pytest.mark.slow  # shares one dub of a 10 s subclip (about 5 s)
def test_burn_subtitles_draws_during_a_cue_only(subclip_dub: Dubbed) -> None:
    d = subclip_dub.dubbed
    burned = burn_subtitles(d.clip, d.cues)
    assert burned.duration == pytest.approx(d.clip.duration)
    assert burned.audio is not None
    cue = d.cues[0]
    t = (cue.start_ms + cue.end_ms) / 2000
    plain, drawn = d.clip.get_frame(t), burned.get_frame(t)
    assert plain.shape == drawn.shape
    h = plain.shape[0]
    assert np.array_equal(plain[: h // 3], drawn[: h // 3])  # captions stay at the bottom
    changed = np.any(plain[h // 2 :] != drawn[h // 2 :], axis=-1).mean()
    assert changed > 0.01, changed
    # in the widest stretch without a cue (between cues or after the last) the frame is the input's
    edges = [*(c.start_ms for c in d.cues[1:]), round(d.clip.duration * 1000)]
    gap = max(zip((c.end_ms for c in d.cues), edges, strict=True), key=lambda g: g[1] - g[0])
    assert gap[1] - gap[0] >= 80, gap  # at least the 2-frame gap between events
    tg = (gap[0] + gap[1]) / 2000
    assert np.array_equal(d.clip.get_frame(tg), burned.get_frame(tg))


def test_audio_clip_input(emulator: Emulator) -> None:
    audio = AudioFileClip(str(ROOT / "fixtures" / "speech.wav"))
    try:
        clip = audio.subclipped(0.3, 2.6)  # utterance 1: 700-2216 ms
        result = dub_clip(clip, Options(target="fr"), _translator(emulator))
        out = result.clip
        assert out.duration == pytest.approx(clip.duration, abs=1e-9)
        assert not hasattr(out, "size")  # an audio clip comes back as an audio clip
        utts = [r.utterance for r in result.result.results]
        assert len(utts) == 1 and _near(utts[0].start_ms, 400), utts
        assert all(0 <= c.start_ms < c.end_ms <= 2300 for c in result.cues) and result.cues
        a = clip.to_soundarray(fps=16_000)
        b = out.to_soundarray(fps=16_000)
        assert a.shape == b.shape
        span = slice(400 * 16, 1900 * 16)
        assert np.sqrt(np.mean((a[span] - b[span]) ** 2)) > 0.01
        assert not result.result.outputs.manifest.exists()  # no out_dir: nothing left behind
    finally:
        audio.close()


def test_render_wav_of_a_mono_function_clip(tmp_path: Path) -> None:
    def tone(t: Any) -> Any:
        return 0.5 * np.sin(2 * np.pi * 440 * np.asarray(t))

    clip = AudioClip(tone, duration=1.25, fps=16_000)
    rate, channels = render_wav(clip, tmp_path / "a.wav", 1.25)
    assert (rate, channels) == (16_000, 1)
    with wave.open(str(tmp_path / "a.wav"), "rb") as w:
        assert (w.getnchannels(), w.getframerate(), w.getnframes()) == (1, 16_000, 20_000)
        pcm = np.frombuffer(w.readframes(20_000), "<i2")
    expected = np.round(tone(np.arange(20_000) / 16_000) * 32767)
    assert np.abs(pcm - expected).max() <= 1


def test_clip_without_audio_is_an_input_error() -> None:
    silent = ColorClip((32, 24), (0, 0, 0), duration=1.0)
    with pytest.raises(InputError, match="no audio"):
        dub_clip(silent, Options(target="es"), CloudTranslator(CloudConfig(api_key=KEY)))


def test_subtitle_clips_timing_and_placement() -> None:
    cues = [
        Cue(500, 1500, ("Hola.",)),
        Cue(1600, 4000, ("Una línea larga", "y otra.")),
        Cue(5000, 6000, ("Fuera del clip.",)),
    ]
    clips = subtitle_clips(cues, (320, 180), duration=3.0)
    assert len(clips) == 2  # the third starts after the clip's end
    assert (clips[0].start, clips[0].end) == (0.5, 1.5)
    assert (clips[1].start, clips[1].end) == (1.6, 3.0)  # cut at the clip's end
    for c in clips:
        x, y = c.pos(c.start)
        assert c.w <= 320 and y + c.h <= 180 and y > 180 // 3
        assert x == pytest.approx((320 - c.w) / 2, abs=1)  # centred
    assert clips[1].h > clips[0].h  # two lines are taller than one


def test_fonts() -> None:
    font = find_font()
    assert font is None or Path(font).is_file()
    with pytest.raises(ConfigError, match="fonts-dejavu-core"):
        subtitle_clips([Cue(0, 1000, ("x",))], (320, 180), font="/nonexistent/font.ttf")


def test_import_dubkit_moviepy_does_not_load_moviepy() -> None:
    code = "import sys, dubkit, dubkit.moviepy; sys.exit('moviepy' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
