"""The cloud engine: qwen3-livetranslate-flash through the official ``openai`` SDK.

:class:`CloudTranslator` sends one streaming request per utterance (the utterance as a
16 kHz mono PCM16 WAV in a base64 data URL, or a short video clip), gathers the text and
PCM16 24 kHz speech from the stream in whatever order they arrive, and maps every
failure onto :mod:`dubkit.errors`:

- 400 -> :class:`ServiceError` (not retryable), or :class:`TooLargeError` for an
  oversize data URL (also raised before sending, so the translate stage can split);
- 401/403/404 -> :class:`AuthError` (exit status 3);
- 429 and 5xx, dropped connections, timeouts, error events mid-stream, streams that
  stall for ``stall_timeout_s`` or end without a finish -> retryable :class:`ServiceError`;
- ``finish_reason == "length"`` -> :class:`TruncatedError`.

A 400 naming Ethan (only the newest documents list it) switches this and every later request to
Nofish (:data:`~dubkit.languages.FALLBACK_VOICES`); logged once, set in ``Translation.voice``.

Retries are done here (the SDK's own are off): exponential backoff with full jitter,
``Retry-After`` honoured, and every 429 pauses the shared :class:`RateLimiter`.
The API key never appears in any repr, log line or exception text.

The SDK is imported with the first request, not with this module: loading it takes about half
a second (its hundreds of typed models), which a run whose answers are all cached, a dry run
or a redo that sends nothing would spend for nothing.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import logging
import random
import wave
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from dubkit.errors import AuthError, ConfigError, ServiceError, TooLargeError, TruncatedError
from dubkit.languages import FALLBACK_VOICES
from dubkit.translate.config import check_base_url, check_key
from dubkit.translate.pacing import RateLimiter, backoff_delay, count_attempt, estimate_tokens
from dubkit.translate.protocol import Job
from dubkit.types import SERVICE_RATE, VAD_RATE, Translation, Usage

if TYPE_CHECKING:
    import openai

log = logging.getLogger(__name__)

Region = Literal["singapore", "beijing"]

#: Official compatible-mode endpoints. Keys are region-bound.
REGION_URLS: dict[str, str] = {
    "singapore": "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
    "beijing": "https://dashscope.aliyuncs.com/compatible-mode/v1",
}
DEFAULT_MODEL = "qwen3-livetranslate-flash"
#: Largest data-URL item the service accepts (bytes of the URL).
MAX_DATA_URL_BYTES = 10_485_760


@dataclass(frozen=True, slots=True)
class CloudConfig:
    """Settings of the cloud engine. ``api_key`` is never shown by ``repr``.

    ``base_url`` (any compatible server, e.g. the emulator) wins over ``region``.
    ``timeout_s`` bounds connecting and waiting for the response to start;
    ``stall_timeout_s`` is the longest silence tolerated between two stream chunks.
    ``max_retries`` counts retries after the first attempt; the delay before retry n
    is uniform in ``[0, min(backoff_cap_s, backoff_base_s * 2**n)]``.
    """

    api_key: str = field(repr=False)
    base_url: str | None = None
    region: Region = "singapore"
    model: str = DEFAULT_MODEL
    timeout_s: float = 60.0
    stall_timeout_s: float = 30.0
    max_retries: int = 6
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 60.0
    max_tokens: int | None = None
    data_url_prefix: str = "data:;base64,"

    def __post_init__(self) -> None:
        check_key(self.api_key)
        if self.base_url is None and self.region not in REGION_URLS:
            raise ConfigError(
                f"unknown region {self.region!r}; choose one of: {', '.join(REGION_URLS)}"
            )
        check_base_url(self.base_url)
        if self.max_retries < 0 or self.timeout_s <= 0 or self.stall_timeout_s <= 0:
            raise ConfigError("max_retries must be >= 0 and timeouts positive")

    @property
    def endpoint(self) -> str:
        """The base URL requests go to."""
        return (self.base_url or REGION_URLS[self.region]).rstrip("/")


def wav_bytes(pcm: np.ndarray, rate: int = VAD_RATE) -> bytes:
    """``pcm`` (int16 mono) as a WAV file."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.ascontiguousarray(pcm, dtype="<i2").tobytes())
    return buf.getvalue()


