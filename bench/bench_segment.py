"""Figures for voice activity segmentation (not a test): prints speed and memory.

Run: ``.venv/bin/python bench/bench_segment.py``. Inputs are generated with the bundled
ffmpeg from ``fixtures/speech.wav`` and cached under ``bench/.cache/`` (not committed).

1. segmentation alone, on already-decoded 16 kHz PCM (target >= 150x real time: Silero VAD
   confirms webrtcvad's frames since the real-speech work, at about 300x on its own; webrtcvad
   alone is printed beside it);
2. decode + segmentation of a 10-minute H.264/AAC video (target >= 150x real time);
3. peak RSS of ``segment()`` on a 2-hour audio file, in a fresh subprocess (target < 200 MB).
"""

from __future__ import annotations

import platform
import subprocess
import sys
import time
from pathlib import Path

import imageio_ffmpeg
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "bench" / ".cache"
SPEECH = ROOT / "fixtures" / "speech.wav"
sys.path.insert(0, str(ROOT))

from dubkit.media import iter_pcm16  # noqa: E402
from dubkit.segment import SegmentOptions, segment  # noqa: E402

RSS_PROBE = """
import resource, sys, time
from dubkit.segment import segment
t0 = time.perf_counter()
n = len(segment(sys.argv[1]))
dt = time.perf_counter() - t0
print(n, dt, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def make_input(name: str, seconds: int, video: bool) -> Path:
    """Loop the speech fixture for ``seconds``; with a tiny H.264 video track if ``video``."""
    out = CACHE / name
    if out.exists():
        return out
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.stem + ".part" + out.suffix)
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-v", "error",
           "-stream_loop", "-1", "-i", str(SPEECH)]
    if video:
        cmd += ["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=12",
                "-map", "1:v", "-map", "0:a", "-c:v", "libx264", "-preset", "ultrafast",
                "-pix_fmt", "yuv420p"]
    cmd += ["-t", str(seconds), "-c:a", "aac", "-b:a", "96k", str(tmp)]
    subprocess.run(cmd, check=True)
    tmp.rename(out)
    return out


def bench_pcm() -> None:
    one = np.concatenate(list(iter_pcm16(SPEECH)))
    pcm = np.tile(one, max(1, 600 * 16_000 // one.size))
    audio_s = pcm.size / 16_000
    for detector in ("webrtcvad", "webrtcvad+silero"):
        t0 = time.perf_counter()
        utts = segment(pcm, SegmentOptions(detector=detector))
        dt = time.perf_counter() - t0
        target = "; target >= 150x" if detector == SegmentOptions().detector else ""
        print(f"segmentation of decoded PCM ({detector}): {audio_s:.0f} s of audio in {dt:.2f} s"
              f" = {audio_s / dt:.0f}x real time ({len(utts)} utterances{target})")


def bench_video() -> None:
    path = make_input("talk_10min.mp4", 600, video=True)
    t0 = time.perf_counter()
    utts = segment(path)
    dt = time.perf_counter() - t0
    print(f"decode + segmentation of a 10-min H.264/AAC MP4: {dt:.2f} s = {600 / dt:.0f}x "
          f"real time ({len(utts)} utterances; target >= 150x)")


def bench_rss() -> None:
    path = make_input("talk_2h.m4a", 7200, video=False)
    res = subprocess.run([sys.executable, "-c", RSS_PROBE, str(path)], cwd=ROOT,
                         check=True, capture_output=True, text=True)
    n, dt, rss_kb = res.stdout.split()
    print(f"2-hour AAC audio: {n} utterances in {float(dt):.1f} s "
          f"({7200 / float(dt):.0f}x real time), peak RSS {int(rss_kb) / 1024:.0f} MB "
          f"(target < 200 MB)")


def main() -> None:
    print(f"{time.strftime('%Y-%m-%d')} {platform.machine()} Python {platform.python_version()}")
    bench_pcm()
    bench_video()
    bench_rss()


if __name__ == "__main__":
    main()
