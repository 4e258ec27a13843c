"""The moviepy 2 bridge: a clip in, a dubbed clip and its subtitles out.

>>> from dubkit.moviepy import find_font
>>> font = find_font()
>>> font is None or font.endswith((".ttf", ".otf"))
True

:func:`dub_clip` renders a clip's audio (a :class:`~moviepy.VideoFileClip`, a
subclip of one, or any :class:`~moviepy.AudioClip`) to a temporary WAV, runs
:func:`dubkit.dub` on it and gives the clip back with the dubbed mix as its
audio, together with the cues, timed relative to the clip's own start.
:func:`subtitle_clips` and :func:`burn_subtitles` draw cues as hard captions
with moviepy's own :class:`~moviepy.TextClip`. moviepy is imported inside the
functions, so ``import dubkit`` never loads it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dubkit import media
from dubkit.errors import ConfigError, InputError
from dubkit.pipeline import Options, Progress, Result, dub
from dubkit.translate.protocol import Translator
from dubkit.types import Cue

log = logging.getLogger(__name__)

#: Rate used when an audio clip does not say its own (moviepy's default).
DEFAULT_AUDIO_FPS = 44_100
#: Seconds of audio rendered per chunk when writing the temporary WAV.
RENDER_CHUNK_S = 2.0
#: Font files tried, in order, when no font is given (Debian/Ubuntu, Fedora, macOS).
FONT_CANDIDATES: tuple[str, ...] = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/Library/Fonts/Arial.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
)
FONT_PACKAGE = "fonts-dejavu-core"


@dataclass(frozen=True, slots=True)
class DubbedClip:
    """A dubbed clip: ``clip`` has the dubbed mix as its audio (same duration as the input).

    ``cues`` are the subtitles in milliseconds from the clip's start. ``result`` is the
    pipeline's :class:`~dubkit.pipeline.Result`; its output files exist only when
    ``options.out_dir`` was set (otherwise they lived in a removed temporary folder),
    and its ``input`` (like the manifest's) names the temporary WAV the clip was rendered to.
    """

    clip: Any
    cues: tuple[Cue, ...]
    result: Result


# ---------------------------------------------------------------- dubbing


def _is_audio_clip(clip: Any) -> bool:
    from moviepy import AudioClip

    return isinstance(clip, AudioClip)


def _audio_of(clip: Any) -> Any:
    audio = clip if _is_audio_clip(clip) else getattr(clip, "audio", None)
    if audio is None:
        raise InputError("the clip has no audio to dub (clip.audio is None)")
    if clip.duration is None or audio.duration is None:
        raise InputError("the clip has no duration; cut it with subclipped(start, end) first")
    return audio


def _to_int16(block: np.ndarray) -> np.ndarray:
    arr = np.asarray(block, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    return np.round(np.clip(arr, -1.0, 1.0) * 32767).astype("<i2")


def render_wav(audio: Any, path: Path, duration_s: float) -> tuple[int, int]:
    """Write ``audio`` (a moviepy AudioClip) over ``[0, duration_s)`` as 16-bit PCM WAV.

    Returns ``(rate, channels)``. Rendered in chunks with moviepy's logger muted.
    """
    rate = int(getattr(audio, "fps", None) or DEFAULT_AUDIO_FPS)
    total = round(duration_s * rate)
    if total <= 0:
        raise InputError(f"the clip is too short to dub ({duration_s:.3f} s)")
    chunk = round(RENDER_CHUNK_S * rate)
    with wave.open(str(path), "wb") as out:
        channels = 0
        for start in range(0, total, chunk):
            t = np.arange(start, min(start + chunk, total)) / rate
            pcm = _to_int16(audio.to_soundarray(tt=t, fps=rate, quantize=False))
            if not channels:
                channels = pcm.shape[1]
                out.setnchannels(channels)
                out.setsampwidth(2)
                out.setframerate(rate)
            out.writeframes(pcm.tobytes())
    log.debug("rendered %d samples x %d channels at %d Hz to %s", total, channels, rate, path)
    return rate, channels


def load_stereo(path: Path, rate: int, channels: int, n: int) -> np.ndarray:
    """Decode ``path`` to float ``(n, 2)`` at ``rate``: mono doubled, padded or cut to ``n``."""
    fmt = media.AudioFormat(rate, 1 if channels == 1 else 2)
    blocks = list(media.iter_float(path, fmt))
    pcm = np.concatenate(blocks, axis=1) if blocks else np.zeros((fmt.channels, 0), np.float32)
    if pcm.shape[0] == 1:
        pcm = np.repeat(pcm, 2, axis=0)
    out = np.zeros((n, 2), dtype=np.float64)
    m = min(n, pcm.shape[1])
    out[:m] = pcm[:, :m].T
    return out


def dub_clip(
    clip: Any,
    options: Options,
    translator: Translator,
    *,
    name: str = "clip",
    progress: Progress | None = None,
) -> DubbedClip:
    """Dub a moviepy clip: the same clip with the dubbed mix as its audio, and its cues.

    ``clip`` is a VideoClip with audio (a ``VideoFileClip`` or a subclip of one) or an
    AudioClip; it must have a duration. Times in the cues are relative to the clip.
    With ``options.out_dir`` set, the pipeline's files are kept there as
    ``<name>.<lang>.wav``, ``.srt`` and ``.dubkit.json``. The dubbed audio is held in
    memory (an ``AudioArrayClip``), so the returned clip reads no temporary file.
    """
    from moviepy import AudioArrayClip

    if not name or os.sep in name or name in (".", ".."):
        raise ConfigError(f"name must be a plain file stem, got {name!r}")
    audio = _audio_of(clip)
    duration = float(clip.duration)
    with tempfile.TemporaryDirectory(prefix="dubkit-clip-") as tmp:
        work = Path(tmp)
        wav = work / f"{name}.wav"
        rate, channels = render_wav(audio, wav, duration)
        out_dir = options.out_dir if options.out_dir is not None else work / "out"
        out_dir.mkdir(exist_ok=True)
        result = dub(wav, dataclasses.replace(options, out_dir=out_dir), translator,
                     progress=progress)  # fmt: skip
        assert result.outputs.media is not None
        samples = load_stereo(result.outputs.media, rate, channels, round(duration * rate))
    dubbed = AudioArrayClip(samples, fps=rate).with_duration(duration)
    out = dubbed if _is_audio_clip(clip) else clip.with_audio(dubbed)
    limit = round(duration * 1000)
    cues = tuple(c for c in result.cues if c.start_ms < limit)
    log.info("dubbed a %.3f s clip into %s: %d cues", duration, result.target.code, len(cues))
    return DubbedClip(out, cues, result)


# ---------------------------------------------------------------- captions


def find_font() -> str | None:
    """A TrueType font on this system (DejaVu Sans first), or None if none is found."""
    for candidate in FONT_CANDIDATES:
        if Path(candidate).is_file():
            return candidate
    fc_match = shutil.which("fc-match")
    if fc_match:
        try:
            found = subprocess.run(
                [fc_match, "-f", "%{file}", "sans-serif:style=Regular"],
                capture_output=True, text=True, timeout=10, check=False,
            ).stdout.strip()  # fmt: skip
        except (OSError, subprocess.SubprocessError):
            found = ""
        if found.lower().endswith((".ttf", ".otf")) and Path(found).is_file():
            return found
    return None


def _check_font(font: str | None) -> str | None:
    """The font to give TextClip: ``font`` checked, else a system font, else Pillow's own."""
    from PIL import ImageFont, features

    if font is not None:
        try:
            ImageFont.truetype(font, 12)
        except OSError as e:
            raise ConfigError(
                f"cannot load the font ({e}); give a .ttf/.otf path or install {FONT_PACKAGE}",
                path=font,
            ) from e
        return font
    found = find_font()
    if found is None and not features.check("freetype2"):
        raise ConfigError(
            f"no TrueType font found and Pillow lacks FreeType; install {FONT_PACKAGE}"
        )
    return found  # None: Pillow's bundled scalable font (needs FreeType)


def subtitle_clips(
    cues: Iterable[Cue],
    size: tuple[int, int],
    *,
    duration: float | None = None,
    font: str | None = None,
    font_size: int | None = None,
    color: str = "white",
    stroke_color: str | None = "black",
    stroke_width: int = 2,
    bg_color: str | tuple[int, ...] | None = None,
    margin: int | None = None,
) -> list[Any]:
    """One ``TextClip`` per cue, bottom-centre of a ``size`` frame, shown during the cue.

    ``font_size`` defaults to 1/14 of the frame height and ``margin`` (from the bottom
    edge) to 1/20 of it; lines longer than 90 % of the width wrap. Cues past
    ``duration`` (seconds) are dropped, cues that run over it are cut.
    """
    from moviepy import TextClip

    width, height = size
    font_path = _check_font(font)
    fsize = font_size or max(10, height // 14)
    bottom = margin if margin is not None else max(2, height // 20)
    clips: list[Any] = []
    for cue in cues:
        start, end = cue.start_ms / 1000, cue.end_ms / 1000
        if duration is not None:
            end = min(end, duration)
        if end <= start or not cue.text.strip():
            continue
        text = TextClip(
            font=font_path, text=cue.text, font_size=fsize, size=(int(width * 0.9), None),
            method="caption", color=color, bg_color=bg_color, stroke_color=stroke_color,
            stroke_width=stroke_width, text_align="center", margin=(0, stroke_width + 2),
        )  # fmt: skip
        x, y = max(0, (width - text.w) // 2), max(0, height - bottom - text.h)
        clips.append(text.with_start(start).with_end(end).with_position((x, y)))
    return clips


def burn_subtitles(clip: Any, cues: Sequence[Cue], **style: Any) -> Any:
    """``clip`` with ``cues`` drawn over it (a ``CompositeVideoClip``, audio kept).

    ``style`` goes to :func:`subtitle_clips` (font, font_size, color, stroke_color,
    stroke_width, bg_color, margin).
    """
    from moviepy import CompositeVideoClip

    if _is_audio_clip(clip) or not hasattr(clip, "size"):
        raise InputError("burn_subtitles needs a video clip, not an audio clip")
    captions = subtitle_clips(cues, tuple(clip.size), duration=clip.duration, **style)
    composite = CompositeVideoClip([clip, *captions], size=clip.size)
    if clip.duration is not None:
        composite = composite.with_duration(clip.duration)
    return composite
