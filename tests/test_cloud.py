"""The cloud client: request building, stream parsing, backoff; then against the emulator."""

from __future__ import annotations

import base64
import io
import wave
from typing import Any

import numpy as np
import pytest
from openai.types.chat import ChatCompletionChunk

from dubkit.cloud import (
    MAX_DATA_URL_BYTES,
    REGION_URLS,
    CloudConfig,
    CloudTranslator,
    StreamAccumulator,
    TooLargeError,
    build_request,
    decode_audio,
    parse_retry_after,
)
from dubkit.engine import Job
from dubkit.errors import ConfigError, ServiceError, TruncatedError
from dubkit.pacing import backoff_delay
from dubkit.types import Usage

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