def build_request(
    pcm: np.ndarray, job: Job, config: CloudConfig, *, video: bytes | None = None
) -> dict[str, Any]:
    """The keyword arguments of ``chat.completions.create`` for one utterance.

    Raises :class:`TooLargeError` when the data URL would exceed the service's limit.
    """
    if video is not None:
        url = "data:video/mp4;base64," + base64.b64encode(video).decode("ascii")
        part: dict[str, Any] = {"type": "video_url", "video_url": {"url": url}}
    else:
        url = config.data_url_prefix + base64.b64encode(wav_bytes(pcm)).decode("ascii")
        part = {"type": "input_audio", "input_audio": {"data": url, "format": "wav"}}
    if len(url) >= MAX_DATA_URL_BYTES:
        raise TooLargeError(
            f"utterance of {len(pcm) * 1000 // VAD_RATE} ms is {len(url)} bytes as a data URL, "
            f"over the service's limit of {MAX_DATA_URL_BYTES}",
            status=400,
            code="too_large",
        )
    options: dict[str, str] = {"target_lang": job.target}
    if job.source:
        options["source_lang"] = job.source
    kwargs: dict[str, Any] = {
        "model": config.model,
        "messages": [{"role": "user", "content": [part]}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "modalities": ["text", "audio"] if job.voice else ["text"],
        "extra_body": {"translation_options": options},
    }
    if job.voice:
        kwargs["audio"] = {"voice": job.voice, "format": "wav"}
    if config.max_tokens is not None:
        kwargs["max_tokens"] = config.max_tokens
    return kwargs


def _get(obj: Any, name: str) -> Any:
    """``obj.name`` or ``obj[name]`` (SDK models keep unknown fields as extras), else None."""
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(name)
    value = getattr(obj, name, None)
    if value is None:
        extra = getattr(obj, "model_extra", None)
        if isinstance(extra, dict):
            value = extra.get(name)
    return value


class StreamAccumulator:
    """Gathers a response stream's chunks, in any order, into a :class:`Translation`."""

    def __init__(self) -> None:
        self.text_parts: list[str] = []
        self.audio_parts: list[str] = []
        self.transcript_parts: list[str] = []
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.request_id = ""

    def feed(self, chunk: Any) -> None:
        """Take one ``ChatCompletionChunk`` (or an equivalent dict)."""
        self.request_id = self.request_id or str(_get(chunk, "id") or "")
        usage = _get(chunk, "usage")
        if usage is not None:
            self.usage = parse_usage(usage)
        for choice in _get(chunk, "choices") or ():
            delta = _get(choice, "delta")
            content = _get(delta, "content")
            if isinstance(content, str) and content:
                self.text_parts.append(content)
            audio = _get(delta, "audio")
            data = _get(audio, "data")
            if isinstance(data, str) and data:
                self.audio_parts.append(data)
            transcript = _get(audio, "transcript")
            if isinstance(transcript, str) and transcript:
                self.transcript_parts.append(transcript)
            reason = _get(choice, "finish_reason")
            if reason:
                self.finish_reason = str(reason)

    def result(self) -> Translation:
        """The translation, or an error if the stream was cut short or truncated."""
        rid = self.request_id
        if self.finish_reason is None and self.usage is not None:
            # the usage chunk comes last: the answer is complete even without a finish_reason
            log.debug("stream %s has usage but no finish_reason; taking it as 'stop'", rid)
            self.finish_reason = "stop"
        if self.finish_reason is None:
            raise ServiceError(
                "stream ended before the translation finished", request_id=rid, retryable=True
            )
        text = "".join(self.text_parts) or "".join(self.transcript_parts)
        if self.finish_reason == "length":
            raise TruncatedError(
                "translation cut at max_tokens (finish_reason 'length'); split the utterance",
                code="length",
                request_id=rid,
            )
        return Translation(
            text=text.strip(),
            audio=decode_audio(self.audio_parts),
            sample_rate=SERVICE_RATE,
            usage=self.usage or Usage(),
            finish_reason=self.finish_reason,
        )


def decode_audio(pieces: list[str]) -> bytes:
    """PCM16 bytes from the base64 audio pieces of a stream.

    Each piece is normally a complete base64 string (decoded one by one and joined); if
    the pieces are slices of one base64 string, their concatenation is decoded instead.
    A trailing odd byte (half a sample) is dropped.
    """
    try:
        if any(len(p) % 4 for p in pieces):
            raise ValueError("pieces are slices of one base64 string")
        raw = b"".join(base64.b64decode(p, validate=True) for p in pieces)
    except ValueError:
        try:
            raw = base64.b64decode("".join(pieces), validate=True)
        except ValueError as e:
            raise ServiceError(f"undecodable audio in the response ({e})", retryable=True) from e
    if len(raw) % 2:
        log.warning("response audio has an odd byte count (%d); dropping the last byte", len(raw))
        raw = raw[:-1]
    return raw


def parse_usage(usage: Any) -> Usage:
    """A :class:`Usage` from the stream's usage object (every field may be absent)."""

    def num(obj: Any, name: str) -> int:
        value = _get(obj, name)
        return int(value) if isinstance(value, (int, float)) else 0

    prompt = _get(usage, "prompt_tokens_details")
    completion = _get(usage, "completion_tokens_details")
    return Usage(
        prompt_tokens=num(usage, "prompt_tokens"),
        completion_tokens=num(usage, "completion_tokens"),
        total_tokens=num(usage, "total_tokens"),
        input_audio_tokens=num(prompt, "audio_tokens"),
        input_video_tokens=num(prompt, "video_tokens"),
        output_audio_tokens=num(completion, "audio_tokens"),
        output_text_tokens=num(completion, "text_tokens"),
    )


def _error_fields(exc: openai.APIError) -> tuple[str, str, str]:
    """``(code, message, request_id)`` from either error body form, as far as present."""
    bodies: list[Any] = [exc.body]
    response = getattr(exc, "response", None)
    if response is not None:
        with contextlib.suppress(Exception):  # the body may be unread, empty or not JSON
            bodies.insert(0, response.json())
    code = message = rid = ""
    for body in bodies:
        if not isinstance(body, dict):
            continue
        nested = body.get("error")
        inner: dict[str, Any] = nested if isinstance(nested, dict) else body
        code = code or str(inner.get("code") or inner.get("type") or "")
        message = message or str(inner.get("message") or "")
        rid = rid or str(body.get("request_id") or inner.get("request_id") or "")
    if response is not None and not rid:
        headers = response.headers
        rid = headers.get("x-request-id") or headers.get("x-dashscope-request-id") or ""
    return code, message or exc.message, rid


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds form), else None."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


