"""Media I/O: probe and decode in-process with PyAV, mux with the bundled ffmpeg.

The video stream is only ever stream-copied: its packets leave byte-identical.
Every file is written under a temporary name beside its final one and renamed
when complete, so an interrupted run never leaves a half-written output.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import av
import numpy as np

from dubkit.errors import InputError, MediaToolError, OutputError
from dubkit.files import atomic_output
from dubkit.types import MediaInfo, StreamInfo

log = logging.getLogger(__name__)

#: Samples per chunk yielded by the decoders (about a second at 48 kHz).
CHUNK_SAMPLES = 48_000

AUDIO_ONLY_CODECS: dict[str, list[str]] = {
    ".wav": ["-c:a", "pcm_s16le"],
    ".flac": ["-c:a", "flac"],
    ".mp3": ["-c:a", "libmp3lame", "-q:a", "2"],
    ".m4a": ["-c:a", "aac", "-b:a", "192k"],
    ".aac": ["-c:a", "aac", "-b:a", "192k"],
    ".ogg": ["-c:a", "libvorbis", "-q:a", "6"],
    ".opus": ["-c:a", "libopus", "-b:a", "128k"],
}
#: Video containers: (codec args for the dubbed track, subtitle codec).
VIDEO_CONTAINERS: dict[str, tuple[list[str], str]] = {
    ".mp4": (["aac", "-b:a:0", "192k"], "mov_text"),
    ".m4v": (["aac", "-b:a:0", "192k"], "mov_text"),
    ".mov": (["aac", "-b:a:0", "192k"], "mov_text"),
    ".mkv": (["aac", "-b:a:0", "192k"], "subrip"),
    ".webm": (["libopus", "-b:a:0", "128k"], "webvtt"),
}


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


def _stream_info(s: Any) -> StreamInfo:
    lang = s.metadata.get("language")
    if lang in ("", "und"):
        lang = None
    dur = int(s.duration * s.time_base * 1000) if s.duration and s.time_base else None
    common = {
        "index": s.index,
        "kind": s.type,
        "codec": s.codec_context.name if s.codec_context else "",
        "language": lang,
        "title": s.metadata.get("title") or s.metadata.get("name") or None,
        "duration_ms": dur,
    }
    if s.type == "audio":
        return StreamInfo(
            **common, sample_rate=s.codec_context.sample_rate, channels=s.codec_context.channels
        )
    if s.type == "video":
        rate = s.average_rate or s.guessed_rate
        return StreamInfo(
            **common,
            frame_rate=Fraction(rate) if rate else None,
            width=s.codec_context.width,
            height=s.codec_context.height,
        )
    return StreamInfo(**common)


def probe(path: str | Path) -> MediaInfo:
    """Container, duration and streams of ``path``; :class:`InputError` if it is not media."""
    path = Path(path)
    with _open(path) as c:
        streams = tuple(_stream_info(s) for s in c.streams)
        info = MediaInfo(path, c.format.name, _duration_ms(c), streams)
    if not any(s.kind in ("audio", "video") for s in info.streams):
        raise InputError("holds no audio or video stream", path=path)
    return info


def require_audio(info: MediaInfo) -> MediaInfo:
    """``info`` if the file has an audio stream, else an :class:`InputError`."""
    if info.audio is None:
        raise InputError("has no audio stream to translate", path=info.path)
    return info


def _iter_frames(path: Path, resampler: Any) -> Iterator[np.ndarray]:
    with _open(path) as c:
        if not c.streams.audio:
            raise InputError("has no audio stream to translate", path=path)
        stream = c.streams.audio[0]
        stream.thread_type = "AUTO"
        try:
            for frame in c.decode(stream):
                for out in resampler.resample(frame):
                    yield out.to_ndarray()
            for out in resampler.resample(None):
                yield out.to_ndarray()
        except av.FFmpegError as exc:
            raise InputError(f"damaged or truncated audio ({_reason(exc)})", path=path) from exc


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


def iter_pcm16(path: str | Path, rate: int = 16_000) -> Iterator[np.ndarray]:
    """Decode the first audio stream as 1-D int16 mono chunks at ``rate`` Hz.

    Memory is bounded by one chunk, whatever the file's length.
    """
    resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
    for block in _rechunk(_iter_frames(Path(path), resampler), CHUNK_SAMPLES):
        yield block.reshape(-1)


@dataclass(frozen=True, slots=True)
class AudioFormat:
    rate: int
    channels: int


def audio_format(info: MediaInfo) -> AudioFormat:
    """The rate and channel count the mix is made at (mono and stereo kept, more downmixed)."""
    a = require_audio(info).audio
    assert a is not None
    return AudioFormat(a.sample_rate or 48_000, 1 if (a.channels or 2) == 1 else 2)


def iter_float(path: str | Path, fmt: AudioFormat) -> Iterator[np.ndarray]:
    """Decode the first audio stream as float32 ``(channels, n)`` blocks in ``fmt``."""
    layout = "mono" if fmt.channels == 1 else "stereo"
    resampler = av.AudioResampler(format="fltp", layout=layout, rate=fmt.rate)
    yield from _rechunk(_iter_frames(Path(path), resampler), CHUNK_SAMPLES)


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


# ---------------------------------------------------------------- mux


def ffmpeg_exe(explicit: str | None = None) -> str:
    """The ffmpeg binary: ``explicit``, else imageio-ffmpeg's (which honours IMAGEIO_FFMPEG_EXE)."""
    if explicit:
        return explicit
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


