"""Reliability: a fault soak, kill-and-resume of the CLI, Ctrl-C, and partial failures.

Everything runs as a user would: the real translate stage and cloud client against the
emulator over loopback, and ``python -m dubkit`` as a subprocess that is killed
with SIGKILL or interrupted with SIGINT at chosen moments.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import pysrt
import pytest

from dubkit import media
from dubkit.emulator import FAULT_KINDS, Emulator, EmulatorConfig, RequestRecord
from dubkit.pipeline import analyze
from dubkit.segment import SegmentOptions
from dubkit.translate import ArrayAudio, translate_all_sync
from dubkit.translate.cache import TranslationCache
from dubkit.translate.cloud import CloudConfig, CloudTranslator
from dubkit.translate.pacing import RateLimiter
from dubkit.translate.protocol import Job
from dubkit.types import Utterance
from tests.conftest import FIX, KEY, default_sigint, noise_bursts, run_cli

# --- 1. fault soak ---------------------------------------------------------------------


def _bursts(n: int, utt_ms: int, gap_ms: int, seed: int) -> tuple[ArrayAudio, list[Utterance]]:
    return noise_bursts(n, utt_ms, gap_ms, seed, peak=8000)


@pytest.mark.slow
def test_fault_soak_every_kind_at_25_percent() -> None:
    """200 utterances, 25 % faults of every kind: all translated, each answer paid once."""
    audio, utts = _bursts(200, 300, 100, seed=10)
    max_retries = 8
    cfg = EmulatorConfig(api_key=KEY, fault_rate=0.25, stall_s=1.0, seed=7)
    with Emulator(cfg) as emu:
        config = CloudConfig(
            api_key=KEY, base_url=emu.base_url, timeout_s=5.0, stall_timeout_s=0.25,
            max_retries=max_retries, backoff_base_s=0.01, backoff_cap_s=0.05,
        )  # fmt: skip
        translator = CloudTranslator(config, limiter=RateLimiter(rpm=None, tpm=None))
        results = translate_all_sync(translator, audio, utts, Job("es", "en", "Cherry"),
                                     concurrency=8)  # fmt: skip
        records = emu.records
    assert [r.utterance for r in results] == utts  # nothing split, nothing lost, in order
    assert all(r.ok and r.error is None and r.translation is not None for r in results)
    assert all(r.translation.audio and r.translation.text for r in results if r.translation)
    faults = Counter(r.fault for r in records if r.fault)
    assert set(faults) == set(FAULT_KINDS), faults
    assert 0.18 < sum(faults.values()) / len(records) < 0.32
    shas = [hashlib.sha256(audio.read(u.start_ms, u.end_ms).tobytes()).hexdigest() for u in utts]
    assert len(set(shas)) == len(utts)
    ok = Counter(r.audio_sha256 for r in records if r.ok)
    assert ok == Counter(shas)  # every successful answer was requested exactly once
    tries = Counter(r.audio_sha256 for r in records)
    assert max(tries.values()) <= max_retries + 1
    assert [r.attempts for r in results] == [tries[s] for s in shas]
    assert sum(tries.values()) == len(records) > len(utts)


# --- 2. kill and resume ----------------------------------------------------------------

FINAL_SUFFIXES = (".es.mp4", ".es.srt", ".es.dubkit.json")


@dataclass(frozen=True, slots=True)
class Run:
    """One CLI run: how it ended and which requests the emulator saw meanwhile."""

    label: str
    returncode: int
    seconds: float  # from the signal to the exit (0 when not signalled)
    stderr: str
    records: tuple[RequestRecord, ...]
    cached_before: frozenset[str]  # cache entries (keys) when the run started


def _cache_keys(cache: Path) -> frozenset[str]:
    """The keys stored in the cache (hidden names are temporary files, not entries)."""
    if not cache.is_dir():
        return frozenset()
    return frozenset(p.stem for p in cache.rglob("*.dkc") if not p.name.startswith("."))


def _check_final(path: Path) -> None:
    """A file under a final name must be complete: probe it, parse it."""
    if path.suffix == ".mp4":
        info = media.probe(path)
        kinds = sorted(s.kind for s in info.streams)
        assert kinds == ["audio", "audio", "subtitle", "video"], (path, kinds)
        assert abs(info.duration_ms - 30_750) < 100, info.duration_ms
        _dub_track(path)  # decodes to the end without error
    elif path.suffix == ".srt":
        text = path.read_text(encoding="utf-8")
        assert text.endswith("\n") and len(pysrt.from_string(text, error_handling=1)) > 0
    else:
        data = json.loads(path.read_text(encoding="utf-8"))
        assert data["totals"]["utterances"] == len(data["utterances"]) > 0


class Watcher:
    """Checks every file that appears under a final name while runs come and go."""

    def __init__(self, folder: Path, stem: str) -> None:
        self.finals = [folder / f"{stem}{s}" for s in FINAL_SUFFIXES]
        self.seen: dict[Path, tuple[int, int]] = {}

    def check(self) -> None:
        for p in self.finals:
            try:
                st = p.stat()
            except FileNotFoundError:
                continue
            if self.seen.get(p) != (st.st_ino, st.st_mtime_ns):
                _check_final(p)
                self.seen[p] = (st.st_ino, st.st_mtime_ns)


def _part_files(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if ".part" in p.name]


#: A signalled run that has not stopped after this long has hung (it stops within seconds).
STOP_S = 60.0


def _run(
    argv: list[str],
    label: str,
    emu: Emulator,
    cache: Path,
    watcher: Watcher,
    trigger: Callable[[float], bool] | None = None,
    sig: int = signal.SIGKILL,
) -> Run:
    """Run the CLI; when ``trigger(elapsed)`` turns true, send ``sig`` to its process group."""
    before = len(emu.records)
    cached = _cache_keys(cache)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DASHSCOPE_", "DUBKIT_"))}
    env["DASHSCOPE_API_KEY"] = KEY
    err = cache.parent / f"stderr-{label}.txt"
    start = time.monotonic()
    signalled = 0.0
    with err.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dubkit", *argv], env=env, stdout=subprocess.DEVNULL,
            stderr=stderr, start_new_session=True,  # a terminal's Ctrl-C hits the whole group
            preexec_fn=default_sigint,
        )  # fmt: skip
        try:
            while proc.poll() is None:
                watcher.check()
                if trigger is not None and not signalled and trigger(time.monotonic() - start):
                    os.killpg(proc.pid, sig)  # ffmpeg included, as a terminal would
                    signalled = time.monotonic()
                if signalled and time.monotonic() - signalled > STOP_S:
                    pytest.fail(f"{label}: still running {STOP_S:g} s after signal {sig}")
                time.sleep(0.02)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    watcher.check()
    took = time.monotonic() - signalled if signalled else 0.0
    time.sleep(0.3)  # let the emulator finish recording requests the kill cut short
    return Run(label, proc.returncode, took, err.read_text(), tuple(emu.records[before:]), cached)


def _dub_track(path: Path) -> np.ndarray:
    """The first audio track, decoded to float32 (channels, n)."""
    with av.open(str(path)) as c:
        stream = c.streams.audio[0]
        blocks = [f.to_ndarray() for f in c.decode(stream)]
    return np.concatenate(blocks, axis=-1)


def _manifest_core(path: Path) -> list[dict[str, object]]:
    items = json.loads(path.read_text(encoding="utf-8"))["utterances"]
    return [{k: v for k, v in it.items() if k not in ("cached", "attempts")} for it in items]


#: Cut at every pause of the fixture: eight requests, so that kills land between them.
EVERY_PAUSE = SegmentOptions(min_pause_ms=300)


def _request_keys(src: Path, emu: Emulator, tmp: Path) -> dict[str, str]:
    """audio SHA-256 (what the emulator records) -> cache key (what the CLI stores)."""
    from dubkit.pipeline import Options, plan_job

    _, job = plan_job(Options(target="es", voice="Cherry"), dubbing=True)
    identity = CloudTranslator(CloudConfig(api_key=KEY, base_url=emu.base_url)).identity()
    work = tmp / "analyze"
    work.mkdir()
    audio, utts = analyze(src, EVERY_PAUSE, work)
    out = {}
    for u in utts:
        pcm = audio.read(u.start_ms, u.end_ms)
        out[hashlib.sha256(pcm.tobytes()).hexdigest()] = TranslationCache.key(pcm, job, identity)
    return out


@pytest.fixture(scope="module")
def slow_emulator() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig(api_key=KEY, latency_s=0.3)) as emu:
        yield emu


@pytest.mark.slow
def test_kill_and_resume_gives_the_uninterrupted_outputs(
    tmp_path: Path, slow_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = slow_emulator
    scratch = tmp_path / "scratch"  # the runs' work folders, where the dub is encoded
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    ref_dir, work = tmp_path / "ref", tmp_path / "work"
    ref_dir.mkdir()
    work.mkdir()
    src = work / "talk.mp4"
    shutil.copy(FIX / "speech.mp4", src)
    src_sha = hashlib.sha256(src.read_bytes()).hexdigest()
    keys = _request_keys(src, emu, tmp_path)
    n = len(keys)

    def argv(out: Path, cache: Path) -> list[str]:
        return ["dub", str(src), "--to", "es", "--base-url", emu.base_url, "--out-dir", str(out),
                "--cache-dir", str(cache), "--quiet", "--min-pause", "300",
                "--voice", "Cherry"]  # fmt: skip

    ref_cache = tmp_path / "ref-cache"
    ref = _run(argv(ref_dir, ref_cache), "reference", emu, ref_cache, Watcher(ref_dir, "talk"))
    assert ref.returncode == 0, ref.stderr
    assert Counter(r.audio_sha256 for r in ref.records if r.ok) == Counter(keys.keys())
    assert _cache_keys(ref_cache) == frozenset(keys.values())  # the key mapping is right

    cache = tmp_path / "cache"
    watcher = Watcher(work, "talk")
    args = argv(work, cache)

    def entries(k: int) -> Callable[[float], bool]:
        return lambda _: len(_cache_keys(cache)) >= k

    def encoding(min_bytes: int) -> Callable[[float], bool]:
        """The output this run writes as it mixes (under its temporary name; not a killed
        run's) holds ``min_bytes``: the mix and the encoder are running, the outputs not yet
        replaced."""
        old = set(_part_files(work))

        def fired(_: float) -> bool:
            for p in set(_part_files(work)) - old:
                with contextlib.suppress(FileNotFoundError):
                    if p.suffix == ".mp4" and p.stat().st_size >= min_bytes:
                        return True
            return False

        return fired

    def fitting() -> Callable[[float], bool]:
        return lambda _: len(_cache_keys(cache)) == n  # every answer in: fitting and mixing

    plan: list[tuple[str, Callable[[], Callable[[float], bool]], int]] = [
        ("startup", lambda: lambda t: t >= 0.8, signal.SIGKILL),
        ("translating", lambda: entries(2), signal.SIGKILL),
        ("ctrl-c translating", lambda: entries(4), signal.SIGINT),
        ("translating later", lambda: entries(6), signal.SIGKILL),
        ("fitting", fitting, signal.SIGKILL),
        ("muxing", lambda: encoding(0), signal.SIGKILL),
        ("ctrl-c muxing", lambda: encoding(0), signal.SIGINT),
        ("muxing later", lambda: encoding(200_000), signal.SIGKILL),
    ]
    runs = []
    for label, make, sig in plan:
        parts_before = set(_part_files(work))
        runs.append(_run(args, label, emu, cache, watcher, make(), sig))
        r = runs[-1]
        if sig == signal.SIGKILL:
            assert r.returncode == -signal.SIGKILL, (label, r.returncode, r.stderr)
        else:
            assert r.returncode == 130, (label, r.returncode, r.stderr)
            assert r.seconds < 5.0, (label, r.seconds)
            assert r.stderr.strip() == "dubkit: error: interrupted", (label, r.stderr)
            # an orderly stop leaves no temporary of its own (and may sweep a dead run's)
            assert set(_part_files(work)) <= parts_before
        assert not (work / "talk.es.mp4").exists()  # never finished, so never under its name
        for p in _part_files(work):  # leftovers are hidden temporary names only
            assert p.name.startswith(".talk.es.") and ".part" in p.name, p
    runs.append(_run(args, "final", emu, cache, watcher))
    final = runs[-1]
    assert final.returncode == 0, final.stderr
    assert _part_files(work) == []  # what the killed runs left was swept by the next write
    # a rerun killed while replacing complete outputs leaves the complete ones in place
    done = {p: p.read_bytes() for p in watcher.finals}
    again = _run(args, "replacing", emu, cache, watcher, encoding(200_000), signal.SIGKILL)
    assert again.returncode == -signal.SIGKILL and again.records == ()
    assert {p: p.read_bytes() for p in watcher.finals} == done

    # the outputs are the uninterrupted run's
    for suffix in (".es.srt",):
        assert (work / f"talk{suffix}").read_text() == (ref_dir / f"talk{suffix}").read_text()
    assert _manifest_core(work / "talk.es.dubkit.json") == _manifest_core(
        ref_dir / "talk.es.dubkit.json"
    )
    ours, theirs = _dub_track(work / "talk.es.mp4"), _dub_track(ref_dir / "talk.es.mp4")
    assert ours.shape == theirs.shape and np.array_equal(ours, theirs)  # bit-exact
    assert hashlib.sha256(src.read_bytes()).hexdigest() == src_sha

    # no answer that had arrived (was stored) before an interruption was asked for again
    by_key = {v: k for k, v in keys.items()}
    for r in runs:
        asked = {x.audio_sha256 for x in r.records}
        assert not asked & {by_key[k] for k in r.cached_before}, r.label
    ok = Counter(x.audio_sha256 for r in runs for x in r.records if x.ok)
    assert set(ok) == set(keys)
    # an answer paid twice only if the kill landed between its last byte and its storage
    twice = {s for s, c in ok.items() if c > 1}
    assert len(twice) <= 1, twice
    assert sum(1 for r in runs if r.records) >= 4  # the interruptions did cut translation


# --- 5. partial failure ------------------------------------------------------------------


def _snr_db(reference: np.ndarray, other: np.ndarray) -> float:
    noise = float(np.sum((other - reference) ** 2))
    return 10 * np.log10(float(np.sum(reference**2)) / max(noise, 1e-20))


def _untouched_spans(items: list[dict[str, Any]], margin_ms: int = 150) -> list[tuple[int, int]]:
    """The failed utterances' spans, less any place within ``margin_ms`` of a dubbed clip."""
    placed = [(d["start_ms"], d["end_ms"]) for it in items if (d := it.get("dub"))]
    spans = []
    for it in items:
        if it["status"] != "failed":
            continue
        start, end = int(it["start_ms"]), int(it["end_ms"])
        for a, b in placed:
            if a - margin_ms < end and start < b + margin_ms:  # overlap: keep the larger side
                left, right = (start, a - margin_ms), (b + margin_ms, end)
                start, end = max(left, right, key=lambda s: s[1] - s[0])
        if end - start >= 300:
            spans.append((start, end))
    return spans


@pytest.mark.slow
def test_partial_failure_keeps_the_original_and_a_rerun_fills_only_the_gaps(
    tmp_path: Path,
) -> None:
    src = Path(shutil.copy(FIX / "speech.mp4", tmp_path / "talk.mp4"))
    env = {"DASHSCOPE_API_KEY": KEY}
    faulty = EmulatorConfig(api_key=KEY, fault_rate=0.5, faults=("500",), seed=1)
    with Emulator(faulty) as emu:
        url, port = emu.base_url, emu.port
        args: list[str | Path] = ["dub", src, "--to", "es", "--base-url", url, "--retries", "0",
                "--cache-dir", tmp_path / "cache"]  # fmt: skip
        r = run_cli(*args, "--json", env=env)
        records = emu.records
    assert r.returncode == 4, r.stderr
    assert "Traceback" not in r.stderr and KEY not in r.stderr
    summary = json.loads(r.stdout)
    manifest = json.loads((tmp_path / "talk.es.dubkit.json").read_text(encoding="utf-8"))
    items = manifest["utterances"]
    failed = [it for it in items if it["status"] == "failed"]
    n_faults = sum(1 for x in records if x.fault == "500")
    assert len(records) == len(items)  # --retries 0: one attempt each
    assert 0 < len(failed) == n_faults == summary["failed"] == manifest["totals"]["failed"]
    assert summary["status"] == 4 and summary["utterances"] == len(items)
    for p in (tmp_path / "talk.es.mp4", tmp_path / "talk.es.dubkit.json"):
        assert p.stat().st_mode & 0o777 == 0o666 & ~_umask(), p  # not mkstemp's 0o600
    for it in failed:
        assert it["text"] is None and "dub" not in it and "HTTP 500" in it["error"]
        assert it["attempts"] == 1
    # where an utterance failed, the dub track is the original: not dubbed, not ducked
    out = tmp_path / "talk.es.mp4"
    dub, original = _dub_track(out), _decode_track(out, 1)
    spans = _untouched_spans(items)
    assert spans, "every failed utterance is next to a dubbed clip"
    for a, b in spans:
        sl = slice(a * 48, b * 48)
        assert _snr_db(original[:, sl], dub[:, sl]) > 20, (a, b)
    # and where a clip was dubbed, it is not (the comparison can tell them apart)
    ok = [it["dub"] for it in items if it.get("dub")]
    d = ok[0]
    sl = slice(int(d["start_ms"]) * 48, int(d["end_ms"]) * 48)
    assert _snr_db(original[:, sl], dub[:, sl]) < 3

    with Emulator(EmulatorConfig(api_key=KEY, port=port)) as emu:
        assert emu.base_url == url  # same endpoint, so the same cache keys
        again = run_cli(*args, "--json", env=env)
        rerun = emu.records
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["failed"] == 0
    assert len(rerun) == len(failed) and all(x.ok for x in rerun)
    failed_shas = {x.audio_sha256 for x in records if x.fault == "500"}
    assert {x.audio_sha256 for x in rerun} == failed_shas  # only the gaps were asked for
    manifest = json.loads((tmp_path / "talk.es.dubkit.json").read_text(encoding="utf-8"))
    assert all(it["status"] == "ok" for it in manifest["utterances"])


def _decode_track(path: Path, index: int) -> np.ndarray:
    with av.open(str(path)) as c:
        blocks = [f.to_ndarray() for f in c.decode(c.streams.audio[index])]
    return np.concatenate(blocks, axis=-1)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_subtitle_files_get_the_usual_permissions(tmp_path: Path) -> None:
    from dubkit.subtitles import write_srt, write_vtt
    from dubkit.types import Cue

    cues = [Cue(1000, 2500, ("Hola.",))]
    for path in (write_srt(cues, tmp_path / "a.srt"), write_vtt(cues, tmp_path / "a.vtt")):
        assert path.stat().st_mode & 0o777 == 0o666 & ~_umask(), oct(path.stat().st_mode)


def test_the_mux_ends_when_a_ctrl_c_spent_the_feeders_wake_up(tmp_path: Path) -> None:
    """A dub hung for good once after Ctrl-C while muxing (this file's kill-and-resume test):
    the main thread waited for the mux's feeder thread, which slept on an empty queue with
    the mix's end in it. Ctrl-C had landed inside ``Queue.put``, in ``Condition.notify``
    between releasing the feeder's waiter and forgetting it; the spent waiter stays first in
    line and takes the next notify. That state is made here as the interruption leaves it
    (CPython's own comment in ``notify``, gh-92530, describes it), and the mux must end."""
    import threading

    from dubkit import mux

    src = FIX / "speech.wav"
    info = media.probe(src)
    plan = mux.MuxPlan(16_000, 1, "spa", "dub")
    out = tmp_path / "talk.es.wav"
    done: list[bool] = []

    def dub() -> None:
        with mux.Muxer(src, info, plan, out) as m:
            m.write(np.zeros((1, 16_000), np.float32))
            waiters = m._queue.not_empty._waiters  # type: ignore[attr-defined]
            while not waiters:  # the feeder has taken the block and waits for the next
                time.sleep(0.01)
            spent = threading.Lock()
            spent.acquire()  # released by the interrupted notify, then taken by its waiter
            waiters.appendleft(spent)
        done.append(True)

    worker = threading.Thread(target=dub, daemon=True)
    worker.start()
    worker.join(30)
    assert done, "the mux never ended: its end went to a spent waiter"
    assert media.probe(out).duration_ms == 1000
