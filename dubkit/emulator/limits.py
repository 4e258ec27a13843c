"""Per-minute quotas (sliding 60 s window) and the seeded fault draw."""

from __future__ import annotations

import random
import threading
from collections import deque
from dataclasses import dataclass

from dubkit.emulator.protocol import ApiError

WINDOW_S = 60.0


class Quota:
    """Requests and tokens admitted in the last 60 s, checked against ``rpm``/``tpm``.

    A request is counted when admitted, with its input tokens; its output tokens
    are added when its answer is built (so the window holds each request's total).
    """

    def __init__(self, rpm: int | None, tpm: int | None) -> None:
        self.rpm = rpm
        self.tpm = tpm
        self._lock = threading.Lock()
        self._requests: deque[float] = deque()
        self._tokens: deque[tuple[float, int]] = deque()

    def _prune(self, now: float) -> None:
        while self._requests and self._requests[0] <= now - WINDOW_S:
            self._requests.popleft()
        while self._tokens and self._tokens[0][0] <= now - WINDOW_S:
            self._tokens.popleft()

    def admit(self, now: float, tokens: int) -> None:
        """Count the request, or raise the documented 429 when a quota is exhausted."""
        with self._lock:
            self._prune(now)
            if self.rpm is not None and len(self._requests) >= self.rpm:
                raise ApiError(
                    429, "limit_requests",
                    f"Requests rate limit exceeded ({self.rpm} per minute), "
                    "please try again later.",
                    err_type="limit_requests",
                )
            used = sum(t for _, t in self._tokens)
            if self.tpm is not None and used + tokens > self.tpm:
                raise ApiError(
                    429, "insufficient_quota",
                    f"Allocated quota exceeded ({self.tpm} tokens per minute), "
                    "please try again later.",
                    err_type="insufficient_quota",
                )
            self._requests.append(now)
            self._tokens.append((now, tokens))

    def add_tokens(self, now: float, tokens: int) -> None:
        with self._lock:
            self._tokens.append((now, tokens))


@dataclass(frozen=True, slots=True)
class FaultDraw:
    kind: str | None
    after_chunks: int  # chunks sent before a mid-stream fault strikes


class FaultDice:
    """Draws a fault (or none) per admitted request, seeded, in arrival order."""

    def __init__(self, rate: float, kinds: tuple[str, ...], seed: int) -> None:
        self.rate = rate
        self.kinds = kinds
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def draw(self) -> FaultDraw:
        with self._lock:
            roll = self._rng.random()
            pick = self._rng.randrange(len(self.kinds)) if self.kinds else 0
            after = self._rng.randint(1, 3)
        if self.kinds and roll < self.rate:
            return FaultDraw(self.kinds[pick], after)
        return FaultDraw(None, after)


def fault_error(kind: str) -> ApiError:
    """The error answer of a fault that strikes before streaming starts."""
    if kind == "429":
        return ApiError(429, "limit_requests",
                        "Requests rate limit exceeded, please try again later.",
                        err_type="limit_requests")
    if kind == "429_native":
        return ApiError(429, "Throttling.RateQuota",
                        "Requests rate limit exceeded, please try again later.", native=True)
    if kind == "500":
        return ApiError(500, "internal_error",
                        "An internal error has occurred, please try again later.",
                        err_type="internal_error")
    if kind == "503":
        return ApiError(503, "ModelUnavailable",
                        "The model is unavailable or overloaded, please try again later.",
                        err_type="ModelUnavailable")
    raise ValueError(f"fault {kind!r} does not answer before streaming")
