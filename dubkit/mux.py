"""Writing the dubbed output with the bundled ffmpeg: containers, stream map, the Muxer.

Every stream of the input that the output container can hold is kept, in order, with its
tags and dispositions; the video is only ever stream-copied (its packets leave
byte-identical). The dubbed track comes before the input's audio tracks and is the only
default audio track. :func:`stream_map` and :func:`mux_command` are pure and decide all of
that; :class:`Muxer` runs the command and renames the file into place when complete.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import itertools
import logging
import queue
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import numpy as np

from dubkit import media, tools
from dubkit.errors import InputError, MediaToolError
from dubkit.files import atomic_output
from dubkit.types import Cue, MediaInfo, StreamInfo

if TYPE_CHECKING:
    import av
    import av.subtitles.stream

log = logging.getLogger(__name__)

AUDIO_ONLY_CODECS: dict[str, list[str]] = {
    ".wav": ["-c:a", "pcm_s16le"],
    ".flac": ["-c:a", "flac"],
    ".mp3": ["-c:a", "libmp3lame", "-q:a", "2"],
    ".m4a": ["-c:a", "aac", "-b:a", "192k"],
    ".aac": ["-c:a", "aac", "-b:a", "192k"],
    ".ogg": ["-c:a", "libvorbis", "-q:a", "6"],
    ".opus": ["-c:a", "libopus", "-b:a", "128k"],
}
_AUDIO_ONLY_MUXERS = {
    ".wav": "wav", ".flac": "flac", ".mp3": "mp3", ".m4a": "ipod", ".aac": "adts",
    ".ogg": "ogg", ".opus": "opus",
}  # fmt: skip

TEXT_SUBTITLES = frozenset({"subrip", "srt", "ass", "ssa", "mov_text", "webvtt", "text"})
_MP4_AUDIO = frozenset({"aac", "mp3", "ac3", "eac3", "alac", "flac", "opus", "mp2"})


@dataclass(frozen=True, slots=True)
class Container:
    """What an output container can hold, and what the dub is encoded as in it."""

    muxer: str
    dub_encoder: str
    kbps_per_channel: int  # the dub's bitrate (at least two channels' worth)
    audio: frozenset[str] | None  # audio codecs copied as they are (None: any)
    text_subtitles: frozenset[str]  # subtitle codecs copied as they are
    subtitle_codec: str | None  # what other text subtitles become; None: sidecars only
    bitmap_subtitles: frozenset[str] = frozenset()
    attachments: bool = False
    cover_art: bool = False  # holds an attached picture (cover art) as such


_MKV_TEXT = frozenset({"subrip", "srt", "ass", "ssa", "webvtt"})
_MP4_TEXT = frozenset({"mov_text"})
CONTAINERS: dict[str, Container] = {
    ".mp4": Container("mp4", "aac", 96, _MP4_AUDIO, _MP4_TEXT, "mov_text", cover_art=True),
    ".m4v": Container("mp4", "aac", 96, _MP4_AUDIO, _MP4_TEXT, "mov_text", cover_art=True),
    ".mov": Container(
        "mov", "aac", 96, _MP4_AUDIO | {"pcm_s16le", "pcm_s24le"}, _MP4_TEXT, "mov_text",
        cover_art=True,
    ),
    ".mkv": Container(
        "matroska", "aac", 96, None, _MKV_TEXT, "subrip",
        frozenset({"hdmv_pgs_subtitle", "dvd_subtitle", "dvb_subtitle"}), attachments=True,
    ),
    ".webm": Container("webm", "libopus", 64, frozenset({"opus", "vorbis"}),
                       frozenset({"webvtt"}), "webvtt"),
    ".ts": Container("mpegts", "aac", 96, frozenset({"aac", "mp3", "mp2", "ac3", "eac3"}),
                     frozenset(), None, frozenset({"dvb_subtitle", "dvb_teletext"})),
}  # fmt: skip
#: ``--container`` choices and the extension each writes.
CONTAINER_CHOICES = {"mp4": ".mp4", "mkv": ".mkv", "mov": ".mov", "ts": ".ts"}
#: Input extensions written as another container's extension.
_SAME_AS = {".m2ts": ".ts", ".mts": ".ts", ".mpegts": ".ts"}


def output_suffix(input_suffix: str, container: str | None = None) -> tuple[str, str | None]:
    """The output's extension for an input's, and a notice when it is not the input's own.

    ``container`` (``mp4``, ``mkv``, ``mov``, ``ts``) overrides. A known media extension is
    kept; any other input (AVI, FLV, ...) is written as MKV.
    """
    ext = input_suffix.lower()
    if container is not None:
        want = CONTAINER_CHOICES.get(container.strip().lower().lstrip("."))
        if want is None:
            choices = ", ".join(CONTAINER_CHOICES)
            raise InputError(f"unknown container {container!r}; choose from {choices}")
        return want, None
    if ext in CONTAINERS or ext in AUDIO_ONLY_CODECS:
        return ext, None
    if ext in _SAME_AS:
        return _SAME_AS[ext], None
    name = ext.lstrip(".").upper() or "a file without an extension"
    return ".mkv", f"{name} is read but not written; the dubbed file is MKV (--container overrides)"


def output_kind(path: Path) -> str:
    """ "video" or "audio" by the output's extension; :class:`InputError` if unsupported."""
    ext = path.suffix.lower()
    if ext in CONTAINERS:
        return "video"
    if ext in AUDIO_ONLY_CODECS:
        return "audio"
    supported = ", ".join(sorted({*CONTAINERS, *AUDIO_ONLY_CODECS}))
    raise InputError(f"unsupported file type {ext or '(none)'}; supported: {supported}", path=path)


