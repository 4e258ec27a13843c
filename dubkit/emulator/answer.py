"""Turning a translation into the documented SSE chunks (and usage, and max_tokens cuts)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from dubkit.emulator.decode import DecodedInput, audio_tokens
from dubkit.emulator.protocol import ParsedRequest
from dubkit.emulator.text import text_pieces, text_tokens
from dubkit.types import SERVICE_RATE


@dataclass(frozen=True, slots=True)
class Answer:
    """What one request streams back: text, PCM16 24 kHz bytes, finish reason, usage."""

    text: str
    audio: bytes
    finish_reason: str
    usage: dict[str, Any]

    @property
    def output_ms(self) -> int:
        return len(self.audio) // 2 * 1000 // SERVICE_RATE


def build_answer(
    req: ParsedRequest, decoded: DecodedInput, text: str, pcm: np.ndarray
) -> Answer:
    """Cut ``text``/``pcm`` at ``max_tokens`` if needed and count the usage.

    Output tokens are 12.5 per second of output audio (under 1 s counts as 1 s)
    plus the text tokens; over ``max_tokens`` both are cut in proportion and the
    finish reason is "length".
    """
    audio = pcm.astype("<i2").tobytes() if req.wants_audio else b""
    finish = "stop"
    a_tok, t_tok = _output_tokens(text, audio)
    if a_tok + t_tok > req.max_tokens:
        keep = req.max_tokens / (a_tok + t_tok)
        text = text[: int(len(text) * keep)]
        audio = audio[: int(len(audio) * keep) // 2 * 2]
        finish = "length"
        a_tok, t_tok = _output_tokens(text, audio)
        a_tok = min(a_tok, req.max_tokens)
        t_tok = min(t_tok, req.max_tokens - a_tok)
    prompt_details: dict[str, Any] = {
        "audio_tokens": decoded.audio_tokens,
        "cached_tokens": None,
        "text_tokens": 0,
    }
    usage: dict[str, Any] = {
        "completion_tokens": a_tok + t_tok,
        "prompt_tokens": decoded.prompt_tokens,
        "total_tokens": a_tok + t_tok + decoded.prompt_tokens,
        "completion_tokens_details": {
            "accepted_prediction_tokens": None,
            "audio_tokens": a_tok,
            "reasoning_tokens": None,
            "rejected_prediction_tokens": None,
            "text_tokens": t_tok,
        },
        "prompt_tokens_details": prompt_details,
    }
    if req.kind == "video":
        prompt_details["video_tokens"] = decoded.video_tokens
    return Answer(text=text, audio=audio, finish_reason=finish, usage=usage)


def _output_tokens(text: str, audio: bytes) -> tuple[int, int]:
    a_tok = audio_tokens(len(audio) // 2 * 1000 // SERVICE_RATE) if audio else 0
    return a_tok, (text_tokens(text) if text else 0)


@dataclass(frozen=True, slots=True)
class ChunkContext:
    """The fields every chunk of one answer shares."""

    completion_id: str  # "chatcmpl-<uuid>"
    audio_id: str  # "audio_<uuid>"
    created: int
    model: str


def _chunk(ctx: ChunkContext, delta: dict[str, Any] | None, finish: str | None) -> dict[str, Any]:
    choices: list[dict[str, Any]] = []
    if delta is not None:
        full = {"content": None, "function_call": None, "refusal": None, "role": None,
                "tool_calls": None}
        full.update(delta)
        choices = [{"delta": full, "finish_reason": finish, "index": 0, "logprobs": None}]
    return {
        "id": ctx.completion_id,
        "choices": choices,
        "created": ctx.created,
        "model": ctx.model,
        "object": "chat.completion.chunk",
        "service_tier": None,
        "system_fingerprint": None,
        "usage": None,
    }


def iter_chunks(
    answer: Answer,
    ctx: ChunkContext,
    *,
    audio_chunk_bytes: int,
    include_usage: bool,
    rng: np.random.Generator,
) -> Iterator[dict[str, Any]]:
    """The answer's chunks in order: text and audio interleaved, final, then usage."""
    pieces = text_pieces(answer.text, rng) or [""]
    audio = [answer.audio[i : i + audio_chunk_bytes]
             for i in range(0, len(answer.audio), audio_chunk_bytes)]
    # Text leads: piece i goes out at fraction i/len(pieces), audio chunk j at (j+0.5)/len(audio).
    order = sorted(
        [(i / len(pieces), 0, i) for i in range(len(pieces))]
        + [((j + 0.5) / len(audio), 1, j) for j in range(len(audio))]
    )
    first = True
    for _, is_audio, idx in order:
        if is_audio:
            delta: dict[str, Any] = {"audio": {
                "data": base64.b64encode(audio[idx]).decode("ascii"),
                "expires_at": ctx.created,
                "id": ctx.audio_id,
            }}
        else:
            delta = {"content": pieces[idx]}
        if first:
            delta["role"] = "assistant"
            first = False
        yield _chunk(ctx, delta, None)
    yield _chunk(ctx, {}, answer.finish_reason)
    if include_usage:
        usage_chunk = _chunk(ctx, None, None)
        usage_chunk["usage"] = answer.usage
        yield usage_chunk