@dataclass(frozen=True, slots=True)
class MuxPlan:
    """What goes into the output besides the copied video."""

    rate: int
    channels: int
    dub_language: str  # ISO 639-2
    dub_title: str
    original_language: str = "und"  # ISO 639-2
    subtitles: Path | None = None  # an SRT file
    subtitle_language: str = "und"
    keep_original: bool = True


def output_kind(path: Path) -> str:
    """ "video" or "audio" by the output's extension; :class:`InputError` if unsupported."""
    ext = path.suffix.lower()
    if ext in VIDEO_CONTAINERS:
        return "video"
    if ext in AUDIO_ONLY_CODECS:
        return "audio"
    supported = ", ".join(sorted({*VIDEO_CONTAINERS, *AUDIO_ONLY_CODECS}))
    raise InputError(f"unsupported file type {ext or '(none)'}; supported: {supported}", path=path)


def mux_command(
    ffmpeg: str, source: Path, info: MediaInfo, plan: MuxPlan, output: Path
) -> list[str]:
    """The ffmpeg argument list that writes ``output`` (pure; the dub arrives as f32le on stdin)."""
    cmd = [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostats", "-y"]
    cmd += ["-i", local_path(source)]
    cmd += ["-f", "f32le", "-ar", str(plan.rate), "-ac", str(plan.channels), "-i", "pipe:0"]
    ext = output.suffix.lower()
    if not info.has_video or ext in AUDIO_ONLY_CODECS:
        codec = AUDIO_ONLY_CODECS.get(ext) or ["-c:a", *VIDEO_CONTAINERS[ext][0]]
        cmd += ["-map", "1:a:0", *codec]
        cmd += ["-map_metadata", "0", "-metadata:s:a:0", f"language={plan.dub_language}"]
        return [*cmd, "-f", _muxer(ext), local_path(output)]
    dub_codec, sub_codec = VIDEO_CONTAINERS[ext]
    if plan.subtitles is not None:
        cmd += ["-i", local_path(plan.subtitles)]
    cmd += ["-map", "0:v", "-map", "1:a:0"]
    if plan.keep_original:
        cmd += ["-map", "0:a:0"]
    if plan.subtitles is not None:
        cmd += ["-map", "2:s:0"]
    cmd += ["-map_metadata", "0", "-map_chapters", "0", "-c:v", "copy", "-c:a:0", *dub_codec]
    cmd += ["-metadata:s:a:0", f"language={plan.dub_language}"]
    cmd += ["-metadata:s:a:0", f"title={plan.dub_title}", "-metadata:s:a:0"]
    cmd += [f"handler_name={plan.dub_title}", "-disposition:a:0", "default"]
    if plan.keep_original:
        cmd += ["-c:a:1", "copy", "-metadata:s:a:1", f"language={plan.original_language}"]
        cmd += ["-metadata:s:a:1", "title=Original", "-metadata:s:a:1", "handler_name=Original"]
        cmd += ["-disposition:a:1", "0"]
    if plan.subtitles is not None:
        cmd += ["-c:s", sub_codec, "-metadata:s:s:0", f"language={plan.subtitle_language}"]
        cmd += ["-metadata:s:s:0", f"title={plan.dub_title}", "-disposition:s:0", "0"]
    return [*cmd, "-f", _muxer(ext), local_path(output)]


def _muxer(ext: str) -> str:
    return {
        ".mp4": "mp4",
        ".m4v": "mp4",
        ".mov": "mov",
        ".mkv": "matroska",
        ".webm": "webm",
        ".wav": "wav",
        ".flac": "flac",
        ".mp3": "mp3",
        ".m4a": "ipod",
        ".aac": "adts",
        ".ogg": "ogg",
        ".opus": "opus",
    }[ext]


class Muxer:
    """Writes the output while the dubbed mix is produced, block by block.

    Use as a context manager: ``write()`` float32 ``(channels, n)`` blocks; on a
    clean exit ffmpeg is awaited, its status checked and the file renamed into
    place; on an exception ffmpeg is killed and the temporary file removed.

    A feeder thread moves the blocks into ffmpeg's pipe through a short queue, so
    the caller computes the next blocks while ffmpeg encodes the last ones.
    """

    #: Blocks queued ahead of ffmpeg (with 8192-sample blocks, about 3 s of audio).
    QUEUE_BLOCKS = 16

    def __init__(
        self, source: Path, info: MediaInfo, plan: MuxPlan, output: Path, ffmpeg: str | None = None
    ) -> None:
        check_output(source, output)
        output_kind(output)
        self.output = output
        self._make_cmd = lambda tmp: mux_command(ffmpeg_exe(ffmpeg), source, info, plan, tmp)
        self._stack = contextlib.ExitStack()
        self._cmd: list[str] = []
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._queue: queue.Queue[bytes | None] = queue.Queue(self.QUEUE_BLOCKS)
        self._feeder: threading.Thread | None = None
        self._broken = threading.Event()

    def __enter__(self) -> Muxer:
        try:  # the temporary file exists only once entered, so nothing is left if never entered
            tmp = self._stack.enter_context(atomic_output(self.output))
            self._cmd = self._make_cmd(tmp)
            self._stderr = self._stack.enter_context(tempfile.TemporaryFile())
            log.debug("running %s", self._cmd)
            self._proc = subprocess.Popen(
                self._cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._stderr
            )
            self._feeder = threading.Thread(target=self._feed, name="dubkit-mux", daemon=True)
            self._feeder.start()
        except BaseException:  # Ctrl-C while starting: __exit__ will not run, clean up here
            self._stack.__exit__(*sys.exc_info())
            raise
        return self

    def _feed(self) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        stdin = self._proc.stdin
        try:
            while (data := self._queue.get()) is not None:
                stdin.write(data)
            stdin.close()
        except (BrokenPipeError, ValueError, OSError):  # ffmpeg died or was killed
            self._broken.set()
            while self._queue.get() is not None:  # let the producer finish or fail fast
                pass

    def write(self, block: np.ndarray) -> None:
        assert self._proc is not None
        if self._broken.is_set():
            self._proc.wait()
            raise self._failure()
        self._queue.put(np.ascontiguousarray(block.T, dtype="<f4").tobytes())

    def _failure(self) -> MediaToolError:
        tail = ""
        if self._stderr is not None:
            self._stderr.seek(0)
            tail = self._stderr.read()[-2000:].decode("utf-8", "replace").strip()
        last = tail.splitlines()[-1] if tail else "no message"
        return MediaToolError(
            f"ffmpeg failed writing the output ({last})",
            path=self.output,
            command=self._cmd,
            stderr_tail=tail,
        )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        proc, feeder = self._proc, self._feeder
        assert proc is not None and feeder is not None
        try:
            if exc_type is not None:
                proc.kill()
            self._queue.put(None)
            feeder.join()
            if proc.wait() != 0 and exc_type is None:
                raise self._failure()
        except BaseException:
            self._stack.__exit__(*sys.exc_info())  # removes the temporary file
            raise
        self._stack.__exit__(exc_type, exc, tb)  # renamed into place, or removed on error


def mux(
    source: str | Path,
    output: str | Path,
    blocks: Sequence[np.ndarray] | Iterator[np.ndarray],
    plan: MuxPlan,
    *,
    info: MediaInfo | None = None,
    ffmpeg: str | None = None,
) -> Path:
    """Write ``output``: ``source``'s video copied, ``blocks`` as the dubbed track, per ``plan``."""
    source, output = Path(source), Path(output)
    info = info or probe(source)
    with Muxer(source, info, plan, output, ffmpeg) as m:
        for b in blocks:
            m.write(b)
    return output


def subtitle_command(
    ffmpeg: str, muxed: Path, subtitles: Path, plan: MuxPlan, output: Path
) -> list[str]:
    """The ffmpeg argument list that adds ``subtitles`` as a soft track to ``muxed`` (every
    stream copied, tags and dispositions kept), writing ``output`` (pure)."""
    ext = output.suffix.lower()
    _, sub_codec = VIDEO_CONTAINERS[ext]
    return [
        ffmpeg, "-hide_banner", "-loglevel", "error", "-nostats", "-nostdin", "-y",
        "-i", local_path(muxed), "-i", local_path(subtitles),
        "-map", "0", "-map", "1:s:0", "-map_metadata", "0", "-map_chapters", "0",
        "-c", "copy", "-c:s", sub_codec,
        "-metadata:s:s:0", f"language={plan.subtitle_language}",
        "-metadata:s:s:0", f"title={plan.dub_title}", "-disposition:s:0", "0",
        "-f", _muxer(ext), local_path(output),
    ]  # fmt: skip


def place_output(
    muxed: Path, output: Path, plan: MuxPlan, subtitles: Path | None, ffmpeg: str | None = None
) -> None:
    """Put the muxed dub in place as ``output`` (atomically), with ``subtitles`` added as a
    soft track where the output holds video: the streamed mux cannot take them, since the
    cues are known only once every translation is in."""
    with atomic_output(output) as tmp:
        if subtitles is None or output_kind(output) != "video" or not probe(muxed).has_video:
            shutil.copyfile(muxed, tmp)
            return
        cmd = subtitle_command(ffmpeg_exe(ffmpeg), muxed, subtitles, plan, tmp)
        log.debug("running %s", cmd)
        proc = subprocess.run(cmd, capture_output=True, check=False)
        if proc.returncode != 0:
            tail = proc.stderr[-2000:].decode("utf-8", "replace").strip()
            raise MediaToolError(
                "ffmpeg could not add the subtitle track", path=output, command=cmd,
                stderr_tail=tail,
            )  # fmt: skip


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
    proc = subprocess.run(cmd, capture_output=True, check=False)
    if proc.returncode != 0:
        tail = proc.stderr[-2000:].decode("utf-8", "replace").strip()
        raise MediaToolError(
            "ffmpeg could not cut a video clip", path=source, command=cmd, stderr_tail=tail
        )
    return proc.stdout