@dataclass(frozen=True, slots=True)
class MuxPlan:
    """What goes into the output besides the input's own streams."""

    rate: int
    channels: int
    dub_language: str  # ISO 639-2
    dub_title: str
    original_language: str = "und"  # ISO 639-2, for the dubbed input track if untagged
    subtitles: Path | None = None  # an SRT file
    subtitle_language: str = "und"
    keep_original: bool = True  # keep the input track that was dubbed
    track: int | None = None  # file index of the dubbed input track (None: the default one)
    layout: str = ""  # the dub's channel layout ("" = the default one of ``channels``)
    #: The dubbed tracks' bitrate in kb/s (None: follow the source, see :func:`dub_kbps`),
    #: and the source track's in bits a second (None: unknown).
    bitrate_kbps: int | None = None
    source_bit_rate: int | None = None
    #: The dubs into further languages, after the first (one output, several dubbed tracks),
    #: and languages subtitled only (``audio=False``).
    more: tuple[DubTrack, ...] = ()
    #: MP4 and MOV: the index moved before the data, for playback while downloading (it
    #: costs one more pass over the file).
    faststart: bool = False

    @property
    def dubs(self) -> tuple[DubTrack, ...]:
        """Every language's track, the first (the default audio track) first."""
        first = DubTrack(self.dub_language, self.dub_title, self.subtitles, self.subtitle_language)
        return (first, *self.more)

    @property
    def audio_dubs(self) -> tuple[DubTrack, ...]:
        """The languages with a dubbed audio track."""
        return tuple(t for t in self.dubs if t.audio)


@dataclass(frozen=True, slots=True)
class DubTrack:
    """One language's dubbed track in the output, and its soft subtitle track."""

    language: str  # ISO 639-2
    title: str
    subtitles: Path | None = None  # an SRT file
    subtitle_language: str = "und"
    audio: bool = True  # False: the language is subtitled only, it has no audio track


@dataclass(frozen=True, slots=True)
class OutStream:
    """One output stream: where it comes from (an ffmpeg map) and how it is written."""

    source: str  # "0:3" (input stream 3), "1:a:0" (the dub), "2:s:0" (its subtitles)
    kind: str
    codec: tuple[str, ...]  # encoder then its options, or ("copy",)
    metadata: tuple[tuple[str, str], ...] = ()
    disposition: str | None = None  # None: as the input's


def _disposition(s: StreamInfo) -> str:
    flags = [d for d in s.dispositions if d != "default"]
    return "+".join(flags) or "0"


def _bitrate(c: Container, channels: int) -> str:
    return f"{c.kbps_per_channel * max(2, channels)}k"


#: The least a dubbed track gets per channel (kb/s), however low its source's rate.
MIN_KBPS_PER_CHANNEL = {"aac": 64, "libopus": 32}


