"""Every example script, run as a user would (a subprocess), against an emulator or offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import wave
from collections.abc import Iterator
from pathlib import Path

import pysrt
import pytest

from dubkit.emulator import Emulator, EmulatorConfig
from dubkit.media import probe

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
KEY = "sk-test"


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig(api_key=KEY)) as emu:
        yield emu


def _env(tmp: Path, key: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASHSCOPE_")}
    env["XDG_CACHE_HOME"] = str(tmp / "cache")
    if key is not None:
        env["DASHSCOPE_API_KEY"] = key
    return env


def run_example(
    script: str, *args: str, cwd: Path, key: str | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        cwd=cwd,
        env=_env(cwd, key),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.stdout


def _written(stdout: str) -> list[Path]:
    """The paths an example reports with ``wrote PATH``; each must exist and be non-empty."""
    paths = [Path(line.split("wrote ", 1)[1]) for line in stdout.splitlines() if "wrote " in line]
    for p in paths:
        assert p.is_file() and p.stat().st_size > 0, p
    return paths


def _short_speech(tmp: Path, seconds: float = 5.7) -> Path:
    """The first two utterances of fixtures/speech.wav (700-2216 and 3016-5443 ms)."""
    out = tmp / "short.wav"
    with wave.open(str(ROOT / "fixtures" / "speech.wav"), "rb") as src:
        params = src.getparams()
        frames = src.readframes(round(seconds * params.framerate))
    with wave.open(str(out), "wb") as dst:
        dst.setparams(params)
        dst.writeframes(frames)
    return out


def _check_dubbed_video(path: Path, lang: str) -> None:
    info = probe(path)
    kinds = [s.kind for s in info.streams]
    assert kinds.count("video") == 1 and kinds.count("audio") == 2 and "subtitle" in kinds, kinds
    assert info.audio is not None and info.audio.language == {"es": "spa", "fr": "fra"}[lang]
    assert abs(info.duration_ms - probe(EXAMPLES / "talk.mp4").duration_ms) <= 100


@pytest.mark.slow  # two dubs of the 30 s example (about 15 s)
def test_dub_two_languages(emulator: Emulator, tmp_path: Path) -> None:
    out = tmp_path / "out"
    stdout = _ok(
        run_example(
            "dub_two_languages.py",
            "--base-url",
            emulator.base_url,
            "--out-dir",
            str(out),
            cwd=tmp_path,
            key=KEY,
        )
    )
    names = {p.name for p in _written(stdout)}
    for lang in ("es", "fr"):
        assert {f"talk.{lang}.mp4", f"talk.{lang}.srt", f"talk.{lang}.dubkit.json"} <= names
        _check_dubbed_video(out / f"talk.{lang}.mp4", lang)
        assert len(pysrt.open(str(out / f"talk.{lang}.srt"))) > 0
        assert json.loads((out / f"talk.{lang}.dubkit.json").read_text())
    assert "0 failed" in stdout


@pytest.mark.slow  # the 30 s example, text only (about 6 s)
def test_subtitles_only_against_the_emulator(emulator: Emulator, tmp_path: Path) -> None:
    out = tmp_path / "out"
    before = len(emulator.records)
    stdout = _ok(
        run_example(
            "subtitles_only.py",
            "--base-url",
            emulator.base_url,
            "--out-dir",
            str(out),
            cwd=tmp_path,
            key=KEY,
        )
    )
    assert {p.name for p in _written(stdout)} == {
        "talk.es.srt",
        "talk.es.vtt",
        "talk.es.dubkit.json",
    }
    assert len(pysrt.open(str(out / "talk.es.srt"))) > 0
    assert (out / "talk.es.vtt").read_text().startswith("WEBVTT")
    mine = emulator.records[before:]
    assert mine and {r.modalities for r in mine} == {("text",)}


@pytest.mark.slow  # offline speech recognition and translation (about 10 s)
def test_subtitles_only_offline(tmp_path: Path) -> None:
    clip = _short_speech(tmp_path)
    stdout = _ok(
        run_example("subtitles_only.py", str(clip), "--out-dir", str(tmp_path / "o"), cwd=tmp_path)
    )
    assert "(local" in stdout
    assert {p.name for p in _written(stdout)} >= {"short.es.srt", "short.es.vtt"}
    subs = pysrt.open(str(tmp_path / "o" / "short.es.srt"))
    assert len(subs) >= 1 and all(s.end.ordinal <= 5700 for s in subs)


@pytest.mark.slow  # a 7 s cut dubbed, captioned and encoded by moviepy (about 10 s)
def test_edit_with_moviepy(emulator: Emulator, tmp_path: Path) -> None:
    out = tmp_path / "out"
    stdout = _ok(
        run_example(
            "edit_with_moviepy.py",
            "--base-url",
            emulator.base_url,
            "--out-dir",
            str(out),
            cwd=tmp_path,
            key=KEY,
        )
    )
    assert {p.name for p in _written(stdout)} == {
        "talk-cut.es.mp4",
        "talk-cut.es.wav",
        "talk-cut.es.srt",
        "talk-cut.es.dubkit.json",
    }
    video = probe(out / "talk-cut.es.mp4")
    assert video.has_video and video.audio is not None
    assert abs(video.duration_ms - 7000) <= 150, video.duration_ms
    assert abs(probe(out / "talk-cut.es.wav").duration_ms - 7000) <= 20
    subs = pysrt.open(str(out / "talk-cut.es.srt"))
    assert len(subs) > 0 and all(s.end.ordinal <= 7000 for s in subs)  # relative to the cut


@pytest.mark.slow  # runs two tests of its own against two emulators (about 15 s)
def test_my_script_with_emulator_example(tmp_path: Path) -> None:
    stdout = _ok(
        run_example(
            "test_my_script_with_emulator.py", "--out-dir", str(tmp_path / "o"), cwd=tmp_path
        )
    )
    assert stdout.count("ok   test_") == 2
    assert len(_written(stdout)) == 2


@pytest.mark.slow  # offline recognition, translation and synthesis (about 10 s)
def test_local_engine_example(tmp_path: Path) -> None:
    stdout = _ok(run_example("local_engine.py", str(_short_speech(tmp_path)), cwd=tmp_path))
    lines = [line for line in stdout.splitlines() if "ms of speech]" in line]
    assert len(lines) == 2, stdout  # one line per utterance, each with synthesized speech
    assert all(line.split("]", 1)[1].strip() for line in lines)


def test_cloud_without_a_key_is_one_clear_line(tmp_path: Path) -> None:
    proc = run_example(
        "dub_two_languages.py",
        "--base-url",
        "http://127.0.0.1:9/v1",
        "--out-dir",
        str(tmp_path),
        cwd=tmp_path,
    )
    assert proc.returncode == 3, proc.stderr
    assert "DASHSCOPE_API_KEY" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not any(tmp_path.glob("*.mp4"))
