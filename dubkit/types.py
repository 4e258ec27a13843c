"""The domain's plain, immutable values.

One time unit inside: integer milliseconds on the timeline, integer sample
counts for audio.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

#: Sample rate of audio sent to VAD and to the service.
VAD_RATE = 16_000
#: Sample rate of the PCM16 audio the service returns.
SERVICE_RATE = 24_000


@dataclass(frozen=True, slots=True)
class Utterance:
    """A span of speech on the source timeline, ``[start_ms, end_ms)``.

    ``lead_ms``: how much of its start is padding the segmentation added into a loud pause
    (``SegmentOptions.onset_ms_per_db``): translated with the rest, left out of the speaker
    analysis (:attr:`core_start_ms`). Not part of the span's identity (equality, repr).
    """

    start_ms: int
    end_ms: int
    lead_ms: int = field(default=0, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not 0 <= self.start_ms < self.end_ms:
            raise ValueError(f"bad utterance span [{self.start_ms}, {self.end_ms})")

    @property
    def duration_ms(self) -> int:
        return self.end_ms - self.start_ms

    @property
    def core_start_ms(self) -> int:
        """The start without the lead: where the speaker analysis reads from."""
        core = self.start_ms + self.lead_ms
        return core if self.lead_ms > 0 and core < self.end_ms else self.start_ms


@dataclass(frozen=True, slots=True)
class Usage:
    """Token usage reported by the service (or estimated for the local engine)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    input_audio_tokens: int = 0
    input_video_tokens: int = 0
    output_audio_tokens: int = 0
    output_text_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(*(getattr(self, f) + getattr(other, f) for f in self.__dataclass_fields__))


@dataclass(frozen=True, slots=True)
class Translation:
    """One utterance translated: text, and speech as PCM16 mono little-endian.

    ``audio`` is empty when only text was asked for. ``voice`` names the voice that
    spoke when the engine had to use another than the one asked for (None: as asked).
    ``source_text`` is what the engine heard, in the source language, where it knows it
    (the local engine; None: unknown, as with the cloud model).
    """

    text: str
    audio: bytes = b""
    sample_rate: int = SERVICE_RATE
    usage: Usage = field(default_factory=Usage)
    finish_reason: str = "stop"
    voice: str | None = None
    source_text: str | None = None

    def samples(self) -> np.ndarray:
        """The speech as an int16 array (a read-only view of ``audio``)."""
        n = len(self.audio) // 2
        return np.frombuffer(self.audio, dtype="<i2", count=n)

    @property
    def audio_ms(self) -> int:
        return (len(self.audio) // 2) * 1000 // self.sample_rate


@dataclass(frozen=True, slots=True)
class Cue:
    """A subtitle event: ``[start_ms, end_ms)`` and its lines; ``utterance``, the
    utterance whose translation it shows, where the cue was laid out from one (not read
    from a file). It takes no part in comparisons."""

    start_ms: int
    end_ms: int
    lines: tuple[str, ...]
    utterance: Utterance | None = field(default=None, compare=False, repr=False)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """One stream of a media file, as probed."""

    index: int
    kind: str  # "video", "audio", "subtitle", "data", ...
    codec: str
    language: str | None = None
    title: str | None = None
    sample_rate: int | None = None
    channels: int | None = None
    frame_rate: Fraction | None = None
    width: int | None = None
    height: int | None = None
    duration_ms: int | None = None
    layout: str | None = None  # audio channel layout, e.g. "mono", "stereo", "5.1"
    dispositions: tuple[str, ...] = ()  # e.g. ("default",), ("forced", "hearing_impaired")
    position: int = 0  # index among the streams of its kind (audio track number)
    bit_rate: int | None = None  # bits a second, where the container or codec says

    @property
    def default(self) -> bool:
        return "default" in self.dispositions


@dataclass(frozen=True, slots=True)
class MediaInfo:
    """What :func:`dubkit.media.probe` learns about a file."""

    path: Path
    container: str  # demuxer name, e.g. "mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "wav"
    duration_ms: int
    streams: tuple[StreamInfo, ...]

    @property
    def video(self) -> StreamInfo | None:
        return next((s for s in self.streams if s.kind == "video"), None)

    @property
    def audio(self) -> StreamInfo | None:
        """The audio track dubbed by default: the one marked default, else the first."""
        tracks = self.audio_tracks
        return next((s for s in tracks if s.default), tracks[0] if tracks else None)

    @property
    def audio_tracks(self) -> tuple[StreamInfo, ...]:
        return tuple(s for s in self.streams if s.kind == "audio")

    @property
    def has_video(self) -> bool:
        return self.video is not None
