"""The cloud client: request building, stream parsing, backoff; then against the emulator."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import http.server
import io
import json
import logging
import threading
import traceback
import wave
from collections.abc import Iterator
from typing import Any

import httpx2
import numpy as np
import openai
import pytest
from openai.types.chat import ChatCompletionChunk

from dubkit.emulator import Emulator, EmulatorConfig
from dubkit.errors import AuthError, ConfigError, ServiceError, TruncatedError
from dubkit.translate.cloud import (
    MAX_DATA_URL_BYTES,
    REGION_URLS,
    CloudConfig,
    CloudTranslator,
    ErrorMapper,
    StreamAccumulator,
    TooLargeError,
    build_request,
    decode_audio,
    parse_retry_after,
)
from dubkit.translate.pacing import RateLimiter, attempt_scope, backoff_delay
from dubkit.translate.protocol import Job
from dubkit.types import Translation, Usage

KEY = "sk-secret-0123456789abcdef"


def _pcm(ms: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(-8000, 8000, ms * 16, dtype=np.int16)


# --- configuration ---------------------------------------------------------------------


def test_config_repr_hides_key_and_picks_endpoint() -> None:
    cfg = CloudConfig(api_key=KEY)
    assert KEY not in repr(cfg) and KEY not in str(cfg)
    assert KEY not in repr(CloudTranslator(cfg))
    assert cfg.endpoint == REGION_URLS["singapore"]
    assert CloudConfig(api_key=KEY, region="beijing").endpoint == REGION_URLS["beijing"]
    assert CloudConfig(api_key=KEY, base_url="http://x/v1/").endpoint == "http://x/v1"
    with pytest.raises(ConfigError):
        CloudConfig(api_key="")
    with pytest.raises(ConfigError):
        CloudConfig(api_key=KEY, region="mars")  # type: ignore[arg-type]


def test_identity_has_model_and_no_secret() -> None:
    ident = CloudTranslator(CloudConfig(api_key=KEY, model="m2")).identity()
    assert ident["model"] == "m2" and ident["engine"] == "cloud"
    assert all(KEY not in v for v in ident.values())
    other = CloudTranslator(CloudConfig(api_key=KEY, base_url="http://127.0.0.1:9/v1"))
    assert other.identity() != CloudTranslator(CloudConfig(api_key=KEY)).identity()


# --- request ---------------------------------------------------------------------------


def test_audio_request_shape() -> None:
    pcm = _pcm(1500)
    req = build_request(pcm, Job("es", "en", "Cherry"), CloudConfig(api_key=KEY))
    assert req["stream"] is True
    assert req["stream_options"] == {"include_usage": True}
    assert req["modalities"] == ["text", "audio"]
    assert req["audio"] == {"voice": "Cherry", "format": "wav"}
    assert req["extra_body"] == {"translation_options": {"target_lang": "es", "source_lang": "en"}}
    (msg,) = req["messages"]
    assert msg["role"] == "user"
    (part,) = msg["content"]
    assert part["type"] == "input_audio" and part["input_audio"]["format"] == "wav"
    url = part["input_audio"]["data"]
    assert url.startswith("data:;base64,")
    with wave.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 16_000)
        assert np.array_equal(np.frombuffer(w.readframes(w.getnframes()), "<i2"), pcm)


def test_text_only_request_and_options() -> None:
    cfg = CloudConfig(api_key=KEY, max_tokens=50, data_url_prefix="data:audio/wav;base64,")
    req = build_request(_pcm(500), Job("fr"), cfg)
    assert req["modalities"] == ["text"] and "audio" not in req
    assert req["extra_body"] == {"translation_options": {"target_lang": "fr"}}
    assert req["max_tokens"] == 50
    assert req["messages"][0]["content"][0]["input_audio"]["data"].startswith(
        "data:audio/wav;base64,"
    )


def test_video_request_sends_video_part() -> None:
    req = build_request(_pcm(500), Job("de"), CloudConfig(api_key=KEY), video=b"\0\0\0 ftypisom")
    (part,) = req["messages"][0]["content"]
    assert part["type"] == "video_url"
    assert base64.b64decode(part["video_url"]["url"].split(",", 1)[1]) == b"\0\0\0 ftypisom"


def test_oversize_utterance_refused_before_sending() -> None:
    # 10,485,760 bytes of base64 hold 7,864,320 bytes: just under 246 s at 16 kHz
    fits = np.zeros(7_864_320 // 2 - 200, np.int16)
    build_request(fits, Job("es"), CloudConfig(api_key=KEY))
    with pytest.raises(TooLargeError) as e:
        build_request(np.zeros(7_864_320 // 2, np.int16), Job("es"), CloudConfig(api_key=KEY))
    assert isinstance(e.value, ServiceError) and not e.value.retryable
    assert str(MAX_DATA_URL_BYTES) in str(e.value)


# --- stream parsing --------------------------------------------------------------------


def _chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> Any:
    body: dict[str, Any] = {
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
        "model": "qwen3-livetranslate-flash", "choices": [], **extra,
    }  # fmt: skip
    if delta is not None:
        body["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish}]
    return ChatCompletionChunk.model_validate(body)


def _audio(data: str) -> dict[str, Any]:
    return {"content": None, "audio": {"data": data, "expires_at": 1, "id": "audio_1"}}


USAGE = {
    "prompt_tokens": 40, "completion_tokens": 60, "total_tokens": 100,
    "prompt_tokens_details": {"audio_tokens": 38, "text_tokens": 2},
    "completion_tokens_details": {"audio_tokens": 50, "text_tokens": 10},
}  # fmt: skip


def test_stream_interleaved_text_and_audio_any_order() -> None:
    pcm = (np.arange(2401, dtype=np.int16) * 13).astype("<i2").tobytes()
    pieces = [pcm[:1001], pcm[1001:3000], pcm[3000:]]  # odd-sized, not sample-aligned
    acc = StreamAccumulator()
    acc.feed(_chunk({"role": "assistant", "content": ""}))
    acc.feed(_chunk(_audio(base64.b64encode(pieces[0]).decode())))
    acc.feed(_chunk({"content": "Hola"}))
    acc.feed(_chunk(_audio(base64.b64encode(pieces[1]).decode())))
    acc.feed(_chunk({"content": None}))
    acc.feed(_chunk({"content": ", mundo."}))
    acc.feed(_chunk(_audio(base64.b64encode(pieces[2]).decode())))
    acc.feed(_chunk({}, finish="stop"))
    acc.feed(_chunk(usage=USAGE))
    t = acc.result()
    assert t.text == "Hola, mundo."
    assert t.audio == pcm[: len(pcm) - len(pcm) % 2]
    assert t.sample_rate == 24_000 and t.finish_reason == "stop"
    assert t.usage == Usage(40, 60, 100, 38, 0, 50, 10)


def test_stream_base64_slices_and_transcript_only() -> None:
    raw = bytes(range(256)) * 3
    b64 = base64.b64encode(raw).decode()
    acc = StreamAccumulator()
    for i in range(0, len(b64), 7):  # slices of one base64 string, not decodable alone
        acc.feed(_chunk({"audio": {"data": b64[i : i + 7], "transcript": "x" if i == 0 else ""}}))
    acc.feed(_chunk({"content": ""}, finish="stop"))
    t = acc.result()
    assert t.audio == raw and t.text == "x"
    assert t.usage == Usage()  # usage absent: zeros


def test_usage_details_may_be_absent() -> None:
    acc = StreamAccumulator()
    acc.feed(_chunk({"content": "a"}, finish="stop"))
    acc.feed(_chunk(usage={"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}))
    assert acc.result().usage == Usage(5, 1, 6)


def test_usage_without_finish_reason_is_complete() -> None:
    acc = StreamAccumulator()
    acc.feed(_chunk({"content": "fin"}))
    acc.feed(_chunk(usage=USAGE))
    assert acc.result().text == "fin"


def test_truncated_stream_is_an_error() -> None:
    acc = StreamAccumulator()
    acc.feed(_chunk({"content": "cut"}, finish="length"))
    with pytest.raises(TruncatedError):
        acc.result()


def test_stream_without_finish_is_retryable() -> None:
    acc = StreamAccumulator()
    acc.feed(_chunk({"content": "half"}))
    with pytest.raises(ServiceError) as e:
        acc.result()
    assert e.value.retryable


def test_decode_audio_rejects_garbage() -> None:
    assert decode_audio([]) == b""
    with pytest.raises(ServiceError):
        decode_audio(["@@@@"])


# --- retry maths -----------------------------------------------------------------------


def test_backoff_full_jitter_bounds() -> None:
    for attempt in range(10):
        hi = min(8.0, 0.5 * 2**attempt)
        assert backoff_delay(attempt, base_s=0.5, cap_s=8.0, rand=lambda: 1.0) == hi
        assert backoff_delay(attempt, base_s=0.5, cap_s=8.0, rand=lambda: 0.0) == 0.0
        d = backoff_delay(attempt, base_s=0.5, cap_s=8.0)
        assert 0.0 <= d <= hi
    # Retry-After is a floor, itself capped
    assert backoff_delay(0, base_s=0.5, cap_s=8.0, retry_after=3.0, rand=lambda: 0.0) == 3.0
    assert backoff_delay(0, base_s=0.5, cap_s=8.0, retry_after=100.0, rand=lambda: 0.0) == 8.0
    assert backoff_delay(200, base_s=0.5, cap_s=8.0, rand=lambda: 1.0) == 8.0


def test_parse_retry_after() -> None:
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after(" 0.5 ") == 0.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None
    assert parse_retry_after("-1") is None


# --- against the emulator, over real loopback HTTP with the real SDK ---------------------

EMU_KEY = "sk-emulator-key-5f2a9c"


def _fast(base_url: str, key: str = EMU_KEY, **kw: Any) -> CloudConfig:
    opts: dict[str, Any] = {
        "stall_timeout_s": 0.5, "timeout_s": 5.0, "backoff_base_s": 0.01,
        "backoff_cap_s": 0.05, "max_retries": 6, **kw,
    }  # fmt: skip
    return CloudConfig(api_key=key, base_url=base_url, **opts)


def _translate(
    config: CloudConfig, pcm: np.ndarray, job: Job, **kw: Any
) -> tuple[Translation, int]:
    """Translate once in a fresh loop; returns the translation and the attempts made."""
    limiter = kw.pop("limiter", RateLimiter(None, None))
    rand = kw.pop("rand", None)

    async def main() -> tuple[Translation, int]:
        tr = CloudTranslator(config, limiter=limiter, **({"rand": rand} if rand else {}))
        try:
            with attempt_scope() as n:
                return await tr.translate(pcm, job, **kw), n[0]
        finally:
            await tr.aclose()

    return asyncio.run(main())


def _fails(config: CloudConfig, pcm: np.ndarray, job: Job, **kw: Any) -> ServiceError:
    with pytest.raises(ServiceError) as e:
        _translate(config, pcm, job, **kw)
    return e.value


def _failure_and_attempts(
    config: CloudConfig, pcm: np.ndarray, job: Job, limiter: RateLimiter
) -> tuple[ServiceError, int]:
    async def main() -> tuple[ServiceError, int]:
        tr = CloudTranslator(config, limiter=limiter)
        with attempt_scope() as n, pytest.raises(ServiceError) as e:
            await tr.translate(pcm, job)
        await tr.aclose()
        return e.value, n[0]

    return asyncio.run(main())


def _no_key(exc: BaseException, key: str) -> None:
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    assert key not in text and key not in repr(exc)


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig(api_key=EMU_KEY)) as e:
        yield e


def test_audio_translation_round_trip(emu: Emulator) -> None:
    pcm = _pcm(2000, seed=3)
    t, attempts = _translate(_fast(emu.base_url), pcm, Job("es", "en", "Cherry"))
    assert attempts == 1 and t.finish_reason == "stop"
    assert t.text and len(t.audio) > 24_000 and len(t.audio) % 2 == 0
    assert t.usage.input_audio_tokens > 0 and t.usage.output_audio_tokens > 0
    rec = emu.records[-1]
    assert rec.ok and rec.target_lang == "es" and rec.modalities == ("text", "audio")
    assert rec.audio_sha256 == hashlib.sha256(pcm.tobytes()).hexdigest()
    # deterministic: the same request gives the same answer
    again, _ = _translate(_fast(emu.base_url, data_url_prefix="data:audio/wav;base64,"), pcm,
                          Job("es", "en", "Cherry"))  # fmt: skip
    assert again == t


def test_text_only_translation(emu: Emulator) -> None:
    t, _ = _translate(_fast(emu.base_url), _pcm(1200, seed=4), Job("fr"))
    assert t.text and t.audio == b"" and t.usage.output_audio_tokens == 0
    assert emu.records[-1].modalities == ("text",)


def test_bad_key_is_auth_error_naming_the_endpoint_and_hiding_the_key(emu: Emulator) -> None:
    wrong = "sk-wrong-key-do-not-leak-77"
    e = _fails(_fast(emu.base_url, key=wrong), _pcm(500), Job("es"))
    assert isinstance(e, AuthError) and e.exit_status == 3 and e.status == 401
    assert emu.base_url in str(e) and "region" in str(e) and "\n" not in str(e)
    assert e.request_id
    _no_key(e, wrong)


def test_official_region_401_names_the_other_region() -> None:
    # the real SDK exception the transport raises, mapped without the network
    url = REGION_URLS["beijing"] + "/chat/completions"
    body = {"error": {"code": "invalid_api_key", "message": "Incorrect API key provided."},
            "request_id": "rid-9"}  # fmt: skip
    response = httpx2.Response(401, json=body, request=httpx2.Request("POST", url))
    sdk = openai.AuthenticationError("Error code: 401", response=response, body=body["error"])
    e = ErrorMapper(CloudConfig(api_key=KEY, region="beijing")).status(sdk)
    assert isinstance(e, AuthError) and e.request_id == "rid-9"
    assert "singapore region" in str(e) and "--region singapore" in str(e)
    assert REGION_URLS["beijing"] in str(e)


def test_unknown_model_is_auth_error(emu: Emulator) -> None:
    e = _fails(_fast(emu.base_url, model="qwen-nope"), _pcm(500), Job("es"))
    assert isinstance(e, AuthError) and e.status == 404 and e.exit_status == 3
    assert "unknown model 'qwen-nope'" in str(e)


def test_bad_parameter_is_not_retried(emu: Emulator) -> None:
    before = len(emu.records)
    e = _fails(_fast(emu.base_url), _pcm(500), Job("es", None, "Kiki"))  # Kiki speaks yue only
    assert type(e) is ServiceError and e.status == 400 and not e.retryable
    assert "invalid_parameter_error" in str(e) and "Kiki" in str(e)
    assert len(emu.records) == before + 1


def test_truncation_is_an_error_never_a_success(emu: Emulator) -> None:
    e = _fails(_fast(emu.base_url, max_tokens=10), _pcm(3000), Job("es", None, "Cherry"))
    assert isinstance(e, TruncatedError) and not e.retryable
    assert emu.records[-1].finish_reason == "length"


ALL_FAULTS = ["429", "429_native", "500", "503", "drop", "error_event", "stall"]


@pytest.mark.parametrize("fault", ALL_FAULTS)
def test_every_fault_kind_is_retried_until_success(fault: str) -> None:
    cfg = EmulatorConfig(api_key=EMU_KEY, fault_rate=0.5, faults=(fault,), stall_s=3.0, seed=1)
    with Emulator(cfg) as emu:

        async def main() -> list[Translation]:
            config = _fast(emu.base_url, max_retries=12)
            tr = CloudTranslator(config, limiter=RateLimiter(None, None))
            try:
                return [await tr.translate(_pcm(600, seed=100 + i), Job("de")) for i in range(6)]
            finally:
                await tr.aclose()

        translations = asyncio.run(main())
        records = emu.records
    assert all(t.text and t.finish_reason == "stop" for t in translations)
    assert any(r.fault == fault for r in records), "the fault was never injected"
    assert sum(r.ok for r in records) == 6


@pytest.mark.parametrize("fault", ["429", "500", "drop", "error_event", "stall"])
def test_persistent_fault_gives_up_after_max_retries(fault: str) -> None:
    cfg = EmulatorConfig(api_key=EMU_KEY, fault_rate=1.0, faults=(fault,), stall_s=3.0)
    with Emulator(cfg) as emu:
        limiter = RateLimiter(None, None)
        conf = _fast(emu.base_url, max_retries=2)
        e, attempts = _failure_and_attempts(conf, _pcm(600), Job("es"), limiter)
    assert attempts == 3
    assert e.retryable and "gave up after 3 attempts" in str(e)
    _no_key(e, EMU_KEY)


def test_429_pauses_the_shared_limiter() -> None:
    cfg = EmulatorConfig(api_key=EMU_KEY, fault_rate=1.0, faults=("429_native",))
    with Emulator(cfg) as emu:
        limiter = RateLimiter(None, None)
        conf = _fast(emu.base_url, max_retries=0, backoff_base_s=3.0, backoff_cap_s=3.0)
        e = _fails(conf, _pcm(600), Job("es"), limiter=limiter, rand=lambda: 1.0)
    assert e.status == 429 and e.code == "Throttling.RateQuota" and e.retryable
    assert 1.0 < limiter.wait_time(1) <= 3.0  # everybody waits before the next request


def test_oversize_utterance_raises_before_any_request(emu: Emulator) -> None:
    before = len(emu.records)
    e = _fails(_fast(emu.base_url), np.zeros(16_000 * 250, np.int16), Job("es"))
    assert isinstance(e, TooLargeError)
    assert len(emu.records) == before


# --- error bodies the emulator does not produce: a canned loopback server ----------------


class _Canned(http.server.BaseHTTPRequestHandler):
    answer: tuple[int, dict[str, str], bytes] = (500, {}, b"")

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        status, headers, body = self.server.answer  # type: ignore[attr-defined]
        self.send_response(status)
        for k, v in {"Content-Type": "application/json", **headers}.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture()
def canned() -> Iterator[Any]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Canned)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}/compatible-mode/v1"  # type: ignore[attr-defined]
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _compat(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "param": None, "message": message,
                                 "type": code}, "id": "chatcmpl-x", "request_id": "rid-1"}).encode()


@pytest.mark.parametrize(
    ("status", "body", "kind", "retryable", "words"),
    [
        (400, _compat("data_inspection_failed", "Input data may contain inappropriate content."),
         ServiceError, False, "moderation"),
        (400, json.dumps({"code": "InvalidParameter", "message": "bad wav",
                          "request_id": "rid-1"}).encode(), ServiceError, False, "bad wav"),
        (400, _compat("invalid_parameter_error",
                      "Exceeded limit on max bytes per data-uri item : 10485760"),
         TooLargeError, False, "too large"),
        (400, json.dumps({"code": "Arrearage", "message": "Access denied, overdue payment.",
                          "request_id": "rid-1"}).encode(), AuthError, False, "overdue"),
        (403, _compat("AccessDenied", "no access"), AuthError, False, "access denied"),
        (429, json.dumps({"code": "Throttling.RateQuota", "message": "slow down",
                          "request_id": "rid-1"}).encode(), ServiceError, True, "slow down"),
        (502, b"<html>bad gateway</html>", ServiceError, True, "HTTP 502"),
    ],
)
def test_error_bodies_both_forms(
    canned: Any, status: int, body: bytes, kind: type, retryable: bool, words: str
) -> None:
    canned.answer = (status, {}, body)
    e = _fails(_fast(canned.url, max_retries=0), _pcm(300), Job("es"))
    assert type(e) is kind and e.retryable is retryable and e.status == status
    assert words in str(e) and "\n" not in str(e)
    if body.startswith(b"{"):
        assert e.request_id == "rid-1"


def test_retry_after_is_honoured(canned: Any) -> None:
    canned.answer = (503, {"Retry-After": "0.3"}, _compat("ModelUnavailable", "busy"))
    e = _fails(_fast(canned.url, max_retries=0), _pcm(300), Job("es"))
    assert e.retry_after == pytest.approx(0.3)
    loop_start = asyncio.run(_elapsed(_fast(canned.url, max_retries=2, backoff_cap_s=5.0)))
    assert loop_start >= 0.6  # two retries, each waiting at least Retry-After


async def _elapsed(config: CloudConfig) -> float:
    tr = CloudTranslator(config, limiter=RateLimiter(None, None), rand=lambda: 0.0)
    start = asyncio.get_running_loop().time()
    with pytest.raises(ServiceError):
        await tr.translate(_pcm(300), Job("es"))
    await tr.aclose()
    return asyncio.get_running_loop().time() - start


def test_key_never_logged(emu: Emulator, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        _fails(_fast(emu.base_url, key="sk-log-secret-1"), _pcm(300), Job("es"))
        _translate(_fast(emu.base_url), _pcm(300), Job("es"))
    assert caplog.records
    assert "sk-log-secret-1" not in caplog.text and EMU_KEY not in caplog.text
