"""Issue 32: what an attacker or an unlucky user tries, through the CLI as they run it.

Each case either is refused with one line on stderr and the documented exit status before
any request is paid for, leaving every file as it was, or runs and writes only the run's
own outputs. Numbered as in the issue; the manifest reader's and the options' fuzzing is in
tests/test_manifest_schema.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import av
import imageio_ffmpeg
import pytest

from dubkit.emulator import Emulator
from dubkit.translate import cache as cache_mod
from tests.conftest import FIX, run_cli
from tests.test_bad_inputs import _assert_refused, _env, _tree

DUB_FLAGS = ("--no-review", "--detector", "webrtcvad")


def _talk(d: Path, name: str = "talk.wav", fixture: str = "speech.wav") -> Path:
    return Path(shutil.copy(FIX / fixture, d / name))


# --- 1, 3: outputs that would land on an input, or twice ----------------------------------


def test_1_an_input_named_like_another_inputs_output_is_refused(
    tmp_path: Path, emulator: Emulator
) -> None:
    a, victim = _talk(tmp_path, "a.wav"), _talk(tmp_path, "a.es.wav")
    before = _tree(tmp_path)
    emulator.reset_records()
    r = run_cli("dub", a, victim, "--to", "es", env=_env(emulator))
    _assert_refused(r, 2, f"{victim}: output path is the input file")
    assert _tree(tmp_path) == before and emulator.records == []


def test_3_inputs_of_the_same_stem_are_refused_before_any_work(
    tmp_path: Path, emulator: Emulator
) -> None:
    _talk(tmp_path, "talk.wav")
    _talk(tmp_path, "talk.mp4", "speech.mp4")
    before = _tree(tmp_path)
    emulator.reset_records()
    r = run_cli("subs", tmp_path / "talk.wav", tmp_path / "talk.mp4", "--to", "es",
                env=_env(emulator))  # fmt: skip
    _assert_refused(r, 2, "talk.es.srt: would be written for both", "same stem")
    assert _tree(tmp_path) == before and emulator.records == []


def test_the_same_input_twice_is_refused(tmp_path: Path, emulator: Emulator) -> None:
    talk = _talk(tmp_path)
    r = run_cli("subs", talk, tmp_path / "." / "talk.wav", "--to", "es", env=_env(emulator))
    _assert_refused(r, 2, "given twice in one run")


def test_a_read_only_output_is_kept(tmp_path: Path, emulator: Emulator) -> None:
    talk = _talk(tmp_path)
    kept = tmp_path / "talk.es.srt"
    kept.write_text("1\n00:00:00,000 --> 00:00:01,000\nmine\n")
    kept.chmod(0o444)
    before = _tree(tmp_path)
    emulator.reset_records()
    r = run_cli("subs", talk, "--to", "es", env=_env(emulator))
    _assert_refused(r, 2, "talk.es.srt: exists and is read-only; refusing to replace it")
    assert _tree(tmp_path) == before and emulator.records == []


# --- 2, 9, 6: manifests that name other files, or hold nonsense -------------------------


def _two_languages(review: str = "talk.es.review.html", target: str = "es") -> dict:  # type: ignore[type-arg]
    section = {"dubkit": "0.1", "target": target, "duration_ms": 5000, "utterances": [],
               "outputs": {"media": None, "subtitles": [], "review": review}}  # fmt: skip
    other = {**section, "target": "fr", "outputs": {**section["outputs"], "review": None}}
    return {"dubkit": "0.1", "duration_ms": 5000, "targets": ["es", "fr"],
            "languages": [section, other]}  # fmt: skip


RATIO_FAST = {
    "dubkit": "0.1",
    "utterances": [
        {"start_ms": 0, "end_ms": 900, "dub": {"start_ms": 0, "end_ms": 900, "ratio": "fast"}}
    ],
}
BAD_MANIFESTS = {
    "review-outside": (_two_languages("../../x/victim.mp4"), "languages[0].outputs.review"),
    "review-is-manifest": (_two_languages("talk.dub.dubkit.json"), "languages[0].outputs.review"),
    "review-root": (_two_languages("/"), "languages[0].outputs.review"),
    "target-outside": (_two_languages(target="es/../../x"), "languages[0].target"),
    "ratio-fast": (RATIO_FAST, "utterances[0].dub.ratio: must be a number"),
    "duration-1e308": (
        {"dubkit": "0.1", "duration_ms": 1e308, "utterances": []},
        "duration_ms: must be a whole",
    ),
    "duration-huge": (
        {"dubkit": "0.1", "duration_ms": 10**30, "utterances": []},
        "duration_ms: 1000000",
    ),
}


@pytest.mark.parametrize(("data", "needle"), BAD_MANIFESTS.values(), ids=BAD_MANIFESTS.keys())
def test_2_9_a_manifest_naming_other_files_or_holding_nonsense_is_refused(
    data: dict, needle: str, tmp_path: Path  # type: ignore[type-arg]
) -> None:
    folder = tmp_path / "a" / "b"
    folder.mkdir(parents=True)
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "victim.mp4").write_bytes(b"precious")
    (folder / "victim.mp4").write_bytes(b"precious too")
    manifest = folder / "talk.dub.dubkit.json"
    manifest.write_text(json.dumps(data))
    before = _tree(tmp_path)
    r = run_cli("review", manifest)
    _assert_refused(r, 2, f"{manifest}: not a dubkit manifest: {needle}")
    assert _tree(tmp_path) == before


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"dubkit": "0.1", "duration_ms": NaN, "utterances": []}', "NaN is not a number"),
        ('{"dubkit": "0.1", "duration_ms": 1e999, "utterances": []}', "out of range"),
    ],
    ids=["nested", "nan", "overflow"],
)
def test_6_a_manifest_json_cannot_crash_review(text: str, needle: str, tmp_path: Path) -> None:
    manifest = tmp_path / "talk.es.dubkit.json"
    manifest.write_text(text)
    r = run_cli("review", manifest)
    _assert_refused(r, 2, needle)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["talk.es.dubkit.json"]


# --- 4: media cut short -------------------------------------------------------------------


def _cut_faststart(d: Path) -> Path:
    """speech.mp4 with its index first (faststart), cut after the packet nearest 10%."""
    whole = d / "whole.mp4"
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-i", str(FIX / "speech.mp4"),
         "-c", "copy", "-movflags", "+faststart", str(whole)], check=True,
    )  # fmt: skip
    with av.open(str(whole)) as c:
        ends = [p.pos + p.size for p in c.demux() if p.pos is not None and p.size]
    data = whole.read_bytes()
    cut = min(ends, key=lambda e: abs(e - len(data) // 10))
    whole.unlink()
    out = d / "talk.mp4"
    out.write_bytes(data[:cut])
    return out


def test_4_a_truncated_faststart_mp4_is_refused(tmp_path: Path, emulator: Emulator) -> None:
    src = _cut_faststart(tmp_path)
    before = _tree(tmp_path)
    emulator.reset_records()
    r = run_cli("dub", src, "--to", "es", "--no-cache", env=_env(emulator))
    _assert_refused(r, 2, "talk.mp4: truncated: its audio ends at 1.0 s of the 30.7 s")
    assert _tree(tmp_path) == before and emulator.records == []


# --- 5, 6, 7: options and settings, exit 3 before any work --------------------------------


@pytest.mark.parametrize(
    ("command", "args", "needle"),
    [
        ("dub", ["--max-speed", "inf"], "--max-speed must be a number from 1 to 4, got inf"),
        ("dub", ["--max-speed", "nan"], "--max-speed must be a number"),
        ("dub", ["--max-utterance", "nan"], "--max-utterance must be a number"),
        ("subs", ["--max-utterance", "inf"], "--max-utterance must be a number"),
        ("dub", ["--base-url", "ftp://127.0.0.1/v1"], "base URL 'ftp://127.0.0.1/v1' is not"),
        ("dub", ["--base-url", "file:///etc/passwd"], "base URL 'file:///etc/passwd' is not"),
        ("subs", ["--base-url", "not a url"], "base URL 'not a url' is not usable"),
    ],
    ids=["speed-inf", "speed-nan", "utt-nan", "utt-inf", "ftp", "file", "not-a-url"],
)
def test_5_6_7_unusable_options_exit_3_before_any_work_and_keep_earlier_outputs(
    command: str, args: list[str], needle: str, tmp_path: Path, emulator: Emulator
) -> None:
    talk = _talk(tmp_path)
    (tmp_path / "talk.es.srt").write_text("an earlier good run's subtitles\n")
    before = _tree(tmp_path)
    emulator.reset_records()
    r = run_cli(command, talk, "--to", "es", *args, env=_env(emulator))
    _assert_refused(r, 3, needle)
    assert _tree(tmp_path) == before and emulator.records == []


def test_6_segments_refuses_a_nan_max_utterance(tmp_path: Path) -> None:
    r = run_cli("segments", _talk(tmp_path), "--max-utterance", "nan")
    _assert_refused(r, 3, "--max-utterance must be a number")


@pytest.mark.parametrize("key", ["sk-caf\u00e9-1234", "sk-1234\r\nX-Evil: 1", "sk-12 34"],
                         ids=["non-ascii", "crlf", "space"])  # fmt: skip
def test_6_7_an_unusable_key_exits_3_unrepeated(
    key: str, tmp_path: Path, emulator: Emulator
) -> None:
    talk = _talk(tmp_path)
    before = _tree(tmp_path)
    emulator.reset_records()
    r = run_cli("subs", talk, "--to", "es", env=_env(emulator, key))
    _assert_refused(r, 3, "the API key holds characters other than printable ASCII")
    assert key.split()[0] not in r.stderr
    assert _tree(tmp_path) == before and emulator.records == []


# --- 8: long names ------------------------------------------------------------------------


def test_8_a_225_character_stem_is_dubbed_whole(tmp_path: Path, emulator: Emulator) -> None:
    stem = "t" * 225
    talk = _talk(tmp_path, f"{stem}.wav")
    r = run_cli("subs", talk, "--to", "es", "--no-cache", env=_env(emulator))
    assert r.returncode == 0, r.stderr
    manifest = json.loads((tmp_path / f"{stem}.es.dubkit.json").read_text())
    assert manifest["totals"]["failed"] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [talk.name, f"{stem}.es.srt", f"{stem}.es.dubkit.json"]
    )  # no temporary file left


def test_8_a_name_too_long_for_the_folder_is_refused_before_any_request(
    tmp_path: Path, emulator: Emulator
) -> None:
    talk = _talk(tmp_path, "t" * 245 + ".wav")
    before = _tree(tmp_path)
    emulator.reset_records()
    r = run_cli("subs", talk, "--to", "es", env=_env(emulator))
    _assert_refused(
        r, 2, ".es.dubkit.json: file name too long (260 bytes; the folder takes at most 255)"
    )
    assert _tree(tmp_path) == before and emulator.records == []


# --- 6, and the notes: a cached answer altered on disk, control characters, --voices ---------


def _rewrite_cache(folder: Path, text: str | None = None, odd: bool = False) -> int:
    """Rewrite every cache entry, well formed, with ``text`` and (``odd``) one byte more
    audio: what a damaged disk or a hostile cache could hold."""
    n = 0
    for entry in sorted(folder.rglob("*.dkc")):
        t = cache_mod._decode(entry.read_bytes())
        audio = t.audio + b"\x01" if odd else t.audio
        entry.write_bytes(cache_mod._encode(type(t)(
            text if text is not None else t.text, audio, t.sample_rate, t.usage,
            t.finish_reason, t.voice,
        )))  # fmt: skip
        n += 1
    return n


def test_6_a_cached_answer_of_odd_length_is_redone(tmp_path: Path, emulator: Emulator) -> None:
    talk, cache = _talk(tmp_path), tmp_path / "cache"
    first = run_cli("dub", talk, "--to", "es", "--cache-dir", cache, *DUB_FLAGS,
                    env=_env(emulator))  # fmt: skip
    assert first.returncode == 0, first.stderr
    entries = _rewrite_cache(cache, odd=True)
    emulator.reset_records()
    r = run_cli("dub", talk, "--to", "es", "--cache-dir", cache, "--voices", "S9=Ethan",
                *DUB_FLAGS, env=_env(emulator))  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert r.stderr.count("cache entry corrupt, redoing it") == entries
    assert len(emulator.records) == entries  # each one asked again, and only those
    warning = [x for x in r.stderr.splitlines() if "--voices names S9" in x]
    assert len(warning) == 1 and "no such speaker was found (found: S1)" in warning[0]


def test_control_characters_stay_out_of_subtitles(tmp_path: Path, emulator: Emulator) -> None:
    talk, cache = _talk(tmp_path), tmp_path / "cache"
    assert run_cli("subs", talk, "--to", "es", "--cache-dir", cache,
                   env=_env(emulator)).returncode == 0  # fmt: skip
    _rewrite_cache(cache, text="Hola\x00 \x1b[2J\x1b]0;pwned\x07mundo\x7f \x9b31m.")
    r = run_cli("subs", talk, "--to", "es", "--cache-dir", cache, "--format", "srt,vtt",
                env=_env(emulator))  # fmt: skip
    assert r.returncode == 0, r.stderr
    for name in ("talk.es.srt", "talk.es.vtt"):
        text = (tmp_path / name).read_text(encoding="utf-8")
        assert "Hola [2J]0;pwnedmundo 31m." in text, text
        assert not any((ord(ch) < 32 and ch != "\n") or 0x7F <= ord(ch) <= 0x9F for ch in text)
