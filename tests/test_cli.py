"""The CLI as a user runs it: a subprocess, real files, the emulator over loopback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dubkit.emulator import Emulator
from tests.conftest import FIX, KEY, run_cli


def cloud_env(emu: Emulator) -> dict[str, str]:
    return {"DASHSCOPE_API_KEY": KEY, "DASHSCOPE_BASE_URL": emu.base_url}


def test_version_and_help() -> None:
    r = run_cli("--version")
    assert r.returncode == 0 and r.stdout.startswith("dubkit ")
    r = run_cli("--help")
    assert r.returncode == 0 and "exit status" in r.stdout
    for cmd in ("dub", "subs", "segments", "emulate", "languages"):
        r = run_cli(cmd, "--help")
        assert r.returncode == 0, r.stderr
        assert "examples:" in r.stdout and f"dubkit {cmd}" in r.stdout


def test_no_command_is_usage_error() -> None:
    assert run_cli().returncode == 2
    r = run_cli("dub", "x.mp4")  # --to missing
    assert r.returncode == 2 and "--to" in r.stderr


def test_languages_table_and_json() -> None:
    r = run_cli("languages")
    assert r.returncode == 0 and "Spanish" in r.stdout and "Kiki" in r.stdout
    rows = json.loads(run_cli("languages", "--json").stdout)
    by = {row["code"]: row for row in rows}
    assert len(rows) == 18 and by["es"]["dub"] and not by["th"]["dub"]
    assert by["yue"]["voices"] == ["Kiki"] and by["es"]["local_engine"]


def test_segments_table_and_json() -> None:
    r = run_cli("segments", FIX / "speech.mp4", "--json")
    assert r.returncode == 0
    segs = json.loads(r.stdout)
    assert len(segs) >= 6
    assert set(segs[0]) == {"start_ms", "end_ms", "speaker", "gender", "f0_hz"}
    # fixtures/speech.wav is one man reading
    assert {(s["speaker"], s["gender"]) for s in segs} == {("S1", "male")}
    assert all(80 <= s["f0_hz"] <= 140 for s in segs)
    table = run_cli("segments", FIX / "speech.mp4").stdout
    assert "start" in table and f"{len(segs)} utterances" in table


def test_dry_run_sends_nothing(tmp_path: Path, emulator: Emulator) -> None:
    emulator.reset_records()
    r = run_cli("dub", FIX / "speech.mp4", "--to", "es", "--dry-run", "--out-dir", tmp_path,
                env=cloud_env(emulator))  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "input tokens" in r.stdout and "nothing sent" in r.stdout
    assert emulator.records == [] and list(tmp_path.iterdir()) == []
    data = json.loads(
        run_cli("subs", FIX / "speech.mp4", "--to", "es", "--dry-run", "--json").stdout
    )
    assert data["requests"] == len(data["utterances"]) >= 6
    # 12.5 tokens a second, a second at least per request
    assert data["estimated_input_tokens"] >= 12.5 * data["speech_ms"] / 1000


def test_dub_json_summary_and_rerun_sends_nothing(tmp_path: Path, emulator: Emulator) -> None:
    src = tmp_path / "talk.mp4"
    shutil.copy(FIX / "speech.mp4", src)
    env = {**cloud_env(emulator), "DUBKIT_CACHE_DIR": str(tmp_path / "cache")}
    r = run_cli("dub", src, "--to", "Spanish", "--json", env=env)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # no progress bars or notices when not on a terminal
    s = json.loads(r.stdout)
    assert s["status"] == 0 and s["engine"] == "cloud" and s["failed"] == 0
    assert Path(s["media"]) == tmp_path / "talk.es.mp4" and Path(s["media"]).exists()
    assert s["tokens"] > 0
    assert s["voices"] == {"S1": "Nofish"} and s["voices_shared"] == []  # one man reading
    from dubkit import media

    dubbed = media.probe(s["media"]).audio_tracks[0]  # the source's 49 kb/s, floored at 128
    assert dubbed.bit_rate is not None and 110_000 < dubbed.bit_rate < 150_000
    emulator.reset_records()
    again = run_cli("dub", src, "--to", "es", "--json", env=env)
    assert again.returncode == 0 and emulator.records == []
    assert json.loads(again.stdout)["tokens"] == 0
    text = run_cli("dub", src, "--to", "es", env=env).stdout
    assert "voices: S1=Nofish" in text


def test_refused_voice_map_sends_nothing(emulator: Emulator) -> None:
    emulator.reset_records()
    r = run_cli("dub", FIX / "speech.mp4", "--to", "yue", "--voices", "S1=Cherry",
                env=cloud_env(emulator))  # fmt: skip
    assert r.returncode == 3 and "voices for yue: Kiki" in r.stderr
    assert emulator.records == []


def test_subs_writes_sidecars(tmp_path: Path, emulator: Emulator) -> None:
    tmp_path = tmp_path / "made" / "by-dubkit"  # --out-dir is created when missing
    r = run_cli("subs", FIX / "speech.mkv", "--to", "ja", "--format", "srt,vtt", "--out-dir",
                tmp_path, "--no-cache", env=cloud_env(emulator))  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "tokens billed (cloud engine" in r.stdout and "wrote" in r.stdout
    assert (tmp_path / "speech.ja.srt").exists() and (tmp_path / "speech.ja.vtt").exists()
    assert (tmp_path / "speech.ja.vtt").read_text(encoding="utf-8").startswith("WEBVTT")
    assert not (tmp_path / "speech.ja.mkv").exists()
    assert all(tuple(x.modalities) == ("text",) for x in emulator.records[-3:])


def test_several_inputs_one_failing(tmp_path: Path, emulator: Emulator) -> None:
    a = tmp_path / "a.mp4"
    shutil.copy(FIX / "speech.mp4", a)
    r = run_cli("subs", tmp_path / "missing.mp4", a, "--to", "es", "--json", "--no-cache",
                env=cloud_env(emulator))  # fmt: skip
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "missing.mp4: no such file" in r.stderr
    results = json.loads(r.stdout)
    assert [x["status"] for x in results] == [2, 0]
    assert (tmp_path / "a.es.srt").exists()


@pytest.mark.parametrize(
    ("args", "status", "text"),
    [
        (["--to", "xx"], 3, "unknown language 'xx'"),
        (["--to", "th"], 3, "text output only"),
        (["--to", "es", "--voice", "Kiki"], 3, "does not speak Spanish"),
        (["--to", "es", "--voices", "S1=Nobody"], 3, "voice 'Nobody' does not speak Spanish"),
        (["--to", "ja", "--voices", "S1=Ethan,S2=Jada"], 3, "voice 'Jada' does not speak"),
        (["--to", "es", "--voices", "one=Ethan"], 3, "is not SPEAKER=VOICE"),
        (["--to", "es", "--engine", "cloud"], 3, "DASHSCOPE_API_KEY"),
    ],
)
def test_configuration_errors(args: list[str], status: int, text: str) -> None:
    r = run_cli("dub", FIX / "speech.mp4", *args)
    assert r.returncode == status and text in r.stderr
    assert "Traceback" not in r.stderr and r.stderr.count("\n") == 1


def test_a_bad_bitrate_is_a_usage_error() -> None:
    r = run_cli("dub", FIX / "speech.mp4", "--to", "es", "--audio-bitrate", "fast")
    assert r.returncode == 2 and "expected a bitrate such as 128k, got 'fast'" in r.stderr
    assert "Traceback" not in r.stderr


def test_debug_shows_traceback() -> None:
    r = run_cli("dub", FIX / "speech.mp4", "--to", "xx", "--debug")
    assert r.returncode == 3 and "Traceback" in r.stderr


def test_sigterm_stops_like_ctrl_c(tmp_path: Path) -> None:
    """SIGTERM (timeout, docker stop) mid-translation: exit 130, nothing left behind."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from dubkit.emulator import EmulatorConfig

    src = tmp_path / "talk.mp4"
    shutil.copy(FIX / "speech.mp4", src)
    with Emulator(EmulatorConfig(api_key=KEY, latency_s=1.0)) as emu:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DASHSCOPE_", "DUBKIT_"))}
        env |= {**cloud_env(emu), "DUBKIT_CACHE_DIR": str(tmp_path / "cache")}
        proc = subprocess.Popen(
            [sys.executable, "-m", "dubkit", "dub", str(src), "--to", "es", "--concurrency", "1"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while not emu.records and time.monotonic() < deadline:
            time.sleep(0.05)
        assert emu.records, "the run never reached translation"
        proc.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 130 and time.monotonic() - sent < 5
        assert err.strip() == "dubkit: error: interrupted"
    assert [p.name for p in tmp_path.iterdir() if p.name != "cache"] == ["talk.mp4"]


def test_emulate_on_a_taken_port_is_one_line(emulator: Emulator) -> None:
    r = run_cli("emulate", "--port", str(emulator.port))
    assert r.returncode == 2 and "Address already in use" in r.stderr
    assert "Traceback" not in r.stderr and r.stderr.count("\n") == 1


def test_progress_bars_on_a_terminal(tmp_path: Path, emulator: Emulator) -> None:
    """On a terminal each stage gets a bar; translating shows utterances and their rate."""
    import os
    import pty
    import subprocess
    import sys

    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DASHSCOPE_", "DUBKIT_"))}
    env |= {**cloud_env(emulator), "COLUMNS": "120", "TERM": "xterm"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "dubkit", "dub", str(FIX / "speech.mp4"), "--to", "es",
         "--out-dir", str(tmp_path), "--no-cache"],
        stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, env=env,
    )  # fmt: skip
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed
            break
        if not chunk:
            break
        seen += chunk
    assert proc.wait(timeout=120) == 0
    os.close(leader)
    text = seen.decode("utf-8", "replace")
    for stage in ("segmenting", "translating", "mixing and muxing"):
        assert stage in text
    assert "/min)" in text and "wrote" in text
