"""The qwen3-livetranslate-flash emulator, driven over real loopback HTTP.

The happy paths go through the real ``openai`` SDK; requests the SDK cannot
express (or whose raw error body matters) go through ``http.client``.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import http.client
import io
import json
import threading
import time
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import openai
import pytest

from dubkit.emulator import Emulator, EmulatorConfig, RequestRecord, serve
from dubkit.emulator.synth import speech_span_ms, synthesize_answer
from dubkit.emulator.text import SCRIPTS

KEY = "sk-test"
MODEL = "qwen3-livetranslate-flash"


def speechy_pcm(ms: int, seed: int, rate: int = 16000) -> np.ndarray:
    """Input audio: a buzzy voiced sound with syllable-like modulation (int16 mono)."""
    rng = np.random.default_rng(seed)
    t = np.arange(ms * rate // 1000) / rate
    f0 = rng.uniform(100, 220) * (1 + 0.1 * np.sin(2 * np.pi * 0.7 * t))
    phase = 2 * np.pi * np.cumsum(f0) / rate
    x = sum(np.sin(k * phase) / k for k in range(1, 12))
    env = 0.55 + 0.45 * np.sin(2 * np.pi * 4.5 * t) ** 2
    return (x * env * 3000).astype(np.int16)


def wav_bytes(pcm: np.ndarray, rate: int = 16000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.astype("<i2").tobytes())
    return buf.getvalue()


def audio_url(data: bytes, mime: str = "") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def mp4_bytes(ms: int = 1000) -> bytes:
    """A tiny MP4 (mpeg4 video 64x48 + AAC audio) made with PyAV."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        vs = out.add_stream("mpeg4", rate=10)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        aus = out.add_stream("aac", rate=16000)
        aus.layout = "mono"
        for i in range(ms // 100):
            img = np.full((48, 64, 3), i * 20 % 255, dtype=np.uint8)
            out.mux(vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        pcm = speechy_pcm(ms, 9).astype(np.float32)[None, :] / 32768
        for start in range(0, pcm.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(pcm[:, start:start + 1024]), format="fltp", layout="mono")
            frame.sample_rate = 16000
            frame.pts = start
            out.mux(aus.encode(frame))
        out.mux(vs.encode(None))
        out.mux(aus.encode(None))
    return buf.getvalue()


PCM_1S = speechy_pcm(1000, 1)
WAV_1S = wav_bytes(PCM_1S)


def body(
    data: str | None = None, *, target: str = "es", audio: bool = True, **extra: Any
) -> dict[str, Any]:
    """A valid request body (as sent over plain HTTP)."""
    b: dict[str, Any] = {
        "model": MODEL,
        "messages": [{"role": "user", "content": [{
            "type": "input_audio",
            "input_audio": {"data": data or audio_url(WAV_1S), "format": "wav"},
        }]}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "translation_options": {"target_lang": target},
        "modalities": ["text", "audio"] if audio else ["text"],
    }
    if audio:
        b["audio"] = {"voice": "Cherry", "format": "wav"}
    b.update(extra)
    return b


@dataclass
class Result:
    text: str
    audio: bytes
    pieces: list[bytes]
    finish: str | None
    usage: Any
    chunks: list[Any]


def sdk_client(emu: Emulator, api_key: str = KEY) -> openai.OpenAI:
    return openai.OpenAI(api_key=api_key, base_url=emu.base_url, max_retries=0, timeout=10)


def sdk_create(client: openai.OpenAI, b: dict[str, Any]) -> Any:
    """Start a stream with the real openai SDK (non-standard fields in extra_body)."""
    standard = {"model", "messages", "modalities", "audio", "stream", "stream_options",
                "max_tokens", "seed", "temperature", "top_p", "presence_penalty"}
    kwargs = {k: v for k, v in b.items() if k in standard}
    extra = {k: v for k, v in b.items() if k not in standard}
    return client.chat.completions.create(**kwargs, extra_body=extra)


def sdk_stream(emu: Emulator, b: dict[str, Any], api_key_override: str = KEY) -> Result:
    """Send ``b`` through the real openai SDK and gather the answer."""
    chunks = list(sdk_create(sdk_client(emu, api_key_override), b))
    text, pieces, finish, usage = [], [], None, None
    for ch in chunks:
        if ch.usage is not None:
            usage = ch.usage
        for choice in ch.choices:
            if choice.delta.content:
                text.append(choice.delta.content)
            if choice.delta.audio is not None:
                pieces.append(base64.b64decode(choice.delta.audio.data))
            finish = choice.finish_reason or finish
    return Result("".join(text), b"".join(pieces), pieces, finish, usage, chunks)


def raw_post(emu: Emulator, payload: Any, headers: dict[str, str] | None = None,
             path: str = "/compatible-mode/v1/chat/completions") -> tuple[int, Any, bytes]:
    """POST with http.client: (status, parsed JSON or None, raw body)."""
    conn = http.client.HTTPConnection(emu.config.host, emu.port, timeout=10)
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    hdrs = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    hdrs.update(headers or {})
    try:
        conn.request("POST", path, body=data, headers=hdrs)
        resp = conn.getresponse()
        raw = resp.read()
    finally:
        conn.close()
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = None
    return resp.status, parsed, raw


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig(api_key=KEY, audio_chunk_bytes=4801)) as e:
        yield e


# --------------------------------------------------------------------------- happy path


def test_stream_shapes_through_the_sdk(emu: Emulator) -> None:
    res = sdk_stream(emu, body())
    chunks = res.chunks
    assert len({c.id for c in chunks}) == 1 and chunks[0].id.startswith("chatcmpl-")
    assert len({c.created for c in chunks}) == 1
    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    assert {c.model for c in chunks} == {MODEL}
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(ch.choices[0].delta.role is None for ch in chunks[1:] if ch.choices)
    assert all(ch.choices[0].index == 0 for ch in chunks if ch.choices)
    # final chunk with finish_reason, then the usage chunk with no choices
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert all(ch.choices[0].finish_reason is None for ch in chunks[:-2])
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    audio_ids = {ch.choices[0].delta.audio.id for ch in chunks
                 if ch.choices and ch.choices[0].delta.audio is not None}
    assert audio_ids == {"audio_" + chunks[0].id.removeprefix("chatcmpl-")}
    # text and audio never share a chunk, and they interleave
    kinds = ["a" if ch.choices[0].delta.audio is not None else "t"
             for ch in chunks[:-2] if ch.choices]
    assert "ta" in "".join(kinds) and "at" in "".join(kinds)
    # odd piece size: pieces are not sample-aligned, the concatenation is
    assert any(len(p) % 2 for p in res.pieces) and len(res.audio) % 2 == 0
    pcm = np.frombuffer(res.audio, dtype="<i2")
    assert 0.6 <= len(pcm) / 24000 <= 1.6
    assert res.text and res.text[-1] in ".?" and res.text[0].isupper()


def test_audio_is_speech_like_and_has_silent_edges(emu: Emulator) -> None:
    res = sdk_stream(emu, body(audio_url(wav_bytes(speechy_pcm(2500, 2))), seed=4))
    x = np.frombuffer(res.audio, dtype="<i2").astype(np.float64)
    db = lambda v: 20 * np.log10(np.sqrt(np.mean(v**2)) / 32767 + 1e-12)  # noqa: E731
    assert db(x[:960]) < -55 and db(x[-960:]) < -55  # >= 40 ms of near-silence each side
    x = x[: len(x) // 1200 * 1200]
    frames = x.reshape(-1, 1200)  # 50 ms
    rms = np.sqrt(np.mean(frames**2, axis=1))
    loud = rms[rms > 30]
    assert -24 < db(x[np.repeat(rms > 30, 1200)]) < -16  # speech around -20 dBFS
    assert loud.std() / loud.mean() > 0.3  # amplitude moves (syllables, pauses)
    assert (rms < 30).sum() >= 2  # pauses / silent edges
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    assert spectrum.max() / spectrum.sum() < 0.2  # not a pure tone
    flatness = np.exp(np.mean(np.log(spectrum + 1e-9))) / np.mean(spectrum)
    assert 1e-6 < flatness < 0.3  # not white noise either
    seg = x[len(x) // 3: len(x) // 3 + 2400]
    ac = np.correlate(seg, seg, "full")[len(seg) - 1:]
    lag = 24 + int(np.argmax(ac[24:240]))  # 100-1000 Hz
    assert ac[lag] / ac[0] > 0.3  # periodic (voiced) at a speech pitch


def test_output_length_varies_around_the_input() -> None:
    ratios = []
    for i in range(16):
        pcm = speechy_pcm(1500, 100 + i)
        ans = synthesize_answer(pcm, f"sha{i}", "fr", "Nofish", None)
        assert abs(len(ans.pcm) / 24 - ans.output_ms) <= 1
        ratios.append(ans.output_ms / speech_span_ms(pcm))
    assert min(ratios) >= 0.6 and max(ratios) <= 1.6
    assert min(ratios) < 0.9 and max(ratios) > 1.1  # some shorter, some longer


def test_long_outputs_have_word_gaps_and_a_longer_pause() -> None:
    ans = synthesize_answer(speechy_pcm(8000, 1), "long", "en", "Ethan", None)
    x = ans.pcm.astype(np.float64)
    rms = np.sqrt(np.mean(x[: len(x) // 480 * 480].reshape(-1, 480) ** 2, axis=1))  # 20 ms
    quiet = rms < 30
    runs, run = [], 0
    for q in quiet[10:-16]:  # inside the speech, not the head or tail
        run = run + 1 if q else 0
        runs.append(run)
    assert max(runs) * 20 >= 240  # a sentence-like pause
    starts = np.flatnonzero(np.diff(quiet[10:-16].astype(int)) == 1)
    assert len(starts) >= 10  # many short pauses between words


def test_text_follows_the_script_and_length() -> None:
    pcm = speechy_pcm(3000, 5)
    checks = {
        "es": lambda c: c.isascii() or c in "ñáéíó", "ru": lambda c: "а" <= c.lower() <= "я",
        "zh": lambda c: "\u4e00" <= c <= "\u9fff", "ko": lambda c: "\uac00" <= c <= "\ud7a3",
        "ja": lambda c: "\u3040" <= c <= "\u9fff", "ar": lambda c: "\u0600" <= c <= "\u06ff",
    }
    for lang, is_script in checks.items():
        ans = synthesize_answer(pcm, "x", lang, None, 7)
        letters = [c for c in ans.text if c.isalpha()]
        assert letters and all(is_script(c) for c in letters), (lang, ans.text)
        per_s = len(ans.text) / (ans.output_ms / 1000)
        assert 0.5 * SCRIPTS[lang].chars_per_s < per_s < 2 * SCRIPTS[lang].chars_per_s
        assert len(ans.pcm) == 0


def test_deterministic_and_text_only_matches(emu: Emulator) -> None:
    first = sdk_stream(emu, body())
    again = sdk_stream(emu, body())
    assert (first.text, first.audio) == (again.text, again.audio)
    other = sdk_stream(emu, body(seed=123))
    assert other.audio != first.audio
    text_only = sdk_stream(emu, body(audio=False))
    assert text_only.text == first.text and text_only.audio == b""
    assert text_only.usage.completion_tokens_details.audio_tokens == 0
    named = sdk_stream(emu, body(target="Spanish"))  # full English name accepted
    assert named.text == first.text


def test_usage_figures(emu: Emulator) -> None:
    pcm = speechy_pcm(2000, 3)
    res = sdk_stream(emu, body(audio_url(wav_bytes(pcm), "audio/wav")))
    u = res.usage
    assert u.prompt_tokens == 25 and u.prompt_tokens_details.audio_tokens == 25
    out_ms = len(res.audio) // 2 * 1000 // 24000
    assert u.completion_tokens_details.audio_tokens == -(-max(out_ms, 1000) // 80)
    assert u.completion_tokens_details.text_tokens == -(-len(res.text.encode()) // 4)
    assert u.completion_tokens == (u.completion_tokens_details.audio_tokens
                                   + u.completion_tokens_details.text_tokens)
    assert u.total_tokens == u.prompt_tokens + u.completion_tokens
    short = sdk_stream(emu, body(audio_url(wav_bytes(speechy_pcm(400, 3)))))
    assert short.usage.prompt_tokens == 13  # under 1 s counts as 1 s


def test_max_tokens_cuts_with_length(emu: Emulator) -> None:
    full = sdk_stream(emu, body())
    cut = sdk_stream(emu, body(max_tokens=10))
    assert cut.finish == "length" and full.finish == "stop"
    assert cut.usage.completion_tokens <= 10
    assert len(cut.audio) < len(full.audio) and full.audio.startswith(cut.audio)


def test_video_input_counts_video_tokens(emu: Emulator) -> None:
    b = body(audio=False)
    b["messages"][0]["content"] = [{"type": "video_url",
                                    "video_url": {"url": audio_url(mp4_bytes(), "video/mp4")}}]
    res = sdk_stream(emu, b)
    details = res.usage.prompt_tokens_details
    assert res.text and details.audio_tokens == 13
    # 1 s at 2 fps -> 4 frames (the minimum), 64x48 -> 64x64 -> ceil(4/2) * 2 * 2 + 2
    assert details.video_tokens == 10
    assert res.usage.prompt_tokens == 13 + 10


def test_other_formats_and_paths(emu: Emulator) -> None:
    buf = io.BytesIO()  # an MP3 at 44.1 kHz stereo, decoded by PyAV
    with av.open(buf, "w", format="mp3") as out:
        st = out.add_stream("libmp3lame", rate=44100)
        st.layout = "stereo"
        x = np.repeat(speechy_pcm(1000, 4, 44100)[None, :], 2, axis=0).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(x.T.reshape(1, -1).copy(), format="s16",
                                           layout="stereo")
        frame.sample_rate = 44100
        for packet in st.encode(frame):
            out.mux(packet)
        out.mux(st.encode(None))
    b = body(audio_url(buf.getvalue(), "audio/mpeg"))
    b["messages"][0]["content"][0]["input_audio"]["format"] = "mp3"
    status, _, raw = raw_post(emu, b, path="/v1/chat/completions")
    assert status == 200 and raw.rstrip().endswith(b"data: [DONE]")
    assert raw.count(b"data: ") > 3


# --------------------------------------------------------------------------- validation


def _mut(path: str, value: Any) -> Any:
    def apply(b: dict[str, Any]) -> None:
        keys = path.split(".")
        node: Any = b
        for k in keys[:-1]:
            node = node[int(k)] if isinstance(node, list) else node[k]
        last = keys[-1]
        if value is _DELETE:
            del node[last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return apply


_DELETE = object()
_PART = "messages.0.content.0"
_SYS = [{"role": "system", "content": "x"}]
BAD_REQUESTS: list[tuple[str, Any]] = [
    ("system message", lambda b: b.__setitem__("messages", _SYS + b["messages"])),
    ("two user messages", lambda b: b.__setitem__("messages", b["messages"] * 2)),
    ("assistant role", _mut("messages.0.role", "assistant")),
    ("string content", _mut("messages.0.content", "hello")),
    ("two parts", lambda b: b["messages"][0]["content"].append(b["messages"][0]["content"][0])),
    ("text part", _mut(_PART, {"type": "text", "text": "hi"})),
    ("no format", _mut(f"{_PART}.input_audio.format", _DELETE)),
    ("bad format", _mut(f"{_PART}.input_audio.format", "aiff")),
    ("remote url", _mut(f"{_PART}.input_audio.data", "https://example.com/a.wav")),
    ("text data url", _mut(f"{_PART}.input_audio.data", "data:text/plain;base64,AAAA")),
    ("bad base64", _mut(f"{_PART}.input_audio.data", "data:;base64,@@@@")),
    ("not media", _mut(f"{_PART}.input_audio.data", audio_url(b"hello, not audio" * 50))),
    ("6 kHz audio", _mut(f"{_PART}.input_audio.data",
                         audio_url(wav_bytes(speechy_pcm(500, 1, 6000), 6000)))),
    ("video without data url", _mut(_PART, {"type": "video_url", "video_url": {"url": "x"}})),
    ("stream false", _mut("stream", False)),
    ("no stream", _mut("stream", _DELETE)),
    ("no translation_options", _mut("translation_options", _DELETE)),
    ("no target", _mut("translation_options", {"source_lang": "en"})),
    ("bad target", _mut("translation_options.target_lang", "Klingon")),
    ("bad source", _mut("translation_options.source_lang", "xx")),
    ("audio-only modality", _mut("modalities", ["audio"])),
    ("no audio object", _mut("audio", _DELETE)),
    ("audio with text modality", _mut("modalities", ["text"])),
    ("mp3 output", _mut("audio.format", "mp3")),
    ("unknown voice", _mut("audio.voice", "Alloy")),
    ("voice for another language", _mut("audio.voice", "Kiki")),
    ("text-only target dubbed", _mut("translation_options.target_lang", "th")),
    ("temperature 2", _mut("temperature", 2)),
    ("temperature string", _mut("temperature", "hot")),
    ("top_p 0", _mut("top_p", 0)),
    ("top_p 1.5", _mut("top_p", 1.5)),
    ("top_k -1", _mut("top_k", -1)),
    ("top_k float", _mut("top_k", 1.5)),
    ("presence_penalty 2.5", _mut("presence_penalty", 2.5)),
    ("repetition_penalty 0", _mut("repetition_penalty", 0)),
    ("seed -1", _mut("seed", -1)),
    ("seed 2^31", _mut("seed", 2**31)),
    ("max_tokens 0", _mut("max_tokens", 0)),
    ("max_tokens 4097", _mut("max_tokens", 4097)),
    ("stream_options not object", _mut("stream_options", True)),
]


@pytest.mark.parametrize(("name", "mutate"), BAD_REQUESTS, ids=[n for n, _ in BAD_REQUESTS])
def test_bad_request_is_400(emu: Emulator, name: str, mutate: Any) -> None:
    b = copy.deepcopy(body())
    mutate(b)
    status, err, _ = raw_post(emu, b)
    assert status == 400, name
    assert set(err) == {"error", "id", "request_id"}
    assert set(err["error"]) == {"code", "param", "message", "type"}
    assert err["error"]["code"] == "invalid_parameter_error"
    assert "\n" not in err["error"]["message"] and err["id"].startswith("chatcmpl-")


def test_not_json_and_oversize_data_uri(emu: Emulator) -> None:
    status, err, _ = raw_post(emu, b"{not json")
    assert status == 400 and err["error"]["code"] == "invalid_parameter_error"
    big = "data:;base64," + "A" * 10_485_760
    status, err, _ = raw_post(emu, body(big))
    assert status == 400
    assert err["error"]["message"] == "Exceeded limit on max bytes per data-uri item : 10485760"


def test_auth_and_model_errors_through_the_sdk(emu: Emulator) -> None:
    with pytest.raises(openai.AuthenticationError) as e401:
        sdk_stream(emu, body(), api_key_override="sk-wrong")
    assert e401.value.status_code == 401 and e401.value.code == "invalid_api_key"
    assert "region" in e401.value.message
    status, err, _ = raw_post(emu, body(), headers={"Authorization": ""})
    assert status == 401 and err["error"]["code"] == "invalid_api_key"
    with pytest.raises(openai.NotFoundError) as e404:
        sdk_stream(emu, body(model="qwen-max"))
    assert e404.value.code == "model_not_found"


def test_any_key_accepted_without_configured_key() -> None:
    with Emulator(EmulatorConfig(api_key=None)) as e:
        assert raw_post(e, body(), headers={"Authorization": "Bearer whatever"})[0] == 200
        assert raw_post(e, body(), headers={"Authorization": "Bearer "})[0] == 401


# --------------------------------------------------------------------------- quotas, faults


def test_rpm_and_tpm_quotas_answer_429() -> None:
    with Emulator(EmulatorConfig(api_key=KEY, rpm=2)) as e:
        assert [raw_post(e, body())[0] for _ in range(2)] == [200, 200]
        status, err, _ = raw_post(e, body())
        assert status == 429 and err["error"]["code"] == "limit_requests"
    with Emulator(EmulatorConfig(api_key=KEY, tpm=40)) as e:
        assert raw_post(e, body())[0] == 200  # 13 in + ~20 out
        with pytest.raises(openai.RateLimitError) as exc:
            sdk_stream(e, body())
        assert exc.value.code == "insufficient_quota"
        assert [r.status for r in e.records] == [200, 429]


@pytest.mark.parametrize("kind", ["429", "429_native", "500", "503"])
def test_faults_before_streaming(kind: str) -> None:
    with Emulator(EmulatorConfig(api_key=KEY, fault_rate=1.0, faults=(kind,))) as e:
        status, err, _ = raw_post(e, body())
        assert status == int(kind[:3])
        if kind == "429_native":
            assert set(err) == {"code", "message", "request_id"}
            assert err["code"] == "Throttling.RateQuota"
        else:
            expected = {"429": "limit_requests", "500": "internal_error",
                        "503": "ModelUnavailable"}[kind]
            assert err["error"]["code"] == expected
        assert e.records[0].fault == kind and not e.records[0].ok


@pytest.mark.parametrize("kind", ["drop", "error_event", "stall"])
def test_faults_mid_stream(kind: str) -> None:
    cfg = EmulatorConfig(api_key=KEY, fault_rate=1.0, faults=(kind,), stall_s=0.3)
    with Emulator(cfg) as e:
        stream = sdk_create(sdk_client(e), body())
        got = []
        expected = openai.APIConnectionError if kind != "error_event" else openai.APIError
        with pytest.raises(expected) as exc:
            for chunk in stream:
                got.append(chunk)
        assert 1 <= len(got) <= 3  # a few chunks arrived first
        if kind == "error_event":
            assert isinstance(exc.value.body, dict)
            assert exc.value.body["code"] == "internal_error"
        rec = e.records[0]
        assert (rec.status, rec.fault, rec.ok) == (200, kind, False)


def test_fault_sequence_is_seeded() -> None:
    def kinds(seed: int) -> list[str | None]:
        cfg = EmulatorConfig(api_key=KEY, fault_rate=0.5, faults=("500", "503"), seed=seed)
        with Emulator(cfg) as e:
            for _ in range(8):
                raw_post(e, body(audio=False))
            return [r.fault for r in e.records]

    first = kinds(3)
    assert first == kinds(3) and None in first and set(first) - {None}


def test_stop_is_prompt_with_a_stalled_stream() -> None:
    cfg = EmulatorConfig(api_key=KEY, fault_rate=1.0, faults=("stall",), stall_s=30)
    e = Emulator(cfg).start()
    errors: list[BaseException] = []

    def client() -> None:
        try:
            raw_post(e, body())
        except Exception as exc:  # the stalled connection is cut by stop()
            errors.append(exc)

    t = threading.Thread(target=client, daemon=True)
    t.start()
    deadline = time.monotonic() + 5
    while not e._conns and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    start = time.monotonic()
    e.stop()
    assert time.monotonic() - start < 1.5
    t.join(timeout=2)
    assert not t.is_alive() and errors


# --------------------------------------------------------------------------- records, knobs


def test_records(emu: Emulator) -> None:
    emu.reset_records()
    sdk_stream(emu, body())
    raw_post(emu, body(target="xx"))
    recs = emu.records
    assert [type(r) for r in recs] == [RequestRecord, RequestRecord]
    ok, bad = recs
    assert ok.ok and ok.status == 200 and ok.fault is None and ok.concurrency == 1
    assert ok.audio_sha256 == hashlib.sha256(PCM_1S.tobytes()).hexdigest()
    assert ok.target_lang == "es" and ok.modalities == ("text", "audio")
    assert ok.input_ms == 1000 and ok.output_ms > 0 and ok.finish_reason == "stop"
    assert not bad.ok and bad.status == 400 and bad.error_code == "invalid_parameter_error"
    assert bad.time >= ok.time
    emu.reset_records()
    assert emu.records == []


def test_latency_streaming_speed_and_concurrency() -> None:
    cfg = EmulatorConfig(api_key=KEY, latency_s=0.2, chunk_interval_s=0.01)
    with Emulator(cfg) as e:
        start = time.monotonic()
        threads = [threading.Thread(target=raw_post, args=(e, body())) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - start
        recs = e.records
        assert len(recs) == 3 and all(r.ok for r in recs)
        assert max(r.concurrency for r in recs) >= 2
        assert elapsed >= 0.2 + 0.01 * 5


def test_serve_blocks_until_stopped() -> None:
    ready: list[Emulator] = []
    t = threading.Thread(target=serve, args=(EmulatorConfig(api_key=KEY),),
                         kwargs={"on_ready": ready.append}, daemon=True)
    t.start()
    deadline = time.monotonic() + 5
    while not ready and time.monotonic() < deadline:
        time.sleep(0.01)
    assert raw_post(ready[0], body(audio=False))[0] == 200
    assert t.is_alive()
    ready[0].stop()
    t.join(timeout=2)
    assert not t.is_alive()


def test_config_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        EmulatorConfig(faults=("boom",))
    with pytest.raises(ValueError):
        EmulatorConfig(fault_rate=2.0)
    with pytest.raises(ValueError):
        EmulatorConfig(engine="gpt")


@pytest.mark.slow
def test_local_engine_translates_real_speech() -> None:
    """engine="local": the offline cascade answers over the same protocol."""
    wav = Path(__file__).resolve().parent.parent / "fixtures" / "speech.wav"
    with av.open(str(wav)) as f:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=16000)
        pcm = np.concatenate([o.to_ndarray().reshape(-1) for fr in f.decode(audio=0)
                              for o in resampler.resample(fr)])
    first = pcm[700 * 16: 2216 * 16]  # "The weather is nice today."
    with Emulator(EmulatorConfig(api_key=KEY, engine="local")) as e:
        res = sdk_stream(e, body(audio_url(wav_bytes(first))))
        assert res.finish == "stop" and res.text.strip()
        assert len(res.audio) > 24000  # over half a second of speech
        assert e.records[0].ok
        status, err, _ = raw_post(e, body(target="ja", audio=False))  # no eng-jpn pair here
        assert status == 400 and "local engine" in err["error"]["message"], err


def test_canned_answers_keep_lengths_and_texts_and_stay_deterministic() -> None:
    from dubkit.emulator.synth import synthesize_answer

    pcm = (np.random.default_rng(4).normal(0, 3000, 16_000 * 4)).astype(np.int16)
    for i in range(5):
        sha = f"{i:064x}"
        made = synthesize_answer(pcm, sha, "es", "Cherry", None)
        canned = synthesize_answer(pcm, sha, "es", "Cherry", None, canned=True)
        again = synthesize_answer(pcm, sha, "es", "Cherry", None, canned=True)
        assert (canned.text, canned.output_ms, len(canned.pcm)) == (
            made.text, made.output_ms, len(made.pcm),
        )
        assert np.array_equal(canned.pcm, again.pcm)
        assert np.sqrt(np.mean(canned.pcm.astype(float) ** 2)) > 300  # speech, not silence
