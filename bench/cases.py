"""The benchmark cases. Each takes the run's :class:`Sizes` and returns rows for the table."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import inputs
from harness import (
    API_KEY,
    PYTHON,
    VENV_BIN,
    EmulatorProcess,
    Row,
    Timed,
    median,
    repeat,
    run_timed,
    spread,
)

from dubkit.translate import ArrayAudio
from dubkit.types import Utterance

log = logging.getLogger(__name__)

#: Client budgets far above anything the runs reach, so the client never paces itself.
UNPACED = ["--rpm", "1000000", "--tpm", "1000000000"]
CONCURRENCY = 8


@dataclass(frozen=True, slots=True)
class Sizes:
    """How big each case is (full run or ``--quick``)."""

    overhead_s: int  # case 1 input length
    runs: int  # repetitions of the short cases
    moviepy_runs: int
    memory_s: int  # case 4 long input length
    memory_runs: int
    quota_utts: int  # case 2
    latency_utts: int  # case 3


FULL = Sizes(overhead_s=600, runs=3, moviepy_runs=1, memory_s=7200, memory_runs=1,
             quota_utts=300, latency_utts=100)  # fmt: skip
QUICK = Sizes(overhead_s=60, runs=3, moviepy_runs=1, memory_s=600, memory_runs=1,
              quota_utts=60, latency_utts=24)  # fmt: skip


def overhead_spec(sizes: Sizes) -> inputs.VideoSpec:
    return inputs.VideoSpec(sizes.overhead_s, 1280, 720, 25)


def memory_spec(sizes: Sizes) -> inputs.VideoSpec:
    return inputs.VideoSpec(sizes.memory_s, 160, 90, 5)


@contextmanager
def scratch() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="dubkit-bench-"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def dub_cmd(
    src: Path, base_url: str, out_dir: Path, to: str = "es", mix: str | None = None
) -> list[str]:
    """``dubkit dub`` as a user would type it against the emulator, with no cache."""
    return [
        str(VENV_BIN / "dubkit"), "dub", str(src), "--to", to, "--engine", "cloud",
        "--base-url", base_url, "--no-cache", "--out-dir", str(out_dir),
        "--concurrency", str(CONCURRENCY), *UNPACED, "--quiet",
        *(["--mix", mix] if mix else []),
    ]  # fmt: skip


def dub_env() -> dict[str, str]:
    env = dict(os.environ)
    env["DASHSCOPE_API_KEY"] = API_KEY
    env.pop("DASHSCOPE_BASE_URL", None)
    return env


def time_dub(src: Path, base_url: str, mix: str | None = None) -> Timed:
    with scratch() as out:
        return run_timed(dub_cmd(src, base_url, out, mix=mix), env=dub_env())


def floor_cmd(src: Path, out: Path, track: Path | None = None) -> list[str]:
    """The floor: copy the video, encode one AAC track of the same length at the input's
    bitrate: the input's own audio, or (``track``) a new track never encoded before.

    The two differ. Re-encoding the input's AAC track, decoded, on the frame grid it was
    decoded from is about 30% cheaper for ffmpeg's encoder than encoding any other audio of
    the same kind (BENCHMARKS.md, 2026-12-06): the quantizer search converges at once on
    spectra that are already quantized. A dub's track is new audio, so the new-track floor
    is the work no dub can avoid; the input's own is kept beside it as issue 31 defines it."""
    audio = ["-i", str(track), "-map", "0:v", "-c:v", "copy", "-map", "1:a"] if track else [
        "-map", "0:v", "-c:v", "copy", "-map", "0:a"
    ]  # fmt: skip
    return [
        inputs.ffmpeg(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(src),
        *audio, "-c:a", "aac", "-b:a", "128k", str(out),
    ]  # fmt: skip


def time_floor(src: Path, track: Path | None = None) -> Timed:
    with scratch() as d:
        return run_timed(floor_cmd(src, d / "floor.mp4", track))


MOVIEPY_SCRIPT = """
import sys
from moviepy import AudioFileClip, VideoFileClip
video = VideoFileClip(sys.argv[1])
video.with_audio(AudioFileClip(sys.argv[2])).write_videofile(
    sys.argv[3], audio_codec="aac", logger=None)
"""


def time_moviepy(src: Path, track: Path) -> Timed:
    with scratch() as d:
        return run_timed([PYTHON, "-c", MOVIEPY_SCRIPT, str(src), str(track), str(d / "mp.mp4")])


# -- case 1 ---------------------------------------------------------------------------------
def case_overhead(sizes: Sizes) -> list[Row]:
    """dubkit end to end vs the ffmpeg floor vs moviepy."""
    spec = overhead_spec(sizes)
    src, track = inputs.video(spec), inputs.track_wav(spec.seconds)
    label = f"{spec.seconds // 60} min {spec.width}x{spec.height}"
    # The service's work happens on its servers: canned answers keep the emulator's own CPU
    # (synthesizing speech) off the two cores being measured. Dub and floor alternate, so a
    # drift in the machine's speed hits both; the ratio is taken pair by pair.
    # The dialogue separation (--mix separate, the default) has its own cost figure
    # (bench_separate.py); this case measures everything else, with --mix duck.
    with EmulatorProcess(latency_s=0.0, canned=True) as emu:
        time_dub(src, emu.base_url, "duck")  # warm-up: page cache, .pyc files
        dubs, floors, fresh = [], [], []
        for i in range(sizes.runs):
            dubs += repeat(1, lambda _: time_dub(src, emu.base_url, "duck"), f"dubkit dub {i + 1}")
            floors += repeat(1, lambda _: time_floor(src), f"ffmpeg floor {i + 1}")
            fresh += repeat(1, lambda _: time_floor(src, track), f"ffmpeg new-track floor {i + 1}")
    movies = repeat(sizes.moviepy_runs, lambda _: time_moviepy(src, track), "moviepy")
    d, m = (median([t.wall_s for t in ts]) for ts in (dubs, movies))
    ratio, ratio_new = (
        median([a.wall_s / b.wall_s for a, b in zip(dubs, fl, strict=True)])
        for fl in (floors, fresh)
    )
    case = f"1. overhead ({label})"
    return [
        Row(
            case,
            "dubkit dub --mix duck, end to end (emulator, 0 latency)",
            spread([t.wall_s for t in dubs]),
        ),
        Row(case, "floor: ffmpeg -c:v copy + AAC encode", spread([t.wall_s for t in floors])),
        Row(
            case,
            "new-track floor: the same, encoding the speech WAV (never encoded before)",
            spread([t.wall_s for t in fresh]),
        ),
        Row(case, "moviepy 2 write_videofile (audio replaced)", spread([t.wall_s for t in movies])),
        Row(case, "dubkit / floor (median of the pairs)", f"{ratio:.2f}x", "<= 1.5", ratio <= 1.5),
        Row(case, "dubkit / new-track floor (median of the pairs)", f"{ratio_new:.2f}x"),
        Row(case, "moviepy / dubkit", f"{m / d:.2f}x", ">= 6", m / d >= 6),
        Row(case, "dubkit realtime factor (media s / wall s)", f"{spec.seconds / d:.1f}x"),
    ]


# -- cases 2 and 3 --------------------------------------------------------------------------
def _utterances(n: int) -> tuple[ArrayAudio, list[Utterance]]:
    """``n`` 2-second utterances cycling over the fixture's eight, over the fixture audio."""
    starts = [u["start_ms"] for u in json.loads(inputs.FIXTURE_JSON.read_text())["utterances"]]
    audio = ArrayAudio(inputs.fixture_pcm16())
    return audio, [Utterance(starts[i % 8], starts[i % 8] + 2000) for i in range(n)]


def _translate(base_url: str, n: int, rpm: int | None) -> tuple[float, int, float]:
    """Wall seconds of ``translate_all`` over ``n`` utterances, how many failed, and the
    client's CPU seconds (this process)."""
    from dubkit.translate import translate_all
    from dubkit.translate.cloud import CloudConfig, CloudTranslator
    from dubkit.translate.pacing import RateLimiter
    from dubkit.translate.protocol import Job

    audio, utts = _utterances(n)
    translator = CloudTranslator(
        CloudConfig(api_key=API_KEY, base_url=base_url), limiter=RateLimiter(rpm=rpm, tpm=None)
    )
    job = Job("es", None, "Cherry")

    async def main() -> tuple[float, int, float]:
        try:
            t0, c0 = time.perf_counter(), time.process_time()
            results = await translate_all(
                translator,
                audio,
                utts,
                job,
                concurrency=CONCURRENCY,
            )
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        finally:
            await translator.aclose()
        return wall, sum(1 for r in results if not r.ok), cpu

    return asyncio.run(main())


def case_quota(sizes: Sizes) -> list[Row]:
    rpm, n = 600, sizes.quota_utts
    rates, got_429, failed = [], 0, 0
    with EmulatorProcess(latency_s=0.3, rpm=rpm) as emu:
        _translate(emu.base_url, 8, None)  # warm-up (imports, connections), not counted
        emu.reset()
        for i in range(sizes.runs):
            # Back to back, one fresh client each (as successive jobs would be): the server's
            # sliding 60 s window still holds the previous run's requests.
            before = len(emu.records())
            wall, bad, _ = _translate(emu.base_url, n, rpm)
            recs = emu.records()[before:]
            got_429 += sum(1 for r in recs if r[1] == 429)
            failed += bad
            rates.append(n / wall * 60)
            log.info(
                "quota run %d: %d requests in %.2f s = %.0f rpm, %d 429s, %d failed",
                i + 1,
                len(recs),
                wall,
                n / wall * 60,
                sum(1 for r in recs if r[1] == 429),
                bad,
            )
    share = median(rates) / rpm
    case = f"2. quota (rpm {rpm}, 300 ms latency, {n} utterances)"
    return [
        Row(case, "achieved requests/min", spread(rates, "rpm", 0)),
        Row(case, "share of quota", f"{share:.1%}", ">= 90%", share >= 0.9),
        Row(case, "429s received (all runs, back to back)", str(got_429), "0", got_429 == 0),
        Row(case, "utterances failed (all runs)", str(failed), "0", failed == 0),
    ]


def case_latency(sizes: Sizes) -> list[Row]:
    latency, n = 1.5, sizes.latency_utts
    ideal = n * latency / CONCURRENCY
    walls, cpus, failed = [], [], 0
    with EmulatorProcess(latency_s=latency) as emu:
        _translate(emu.base_url, 8, None)
        for _ in range(sizes.runs):
            wall, bad, cpu = _translate(emu.base_url, n, None)
            walls.append(wall)
            cpus.append(cpu)
            failed += bad
    with EmulatorProcess(latency_s=0.0) as emu:  # the same work with nothing to hide
        _translate(emu.base_url, 8, None)
        zero = [_translate(emu.base_url, n, None)[0] for _ in range(sizes.runs)]
    ratio = median(walls) / ideal
    case = f"3. latency hiding ({latency} s, {n} utterances, concurrency {CONCURRENCY})"
    return [
        Row(case, "wall time", spread(walls), note=f"client CPU {median(cpus):.1f} s"),
        Row(
            case,
            "same requests at 0 latency (processing alone)",
            spread(zero),
            note="emulator + client work that latency cannot hide",
        ),
        Row(
            case,
            f"wall / ({n}*{latency}/{CONCURRENCY} = {ideal:.2f} s)",
            f"{ratio:.3f}",
            "<= 1.2",
            ratio <= 1.2,
        ),
        Row(case, "utterances failed (all runs)", str(failed), "0", failed == 0),
    ]


# -- case 6 ---------------------------------------------------------------------------------
def paced_cmd(src: Path, base_url: str, out_dir: Path) -> list[str]:
    """``dubkit dub`` at its defaults (100 RPM, 100,000 TPM, concurrency 4), as a user runs it."""
    return [
        str(VENV_BIN / "dubkit"), "dub", str(src), "--to", "es", "--engine", "cloud",
        "--base-url", base_url, "--no-cache", "--out-dir", str(out_dir), "--quiet",
    ]  # fmt: skip


def case_paced(sizes: Sizes) -> list[Row]:
    """A whole dub under the service's quota: the emulator answers after 1.5 s and enforces
    100 requests a minute (429 beyond), dubkit runs at its default pacing. What the quota
    allows is requests / RPM; the local tail is what dubkit does after the last answer's
    first byte (the rest of the mix, the encode's end, the final mux). The head, before the
    first request (start-up, segmentation, speaker analysis), is what this figure charges."""
    latency, rpm = 1.5, 100
    spec = overhead_spec(sizes)
    src = inputs.video(spec)
    walls, heads, tails, ratios, got_429, failed = [], [], [], [], 0, 0
    for i in range(sizes.runs):
        # A fresh emulator each run: its sliding 60 s window must not hold the last run's.
        with EmulatorProcess(latency_s=latency, rpm=rpm, canned=True) as emu, scratch() as out:
            t0 = time.monotonic()
            t = run_timed(paced_cmd(src, emu.base_url, out), env=dub_env())
            recs = emu.records()
        if t.returncode not in (0, 4):
            raise RuntimeError(f"paced dub failed: {t.stderr_tail}")
        answered = [r for r in recs if r[1] == 200]
        got_429 += sum(1 for r in recs if r[1] == 429)
        failed += int(t.returncode == 4)
        head = min(r[0] for r in recs) - t0
        tail = t.wall_s - (max(r[0] for r in answered) - t0 + latency)
        allowed = len(answered) / rpm * 60
        walls.append(t.wall_s)
        heads.append(head)
        tails.append(tail)
        ratios.append(t.wall_s / (allowed + tail))
        log.info(
            "paced run %d: %.1f s for %d requests (quota allows %.1f s), head %.1f s, "
            "tail %.1f s, ratio %.3f", i + 1, t.wall_s, len(answered), allowed, head, tail,
            ratios[-1],
        )  # fmt: skip
    ratio = median(ratios)
    n = len(answered)
    counts = f"{got_429}, {failed}"
    case = f"6. paced ({spec.seconds // 60} min input, {latency} s latency, {rpm} RPM enforced)"
    return [
        Row(case, "dubkit dub, end to end (defaults: --rpm 100, --concurrency 4)", spread(walls)),
        Row(case, f"what the quota allows: {n} requests / {rpm} RPM", f"{n / rpm * 60:.1f} s"),
        Row(case, "head: start to first request", spread(heads)),
        Row(case, "local tail: last answer to done", spread(tails)),
        Row(case, "wall / (allowed + tail)", f"{ratio:.3f}", "<= 1.10", ratio <= 1.10),
        Row(case, "429s received, runs failed", counts, "0, 0", got_429 == 0 and failed == 0),
    ]


# -- case 4 ---------------------------------------------------------------------------------
def case_memory(sizes: Sizes) -> list[Row]:
    """The dub at its defaults (so ``--mix separate``) on the long input and on case 1's.

    The target is the dub's own process. Its helpers (the separation and speaker children,
    ffmpeg) are reported apart: ``wait4``'s ``ru_maxrss`` would be the largest of them."""
    spec = memory_spec(sizes)
    src = inputs.video(spec)
    short_src = inputs.video(overhead_spec(sizes))
    with EmulatorProcess(latency_s=0.0) as emu:
        short_runs = [time_dub(short_src, emu.base_url)]
        longs = repeat(sizes.memory_runs, lambda _: time_dub(src, emu.base_url), "dubkit long")
    peak = max(t.own_peak_mb for t in longs)
    child = max(longs, key=lambda t: t.child_peak_mb)
    tree = max(t.tree_peak_mb for t in longs)
    short_peak = max(t.own_peak_mb for t in short_runs)
    short_tree = max(t.tree_peak_mb for t in short_runs)
    hours = spec.seconds / 3600
    case = "4. memory (peak RSS of `dubkit dub`)"
    short_label = f"{overhead_spec(sizes).seconds // 60} min 1280x720"
    long_label = (
        f"{hours:g} h {spec.width}x{spec.height} {spec.fps} fps"
        if hours >= 1
        else (f"{spec.seconds // 60} min {spec.width}x{spec.height} {spec.fps} fps")
    )
    return [
        Row(case, f"{long_label}: dubkit process", f"{peak:.0f} MB", "<= 300 MB", peak <= 300),
        Row(
            case,
            f"{long_label}: its largest helper, apart",
            f"{child.child_peak_mb:.0f} MB",
            note=child.child_peak_name,
        ),
        Row(case, f"{long_label}: process tree (with ffmpeg)", f"{tree:.0f} MB"),
        Row(
            case,
            f"{long_label}: wall time",
            spread([t.wall_s for t in longs]),
            note=f"{spec.seconds / median([t.wall_s for t in longs]):.1f}x realtime",
        ),
        Row(case, f"{short_label}: dubkit process", f"{short_peak:.0f} MB"),
        Row(case, f"{short_label}: process tree (with ffmpeg)", f"{short_tree:.0f} MB"),
        Row(
            case,
            "long / short peak",
            f"{peak / short_peak:.2f}x",
            "same order (< 3x)",
            peak / short_peak < 3,
        ),
    ]
