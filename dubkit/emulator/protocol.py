"""Request validation and error bodies of the qwen3-livetranslate-flash protocol.

The emulator is at least as strict as the strictest documented reading
(livetranslate-api.md). Choices where the documentation is silent:

* only data URLs are accepted as media (the emulator never fetches remote URLs);
* the 10 MiB limit applies to the whole data-URL string, prefix included;
* a voice that does not speak the target language is a 400 invalid_parameter_error;
* ``audio`` given while ``modalities`` is ``["text"]`` is a 400;
* languages are accepted as codes or full English names, in any case.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from dataclasses import dataclass
from typing import Any

from dubkit.errors import ServiceError
from dubkit.languages import LANGUAGES, VOICES, Language

MAX_DATA_URI_BYTES = 10_485_760
MAX_OUTPUT_TOKENS = 4096
MAX_INPUT_TOKENS = 49_152
AUDIO_FORMATS = ("wav", "mp3", "flac", "aac", "ogg", "opus", "m4a")
_AUDIO_URL = re.compile(r"data:(audio/[A-Za-z0-9.+-]+)?;base64,")
_VIDEO_URL = re.compile(r"data:(video/[A-Za-z0-9.+-]+)?;base64,")
_BAD = "invalid_parameter_error"
_REQ = "invalid_request_error"


class ApiError(ServiceError):
    """An error answer: HTTP status, code, param and type of the error body.

    ``native`` selects the flat DashScope body ``{"code", "message", "request_id"}``.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        param: str | None = None,
        err_type: str = _REQ,
        native: bool = False,
    ) -> None:
        super().__init__(message, status=status, code=code)
        self.param = param
        self.err_type = err_type
        self.native = native

    def body(self, request_id: str, completion_id: str) -> dict[str, Any]:
        if self.native:
            return {"code": self.code, "message": self.reason, "request_id": request_id}
        return {
            "error": {
                "code": self.code,
                "param": self.param,
                "message": self.reason,
                "type": self.err_type,
            },
            "id": completion_id,
            "request_id": request_id,
        }


def bad(message: str, param: str | None = None) -> ApiError:
    """A 400 invalid_parameter_error."""
    return ApiError(400, _BAD, message, param=param)


@dataclass(frozen=True, slots=True)
class ParsedRequest:
    """A request that passed validation (media not decoded yet)."""

    model: str
    kind: str  # "audio" or "video"
    media: bytes
    audio_format: str | None
    target: Language
    source: Language | None
    modalities: tuple[str, ...]
    voice: str | None
    include_usage: bool
    max_tokens: int
    seed: int | None

    @property
    def wants_audio(self) -> bool:
        return "audio" in self.modalities


def check_auth(header: str | None, api_key: str | None) -> None:
    """401 unless ``header`` is ``Bearer <key>`` with the expected key."""
    hint = (
        "Incorrect API key provided. Keys are region-bound: a Singapore key "
        "(dashscope-intl.aliyuncs.com) fails in Beijing (dashscope.aliyuncs.com) "
        "and vice versa; check the key and the base URL's region."
    )
    if not header or not header.startswith("Bearer "):
        raise ApiError(401, "invalid_api_key", hint)
    key = header[len("Bearer "):].strip()
    if not key or (api_key is not None and key != api_key):
        raise ApiError(401, "invalid_api_key", hint)


def check_model(body: Any, models: tuple[str, ...]) -> str:
    """The model named by ``body`` (404 model_not_found for any other)."""
    model = body.get("model") if isinstance(body, dict) else None
    if not isinstance(model, str) or model not in models:
        raise ApiError(
            404,
            "model_not_found",
            f"The model `{model}` does not exist or you do not have access to it.",
            param="model",
        )
    return model


def parse_request(body: Any, models: tuple[str, ...]) -> ParsedRequest:
    """Validate a decoded JSON body; raises :class:`ApiError` on the first problem."""
    if not isinstance(body, dict):
        raise bad("The request body must be a JSON object.")
    model = check_model(body, models)
    kind, media, audio_format = _parse_messages(body.get("messages"))
    if body.get("stream") is not True:
        raise bad(
            "This model only supports streaming output: set the stream parameter to true.",
            "stream",
        )
    include_usage = _parse_stream_options(body.get("stream_options"))
    target, source = _parse_translation_options(body.get("translation_options"))
    modalities, voice = _parse_output(body, target)
    _check_sampling(body)
    max_tokens = body.get("max_tokens")
    return ParsedRequest(
        model=model,
        kind=kind,
        media=media,
        audio_format=audio_format,
        target=target,
        source=source,
        modalities=modalities,
        voice=voice,
        include_usage=include_usage,
        max_tokens=MAX_OUTPUT_TOKENS if max_tokens is None else int(max_tokens),
        seed=body.get("seed"),
    )


