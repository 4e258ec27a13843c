"""Decoding the request's media (any container PyAV opens) and counting its tokens."""

from __future__ import annotations

import hashlib
import io
import math
from dataclasses import dataclass

import av
import numpy as np

from dubkit.emulator.protocol import ApiError, bad
from dubkit.types import VAD_RATE

MIN_INPUT_RATE = 8_000
MAX_INPUT_RATE = 48_000
#: Per-frame pixel budget used for video token counts (frames are scaled into it).
VIDEO_PIXEL_BUDGET = 768 * 28 * 28


@dataclass(frozen=True, slots=True)
class DecodedInput:
    """The request's audio as PCM16 mono 16 kHz, and its token counts."""

    pcm: np.ndarray  # int16, VAD_RATE
    sha256: str
    native_rate: int
    video_tokens: int = 0

    @property
    def duration_ms(self) -> int:
        return len(self.pcm) * 1000 // VAD_RATE

    @property
    def audio_tokens(self) -> int:
        return audio_tokens(self.duration_ms)

    @property
    def prompt_tokens(self) -> int:
        return self.audio_tokens + self.video_tokens


def audio_tokens(ms: int) -> int:
    """12.5 tokens per second of audio, anything under 1 s counted as 1 s (rounded up)."""
    return -(-max(ms, 1000) // 80)


def video_tokens(duration_ms: int, width: int, height: int) -> int:
    """Frames at 2 fps (4 to 128), ceil(n/2) x (h/32) x (w/32) + 2, h and w in 32-multiples."""
    frames = min(128, max(4, math.ceil(duration_ms * 2 / 1000)))
    scale = min(1.0, math.sqrt(VIDEO_PIXEL_BUDGET / max(1, width * height)))
    w = max(32, round(width * scale / 32) * 32)
    h = max(32, round(height * scale / 32) * 32)
    return math.ceil(frames / 2) * (h // 32) * (w // 32) + 2


def decode_media(raw: bytes, kind: str) -> DecodedInput:
    """Decode ``raw`` (kind "audio" or "video"); a 400 ApiError when it cannot be used."""
    what = "input_audio.data" if kind == "audio" else "video_url.url"
    try:
        with av.open(io.BytesIO(raw), mode="r") as container:
            if not container.streams.audio:
                raise bad(f"The {kind} in {what} has no audio stream.", what)
            stream = container.streams.audio[0]
            rate = stream.codec_context.sample_rate or stream.rate or 0
            pcm = _read_pcm(container, stream)
            vtokens = 0
            if kind == "video" and container.streams.video:
                v = container.streams.video[0].codec_context
                vtokens = video_tokens(len(pcm) * 1000 // VAD_RATE, v.width, v.height)
    except ApiError:
        raise
    except (av.FFmpegError, ValueError, IndexError, OSError) as e:
        raise bad(f"The {kind} in {what} could not be decoded: {e}", what) from e
    if kind == "audio" and not MIN_INPUT_RATE <= rate <= MAX_INPUT_RATE:
        raise bad(
            f"The audio sample rate {rate} Hz is outside {MIN_INPUT_RATE}-{MAX_INPUT_RATE} Hz.",
            what,
        )
    if len(pcm) == 0:
        raise bad(f"The {kind} in {what} holds no audio samples.", what)
    digest = hashlib.sha256(pcm.astype("<i2").tobytes()).hexdigest()
    return DecodedInput(pcm=pcm, sha256=digest, native_rate=rate, video_tokens=vtokens)


def _read_pcm(container: av.container.InputContainer, stream: av.AudioStream) -> np.ndarray:
    resampler = av.AudioResampler(format="s16", layout="mono", rate=VAD_RATE)
    parts: list[np.ndarray] = []
    for frame in container.decode(stream):
        for out in resampler.resample(frame):
            parts.append(out.to_ndarray().reshape(-1))
    for out in resampler.resample(None):
        parts.append(out.to_ndarray().reshape(-1))
    if not parts:
        return np.zeros(0, dtype=np.int16)
    return np.concatenate(parts).astype(np.int16, copy=False)
