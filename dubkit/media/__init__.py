"""Media I/O: probe and decode in-process with PyAV; the bundled ffmpeg (the mux is dubkit.mux).

The video stream is only ever stream-copied: its packets leave byte-identical.
Every file is written under a temporary name beside its final one and renamed
when complete, so an interrupted run never leaves a half-written output.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from dubkit import tools
from dubkit.errors import ConfigError, InputError, OutputError
from dubkit.languages import resolve
from dubkit.media.channels import ChannelLayout
from dubkit.types import MediaInfo, StreamInfo

log = logging.getLogger(__name__)

#: Samples per chunk yielded by the decoders (about a second at 48 kHz).
CHUNK_SAMPLES = 48_000

def _check_file(path: Path) -> None:
    if not path.exists():
        raise InputError("no such file", path=path)
    if path.is_dir():
        raise InputError("is a directory, not a media file", path=path)
    if not os.access(path, os.R_OK):
        raise InputError("is not readable (permission denied)", path=path)
    if path.stat().st_size == 0:
        raise InputError("is empty (0 bytes)", path=path)


def local_path(path: str | Path) -> str:
    """``path`` made absolute, so FFmpeg never reads ``take:1.mp4`` as a ``take:`` protocol URL."""
    return os.path.abspath(path)


def _reason(exc: Exception) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return " ".join(str(text).split())


@contextlib.contextmanager
def _open(path: Path) -> Iterator[Any]:
    _check_file(path)
    try:
        container = av.open(local_path(path), metadata_errors="ignore")
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise InputError(
            f"not a readable media file, or truncated ({_reason(exc)})", path=path
        ) from exc
    try:
        yield container
    finally:
        container.close()


def _duration_ms(container: Any) -> int:
    if container.duration:
        return int(container.duration * 1000 // av.time_base)
    best = 0
    for s in container.streams:
        if s.duration and s.time_base:
            best = max(best, int(s.duration * s.time_base * 1000))
    return best


_SKIP_DISPOSITIONS = {"multilayer"}


def _dispositions(s: Any) -> tuple[str, ...]:
    flags = int(s.disposition)
    return tuple(
        f.name for f in av.stream.Disposition
        if f.name and f.value & flags and f.name not in _SKIP_DISPOSITIONS
    )  # fmt: skip


def _stream_info(s: Any, position: int) -> StreamInfo:
    lang = s.metadata.get("language")
    if lang in ("", "und"):
        lang = None
    dur = int(s.duration * s.time_base * 1000) if s.duration and s.time_base else None
    ctx: Any = s.codec_context if s.type in ("audio", "video", "subtitle") else None
    common = {
        "index": s.index,
        "kind": s.type,
        "codec": ctx.codec.canonical_name if ctx else "",  # "mp3", not the decoder "mp3float"
        "language": lang,
        "title": s.metadata.get("title") or s.metadata.get("name") or None,
        "duration_ms": dur,
        "dispositions": _dispositions(s),
        "position": position,
    }
    if s.type == "audio":
        return StreamInfo(
            **common, sample_rate=ctx.sample_rate, channels=ctx.channels, layout=ctx.layout.name,
            bit_rate=ctx.bit_rate or None,
        )  # fmt: skip
    if s.type == "video":
        rate = s.average_rate or s.guessed_rate
        return StreamInfo(
            **common,
            frame_rate=Fraction(rate) if rate else None,
            width=ctx.width,
            height=ctx.height,
        )
    return StreamInfo(**common)


def _stream_infos(streams: Any) -> tuple[StreamInfo, ...]:
    seen: dict[str, int] = {}
    out = []
    for s in streams:
        out.append(_stream_info(s, seen.get(s.type, 0)))
        seen[s.type] = seen.get(s.type, 0) + 1
    return tuple(out)


def probe(path: str | Path) -> MediaInfo:
    """Container, duration and streams of ``path``; :class:`InputError` if it is not media."""
    path = Path(path)
    with _open(path) as c:
        streams = _stream_infos(c.streams)
        info = MediaInfo(path, c.format.name, _duration_ms(c), streams)
    if not any(s.kind in ("audio", "video") for s in info.streams):
        raise InputError("holds no audio or video stream", path=path)
    return info


def require_audio(info: MediaInfo) -> MediaInfo:
    """``info`` if the file has an audio stream, else an :class:`InputError`."""
    if info.audio is None:
        raise InputError("has no audio stream to translate", path=info.path)
    return info


def _describe(t: StreamInfo) -> str:
    return f"{t.position} {t.language or 'und'} {t.codec} {t.layout or ''}".strip()


def select_audio(info: MediaInfo, track: str | int | None = None) -> StreamInfo:
    """The audio track to dub: ``track`` is its number among the audio tracks (0-based) or a
    language (``fre``, ``fr``, ``French``); None picks the default track, else the first.
    """
    default = require_audio(info).audio
    assert default is not None
    if track is None or str(track).strip() == "":
        return default
    tracks = info.audio_tracks
    key = str(track).strip().lower()
    if key.isdigit():
        found = tracks[int(key)] if int(key) < len(tracks) else None
    else:
        found = next((t for t in tracks if _same_language(t.language, key)), None)
    if found is None:
        have = "; ".join(_describe(t) for t in tracks)
        raise InputError(f"has no audio track {track!r} (its audio tracks: {have})", path=info.path)
    return found


def _same_language(tag: str | None, wanted: str) -> bool:
    if tag is None:
        return False
    if tag.lower() == wanted:
        return True
    try:
        return resolve(tag).code == resolve(wanted).code
    except ConfigError:
        return False


def _samples(frame: Any) -> np.ndarray:
    """A frame's samples as ``(channels, n)`` (packed formats de-interleaved)."""
    a = frame.to_ndarray()
    if frame.format.is_planar:
        return a
    return a.reshape(-1, len(frame.layout.channels)).T