class ErrorMapper:
    """Turns SDK exceptions into :mod:`dubkit.errors`, never leaking the API key."""

    def __init__(self, config: CloudConfig) -> None:
        self._config = config

    def scrub(self, text: str) -> str:
        return text.replace(self._config.api_key, "[redacted]")

    def status(self, exc: openai.APIStatusError) -> ServiceError:
        cfg = self._config
        status = exc.status_code
        code, message, rid = _error_fields(exc)
        detail = self.scrub(f"{code}: {message}" if code else message)
        where = f"{cfg.endpoint}: HTTP {status}"
        kw: dict[str, Any] = {"status": status, "code": code, "request_id": rid}
        if status == 401:
            if cfg.base_url is None:
                other = "beijing" if cfg.region == "singapore" else "singapore"
                hint = (f"keys are region-bound: a key from the {other} region is rejected "
                        f"in the {cfg.region} region (--region {other})")  # fmt: skip
            else:
                hint = "check the key, and that it belongs to this endpoint's region"
            return AuthError(f"{where}: API key rejected ({detail}); {hint}", **kw)
        if status == 403:
            return AuthError(f"{where}: access denied to model {cfg.model!r} ({detail})", **kw)
        if status == 404:
            return AuthError(f"{where}: unknown model {cfg.model!r} ({detail})", **kw)
        if status == 400 and "max bytes per data-uri" in message.lower():
            return TooLargeError(f"{where}: utterance too large ({detail})", **kw)
        if status == 400 and code.lower() == "arrearage":
            return AuthError(f"{where}: account not in good standing ({detail})", **kw)
        if status == 400 and "inspection" in code.lower():
            return ServiceError(f"{where}: content rejected by moderation ({detail})", **kw)
        if status in (408, 409, 429) or status >= 500:
            after = parse_retry_after(exc.response.headers.get("retry-after"))
            return ServiceError(f"{where} ({detail})", retryable=True, retry_after=after, **kw)
        return ServiceError(f"{where}: request refused ({detail})", **kw)

    def transport(self, exc: openai.APIError) -> ServiceError:
        import openai

        where = self._config.endpoint
        if isinstance(exc, openai.APITimeoutError):
            return ServiceError(f"{where}: request timed out", retryable=True)
        if isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__
            why = f" ({type(cause).__name__})" if cause is not None else ""
            return ServiceError(f"{where}: connection failed or dropped{why}", retryable=True)
        code, message, rid = _error_fields(exc)
        detail = self.scrub(f"{code}: {message}" if code else message)
        moderated = "inspection" in code.lower()
        return ServiceError(
            f"{where}: error event in the response stream ({detail})",
            code=code,
            request_id=rid,
            retryable=not moderated,
        )

    def chain(self, exc: BaseException) -> BaseException | None:
        """The cause to chain from: None if its text would reveal the key."""
        return None if self._config.api_key in str(exc) else exc


