"""A matrix of small media files as users have them, made with the bundled ffmpeg at test time.

Each :class:`Case` is 3 s of a moving test pattern with one or more audio tracks (the
speech fixture placed in a channel layout, or a tone), subtitle tracks, an attachment and
chapters where the container holds them. :func:`make_command` is pure; :func:`make` runs it.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg

FIX = Path(__file__).resolve().parent.parent / "fixtures"
SECONDS = 3
#: Speech in the centre, a little of it in the fronts and surrounds, none in the LFE.
PANS = {
    "mono": "mono|c0=c0",
    "stereo": "stereo|c0=c0|c1=c0",
    "5.1": "5.1|c0=0.3*c0|c1=0.3*c0|c2=c0|c3=0*c0|c4=0.2*c0|c5=0.2*c0",
    "7.1": "7.1|c0=0.3*c0|c1=0.3*c0|c2=c0|c3=0*c0|c4=0.2*c0|c5=0.2*c0|c6=0.2*c0|c7=0.2*c0",
}
VIDEO = {
    "h264": ["libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p"],
    "vp8": ["libvpx", "-b:v", "200k", "-deadline", "realtime", "-cpu-used", "8"],
    "mpeg4": ["mpeg4", "-q:v", "8"],
}


@dataclass(frozen=True, slots=True)
class Track:
    """An audio track: speech (the fixture) or a tone, in ``layout``, encoded with ``codec``."""

    layout: str
    codec: str = "aac"
    language: str | None = None
    title: str | None = None
    default: bool = False
    speech: bool = True


@dataclass(frozen=True, slots=True)
class Sub:
    codec: str  # mov_text, srt, webvtt
    language: str
    forced: bool = False


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    ext: str
    video: str
    tracks: tuple[Track, ...]
    subs: tuple[Sub, ...] = ()
    attachment: bool = False
    chapters: bool = False


CASES = (
    Case("mp4", ".mp4", "h264", (
        Track("stereo", language="eng", title="Main", default=True),
        Track("stereo", language="fre", title="Commentaire"),
    ), (Sub("mov_text", "eng"),)),
    Case("mkv", ".mkv", "h264", (
        Track("stereo", "libopus", "fre", "Français", speech=False),
        Track("5.1", "aac", "eng", "Surround", default=True),
    ), (Sub("srt", "eng", forced=True),), attachment=True, chapters=True),
    Case("mov", ".mov", "h264", (Track("mono"),)),
    Case("m4v", ".m4v", "h264", (Track("7.1", language="eng", default=True),)),
    Case("webm", ".webm", "vp8", (Track("stereo", "libopus", "eng", default=True),),
         (Sub("webvtt", "eng"),)),
    Case("ts", ".ts", "h264", (
        Track("stereo", "aac", "eng", speech=False),
        Track("5.1", "aac", "fre"),
    )),
    Case("avi", ".avi", "mpeg4", (Track("stereo", "libmp3lame"),)),
    Case("flv", ".flv", "h264", (Track("stereo", "aac"),)),
)  # fmt: skip

SRT = "1\n00:00:00,500 --> 00:00:02,000\nHello there\n\n"
VTT = "WEBVTT\n\n00:00:00.500 --> 00:00:02.000\nHello there\n\n"
CHAPTERS = (
    ";FFMETADATA1\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=1500\ntitle=One\n"
    "[CHAPTER]\nTIMEBASE=1/1000\nSTART=1500\nEND=3000\ntitle=Two\n"
)


def _inputs(case: Case, work: Path) -> tuple[list[str], int]:
    args = ["-f", "lavfi", "-i", f"testsrc=size=160x120:rate=25:duration={SECONDS}"]
    for t in case.tracks:
        if t.speech:
            args += ["-t", str(SECONDS), "-i", str(FIX / "speech.wav")]
        else:
            args += ["-f", "lavfi", "-i", f"sine=frequency=330:sample_rate=48000:d={SECONDS}"]
    for s in case.subs:
        args += ["-i", str(work / ("subs.vtt" if s.codec == "webvtt" else "subs.srt"))]
    return args, 1 + len(case.tracks) + len(case.subs)


def _audio(case: Case) -> list[str]:
    graph = ";".join(
        f"[{i + 1}:a]aresample=48000,pan={PANS[t.layout]}[a{i}]" for i, t in enumerate(case.tracks)
    )
    args = ["-filter_complex", graph]
    for i, t in enumerate(case.tracks):
        args += ["-map", f"[a{i}]", f"-c:a:{i}", t.codec, f"-b:a:{i}", "64k" if t.layout in (
            "mono", "stereo") else "192k"]  # fmt: skip
        for key, value in (("language", t.language), ("title", t.title)):
            if value:
                args += [f"-metadata:s:a:{i}", f"{key}={value}"]
        args += [f"-disposition:a:{i}", "default" if t.default else "0"]
    return args


def make_command(ffmpeg: str, case: Case, work: Path, dest: Path) -> list[str]:
    """The ffmpeg argument list that writes ``case`` to ``dest`` (pure)."""
    inputs, n = _inputs(case, work)
    if case.chapters:
        inputs += ["-f", "ffmetadata", "-i", str(work / "chapters.txt")]
    args = [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *inputs]
    args += ["-map", "0:v", "-c:v", *VIDEO[case.video], *_audio(case)]
    first_sub = 1 + len(case.tracks)
    for i, s in enumerate(case.subs):
        args += ["-map", f"{first_sub + i}:s", f"-c:s:{i}", s.codec]
        args += [f"-metadata:s:s:{i}", f"language={s.language}"]
        args += [f"-disposition:s:{i}", "forced" if s.forced else "0"]
    if case.attachment:
        args += ["-attach", str(work / "notes.txt"), "-metadata:s:t", "mimetype=text/plain"]
    if case.chapters:
        args += ["-map_chapters", str(n)]
    return [*args, str(dest)]


def make(case: Case, folder: Path) -> Path:
    """Write ``case`` into ``folder`` as ``<name><ext>``."""
    work = folder / f"{case.name}-work"
    work.mkdir(parents=True, exist_ok=True)
    (work / "subs.srt").write_text(SRT, encoding="utf-8")
    (work / "subs.vtt").write_text(VTT, encoding="utf-8")
    (work / "chapters.txt").write_text(CHAPTERS, encoding="utf-8")
    (work / "notes.txt").write_text("A dubkit test attachment.\n", encoding="utf-8")
    dest = folder / f"{case.name}{case.ext}"
    cmd = make_command(imageio_ffmpeg.get_ffmpeg_exe(), case, work, dest)
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"ffmpeg could not make {dest.name}: {done.stderr.strip()[-500:]}")
    return dest
