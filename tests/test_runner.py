"""Pacing (fake clock), splitting maths, and the concurrent runner against the emulator."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dubkit.pacing import (
    RateLimiter,
    attempt_scope,
    audio_tokens,
    count_attempt,
    estimate_tokens,
)
from dubkit.runner import ArrayAudio, quietest_split


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
