"""The API key never appears in any output, log, manifest, cache file or error text.

Jobs run with a distinctive key (dub and subs with ``--debug``, a rejected key with
``--debug``, a dry run, a run through injected faults with ``--debug`` against an
emulator subprocess that logs every request); then every byte written under the
run's folders (outputs, manifest, cache, temporary files, HOME) and everything
printed (stdout, stderr, the emulator's log) is searched for the key.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dubkit.emulator import Emulator, EmulatorConfig
from tests.conftest import FIX, run_cli

SECRET = "sk-SECRET-7f3a9c1e5b2d46809e1c"


def _forms(key: str) -> list[bytes]:
    """The key as bytes, and as base64 at each of the three byte alignments it may have."""
    raw = key.encode()
    forms = [raw]
    for skip in range(3):  # one of these starts on a 3-byte group of the encoded stream
        whole = raw[skip:][: (len(raw) - skip) // 3 * 3]
        forms.append(base64.b64encode(whole))
    return forms


def _leaks(blob: bytes) -> bool:
    return any(f in blob for f in _forms(SECRET))


@pytest.fixture
def faulty_emulator(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``dubkit emulate --debug`` with faults, as a subprocess whose log is kept."""
    log = tmp_path / "emulator.log"
    with log.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dubkit", "emulate", "--port", "0", "--api-key", SECRET,
             "--fault-rate", "0.3", "--stall", "0.3", "--seed", "2", "--debug"],
            stdout=err, stderr=err,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (m := re.search(r"serving at (\S+)", log.read_text())):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        yield m.group(1), log
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.slow
def test_the_key_appears_nowhere(
    tmp_path: Path, faulty_emulator: tuple[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    src = Path(shutil.copy(FIX / "speech.mp4", tmp_path / "talk.mp4"))
    (tmp_path / "home").mkdir()
    (tmp_path / "tmp").mkdir()
    env = {
        "DASHSCOPE_API_KEY": SECRET,
        "HOME": str(tmp_path / "home"),  # the default cache and anything else lands here
        "TMPDIR": str(tmp_path / "tmp"),
        "XDG_CACHE_HOME": str(tmp_path / "home" / ".cache"),
    }
    printed: list[str] = []

    def run(*args: str | Path, key: str = SECRET, base_url: str) -> int:
        r = run_cli(*args, env={**env, "DASHSCOPE_API_KEY": key, "DASHSCOPE_BASE_URL": base_url})
        printed.extend((r.stdout, r.stderr))
        return r.returncode

    faulty_url, emulator_log = faulty_emulator
    caplog.set_level(logging.DEBUG)
    with (
        Emulator(EmulatorConfig(api_key=SECRET)) as good,
        Emulator(EmulatorConfig(api_key="sk-the-only-other-key")) as strict,
    ):
        assert run("dub", src, "--to", "es", "--debug", base_url=good.base_url) == 0
        assert run("subs", src, "--to", "fr", "--format", "srt,vtt", "--json",
                   base_url=good.base_url) == 0  # fmt: skip
        assert run("dub", src, "--to", "de", "--debug", base_url=strict.base_url) == 3
        assert run("dub", src, "--to", "it", "--dry-run", base_url=good.base_url) == 0
        n_good = len(good.records)
    assert run("subs", src, "--to", "ja", "--debug", "--out-dir", tmp_path / "home",
               base_url=faulty_url) == 0  # fmt: skip

    # the runs did what they should, so there was something to leak
    cached = list((tmp_path / "home" / ".cache" / "dubkit").rglob("*.dkc"))
    assert 0 < n_good < len(cached)  # both emulators' answers were stored
    assert any("Traceback" in p for p in printed)  # the 401 with --debug
    log_text = emulator_log.read_text()
    assert "fault=" in log_text  # faults were injected, retried, and logged
    assert (tmp_path / "talk.es.mp4").exists() and (tmp_path / "home" / "talk.ja.srt").exists()

    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(written) > 20  # outputs, manifests, cache entries, logs
    leaked = [str(p) for p in written if _leaks(p.read_bytes())]
    assert leaked == []
    assert not any(_leaks(text.encode()) for text in printed)
    assert not _leaks(caplog.text.encode())  # the in-process emulators' logs
    assert not _leaks(log_text.encode())
    assert os.listdir(tmp_path / "tmp") == []  # no temporary file left behind


def test_the_scan_would_find_the_key(tmp_path: Path) -> None:
    """The search above is not blind: it finds the key in raw and base64 forms."""
    for pad in range(3):
        blob = b"x" * pad + base64.b64encode(b"Bearer " + SECRET.encode()) + b"\n"
        assert _leaks(blob)
    assert _leaks(f"Authorization: Bearer {SECRET}".encode())
    assert not _leaks(b"sk-SECRET-7f3a9c1e5b2d4680")  # one character short