def _iter_frames(path: Path, resampler: Any, index: int | None = None) -> Iterator[np.ndarray]:
    with _open(path) as c:
        if not c.streams.audio:
            raise InputError("has no audio stream to translate", path=path)
        stream = c.streams.audio[0] if index is None else c.streams[index]
        stream.thread_type = "AUTO"
        promised = _promised_ms(c, stream)
        decoded = 0.0  # seconds
        try:
            for frame in c.decode(stream):
                decoded += frame.samples / (frame.sample_rate or 1)
                for out in resampler.resample(frame):
                    yield _samples(out)
            for out in resampler.resample(None):
                yield _samples(out)
        except av.FFmpegError as exc:
            raise InputError(f"damaged or truncated audio ({_reason(exc)})", path=path) from exc
        _check_complete(path, round(decoded * 1000), promised)


def _promised_ms(c: Any, stream: Any) -> tuple[int, bool] | None:
    """How long the container says ``stream`` is, and whether that is the stream's own
    length (else the container's, which other streams may make longer)."""
    if stream.duration is not None and stream.time_base is not None:
        return int(stream.duration * stream.time_base * 1000), True
    if c.duration is not None:
        return c.duration // 1000, False
    return None


def _check_complete(path: Path, decoded_ms: int, promised: tuple[int, bool] | None) -> None:
    """Refuse audio that stops well short of what its container promises: a file cut off
    (a faststart MP4 whose index outlives its data decodes cleanly, just too short). The
    container's own length leaves more room than the stream's: its other streams may
    outlast the audio."""
    if promised is None:
        return
    ms, own = promised
    slack = max(1000, ms // 50) if own else max(2000, ms // 10)
    if decoded_ms + slack < ms:
        raise InputError(
            f"truncated: its audio ends at {decoded_ms / 1000:.1f} s of the "
            f"{ms / 1000:.1f} s the container promises", path=path,
        )  # fmt: skip


def resample(x: np.ndarray, in_rate: int, out_rate: int) -> np.ndarray:
    """Mono audio at another rate, as float32, by FFmpeg's resampler (libswresample, the one
    the decoder uses): time-aligned with the input and ``ceil(len(x) * out_rate / in_rate)``
    samples long."""
    y = np.asarray(x, dtype=np.float32)
    if in_rate == out_rate or len(y) == 0:
        return y
    resampler = av.AudioResampler(format="flt", layout="mono", rate=out_rate)
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(y)[np.newaxis], "flt", "mono")
    frame.sample_rate, frame.pts = in_rate, 0
    parts = [f.to_ndarray()[0] for f in (*resampler.resample(frame), *resampler.resample(None))]
    n = -(-len(y) * out_rate // in_rate)
    out = np.zeros(n, dtype=np.float32)
    got = np.concatenate(parts)[:n] if parts else out[:0]
    out[: len(got)] = got
    return out


def _rechunk(blocks: Iterator[np.ndarray], size: int) -> Iterator[np.ndarray]:
    """Regroup (channels, n) blocks into blocks of ``size`` samples (the last may be shorter)."""
    pending: list[np.ndarray] = []
    have = 0
    for b in blocks:
        pending.append(b)
        have += b.shape[-1]
        if have >= size:
            joined = np.concatenate(pending, axis=-1)
            cut = (have // size) * size
            for i in range(0, cut, size):
                yield joined[..., i : i + size]
            rest = joined[..., cut:]
            pending, have = ([rest], rest.shape[-1]) if rest.shape[-1] else ([], 0)
    if have:
        yield np.concatenate(pending, axis=-1)


def prefetch(blocks: Iterator[np.ndarray], depth: int = 4) -> Iterator[np.ndarray]:
    """``blocks``, produced ahead by a worker thread (up to ``depth`` waiting).

    Decoding then overlaps with whatever consumes the blocks (PyAV and the VAD models release
    the GIL). An error in the worker is raised here, in the consumer; closing this generator
    early stops the worker.
    """
    q: queue.Queue[tuple[str, Any]] = queue.Queue(depth)
    stop = threading.Event()

    def work() -> None:
        try:
            for block in blocks:
                if stop.is_set():
                    return
                q.put(("block", block))
            q.put(("end", None))
        except BaseException as exc:  # handed over to the consumer
            q.put(("error", exc))

    worker = threading.Thread(target=work, name="dubkit-decode", daemon=True)
    worker.start()
    try:
        while True:
            kind, item = q.get()
            if kind == "end":
                return
            if kind == "error":
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a worker waiting on a full queue
            with contextlib.suppress(queue.Empty):
                q.get(timeout=0.05)
        worker.join()


def iter_pcm16(
    path: str | Path, rate: int = 16_000, stream: int | None = None
) -> Iterator[np.ndarray]:
    """Decode an audio stream (by file index; default the first) as 1-D int16 mono chunks.

    Memory is bounded by one chunk, whatever the file's length.
    """
    # Frames of CHUNK_SAMPLES out of the resampler: a 40th of the per-frame work of AAC's
    # 1,024-sample frames (the same samples).
    resampler = av.AudioResampler(format="s16", layout="mono", rate=rate, frame_size=CHUNK_SAMPLES)
    for block in _rechunk(_iter_frames(Path(path), resampler, stream), CHUNK_SAMPLES):
        yield block.reshape(-1)


@dataclass(frozen=True, slots=True)
class AudioFormat:
    """Rate, channel count and channel layout (FFmpeg's name: "mono", "stereo", "5.1", ...)."""

    rate: int
    channels: int
    layout: str = ""  # "" means the default layout of ``channels``

    @property
    def layout_name(self) -> str:
        if self.layout:
            return self.layout
        return {1: "mono", 2: "stereo"}.get(self.channels) or av.AudioLayout(
            f"{self.channels}c"
        ).name


def audio_format(info: MediaInfo, track: StreamInfo | None = None) -> AudioFormat:
    """The format the mix is made at: ``track``'s (default: the dubbed track's) rate and layout."""
    a = track or require_audio(info).audio
    assert a is not None
    channels = a.channels or 2
    layout = a.layout if a.layout and channels > 2 else ""
    try:
        if layout and av.AudioLayout(layout).nb_channels != channels:
            layout = ""
    except (ValueError, av.FFmpegError):
        layout = ""
    return AudioFormat(a.sample_rate or 48_000, channels, layout)


def iter_float(
    path: str | Path, fmt: AudioFormat, stream: int | None = None
) -> Iterator[np.ndarray]:
    """Decode an audio stream (by file index; default the first) as float32 ``(channels, n)``
    blocks in ``fmt``."""
    # Packed beyond stereo: PyAV 18 reads a planar 7.1 frame as 9 planes and crashes.
    sample_format = "fltp" if fmt.channels <= 2 else "flt"
    resampler = av.AudioResampler(format=sample_format, layout=fmt.layout_name, rate=fmt.rate)
    yield from _rechunk(_iter_frames(Path(path), resampler, stream), CHUNK_SAMPLES)


def read_spans(
    path: str | Path,
    fmt: AudioFormat,
    spans: Sequence[tuple[int, int]],
    stream: int | None = None,
    budget_ms: int | None = None,
) -> np.ndarray:
    """The samples of ``spans`` (ms, sorted, not overlapping) joined, float32 ``(channels, n)``.

    With ``budget_ms``, about that much is taken evenly across the spans (every k-th span),
    as for a loudness measure. One decoding pass; only the spans are kept in memory.
    """
    total = sum(e - s for s, e in spans)
    if budget_ms and total > budget_ms:
        step = -(-total // budget_ms)
        spans = [span for i, span in enumerate(spans) if i % step == 0]
    cuts = [(s * fmt.rate // 1000, e * fmt.rate // 1000) for s, e in spans]
    parts: list[np.ndarray] = []
    pos = 0
    for block in iter_float(path, fmt, stream):
        end = pos + block.shape[1]
        for s, e in cuts:
            if s < end and e > pos:
                parts.append(block[:, max(s, pos) - pos : min(e, end) - pos])
        pos = end
        if cuts and pos >= cuts[-1][1]:
            break
    return np.concatenate(parts, axis=1) if parts else np.zeros((fmt.channels, 0), np.float32)


@dataclass(frozen=True, slots=True)
class AudioSource:
    """The input track being dubbed (by file index), at the format the mix is made at."""

    path: Path
    stream: int
    fmt: AudioFormat

    @property
    def layout(self) -> ChannelLayout:
        return ChannelLayout.named(self.fmt.layout_name)

    def blocks(self) -> Iterator[np.ndarray]:
        return iter_float(self.path, self.fmt, self.stream)

    def read_spans(self, spans: Sequence[tuple[int, int]], budget_ms: int) -> np.ndarray:
        return read_spans(self.path, self.fmt, spans, self.stream, budget_ms)


# ---------------------------------------------------------------- output paths


def check_output(input_path: Path, output_path: Path) -> None:
    """Refuse an output that is the input, or that cannot be written."""
    if output_path.resolve() == input_path.resolve() or (
        output_path.exists() and output_path.samefile(input_path)
    ):
        raise OutputError(
            "output path is the input file; refusing to overwrite it", path=output_path
        )
    if output_path.is_dir():
        raise OutputError(
            "output path is an existing folder; refusing to replace it", path=output_path
        )
    parent = output_path.parent
    if parent.exists() and not parent.is_dir():
        raise OutputError("output directory is not a directory (it is a file)", path=parent)
    if not parent.is_dir():
        raise OutputError("output directory does not exist", path=parent)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError("output directory is not writable", path=parent)


# ---------------------------------------------------------------- ffmpeg


def ffmpeg_exe(explicit: str | None = None) -> str:
    """The ffmpeg binary: ``explicit``, else imageio-ffmpeg's (which honours IMAGEIO_FFMPEG_EXE)."""
    if explicit:
        return explicit
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def extract_clip(
    source: str | Path, start_ms: int, end_ms: int, *, height: int = 240, ffmpeg: str | None = None
) -> bytes:
    """A short, downscaled MP4 of ``[start_ms, end_ms)`` (for visual context in requests)."""
    cmd = [
        ffmpeg_exe(ffmpeg), "-hide_banner", "-loglevel", "error", "-nostdin",
        "-ss", f"{start_ms / 1000:.3f}", "-t", f"{(end_ms - start_ms) / 1000:.3f}",
        "-i", local_path(source), "-vf", f"scale=-2:{height},fps=2", "-c:v", "libx264",
        "-preset", "veryfast", "-crf", "32", "-c:a", "aac", "-b:a", "64k", "-ac", "1",
        "-movflags", "frag_keyframe+empty_moov", "-f", "mp4", "pipe:1",
    ]  # fmt: skip
    return run_ffmpeg(cmd, "ffmpeg could not cut a video clip", source)


def run_ffmpeg(cmd: list[str], failure: str, path: str | Path) -> bytes:
    """Run ffmpeg to the end; its stdout. A non-zero status raises
    :class:`~dubkit.errors.MediaToolError` (see :func:`dubkit.tools.failure`)."""
    return tools.run(cmd, failure, path=path)
