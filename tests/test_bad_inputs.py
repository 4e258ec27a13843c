"""The bad-input catalogue, each case through the CLI as a user runs it.

Every refusal is one line on stderr (no traceback without ``--debug``) with the
documented exit status (2 bad input or output, 3 configuration or authentication),
nothing is written under a final name, and the input is left byte-for-byte intact.

Two cases are proven elsewhere and not repeated here (neither limit is a CLI option):
an utterance too large for one request is split, not failed
(tests/test_translate.py::test_oversize_utterance_is_split_not_failed and
tests/test_cloud.py::test_oversize_utterance_raises_before_any_request), and an answer
cut at max_tokens is split and retried
(tests/test_translate.py::test_truncated_utterance_is_split_at_a_pause and
test_truncation_at_max_depth_is_a_reported_failure).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import numpy as np
import pytest

from dubkit.emulator import Emulator
from tests.conftest import FIX, KEY, run_cli

NOBODY = 65534


def _sha(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def _tree(folder: Path) -> dict[str, str | None]:
    """Every entry under ``folder`` (symlinks as their target), to see what a run wrote."""
    out: dict[str, str | None] = {}
    for p in sorted(folder.rglob("*")):
        rel = str(p.relative_to(folder))
        out[rel] = f"-> {os.readlink(p)}" if p.is_symlink() else _sha(p)
    return out


def _env(emu: Emulator, key: str = KEY) -> dict[str, str]:
    return {"DASHSCOPE_API_KEY": key, "DASHSCOPE_BASE_URL": emu.base_url}


def _assert_refused(r: subprocess.CompletedProcess[str], status: int, *needles: str) -> None:
    assert r.returncode == status, (r.returncode, r.stderr)
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("dubkit: error: "), r.stderr
    assert "Traceback" not in r.stderr
    for needle in needles:
        assert needle in r.stderr, (needle, r.stderr)


# --- inputs that are not usable media ----------------------------------------------------


def _missing(d: Path) -> Path:
    return d / "talk.mp4"


def _directory(d: Path) -> Path:
    (d / "talk.mp4").mkdir()
    return d / "talk.mp4"


def _empty(d: Path) -> Path:
    (d / "talk.mp4").write_bytes(b"")
    return d / "talk.mp4"


def _copy(name: str) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        return Path(shutil.copy(FIX / name, d / "talk.mp4"))

    return make


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (_missing, "talk.mp4: no such file"),
        (_directory, "talk.mp4: is a directory"),
        (_empty, "talk.mp4: is empty (0 bytes)"),
        (_copy("notmedia.mp4"), "talk.mp4: not a readable media file"),
        (_copy("truncated.mp4"), "talk.mp4: not a readable media file, or truncated"),
        (_copy("noaudio.mp4"), "talk.mp4: has no audio stream"),
    ],
    ids=["missing", "directory", "empty", "text-as-mp4", "truncated", "no-audio"],
)
def test_unusable_input_is_refused(
    make: Callable[[Path], Path], needle: str, tmp_path: Path, emulator: Emulator
) -> None:
    src = make(tmp_path)
    before = _tree(tmp_path)
    emulator.reset_records()
    r = run_cli("dub", src, "--to", "es", "--cache-dir", tmp_path / "cache", env=_env(emulator))
    _assert_refused(r, 2, needle)
    assert _tree(tmp_path) == before  # nothing written, the input untouched
    assert emulator.records == []


# --- configuration: exit status 3, before any request -----------------------------------


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--to", "Klingon"], "unknown language 'Klingon'"),
        (["--to", "spanis"], "unknown language 'spanis'"),
        (["--to", "es", "--from", "xx"], "unknown language 'xx'"),
        (["--to", "Thai"], "text output only and cannot be dubbed"),
        (["--to", "es", "--voice", "Kiki"], "voice 'Kiki' does not speak Spanish"),
        (["--to", "es", "--voice", "Nobody"], "voice 'Nobody'"),
    ],
    ids=["unknown", "misspelled", "unknown-source", "text-only", "wrong-voice", "no-such-voice"],
)
def test_bad_language_or_voice_is_refused_before_reading(
    args: list[str], needle: str, tmp_path: Path, emulator: Emulator
) -> None:
    src = Path(shutil.copy(FIX / "speech.mp4", tmp_path / "talk.mp4"))
    before = _tree(tmp_path)
    emulator.reset_records()
    r = run_cli("dub", src, *args, env=_env(emulator))
    _assert_refused(r, 3, needle)
    assert _tree(tmp_path) == before and emulator.records == []


def test_missing_key_with_cloud_engine(tmp_path: Path) -> None:
    src = Path(shutil.copy(FIX / "speech.mp4", tmp_path / "talk.mp4"))
    before = _tree(tmp_path)
    r = run_cli("dub", src, "--to", "es", "--engine", "cloud")
    _assert_refused(r, 3, "DASHSCOPE_API_KEY")
    assert _tree(tmp_path) == before


@pytest.mark.parametrize(
    ("key", "args", "needle"),
    [
        ("sk-rejected-0000", [], "HTTP 401: API key rejected"),
        (KEY, ["--model", "nope"], "HTTP 404: unknown model 'nope'"),
    ],
    ids=["key-401", "model-404"],
)
def test_service_refusal_is_a_config_error(
    key: str, args: list[str], needle: str, tmp_path: Path, emulator: Emulator
) -> None:
    src = Path(shutil.copy(FIX / "speech.mp4", tmp_path / "talk.mp4"))
    before = _tree(tmp_path)
    emulator.reset_records()
    r = run_cli("dub", src, "--to", "es", *args, "--cache-dir", tmp_path / "cache",
                env=_env(emulator, key))  # fmt: skip
    _assert_refused(r, 3, needle)
    assert key not in r.stderr
    assert _tree(tmp_path) == before  # no output, and no cache entry either
    assert 1 <= len(emulator.records) <= 4  # the first wave only: no request after the refusal


# --- outputs that cannot be written -----------------------------------------------------


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder another user can reach (pytest's tmp_path is private to root)."""
    d = Path(tempfile.mkdtemp(prefix="dubkit-bad-"))
    d.chmod(0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


#: ``python -m dubkit`` that drops root privileges once the interpreter and dubkit are
#: loaded (the interpreter lives under /root, which the user nobody cannot enter).
AS_NOBODY = f"""
import os, sys
import dubkit.cli, dubkit.translate.cloud, dubkit.translate.engines, dubkit.translate.pacing
import dubkit.pipeline.manifest, dubkit.translate.cache
if os.geteuid() == 0:
    os.setgroups([])
    os.setgid({NOBODY})
    os.setuid({NOBODY})
sys.argv[0] = "dubkit"
sys.exit(dubkit.cli.main(sys.argv[1:]))
"""


def test_output_directory_not_writable(shared_dir: Path, emulator: Emulator) -> None:
    src = Path(shutil.copy(FIX / "speech.mp4", shared_dir / "talk.mp4"))
    src.chmod(0o644)
    out = shared_dir / "readonly"
    out.mkdir(mode=0o555)
    out.chmod(0o555)
    before = _tree(shared_dir)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DASHSCOPE_", "DUBKIT_"))}
    env.update(_env(emulator), HOME=str(shared_dir))
    r = subprocess.run(
        [sys.executable, "-c", AS_NOBODY, "dub", str(src), "--to", "es", "--out-dir", str(out),
         "--no-cache"], capture_output=True, text=True, env=env, timeout=120, check=False,
        cwd=shared_dir,
    )  # fmt: skip
    _assert_refused(r, 2, "readonly: output directory is not writable")
    assert _tree(shared_dir) == before


def test_out_dir_that_is_a_file(tmp_path: Path, emulator: Emulator) -> None:
    src = Path(shutil.copy(FIX / "speech.mp4", tmp_path / "talk.mp4"))
    (tmp_path / "out").write_text("not a folder\n")
    before = _tree(tmp_path)
    r = run_cli("dub", src, "--to", "es", "--out-dir", tmp_path / "out", "--no-cache",
                env=_env(emulator))  # fmt: skip
    _assert_refused(r, 2, "out: output folder (--out-dir) is a file, not a folder")
    assert _tree(tmp_path) == before


@pytest.mark.parametrize("name", ["talk.es.mp4", "talk.es.srt", "talk.es.dubkit.json"])
def test_output_that_is_the_input_is_refused(name: str, tmp_path: Path, emulator: Emulator) -> None:
    src = Path(shutil.copy(FIX / "speech.mp4", tmp_path / "talk.mp4"))
    out = tmp_path / "out"
    out.mkdir()
    (out / name).symlink_to(src)
    before = _tree(tmp_path)
    emulator.reset_records()
    r = run_cli("dub", src, "--to", "es", "--out-dir", out, "--no-cache", env=_env(emulator))
    _assert_refused(r, 2, f"{name}: output path is the input file")
    assert _tree(tmp_path) == before and emulator.records == []


# --- not errors -------------------------------------------------------------------------


def _decode(path: Path, index: int) -> np.ndarray:
    with av.open(str(path)) as c:
        frames = [f.to_ndarray() for f in c.decode(c.streams.audio[index])]
    return np.concatenate(frames, axis=-1)


def test_silence_throughout_is_not_an_error(tmp_path: Path, emulator: Emulator) -> None:
    src = Path(shutil.copy(FIX / "silent.mp4", tmp_path / "quiet.mp4"))
    digest = _sha(src)
    emulator.reset_records()
    r = run_cli("dub", src, "--to", "es", "--no-cache", "--json", env=_env(emulator))
    assert r.returncode == 0, r.stderr
    assert r.stderr == "" and emulator.records == []  # nothing to translate, nothing sent
    assert (tmp_path / "quiet.es.srt").read_text(encoding="utf-8") == ""
    dubbed = tmp_path / "quiet.es.mp4"
    dub, original = _decode(dubbed, 0), _decode(src, 0)
    assert dub.shape == original.shape and not np.any(original)
    assert np.array_equal(dub, original)  # silence in, silence out, sample for sample
    assert _sha(src) == digest


def test_rejected_key_stops_every_input_not_just_the_first(
    tmp_path: Path, emulator: Emulator
) -> None:
    a = Path(shutil.copy(FIX / "speech.mp4", tmp_path / "a.mp4"))
    b = Path(shutil.copy(FIX / "speech.mp4", tmp_path / "b.mp4"))
    before = _tree(tmp_path)
    emulator.reset_records()
    r = run_cli("subs", a, b, "--to", "es", "--no-cache", env=_env(emulator, "sk-rejected-1"))
    _assert_refused(r, 3, "HTTP 401: API key rejected")
    assert _tree(tmp_path) == before
    assert 1 <= len(emulator.records) <= 4  # b was never tried with a key known to be bad


def test_unusable_cache_folder_is_refused_before_any_request(
    tmp_path: Path, emulator: Emulator
) -> None:
    src = Path(shutil.copy(FIX / "speech.mp4", tmp_path / "talk.mp4"))
    (tmp_path / "cache").write_text("a file, not a folder\n")
    before = _tree(tmp_path)
    emulator.reset_records()
    r = run_cli("subs", src, "--to", "es", "--cache-dir", tmp_path / "cache", env=_env(emulator))
    _assert_refused(r, 2, "cache: cache folder (--cache-dir) is a file")
    assert _tree(tmp_path) == before and emulator.records == []  # nothing paid for


@pytest.mark.parametrize("name", ["talk.es.mp4", "talk.es.srt"])
def test_output_name_taken_by_a_folder_is_refused_before_any_request(
    name: str, tmp_path: Path, emulator: Emulator
) -> None:
    src = Path(shutil.copy(FIX / "speech.mp4", tmp_path / "talk.mp4"))
    (tmp_path / name).mkdir()
    before = _tree(tmp_path)
    emulator.reset_records()
    r = run_cli("dub", src, "--to", "es", "--no-cache", env=_env(emulator))
    _assert_refused(r, 2, f"{name}: ")
    assert _tree(tmp_path) == before and emulator.records == []


def test_a_colon_in_the_file_name_is_not_a_protocol(tmp_path: Path, emulator: Emulator) -> None:
    """``take:1.mp4`` given relative to the working folder is a file, not a ``take:`` URL."""
    shutil.copy(FIX / "speech.wav", tmp_path / "take:1.wav")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DASHSCOPE_", "DUBKIT_"))}
    env.update(_env(emulator))
    r = subprocess.run(
        [sys.executable, "-m", "dubkit", "dub", "take:1.wav", "--to", "es", "--no-cache"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300, check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "take:1.es.wav").is_file() and (tmp_path / "take:1.es.srt").is_file()


@pytest.mark.parametrize(
    "args", [["--rpm", "0"], ["--tpm", "-5"], ["--retries", "-1"], ["--concurrency", "0"]]
)
def test_bad_option_value_is_a_one_line_config_error(
    args: list[str], tmp_path: Path, emulator: Emulator
) -> None:
    src = Path(shutil.copy(FIX / "speech.mp4", tmp_path / "talk.mp4"))
    before = _tree(tmp_path)
    r = run_cli("dub", src, "--to", "es", *args, env=_env(emulator))
    _assert_refused(r, 3, args[0].lstrip("-"))
    assert _tree(tmp_path) == before
