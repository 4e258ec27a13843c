"""Client-side pacing: stay under the service's per-minute quotas instead of tripping them.

qwen3-livetranslate-flash allows about 100 requests and 100,000 tokens per minute per
account, possibly enforced per second. One :class:`RateLimiter` is shared by every
concurrent request of a run: :meth:`RateLimiter.acquire` waits until both budgets allow
one more request over a sliding 60 s window, and also spaces requests at least
``60 / rpm`` seconds apart so that no burst ever trips a per-second enforcement.
After a 429, :meth:`RateLimiter.penalize` pauses everybody.

Also here: the token estimate used for pacing and ``--dry-run`` (:func:`estimate_tokens`),
the retry delay (:func:`backoff_delay`, exponential with full jitter) and the per-task
attempt counter the translate stage reads (:func:`attempt_scope`, :func:`count_attempt`).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import math
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

#: Tokens per second of audio, in and out (anything under 1 s counts as 1 s).
TOKENS_PER_AUDIO_SECOND = 12.5
WINDOW_S = 60.0


def audio_tokens(audio_ms: int) -> int:
    """Tokens billed for ``audio_ms`` of audio: 12.5 a second, at least one second's worth."""
    if audio_ms <= 0:
        return 0
    return math.ceil(TOKENS_PER_AUDIO_SECOND * max(audio_ms, 1000) / 1000)


def estimate_tokens(audio_ms_in: int, audio_ms_out_estimate: int) -> int:
    """Estimated tokens of one request: audio in plus the audio expected back."""
    return audio_tokens(audio_ms_in) + audio_tokens(audio_ms_out_estimate)


def backoff_delay(
    attempt: int,
    *,
    base_s: float,
    cap_s: float,
    retry_after: float | None = None,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before retry number ``attempt + 1`` (``attempt`` counts from 0).

    Exponential backoff with full jitter: uniform in ``[0, min(cap, base * 2**attempt)]``.
    A server's ``Retry-After`` is honoured as a floor (itself capped at ``cap_s``).
    """
    ceiling = min(cap_s, base_s * (2.0 ** min(attempt, 62)))
    delay = ceiling * rand()
    if retry_after is not None and retry_after > 0:
        delay = max(delay, min(retry_after, cap_s))
    return delay


class RateLimiter:
    """Requests-per-minute and tokens-per-minute budget shared by concurrent requests.

    ``rpm``/``tpm`` of ``None`` means unlimited. ``margin`` keeps that fraction of each
    quota unused, so clock skew with the server never puts us over. ``clock`` and
    ``sleep`` are injectable for tests. The limiter holds no lock bound to an event loop,
    so one instance can serve several successive loops.
    """

    def __init__(
        self,
        rpm: int | None = 100,
        tpm: int | None = 100_000,
        *,
        margin: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        if rpm is not None and rpm <= 0:
            raise ValueError(f"rpm must be positive, got {rpm}")
        if tpm is not None and tpm <= 0:
            raise ValueError(f"tpm must be positive, got {tpm}")
        if not 0 <= margin < 1:
            raise ValueError(f"margin must be in [0, 1), got {margin}")
        self.rpm = rpm
        self.tpm = tpm
        self._rpm_eff = None if rpm is None else max(1, math.floor(rpm * (1 - margin)))
        self._tpm_eff = None if tpm is None else max(1, math.floor(tpm * (1 - margin)))
        self._interval = 0.0 if rpm is None else WINDOW_S / (rpm * (1 - margin))
        self._clock = clock
        self._sleep = sleep
        self._grants: deque[tuple[float, int]] = deque()
        self._window_tokens = 0
        self._last_grant: float | None = None
        self._paused_until = 0.0

    def __repr__(self) -> str:
        return f"RateLimiter(rpm={self.rpm}, tpm={self.tpm})"

    def penalize(self, seconds: float) -> None:
        """Pause every request for ``seconds`` from now (after a 429)."""
        until = self._clock() + max(0.0, seconds)
        if until > self._paused_until:
            log.info("rate limited by the service: pausing all requests for %.2f s", seconds)
            self._paused_until = until

    def wait_time(self, tokens: int) -> float:
        """Seconds to wait before a request of ``tokens`` may start (0 = now)."""
        now = self._clock()
        self._expire(now)
        waits = [self._paused_until - now]
        if self._last_grant is not None:
            waits.append(self._last_grant + self._interval - now)
        if self._rpm_eff is not None and len(self._grants) >= self._rpm_eff:
            waits.append(self._grants[-self._rpm_eff][0] + WINDOW_S - now)
        if self._tpm_eff is not None:
            waits.append(self._token_wait(min(tokens, self._tpm_eff), now))
        return max(0.0, *waits)

    def _token_wait(self, tokens: int, now: float) -> float:
        assert self._tpm_eff is not None
        excess = self._window_tokens + tokens - self._tpm_eff
        if excess <= 0:
            return 0.0
        freed = 0
        for t, n in self._grants:
            freed += n
            if freed >= excess:
                return t + WINDOW_S - now
        return WINDOW_S  # unreachable: tokens <= tpm, so expiring everything suffices

    def _expire(self, now: float) -> None:
        while self._grants and self._grants[0][0] <= now - WINDOW_S:
            _, n = self._grants.popleft()
            self._window_tokens -= n

    async def acquire(self, tokens: int) -> None:
        """Wait until one request of ``tokens`` estimated tokens fits both budgets, then take it."""
        while True:
            wait = self.wait_time(tokens)
            if wait <= 0:
                break
            await self._sleep(wait)
        now = self._clock()
        self._grants.append((now, tokens))
        self._window_tokens += tokens
        self._last_grant = now


_ATTEMPTS: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar(
    "dubkit_attempts", default=None
)


@contextmanager
def attempt_scope() -> Iterator[list[int]]:
    """Count the requests made inside the block (by :func:`count_attempt`); yields ``[n]``."""
    counter = [0]
    token = _ATTEMPTS.set(counter)
    try:
        yield counter
    finally:
        _ATTEMPTS.reset(token)


def count_attempt() -> None:
    """Called by a translator each time it sends a request (no-op outside a scope)."""
    counter = _ATTEMPTS.get()
    if counter is not None:
        counter[0] += 1
