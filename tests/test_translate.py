"""Pacing (fake clock), splitting maths, and the concurrent translate stage against the emulator."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dubkit.emulator import Emulator, EmulatorConfig
from dubkit.errors import AuthError
from dubkit.translate import (
    ArrayAudio,
    UtteranceResult,
    quietest_split,
    translate_all,
    translate_all_sync,
)
from dubkit.translate.cache import TranslationCache
from dubkit.translate.cloud import CloudConfig, CloudTranslator
from dubkit.translate.pacing import (
    RateLimiter,
    attempt_scope,
    audio_tokens,
    count_attempt,
    estimate_tokens,
)
from dubkit.translate.protocol import Job
from dubkit.types import Utterance
from tests.conftest import noise_bursts


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _grant_times(limiter: RateLimiter, clock: FakeClock, tokens: list[int]) -> list[float]:
    async def run() -> list[float]:
        times = []
        for n in tokens:
            await limiter.acquire(n)
            times.append(clock.now)
        return times

    return asyncio.run(run())


def test_estimate_tokens() -> None:
    assert audio_tokens(0) == 0
    assert audio_tokens(1) == 13  # under 1 s counts as 1 s: ceil(12.5)
    assert audio_tokens(1000) == 13
    assert audio_tokens(4000) == 50
    assert audio_tokens(60_000) == 750
    assert estimate_tokens(4000, 4000) == 100
    assert estimate_tokens(300, 0) == 13


def test_requests_are_spaced_and_never_exceed_rpm_in_any_window() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rpm=60, tpm=None, margin=0.0, clock=clock, sleep=clock.sleep)
    times = _grant_times(limiter, clock, [10] * 130)
    gaps = np.diff(times)
    assert gaps.min() >= 1.0 - 1e-9  # 60/rpm apart: no burst
    for i, t in enumerate(times):  # sliding 60 s window
        assert sum(1 for u in times[i:] if u < t + 60) <= 60
    assert times[-1] - times[0] == pytest.approx(129.0)


def test_margin_keeps_headroom() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rpm=100, tpm=None, margin=0.05, clock=clock, sleep=clock.sleep)
    times = _grant_times(limiter, clock, [1] * 20)
    assert min(np.diff(times)) >= 60 / 95 - 1e-9


def test_token_budget_over_sliding_window() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rpm=None, tpm=1000, margin=0.0, clock=clock, sleep=clock.sleep)
    times = _grant_times(limiter, clock, [400, 400, 400, 100, 900, 2000])
    # 400+400 fit at once; the third waits for the first to leave the window
    assert times[:2] == [1000.0, 1000.0]
    assert times[2] == pytest.approx(1060.0)
    assert times[3] == pytest.approx(1060.0)  # 400 + 400 + 100 <= 1000... after expiry
    assert times[4] == pytest.approx(1120.0)
    assert times[5] == pytest.approx(1180.0)  # larger than the budget: alone in a window
    charged = [400, 400, 400, 100, 900, 1000]
    for t in times:
        window = [n for u, n in zip(times, charged, strict=True) if t <= u < t + 60]
        assert sum(window) <= 1000


def test_penalize_pauses_everybody() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rpm=600, tpm=None, margin=0.0, clock=clock, sleep=clock.sleep)
    _grant_times(limiter, clock, [1])
    limiter.penalize(5.0)
    limiter.penalize(1.0)  # a shorter penalty never shortens the pause
    assert limiter.wait_time(1) == pytest.approx(5.0)
    (t,) = _grant_times(limiter, clock, [1])
    assert t == pytest.approx(1005.0)


def test_concurrent_acquirers_share_the_budget() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rpm=120, tpm=None, margin=0.0, clock=clock, sleep=clock.sleep)
    granted: list[float] = []

    async def worker() -> None:
        for _ in range(5):
            await limiter.acquire(1)
            granted.append(clock.now)

    async def main() -> None:
        await asyncio.gather(*(worker() for _ in range(4)))

    asyncio.run(main())
    granted.sort()
    assert len(granted) == 20
    assert min(np.diff(granted)) >= 0.5 - 1e-9


def test_bad_limits_rejected() -> None:
    with pytest.raises(ValueError):
        RateLimiter(rpm=0)
    with pytest.raises(ValueError):
        RateLimiter(tpm=-1)


def test_attempt_scope_counts_only_inside() -> None:
    count_attempt()  # outside any scope: ignored
    with attempt_scope() as n:
        count_attempt()
        count_attempt()
    assert n == [2]


# --- splitting -------------------------------------------------------------------------


def test_quietest_split_finds_the_pause_near_the_middle() -> None:
    rng = np.random.default_rng(0)
    pcm = rng.integers(-9000, 9000, 16 * 4000).astype(np.int16)  # 4 s of noise
    pcm[16 * 1700 : 16 * 1760] //= 100  # a quiet 60 ms at 1.70-1.76 s
    pcm[16 * 200 : 16 * 400] = 0  # silence outside the middle half is not chosen
    cut = quietest_split(pcm)
    assert 1700 <= cut <= 1760


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=20_000), st.integers(min_value=0, max_value=2**31))
def test_quietest_split_stays_in_the_middle_half(ms: int, seed: int) -> None:
    pcm = np.random.default_rng(seed).integers(-500, 500, ms * 16).astype(np.int16)
    cut = quietest_split(pcm)
    assert 0 <= cut <= ms
    if ms >= 80:
        assert ms / 4 - 20 <= cut <= 3 * ms / 4 + 20


def test_array_audio_reads_spans() -> None:
    samples = np.arange(16_000 * 3, dtype=np.int16)
    audio = ArrayAudio(samples)
    span = audio.read(1000, 1500)
    assert len(span) == 8000 and span[0] == 16_000
    with pytest.raises(ValueError):
        ArrayAudio(samples.astype(np.float32))


# --- the translate stage against the emulator -------------------------------------------

KEY = "sk-runner-key-31337"


def _speechy(
    n_utts: int, utt_ms: int, gap_ms: int = 200, seed: int = 0
) -> tuple[ArrayAudio, list[Utterance]]:
    return noise_bursts(n_utts, utt_ms, gap_ms, seed, peak=6000)


def _translator(
    emu: Emulator, key: str = KEY, limiter: RateLimiter | None = None, **kw: Any
) -> CloudTranslator:
    opts: dict[str, Any] = {
        "stall_timeout_s": 0.5, "timeout_s": 5.0, "backoff_base_s": 0.01,
        "backoff_cap_s": 0.05, "max_retries": 10, **kw,
    }  # fmt: skip
    config = CloudConfig(api_key=key, base_url=emu.base_url, **opts)
    return CloudTranslator(config, limiter=limiter or RateLimiter(None, None))


def _sha(audio: ArrayAudio, u: Utterance) -> str:
    return hashlib.sha256(audio.read(u.start_ms, u.end_ms).tobytes()).hexdigest()


def _assert_tiles(results: list[UtteranceResult], utts: list[Utterance]) -> None:
    """Results are in order and, pieces joined, cover each utterance exactly."""
    spans = [(r.utterance.start_ms, r.utterance.end_ms) for r in results]
    assert spans == sorted(spans)
    i = 0
    for u in utts:
        assert spans[i][0] == u.start_ms
        while spans[i][1] != u.end_ms:
            assert spans[i + 1][0] == spans[i][1]
            i += 1
        i += 1
    assert i == len(spans)


@pytest.mark.slow
def test_hundred_utterances_at_20_percent_faults_then_a_free_rerun(tmp_path: Path) -> None:
    audio, utts = _speechy(100, 700)
    job = Job("es", "en", "Cherry")
    cache = TranslationCache(tmp_path / "cache")
    progress: list[tuple[int, int]] = []
    cfg = EmulatorConfig(api_key=KEY, fault_rate=0.2, stall_s=3.0, seed=0)
    with Emulator(cfg) as emu:
        results = translate_all_sync(
            _translator(emu), audio, utts, job, concurrency=4, cache=cache,
            on_progress=lambda d, t: progress.append((d, t)),
        )  # fmt: skip
        first = emu.records
        rerun = translate_all_sync(_translator(emu), audio, utts, job, cache=cache)
        assert len(emu.records) == len(first)  # the rerun sent nothing
    assert [r.utterance for r in results] == utts
    assert all(r.ok and r.error is None and not r.cached for r in results)
    assert all(r.translation is not None and r.translation.audio for r in results)
    faults = Counter(r.fault for r in first if r.fault)
    assert set(faults) == {"429", "429_native", "500", "503", "drop", "error_event", "stall"}
    ok_per_audio = Counter(r.audio_sha256 for r in first if r.ok)
    assert ok_per_audio == Counter(_sha(audio, u) for u in utts)  # each answer paid once
    assert sum(r.attempts for r in results) == len(first)
    assert progress == [(i, 100) for i in range(1, 101)]
    assert [r.translation for r in rerun] == [r.translation for r in results]
    assert all(r.cached and r.attempts == 0 for r in rerun)
    entries = list((tmp_path / "cache").rglob("*.dkc"))
    assert len(entries) == 100
    assert not any(KEY.encode() in p.read_bytes() for p in entries)


def test_concurrency_is_bounded(tmp_path: Path) -> None:
    audio, utts = _speechy(12, 300)
    with Emulator(EmulatorConfig(api_key=KEY, latency_s=0.05)) as emu:
        results = translate_all_sync(_translator(emu), audio, utts, Job("fr"), concurrency=3)
        peak = max(r.concurrency for r in emu.records)
    assert all(r.ok for r in results)
    assert peak == 3


def test_failures_are_reported_and_do_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    audio, utts = _speechy(16, 300)
    cfg = EmulatorConfig(api_key=KEY, fault_rate=0.5, faults=("500", "drop"), seed=3)
    with Emulator(cfg) as emu, caplog.at_level(logging.DEBUG):
        results = translate_all_sync(_translator(emu, max_retries=0), audio, utts, Job("it"))
    failed = [r for r in results if not r.ok]
    assert 0 < len(failed) < len(results)
    assert [r.utterance for r in results] == utts
    for r in failed:
        assert r.translation is None and r.error and r.attempts == 1
        assert "gave up after 1 attempts" in r.error
    assert KEY not in caplog.text


def test_bad_key_aborts_the_run_quickly() -> None:
    audio, utts = _speechy(30, 300)
    with Emulator(EmulatorConfig(api_key=KEY)) as emu:
        with pytest.raises(AuthError) as e:
            translate_all_sync(_translator(emu, key="sk-wrong-9"), audio, utts, Job("es"))
        assert len(emu.records) <= 4  # only the first wave of requests was sent
    assert e.value.exit_status == 3 and "sk-wrong-9" not in str(e.value)


def test_truncated_utterance_is_split_at_a_pause(tmp_path: Path) -> None:
    audio, _ = _speechy(2, 3000, gap_ms=0)  # two bursts back to back: one 6 s utterance
    samples = audio.samples.copy()
    samples[16 * 2900 : 16 * 3100] = 0  # a pause at 2.9-3.1 s
    audio = ArrayAudio(samples)
    whole = [Utterance(0, 6000)]
    cache = TranslationCache(tmp_path)
    with Emulator(EmulatorConfig(api_key=KEY)) as emu:
        tr = _translator(emu, max_tokens=90)
        results = translate_all_sync(tr, audio, whole, Job("es", None, "Cherry"), cache=cache)
        reasons = [r.finish_reason for r in emu.records]
    assert reasons[0] == "length" and reasons.count("stop") == len(results) >= 2
    _assert_tiles(results, whole)
    assert 2900 <= results[0].utterance.end_ms <= 3100
    assert all(r.ok and r.splits >= 1 for r in results)


def test_truncation_at_max_depth_is_a_reported_failure() -> None:
    audio, utts = _speechy(1, 3000)
    with Emulator(EmulatorConfig(api_key=KEY)) as emu:
        results = translate_all_sync(
            _translator(emu, max_tokens=5), audio, utts, Job("es", None, "Cherry"),
            max_split_depth=1, min_split_ms=500,
        )  # fmt: skip
    assert len(results) == 2 and not any(r.ok for r in results)
    assert all(r.error and "max_tokens" in r.error for r in results)
    _assert_tiles(results, utts)


@pytest.mark.slow
def test_oversize_utterance_is_split_not_failed() -> None:
    seconds = 250  # over the 10 MiB data-URL limit as a 16 kHz WAV
    rng = np.random.default_rng(5)
    samples = rng.integers(-3000, 3000, seconds * 16_000).astype(np.int16)
    audio = ArrayAudio(samples)
    utts = [Utterance(0, seconds * 1000)]
    with Emulator(EmulatorConfig(api_key=KEY)) as emu:
        results = translate_all_sync(_translator(emu), audio, utts, Job("en"))
        records = emu.records
    assert len(results) == 2 and all(r.ok for r in results)
    assert len(records) == 2 and all(r.ok for r in records)  # nothing refused by the server
    _assert_tiles(results, utts)


@pytest.mark.slow
def test_pacing_never_trips_the_quota_nor_bursts() -> None:
    rpm = 300
    audio, utts = _speechy(25, 200)
    with Emulator(EmulatorConfig(api_key=KEY, rpm=rpm)) as emu:
        paced = translate_all_sync(
            _translator(emu, limiter=RateLimiter(rpm=rpm, tpm=100_000)), audio, utts, Job("es"),
            concurrency=4,
        )  # fmt: skip
        times = [r.time for r in emu.records]
        statuses = [r.status for r in emu.records]
        emu.reset_records()
        translate_all_sync(_translator(emu), audio, utts, Job("es"), concurrency=4, cache=None)
        unpaced = [r.time for r in emu.records]
    assert all(r.ok for r in paced) and statuses == [200] * 25

    def busiest_second(ts: list[float]) -> int:
        return max(sum(1 for u in ts if t <= u < t + 1.0) for t in ts)

    # at most the per-second rate, give or take one request of transport jitter (the first
    # request pays for the connection, so it can arrive just before the second)
    assert busiest_second(times) <= rpm // 60 + 1
    assert float(np.median(np.diff(sorted(times)))) >= 60 / rpm
    assert busiest_second(unpaced) > 2 * (rpm // 60 + 1)  # without pacing the same run bursts


def test_cancelled_run_keeps_what_arrived(tmp_path: Path) -> None:
    audio, utts = _speechy(12, 300)
    job = Job("de")
    cache = TranslationCache(tmp_path)
    with Emulator(EmulatorConfig(api_key=KEY, latency_s=0.1)) as emu:

        async def interrupted() -> None:
            tr = _translator(emu)
            run = translate_all(tr, audio, utts, job, concurrency=2, cache=cache)
            task = asyncio.ensure_future(run)
            await asyncio.sleep(0.45)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await tr.aclose()

        asyncio.run(interrupted())
        stored = sum(1 for _ in tmp_path.rglob("*.dkc"))
        before = len(emu.records)
        results = translate_all_sync(_translator(emu), audio, utts, job, cache=cache)
        resent = len(emu.records) - before
    assert 0 < stored < len(utts)
    assert resent == len(utts) - stored
    assert sum(r.cached for r in results) == stored and all(r.ok for r in results)