async def _next_chunk(iterator: Any) -> Any:
    return await iterator.__anext__()


class CloudTranslator:
    """The :class:`~dubkit.translate.protocol.Translator` of qwen3-livetranslate-flash.

    Safe for concurrent use within one event loop; ``limiter`` is shared by all its
    requests (one is made from the service's documented quotas if not given).
    """

    name = "cloud"

    def __init__(
        self,
        config: CloudConfig,
        *,
        limiter: RateLimiter | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.config = config
        self.limiter = limiter if limiter is not None else RateLimiter()
        self._rand = rand
        self._errors = ErrorMapper(config)
        self._client: openai.AsyncOpenAI | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
        self._refused: set[str] = set()  # voices the service said it does not know

    def __repr__(self) -> str:
        return f"CloudTranslator({self.config!r})"

    def identity(self) -> dict[str, str]:
        cfg = self.config
        ident = {
            "engine": "cloud",
            "model": cfg.model,
            "endpoint": "dashscope" if cfg.base_url is None else cfg.endpoint,
        }
        if cfg.max_tokens is not None:
            ident["max_tokens"] = str(cfg.max_tokens)
        return ident

    def _client_now(self) -> openai.AsyncOpenAI:
        import openai

        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            self._client = openai.AsyncOpenAI(
                api_key=self.config.api_key,
                base_url=self.config.endpoint,
                timeout=self.config.timeout_s,
                max_retries=0,
            )
            self._client_loop = loop
        return self._client

    async def translate(
        self, pcm: np.ndarray, job: Job, *, video: bytes | None = None
    ) -> Translation:
        """Translate one utterance, retrying transient failures (see the module doc)."""
        asked, fallback = job.voice, FALLBACK_VOICES.get(job.voice or "")
        try:
            if asked not in self._refused:
                return await self._translate(pcm, job, video)
        except ServiceError as e:
            if fallback is None or e.status != 400 or str(asked) not in str(e):
                raise
            log.warning("the service refused voice %s; using %s instead", asked, fallback)
            self._refused.add(str(asked))
        result = await self._translate(pcm, replace(job, voice=fallback), video)
        return replace(result, voice=fallback)

    async def _translate(self, pcm: np.ndarray, job: Job, video: bytes | None) -> Translation:
        cfg = self.config
        request = build_request(pcm, job, cfg, video=video)
        ms_in = len(pcm) * 1000 // VAD_RATE
        tokens = estimate_tokens(ms_in, ms_in if job.voice else 0)
        attempt = 0
        while True:
            await self.limiter.acquire(tokens)
            count_attempt()
            try:
                return await self._request_once(request)
            except ServiceError as e:
                delay = backoff_delay(
                    attempt,
                    base_s=cfg.backoff_base_s,
                    cap_s=cfg.backoff_cap_s,
                    retry_after=e.retry_after,
                    rand=self._rand,
                )
                if e.status == 429:
                    self.limiter.penalize(delay)
                if not e.retryable or attempt >= cfg.max_retries:
                    if e.retryable:
                        raise type(e)(
                            f"{e.reason} (gave up after {attempt + 1} attempts)",
                            status=e.status,
                            code=e.code,
                            request_id=e.request_id,
                            retryable=True,
                            retry_after=e.retry_after,
                        ) from e
                    raise
                log.info("attempt %d failed (%s); retrying in %.2f s", attempt + 1, e, delay)
                attempt += 1
                await asyncio.sleep(delay)

    async def _request_once(self, request: dict[str, Any]) -> Translation:
        import openai

        client = self._client_now()
        try:
            stream = await client.chat.completions.create(**request)
            acc = StreamAccumulator()
            with contextlib.suppress(AttributeError):
                acc.request_id = stream.response.headers.get("x-request-id") or ""
            iterator = stream.__aiter__()
            try:
                while True:
                    try:
                        chunk = await asyncio.wait_for(
                            _next_chunk(iterator), self.config.stall_timeout_s
                        )
                    except StopAsyncIteration:
                        break
                    except asyncio.TimeoutError:
                        raise ServiceError(
                            f"{self.config.endpoint}: response stalled for "
                            f"{self.config.stall_timeout_s:g} s",
                            request_id=acc.request_id,
                            retryable=True,
                        ) from None
                    acc.feed(chunk)
            finally:
                await stream.close()
        except openai.APIStatusError as e:
            raise self._errors.status(e) from self._errors.chain(e)
        except openai.APIError as e:
            raise self._errors.transport(e) from self._errors.chain(e)
        return acc.result()

    async def aclose(self) -> None:
        client, self._client, self._client_loop = self._client, None, None
        if client is not None:
            await client.close()