def dub_kbps(c: Container, channels: int, source_bit_rate: int | None) -> int:
    """The dubbed track's bitrate in kb/s: its source track's, never above it (a dub gains
    nothing from more bits than its source had, and the encoder's search costs far more at
    higher rates), but at least :data:`MIN_KBPS_PER_CHANNEL` a channel and at most the
    container's usual rate (also taken when the source's is unknown, or PCM).

    >>> dub_kbps(CONTAINERS[".mp4"], 2, 128_000), dub_kbps(CONTAINERS[".mp4"], 2, 1_411_200)
    (128, 192)
    >>> dub_kbps(CONTAINERS[".mp4"], 1, 32_000), dub_kbps(CONTAINERS[".webm"], 2, None)
    (64, 128)
    """
    ceiling = c.kbps_per_channel * max(2, channels)
    if not source_bit_rate:
        return ceiling
    floor = MIN_KBPS_PER_CHANNEL.get(c.dub_encoder, 64) * max(1, channels)
    return max(floor, min(ceiling, round(source_bit_rate / 1000)))


def _dub_bitrate(c: Container, plan: MuxPlan) -> str:
    """The ``-b`` of the dubbed tracks: as asked, else :func:`dub_kbps`."""
    return f"{plan.bitrate_kbps or dub_kbps(c, plan.channels, plan.source_bit_rate)}k"


def _title(s: StreamInfo) -> tuple[tuple[str, str], ...]:
    """The title, restated: MP4 reads it as ``name`` but writes it only from ``title``."""
    return (("title", s.title),) if s.title else ()


def _input_stream(s: StreamInfo, c: Container, plan: MuxPlan, dubbed: int) -> OutStream | None:
    src = f"0:{s.index}"
    if s.kind == "video":
        if "attached_pic" in s.dispositions and not c.cover_art:
            return None  # MKV would make it a one-frame video track, MPEG-TS a data stream
        return OutStream(src, s.kind, ("copy",))
    if s.kind == "audio":
        if s.index == dubbed and not plan.keep_original:
            return None
        codec: tuple[str, ...] = ("copy",)
        if c.audio is not None and s.codec not in c.audio:
            codec = (c.dub_encoder, "-b", _bitrate(c, s.channels or 2))
        meta = _title(s)
        if s.index == dubbed:
            if s.language is None and plan.original_language != "und":
                meta += (("language", plan.original_language),)
            if s.title is None:
                meta += (("title", "Original"), ("handler_name", "Original"))
        return OutStream(src, s.kind, codec, meta, _disposition(s))
    if s.kind == "subtitle":
        if s.codec in c.text_subtitles or s.codec in c.bitmap_subtitles:
            return OutStream(src, s.kind, ("copy",), _title(s), _disposition(s))
        if s.codec in TEXT_SUBTITLES and c.subtitle_codec is not None:
            return OutStream(src, s.kind, (c.subtitle_codec,), _title(s), _disposition(s))
        return None
    if s.kind == "attachment" and c.attachments:
        return OutStream(src, s.kind, ("copy",))
    return None


def stream_map(
    info: MediaInfo,
    plan: MuxPlan,
    container: Container,
    *,
    encoded: bool = False,
    live: bool = False,
) -> list[OutStream]:
    """The output's streams in order (pure): the input's, with the dubs before its audio,
    each dub's subtitles before the input's. The dubs come from stdin, encoded here, or
    (``encoded``) copied from :func:`encode_command`'s files, the subtitles from their SRT
    files; or (``live``) both from one Matroska stream on stdin (see :class:`LiveMuxer`),
    a subtitle track for every language."""
    dubbed = plan.track if plan.track is not None else media.select_audio(info).index
    codec = ("copy",) if encoded else (
        container.dub_encoder, "-b", _dub_bitrate(container, plan)
    )  # fmt: skip
    tracks = plan.dubs
    dubs = [
        OutStream(
            f"1:a:{k}" if live else f"{1 + k}:a:0",
            "audio",
            codec,
            (("language", t.language), ("title", t.title), ("handler_name", t.title)),
            "default" if k == 0 else "0",
        )
        for k, t in enumerate(plan.audio_dubs)
    ]
    kept = [o for s in info.streams if (o := _input_stream(s, container, plan, dubbed))]
    at = next((i for i, o in enumerate(kept) if o.kind != "video"), len(kept))
    out = [*kept[:at], *dubs, *kept[at:]]
    if container.subtitle_codec is not None:
        at = next((i for i, o in enumerate(out) if o.kind in ("subtitle", "attachment")), len(out))
        subs = [t for t in tracks if live or t.subtitles is not None]
        out[at:at] = [
            OutStream(
                f"1:s:{m}" if live else f"{1 + len(dubs) + m}:s:0",
                "subtitle",
                (container.subtitle_codec,),
                (("language", t.subtitle_language), ("title", t.title)),
                "0",
            )
            for m, t in enumerate(subs)
        ]
    left_out = len(info.streams) - len(kept) - (0 if plan.keep_original else 1)
    if left_out:
        log.info("%s: %d stream(s) the output cannot hold are left out", info.path, left_out)
    return out


