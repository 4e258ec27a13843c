"""The emulator's settings and the record it keeps of every request."""

from __future__ import annotations

from dataclasses import dataclass

#: Fault kinds the emulator can inject (see :class:`EmulatorConfig`).
FAULT_KINDS: tuple[str, ...] = (
    "429", "429_native", "500", "503", "drop", "error_event", "stall",
)

DEFAULT_MODELS: tuple[str, ...] = (
    "qwen3-livetranslate-flash",
    "qwen3-livetranslate-flash-2025-12-01",
)


@dataclass(frozen=True, slots=True)
class EmulatorConfig:
    """How the emulator behaves.

    ``api_key`` None accepts any non-empty key. ``latency_s`` delays the first byte
    of every answer; ``chunk_interval_s`` separates SSE chunks. ``audio_chunk_bytes``
    is the raw PCM size of each audio piece before base64 (an odd size splits
    samples across pieces, as the real service may). ``rpm``/``tpm`` are sliding
    60 s quotas. ``fault_rate`` is the probability that an admitted request gets a
    fault drawn uniformly from ``faults`` by a RNG seeded with ``seed``, in arrival
    order. ``engine`` is "synthetic" or "local" (:class:`dubkit.translate.local.LocalTranslator`).
    ``canned`` makes the synthetic engine cut each answer's speech from a bank made once
    per voice instead of synthesizing it: the same lengths and texts for a fraction of the
    CPU, for benchmarks where the emulator shares the machine being measured (the real
    service's work happens on its own servers).
    ``unknown_voices`` are refused with a 400 naming the voice, as a deployment that
    predates them does (``("Ethan",)``: Ethan is only in the newest documents).
    ``down_targets`` are target languages the model is down for: each of their requests is
    answered 503, while the other languages' go through.
    """

    api_key: str | None = None
    models: tuple[str, ...] = DEFAULT_MODELS
    latency_s: float = 0.0
    chunk_interval_s: float = 0.0
    audio_chunk_bytes: int = 9600
    rpm: int | None = None
    tpm: int | None = None
    fault_rate: float = 0.0
    faults: tuple[str, ...] = FAULT_KINDS
    stall_s: float = 30.0
    seed: int = 0
    engine: str = "synthetic"
    canned: bool = False
    unknown_voices: tuple[str, ...] = ()
    down_targets: tuple[str, ...] = ()
    host: str = "127.0.0.1"
    port: int = 0

    def __post_init__(self) -> None:
        unknown = [f for f in self.faults if f not in FAULT_KINDS]
        if unknown:
            raise ValueError(f"unknown fault kinds {unknown}; known: {', '.join(FAULT_KINDS)}")
        if not 0.0 <= self.fault_rate <= 1.0:
            raise ValueError(f"fault_rate must be in [0, 1], got {self.fault_rate}")
        if self.fault_rate > 0 and not self.faults:
            raise ValueError("fault_rate > 0 needs at least one fault kind")
        if self.audio_chunk_bytes < 1:
            raise ValueError(f"audio_chunk_bytes must be >= 1, got {self.audio_chunk_bytes}")
        if self.engine not in ("synthetic", "local"):
            raise ValueError(f"engine must be 'synthetic' or 'local', got {self.engine!r}")
        for name in ("latency_s", "chunk_interval_s", "stall_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        for name in ("rpm", "tpm"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1 or None")


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """What the emulator saw and did for one request.

    ``time`` is ``time.monotonic()`` at arrival (comparable with the test's own
    clock); ``concurrency`` counts the requests in flight at arrival, this one
    included. ``audio_sha256`` is the SHA-256 of the decoded input as PCM16 mono
    16 kHz little-endian (equal to ``sha256(pcm.tobytes())`` when the client sent
    a 16 kHz mono PCM16 WAV); None when the request failed before decoding.
    ``ok`` is True only when the full answer, ``[DONE]`` included, was written.
    """

    time: float
    status: int
    fault: str | None
    concurrency: int
    audio_sha256: str | None
    target_lang: str | None
    modalities: tuple[str, ...]
    ok: bool
    path: str = ""
    model: str | None = None
    request_id: str = ""
    error_code: str | None = None
    input_ms: int = 0
    voice: str | None = None  # the voice asked for (None: text only, or not parsed)
    output_ms: int = 0
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
