"""Benchmark inputs, generated once and cached under ``bench/.cache/``.

The speech track is the eight ground-truth utterances of ``fixtures/speech.wav``, cut at their
true edges, shuffled and joined with pauses drawn from a fixed seed (mostly 0.3-1.5 s, now and
then 2-4 s), repeated to the wanted length, upsampled to 48 kHz stereo, over a quiet noise bed
(about -50 dBFS) so there is never digital silence. The picture is ffmpeg's ``testsrc2``
encoded with libx264 ``ultrafast``; the audio is AAC. Everything is streamed through ffmpeg's
stdin, so even the 2-hour input never sits in memory. Files are written under a temporary
name and renamed when complete, so an interrupted generation is never reused.
"""

from __future__ import annotations

import json
import logging
import subprocess
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg
import numpy as np
from scipy.signal import resample_poly

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(__file__).resolve().parent / ".cache"
FIXTURE_WAV = ROOT / "fixtures" / "speech.wav"
FIXTURE_JSON = ROOT / "fixtures" / "speech.json"
RATE = 48_000
BLOCK = RATE * 10  # samples per block fed to ffmpeg
SEED = 20261121


@dataclass(frozen=True, slots=True)
class VideoSpec:
    """A generated input: ``seconds`` long, ``width`` x ``height`` at ``fps``."""

    seconds: int
    width: int
    height: int
    fps: int

    @property
    def name(self) -> str:
        return f"speech_{self.seconds}s_{self.width}x{self.height}_{self.fps}fps.mp4"


def ffmpeg() -> str:
    return imageio_ffmpeg.get_ffmpeg_exe()


def fixture_utterances() -> list[np.ndarray]:
    """The fixture's utterances as 16 kHz int16 arrays, cut at their ground-truth edges."""
    with wave.open(str(FIXTURE_WAV), "rb") as w:
        rate = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    truth = json.loads(FIXTURE_JSON.read_text())
    return [
        pcm[u["start_ms"] * rate // 1000 : u["end_ms"] * rate // 1000].copy()
        for u in truth["utterances"]
    ]


def fixture_pcm16() -> np.ndarray:
    """The whole of ``fixtures/speech.wav`` (16 kHz mono int16)."""
    with wave.open(str(FIXTURE_WAV), "rb") as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int16)


def _speech_pieces(seconds: int) -> Iterator[np.ndarray]:
    """Float32 mono 48 kHz pieces (utterance, pause, utterance...) totalling ``seconds``."""
    rng = np.random.default_rng(SEED)
    clips = [
        resample_poly(u.astype(np.float32) / 32768.0, 3, 1).astype(np.float32)
        for u in fixture_utterances()
    ]
    left = seconds * RATE
    while left > 0:
        for i in rng.permutation(len(clips)):
            long_pause = rng.random() < 0.1
            pause_ms = int(rng.uniform(2000, 4000) if long_pause else rng.uniform(300, 1500))
            for piece in (clips[i], np.zeros(pause_ms * RATE // 1000, np.float32)):
                piece = piece[:left]
                left -= len(piece)
                if len(piece):
                    yield piece
            if left <= 0:
                return


def _blocks(seconds: int) -> Iterator[bytes]:
    """The speech track as interleaved s16le stereo 48 kHz blocks, with a quiet noise bed."""
    rng = np.random.default_rng(SEED + 1)
    pending: list[np.ndarray] = []
    have = 0

    def emit(mono: np.ndarray) -> bytes:
        bed = rng.standard_normal((len(mono), 2)).astype(np.float32) * 0.003  # about -50 dBFS
        stereo = mono[:, None] * 0.9 + bed
        return (np.clip(stereo, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()

    for piece in _speech_pieces(seconds):
        pending.append(piece)
        have += len(piece)
        if have >= BLOCK:
            joined = np.concatenate(pending)
            yield emit(joined[:BLOCK])
            rest = joined[BLOCK:]
            pending, have = [rest], len(rest)
    if have:
        yield emit(np.concatenate(pending))


def _feed(cmd: list[str], seconds: int, out: Path) -> Path:
    """Run ``cmd`` (which reads the speech track on stdin and writes ``tmp``), then rename."""
    tmp = out.with_name(out.stem + ".part" + out.suffix)
    log.info("generating %s", out.name)
    with subprocess.Popen(
        [*cmd, str(tmp)], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    ) as proc:  # fmt: skip
        assert proc.stdin is not None and proc.stderr is not None
        try:
            for block in _blocks(seconds):
                proc.stdin.write(block)
        except BrokenPipeError:
            pass
        proc.stdin.close()
        err = proc.stderr.read().decode(errors="replace")
        code = proc.wait()
    if code != 0:
        tmp.unlink(missing_ok=True)
        tail = err.strip().splitlines()[-3:]
        raise RuntimeError(f"ffmpeg failed making {out.name} (status {code}): {' | '.join(tail)}")
    tmp.replace(out)
    return out


def video(spec: VideoSpec) -> Path:
    """The cached H.264/AAC MP4 of ``spec`` (made on first use)."""
    out = CACHE / spec.name
    if out.exists():
        return out
    CACHE.mkdir(parents=True, exist_ok=True)
    src = f"testsrc2=size={spec.width}x{spec.height}:rate={spec.fps}:duration={spec.seconds}"
    cmd = [
        ffmpeg(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", src,
        "-f", "s16le", "-ar", str(RATE), "-ac", "2", "-i", "pipe:0",
        "-map", "0:v", "-map", "1:a",
        "-c:v", "libx264", "-preset", "ultrafast", "-crf", "28", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "128k", "-t", str(spec.seconds),
        "-movflags", "+faststart",
    ]  # fmt: skip
    return _feed(cmd, spec.seconds, out)


def track_wav(seconds: int) -> Path:
    """The speech track alone as a 48 kHz stereo WAV (the "new audio" given to moviepy)."""
    out = CACHE / f"track_{seconds}s.wav"
    if out.exists():
        return out
    CACHE.mkdir(parents=True, exist_ok=True)
    cmd = [
        ffmpeg(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        "-f", "s16le", "-ar", str(RATE), "-ac", "2", "-i", "pipe:0",
        "-af", "volume=0.8", "-c:a", "pcm_s16le", "-t", str(seconds),
    ]  # fmt: skip
    return _feed(cmd, seconds, out)