def live_subtitles(plan: MuxPlan, output_ext: str) -> int:
    """How many subtitle tracks a :class:`LiveMuxer` writes: one per language, where the
    container holds text subtitles."""
    return len(plan.dubs) if CONTAINERS[output_ext.lower()].subtitle_codec else 0


def _stream_args(i: int, o: OutStream) -> list[str]:
    args = ["-map", o.source, f"-c:{i}", o.codec[0]]
    for opt, value in zip(o.codec[1::2], o.codec[2::2], strict=True):
        args += [f"{opt}:{i}", value]
    for key, value in o.metadata:
        args += [f"-metadata:s:{i}", f"{key}={value}"]
    if o.disposition is not None:
        args += [f"-disposition:{i}", o.disposition]
    return args


def _pcm_input(plan: MuxPlan) -> list[str]:
    """The dub as raw float32 on stdin, in the plan's rate and layout."""
    layout = plan.layout or {1: "mono", 2: "stereo"}.get(plan.channels, "")
    cmd = ["-f", "f32le", "-ar", str(plan.rate)]
    cmd += ["-ch_layout", layout] if layout else ["-ac", str(plan.channels)]
    return [*cmd, "-i", "pipe:0"]


def encoded_name(output_ext: str) -> str:
    """The file name :func:`encode_command` writes for a video container's dub: MP4 audio for
    AAC (its encoder delay survives the copy into any container, Matroska's does not), WebM
    for Opus (Matroska keeps Opus's delay)."""
    return "dub.webm" if CONTAINERS[output_ext.lower()].dub_encoder == "libopus" else "dub.m4a"