def _parse_messages(messages: Any) -> tuple[str, bytes, str | None]:
    if not isinstance(messages, list) or not messages:
        raise bad("messages must be a non-empty list.", "messages")
    if any(isinstance(m, dict) and m.get("role") == "system" for m in messages):
        raise bad("System messages are not supported by this model.", "messages")
    if len(messages) != 1:
        raise bad("Only one user message is supported.", "messages")
    message = messages[0]
    if not isinstance(message, dict) or message.get("role") != "user":
        raise bad("The message role must be user.", "messages[0].role")
    content = message.get("content")
    if not isinstance(content, list) or len(content) != 1 or not isinstance(content[0], dict):
        raise bad(
            "content must be a list with exactly one input_audio or video_url part.",
            "messages[0].content",
        )
    part = content[0]
    kind = part.get("type")
    if kind == "input_audio":
        audio = part.get("input_audio")
        if not isinstance(audio, dict):
            raise bad("input_audio must be an object.", "input_audio")
        fmt = audio.get("format")
        if fmt not in AUDIO_FORMATS:
            raise bad(
                f"input_audio.format is required and must be one of {', '.join(AUDIO_FORMATS)}.",
                "input_audio.format",
            )
        return "audio", _decode_data_url(audio.get("data"), _AUDIO_URL, "input_audio.data"), fmt
    if kind == "video_url":
        video = part.get("video_url")
        if not isinstance(video, dict):
            raise bad("video_url must be an object.", "video_url")
        return "video", _decode_data_url(video.get("url"), _VIDEO_URL, "video_url.url"), None
    raise bad(
        f"Unsupported content type {kind!r}: use input_audio or video_url.",
        "messages[0].content[0].type",
    )


def _decode_data_url(url: Any, pattern: re.Pattern[str], param: str) -> bytes:
    if not isinstance(url, str) or not url:
        raise bad(f"{param} is required.", param)
    if len(url) > MAX_DATA_URI_BYTES:
        raise bad(f"Exceeded limit on max bytes per data-uri item : {MAX_DATA_URI_BYTES}", param)
    match = pattern.match(url)
    if match is None:
        raise bad(
            f"{param} must be a base64 data URL (data:;base64,... ); "
            "the emulator does not fetch remote URLs.",
            param,
        )
    payload = url[match.end():]
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as e:
        raise bad(f"{param} is not valid base64: {e}", param) from e
    if not raw:
        raise bad(f"{param} is empty.", param)
    return raw


def _parse_stream_options(options: Any) -> bool:
    if options is None:
        return False
    if not isinstance(options, dict):
        raise bad("stream_options must be an object.", "stream_options")
    include = options.get("include_usage", False)
    if not isinstance(include, bool):
        raise bad("stream_options.include_usage must be a boolean.", "stream_options")
    return include


def find_language(name: Any) -> Language | None:
    """The language whose code or English name is ``name`` (any case)."""
    if not isinstance(name, str):
        return None
    key = name.strip().lower()
    return next((lg for lg in LANGUAGES if key in (lg.code, lg.name.lower())), None)


def _parse_translation_options(options: Any) -> tuple[Language, Language | None]:
    if not isinstance(options, dict):
        raise bad("translation_options is required (with target_lang).", "translation_options")
    target = find_language(options.get("target_lang"))
    if target is None:
        raise bad(
            f"translation_options.target_lang {options.get('target_lang')!r} is missing "
            "or not a supported language.",
            "translation_options.target_lang",
        )
    source = None
    if options.get("source_lang") is not None:
        source = find_language(options["source_lang"])
        if source is None:
            raise bad(
                f"translation_options.source_lang {options['source_lang']!r} is not a "
                "supported language.",
                "translation_options.source_lang",
            )
    return target, source


def _parse_output(body: dict[str, Any], target: Language) -> tuple[tuple[str, ...], str | None]:
    modalities = body.get("modalities", ["text"])
    if modalities == ["text"]:
        if body.get("audio") is not None:
            raise bad('audio requires modalities ["text", "audio"].', "audio")
        return ("text",), None
    if modalities != ["text", "audio"]:
        raise bad('modalities must be ["text"] or ["text", "audio"].', "modalities")
    if not target.can_dub:
        raise bad(
            f"{target.name} ({target.code}) supports text output only; "
            'use modalities ["text"].',
            "modalities",
        )
    audio = body.get("audio")
    if not isinstance(audio, dict):
        raise bad('audio {"voice", "format": "wav"} is required with audio output.', "audio")
    if audio.get("format") != "wav":
        raise bad('audio.format must be "wav".', "audio.format")
    voice = audio.get("voice")
    if not isinstance(voice, str) or voice not in VOICES:
        raise bad(
            f"audio.voice {voice!r} is not a supported voice: {', '.join(VOICES)}.",
            "audio.voice",
        )
    if voice not in target.voices:
        raise bad(
            f"audio.voice {voice} does not speak {target.name}; "
            f"voices for {target.code}: {', '.join(target.voices)}.",
            "audio.voice",
        )
    return ("text", "audio"), voice


def _number(body: dict[str, Any], name: str, *, integer: bool = False) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or not math.isfinite(value):
        raise bad(f"{name} must be {'an integer' if integer else 'a number'}.", name)
    return float(value)


def _check_sampling(body: dict[str, Any]) -> None:
    rules: tuple[tuple[str, bool, Any, str], ...] = (
        ("temperature", False, lambda v: 0 <= v < 2, "[0, 2)"),
        ("top_p", False, lambda v: 0 < v <= 1, "(0, 1]"),
        ("top_k", True, lambda v: v >= 0, ">= 0"),
        ("presence_penalty", False, lambda v: -2 <= v <= 2, "[-2, 2]"),
        ("repetition_penalty", False, lambda v: v > 0, "> 0"),
        ("seed", True, lambda v: 0 <= v <= 2**31 - 1, "[0, 2147483647]"),
        ("max_tokens", True, lambda v: 1 <= v <= MAX_OUTPUT_TOKENS, f"[1, {MAX_OUTPUT_TOKENS}]"),
        ("speech_rate", False, lambda v: 0.5 <= v <= 2.0, "[0.5, 2.0]"),
    )
    for name, integer, test, text in rules:
        value = _number(body, name, integer=integer)
        if value is not None and not test(value):
            raise bad(f"{name} must be in {text}, got {body[name]}.", name)