def encode_command(ffmpeg: str, plan: MuxPlan, output_ext: str, dest: Path) -> list[str]:
    """The ffmpeg argument list that encodes the dub from stdin alone, as the video
    container ``output_ext`` wants it, into ``dest`` (named by :func:`encoded_name`) (pure):
    the streamed half of a video dub, muxed by :func:`mux_command` with ``dub`` once the
    cues are known."""
    c = CONTAINERS[output_ext.lower()]
    cmd = [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostats", "-y", *_pcm_input(plan)]
    cmd += ["-map", "0:a:0", "-c:a", c.dub_encoder, "-b:a", _dub_bitrate(c, plan)]
    muxer = "webm" if dest.suffix == ".webm" else "mp4"
    return [*cmd, "-f", muxer, media.local_path(dest)]


def mux_command(
    ffmpeg: str,
    source: Path,
    info: MediaInfo,
    plan: MuxPlan,
    output: Path,
    dub: Path | Sequence[Path] | None = None,
    *,
    live: bool = False,
) -> list[str]:
    """The ffmpeg argument list that writes ``output`` (pure). The dub arrives as f32le on
    stdin, or (``dub``) as the files :func:`encode_command` wrote, one per track of the
    plan, copied, or (``live``, a video output) with every language's cues in one Matroska
    stream on stdin (see :class:`LiveMuxer`)."""
    dubs = [dub] if isinstance(dub, Path) else list(dub or [])
    if len(dubs) != len(plan.audio_dubs) and (dubs or plan.more) and not live:
        raise ValueError(f"{len(dubs)} encoded dubs for {len(plan.audio_dubs)} dubbed tracks")
    cmd = [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostats", "-y"]
    cmd += ["-i", media.local_path(source)]
    for d in dubs:
        cmd += ["-i", media.local_path(d)]
    if live:
        cmd += ["-f", "matroska", "-i", "pipe:0"]
    elif not dubs:
        cmd += _pcm_input(plan)
    ext = output.suffix.lower()
    if not info.has_video or ext in AUDIO_ONLY_CODECS:
        if plan.more:
            raise ValueError("an audio-only output holds one dub: write one file per language")
        if ext in AUDIO_ONLY_CODECS:
            codec, muxer = AUDIO_ONLY_CODECS[ext], _AUDIO_ONLY_MUXERS[ext]
        else:
            c = CONTAINERS[ext]
            codec, muxer = ["-c:a", c.dub_encoder, "-b:a", _dub_bitrate(c, plan)], c.muxer
        cmd += ["-map", "1:a:0", *codec]
        cmd += ["-map_metadata", "0", "-metadata:s:a:0", f"language={plan.dub_language}"]
        return [*cmd, "-f", muxer, media.local_path(output)]
    container = CONTAINERS[ext]
    streams = stream_map(info, plan, container, encoded=bool(dubs), live=live)
    if not live and any(o.kind == "subtitle" and not o.source.startswith("0:") for o in streams):
        cmd += [
            arg for t in plan.dubs if t.subtitles is not None
            for arg in ("-i", media.local_path(t.subtitles))
        ]  # fmt: skip
    for i, o in enumerate(streams):
        cmd += _stream_args(i, o)
        if live and o.source.startswith("1:a:"):
            cmd += _relabel(i, plan)
    cmd += ["-map_metadata", "0", "-map_chapters", "0"]
    if plan.faststart and container.muxer in ("mp4", "mov"):
        cmd += ["-movflags", "+faststart"]
    return [*cmd, "-f", container.muxer, media.local_path(output)]


def _relabel(i: int, plan: MuxPlan) -> list[str]:
    """Matroska carries a channel count, not a layout: name a surround dub's layout again,
    each channel kept where it is (``channelmap``), since ffmpeg guesses the count's default
    (5.1 for 5.1(side))."""
    if not plan.layout or plan.channels <= 2:
        return []
    order = "|".join(str(c) for c in range(plan.channels))
    return [f"-filter:{i}", f"channelmap=map={order}:channel_layout={plan.layout}"]


class Muxer:
    """Writes the output while the dubbed mix is produced, block by block.

    Use as a context manager: ``write()`` float32 ``(channels, n)`` blocks; on a
    clean exit ffmpeg is awaited, its status checked and the file renamed into
    place; on an exception ffmpeg is killed and the temporary file removed.

    A feeder thread moves the blocks into ffmpeg's pipe through a short queue, so
    the caller computes the next blocks while ffmpeg encodes the last ones.

    ``live`` (a video output): the whole output in one pass, every language's dub and its
    subtitle cues included. The feeder writes one Matroska stream to ffmpeg's stdin, a PCM
    track per dubbed language (``write(block, lane)``) and a SubRip track per language
    (``cue()``, in time order, as the cues become known); ffmpeg copies the video and the
    other streams, encodes the dubs and converts the cues to the container's subtitle codec.
    """

    #: Bytes of mix queued ahead of ffmpeg: 128 stereo blocks of 8192 samples (22 s of
    #: audio at 48 kHz, about a third of a second of the encoder's work). Enough to carry the
    #: encoder across a clip's time-stretch or a burst of answers; with 16 blocks it starved
    #: and the 10-minute dub took 6% longer (BENCHMARKS.md, 2026-12-06).
    QUEUE_BYTES = 8 << 20

    def __init__(
        self,
        source: Path,
        info: MediaInfo,
        plan: MuxPlan,
        output: Path,
        ffmpeg: str | None = None,
        *,
        encode_for: str | None = None,
        live: bool = False,
    ) -> None:
        """``encode_for`` (a video container's extension): write only the encoded dub to
        ``output`` (see :func:`encode_command`), not the whole output."""
        media.check_output(source, output)
        self.output, self._plan, self._live = output, plan, live
        exe = media.ffmpeg_exe(ffmpeg)
        if encode_for is not None:
            self._make_cmd = lambda tmp: encode_command(exe, plan, encode_for, tmp)
        else:
            output_kind(output)
            self._make_cmd = lambda tmp: mux_command(exe, source, info, plan, tmp, live=live)
        self._stack = contextlib.ExitStack()
        self._cmd: list[str] = []
        self._child: tools.Child | None = None
        block = 8192 * max(1, plan.channels) * 4  # float32 (channels, 8192) blocks of the mix
        self._queue: queue.Queue[tuple[int, np.ndarray | Cue] | None] = queue.Queue(
            max(16, self.QUEUE_BYTES // block)
        )
        self._feeder: threading.Thread | None = None
        self._broken = threading.Event()
        self._ended = False  # the producer's end (None) taken from the queue

    def __enter__(self) -> Muxer:
        try:  # the temporary file exists only once entered, so nothing is left if never entered
            tmp = self._stack.enter_context(atomic_output(self.output))
            self._cmd = self._make_cmd(tmp)
            self._child = self._stack.enter_context(tools.Child(self._cmd))
            feed = self._feed_live if self._live else self._feed
            self._feeder = threading.Thread(target=feed, name="dubkit-mux", daemon=True)
            self._feeder.start()
        except BaseException:  # Ctrl-C while starting: __exit__ will not run, clean up here
            self._stack.__exit__(*sys.exc_info())
            raise
        return self

    def _next(self) -> tuple[int, np.ndarray | Cue] | None:
        """The producer's next item; None (remembered) at its end."""
        item = self._queue.get()
        self._ended = self._ended or item is None
        return item

    def _drain(self) -> None:
        """Once ffmpeg has died or been killed: take what the producer still puts, until its
        end (unless the end was taken already: an error while closing), so it never blocks."""
        while not self._ended and self._next() is not None:
            pass

    def _feed(self) -> None:
        assert self._child is not None and self._child.proc.stdin is not None
        stdin = self._child.proc.stdin
        try:
            while (item := self._next()) is not None:
                block = item[1]
                assert isinstance(block, np.ndarray)
                stdin.write(np.ascontiguousarray(block.T, dtype="<f4").tobytes())
            stdin.close()
        except (BrokenPipeError, ValueError, OSError):  # ffmpeg died or was killed
            self._broken.set()
            self._drain()

    def _feed_live(self) -> None:
        import av

        assert self._child is not None and self._child.proc.stdin is not None
        stdin, plan = self._child.proc.stdin, self._plan
        layout = {1: "mono", 2: "stereo"}.get(plan.channels) or plan.layout
        try:
            with av.open(stdin, "w", format="matroska") as out:
                dubs = [
                    out.add_stream("pcm_f32le", rate=plan.rate, layout=layout)
                    for _ in plan.audio_dubs
                ]
                subs = [
                    out.add_stream_from_template(_subrip_template())
                    for _ in range(live_subtitles(plan, self.output.suffix))
                ]
                at = [0] * len(dubs)
                while (item := self._next()) is not None:
                    k, data = item
                    if isinstance(data, Cue):
                        out.mux(_cue_packet(subs[k], data))
                        continue
                    assert isinstance(data, np.ndarray)
                    packed = np.ascontiguousarray(data.T, dtype=np.float32).reshape(1, -1)
                    frame = av.AudioFrame.from_ndarray(packed, format="flt", layout=layout)
                    frame.sample_rate, frame.pts = plan.rate, at[k]
                    at[k] += data.shape[1]
                    out.mux(dubs[k].encode(frame))
                for d in dubs:
                    out.mux(d.encode(None))
            stdin.close()
        except (BrokenPipeError, ValueError, OSError, av.FFmpegError):  # ffmpeg died or was killed
            self._broken.set()
            self._drain()

    def write(self, block: np.ndarray, lane: int = 0) -> None:
        """The next ``(channels, n)`` block of the mix (of the ``lane``-th dubbed language)."""
        self._put((lane, block))

    def cue(self, track: int, cue: Cue) -> None:
        """A ``live`` output's next subtitle cue on its ``track``-th subtitle track."""
        self._put((track, cue))

    def _put(self, item: tuple[int, np.ndarray | Cue]) -> None:
        assert self._child is not None
        if self._broken.is_set():
            self._child.proc.wait()
            raise self._failure()
        self._queue.put(item)

    def _failure(self) -> MediaToolError:
        assert self._child is not None
        return self._child.failure("ffmpeg failed writing the output", path=self.output)

    def _end(self, feeder: threading.Thread) -> None:
        """Put the producer's end and wait for the feeder to finish.

        A Ctrl-C that lands inside an earlier ``put``, between ``Condition.notify`` releasing
        the feeder's waiter and forgetting it, leaves that spent waiter first in line: the next
        ``notify`` (this end's) goes to it and the feeder sleeps on, with the end in the queue,
        while this thread waits for it. Seen once in the kill-and-resume test, a dub hung for
        good after Ctrl-C while muxing. So the feeder is woken again until it has finished."""
        queue_, ended = self._queue, False
        while feeder.is_alive():
            with queue_.not_empty:
                queue_.not_empty.notify_all()
            if not ended:
                with contextlib.suppress(queue.Full):  # the feeder makes room, once woken
                    queue_.put(None, timeout=0.05)
                    ended = True
                continue
            feeder.join(0.05)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        child, feeder = self._child, self._feeder
        assert child is not None and feeder is not None
        proc = child.proc
        try:
            if exc_type is not None:
                proc.kill()
            self._end(feeder)
            if proc.wait() != 0 and exc_type is None:
                raise self._failure()
        except BaseException:
            self._stack.__exit__(*sys.exc_info())  # removes the temporary file
            raise
        self._stack.__exit__(exc_type, exc, tb)  # renamed into place, or removed on error


@functools.cache
def _subrip_template() -> av.subtitles.stream.SubtitleStream:
    """A SubRip stream to copy the parameters of (PyAV adds subtitle streams only so)."""
    import av

    srt = b"1\n00:00:00,000 --> 00:00:01,000\n-\n\n"
    return av.open(io.BytesIO(srt), format="srt").streams.subtitles[0]


def _cue_packet(stream: av.subtitles.stream.SubtitleStream, cue: Cue) -> av.Packet:
    import av

    packet = av.Packet("\n".join(cue.lines).encode())
    packet.stream, packet.time_base = stream, Fraction(1, 1000)
    packet.pts = packet.dts = cue.start_ms
    packet.duration = cue.end_ms - cue.start_ms
    return packet


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
    info = info or media.probe(source)
    with Muxer(source, info, plan, output, ffmpeg) as m:
        for b in blocks:
            m.write(b)
    return output


def mux_file(
    source: Path,
    info: MediaInfo,
    plan: MuxPlan,
    dub: Path | Sequence[Path],
    output: Path,
    ffmpeg: str | None = None,
) -> Path:
    """Write ``output`` (atomically) from ``source``'s streams, the encoded ``dub`` (one
    file per dubbed track) and the plan's subtitles: every stream copied, nothing encoded."""
    media.check_output(source, output)
    with atomic_output(output) as tmp:
        cmd = mux_command(media.ffmpeg_exe(ffmpeg), source, info, plan, tmp, dub=dub)
        media.run_ffmpeg(cmd, "ffmpeg failed writing the output", output)
    return output


def resubtitle(output: Path, info: MediaInfo, plan: MuxPlan, ffmpeg: str | None = None) -> Path:
    """Write ``output``, which a ``live`` :class:`Muxer` made from ``info``'s input, again
    (atomically) with the plan's subtitle files in place of the subtitle tracks it wrote (a
    language without a file loses its track); every other stream copied, in order."""
    container = CONTAINERS[output.suffix.lower()]
    exe = media.ffmpeg_exe(ffmpeg)
    files = [t.subtitles for t in plan.dubs]
    with atomic_output(output) as tmp:
        cmd = [exe, "-hide_banner", "-loglevel", "error", "-nostats", "-y"]
        cmd += ["-i", media.local_path(output)]
        for f in files:
            cmd += ["-i", media.local_path(f)] if f is not None else []
        inputs = list(itertools.accumulate(int(f is not None) for f in files))  # each file's input
        at = 0
        for i, o in enumerate(stream_map(info, plan, container, live=True)):
            if not o.source.startswith("1:s:"):
                cmd += ["-map", f"0:{i}", f"-c:{at}", "copy"]
            elif (m := int(o.source.rsplit(":", 1)[1])) < len(files) and files[m] is not None:
                cmd += _stream_args(at, dataclasses.replace(o, source=f"{inputs[m]}:s:0"))
            else:
                continue
            at += 1
        cmd += ["-map_metadata", "0", "-map_chapters", "0"]
        if plan.faststart and container.muxer in ("mp4", "mov"):
            cmd += ["-movflags", "+faststart"]
        cmd += ["-f", container.muxer, media.local_path(tmp)]
        media.run_ffmpeg(cmd, "ffmpeg failed writing the output", output)
    return output
