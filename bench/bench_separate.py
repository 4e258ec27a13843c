"""``--mix separate`` (issue 27): how much dialogue is left, how much music, how fast, how big.

    .venv/bin/python bench/bench_separate.py quality   # real speech over music, per sentence
    .venv/bin/python bench/bench_separate.py quality --ahead   # the regions a dub separates
    .venv/bin/python bench/bench_separate.py halves    # per sentence, each half of the people
    .venv/bin/python bench/bench_separate.py halves --no-harmonics   # the model's mask alone
    .venv/bin/python bench/bench_separate.py halves --gain-db -24   # the programs 24 dB quieter
    .venv/bin/python bench/bench_separate.py model     # the U-Nets: onnxruntime vs numpy
    .venv/bin/python bench/bench_separate.py speed     # separation through mix(), x real time
    .venv/bin/python bench/bench_separate.py dub 600   # a 10-min dub: separate vs duck
    .venv/bin/python bench/bench_separate.py dub 7200 --only separate   # memory on 2 hours
    .venv/bin/python bench/bench_separate.py dub 600 --latency 1.5   # requests that take time

quality: each development program (codec2 speech over the music bed, ``realspeech.stems``) is
mixed with silent clips on its sentences, so what is left under a clip is the bed alone. Two
measures per sentence: the *exact residue* (the model's mask is linear in the STFT: the mask
computed on the program is applied to the speech stem alone, and the energy it leaves over
the sentence's active speech is compared with the stem's; likewise the music's level), on a
whole-program pass with the same bed gain; and the *projection* of the real mix() output
(least squares ``out ~ a speech + b music + c tone``), which counts only the coherent part.
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "fixtures"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import realspeech as rs  # noqa: E402

from dubkit.mix import MixOptions, PlacedClip, mix, prepared, spleeter_weights  # noqa: E402
from dubkit.mix import spleeter as sp  # noqa: E402
from dubkit.mix.grid import chunks_over  # noqa: E402

RATE = rs.RATE
PROGRAMS = (("music12", 0), ("music12", 1), ("music18", 0))


def _db(x: float) -> float:
    return float(10 * np.log10(max(x, 1e-20)))


def _silent(a: int, b: int) -> PlacedClip:
    return PlacedClip(a, b - a, lambda: np.zeros(b - a, np.float32))


def _masked(program: np.ndarray, parts: list[np.ndarray]) -> list[np.ndarray]:
    """The accompaniment each part gets under the mask computed on ``program``."""

    def up(x: np.ndarray) -> np.ndarray:
        return sp._resample(np.stack([x, x]).astype(np.float32), RATE, sp.SR)

    y = up(program)
    mask = sp.voice_mask(sp.stft(y)[:, :, : sp.BINS])
    out = []
    for p in parts:
        y = up(p)
        s = sp.stft(y)
        s[:, :, : sp.BINS] *= mask
        s[:, :, sp.BINS :] = 0
        v = sp._resample(sp.istft(s, y.shape[1]), sp.SR, RATE).mean(axis=0)[: len(p)]
        out.append(p - v)
    return out


def _exact(
    s: rs.Sentence,
    g: float,
    speech: np.ndarray,
    bed: np.ndarray,
    acc_s: np.ndarray,
    acc_m: np.ndarray,
) -> tuple[float, float]:
    """Sentence ``s``'s exact residue (the speech left over its words) and music level (over
    the sentence), dB against the stems, under a bed gain ``g``."""
    sl = slice(s.start_ms * 16, s.end_ms * 16)
    act = np.concatenate([np.arange(a * 16, b * 16) for a, b in s.words])
    residue = _db(np.mean((g * acc_s[act]) ** 2)) - _db(np.mean(speech[act] ** 2))
    return residue, _db(np.mean((g * acc_m[sl]) ** 2)) - _db(np.mean(bed[sl] ** 2))


def _mixed(program: np.ndarray, sentences: list, opts: MixOptions, ahead: bool) -> np.ndarray:
    """mix() with silent clips on ``sentences``: separated in step, or ``ahead`` over the
    regions their starts give (as a dub's utterances do, :mod:`dubkit.mix.prepared`)."""
    n = len(program)
    clips = [_silent(s.start_ms * 16, s.end_ms * 16) for s in sentences]
    if not ahead:
        return np.concatenate(list(mix([program[None]], RATE, 1, clips, n, opts)), axis=1)[0]
    ramp = opts.ramp_ms * RATE // 1000
    starts = [s.start_ms for s in sentences]
    cut = chunks_over(prepared.regions(starts, n, RATE, ramp, 400), RATE, n)
    with tempfile.TemporaryDirectory() as tmp, prepared.Prepared(Path(tmp)) as early:
        program.tofile(Path(tmp) / "program.f32")
        early.start({"raw": f"{tmp}/program.f32", "rate": RATE, "channels": 1, "total": n})
        early.add(cut)
        early.close_list()
        blocks = mix([program[None]], RATE, 1, clips, n, opts, prepared=early)
        return np.concatenate(list(blocks), axis=1)[0]


def quality(name: str, seed: int, opts: MixOptions, ahead: bool = False) -> np.ndarray:
    """Per sentence: residue, music level, voice and music projections (dB), at ``bed_db``."""
    speech, bed, tone, sentences = rs.stems(name, seed)
    program = (speech + bed + tone).astype(np.float32)
    g = 10 ** (opts.bed_db / 20)
    acc_s, acc_m = _masked(program, [speech, bed])
    out = _mixed(program, sentences, opts, ahead)
    rows = []
    for s in sentences:
        sl = slice(s.start_ms * 16, s.end_ms * 16)
        residue, music = _exact(s, g, speech, bed, acc_s, acc_m)
        parts = np.stack([speech[sl], bed[sl], tone[sl]], axis=1)
        coef, *_ = np.linalg.lstsq(parts, out[sl].astype(np.float64), rcond=None)
        rows.append((residue, music, 20 * np.log10(abs(coef[0])), 20 * np.log10(abs(coef[1]))))
    return np.array(rows)


def halves(bed_db: float = -1.0, gain_db: float = 0.0) -> None:
    """The exact residue and music level per sentence, every music program and seed, each
    half of the people apart (``turns.TUNE``: settings are chosen on them; ``turns.REPORT``:
    held out), at the default bed gain; the programs ``gain_db`` louder or quieter."""
    import turns

    g = 10 ** (bed_db / 20)
    rows: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for name in ("music12", "music18"):
        for seed in range(4):
            speech, bed, tone, sentences = rs.stems(name, seed)
            speech, bed, tone = (x * 10 ** (gain_db / 20) for x in (speech, bed, tone))
            acc_s, acc_m = _masked((speech + bed + tone).astype(np.float32), [speech, bed])
            for s in sentences:
                half = "tune" if s.speaker in turns.TUNE else "report"
                rows.setdefault((half, name), []).append(_exact(s, g, speech, bed, acc_s, acc_m))
    print(
        "| half | program | sentences | residue median / worst | <= -25 dB | music median / "
        "worst | music within 6 dB |\n|---|---|---|---|---|---|---|"
    )
    for (half, name), r in sorted(rows.items(), key=lambda kv: (kv[0][0] != "tune", kv[0][1])):
        q = summary(np.array([(a, b, 0.0, 0.0) for a, b in r]))
        print(
            f"| {half} | {name} seeds 0-3 | {len(r)} | {q['residue_median']:.1f} / "
            f"{q['residue_worst']:.1f} | {q['residue_ok'] * 100:.0f}% | {q['music_median']:.1f} "
            f"/ {q['music_worst']:.1f} | {q['music_ok'] * 100:.0f}% |",
            flush=True,
        )


def summary(r: np.ndarray, shift: float = 0.0) -> dict[str, float]:
    """``r`` from :func:`quality`, every level moved by ``shift`` dB (another bed gain)."""
    r = r + shift
    return {
        "sentences": len(r),
        "residue_median": float(np.median(r[:, 0])), "residue_worst": float(r[:, 0].max()),
        "residue_ok": float((r[:, 0] <= -25).mean()),
        "music_median": float(np.median(r[:, 1])), "music_worst": float(r[:, 1].min()),
        "music_ok": float((np.abs(r[:, 1]) <= 6).mean()),
        "proj_voice_median": float(np.median(r[:, 2])), "proj_voice_worst": float(r[:, 2].max()),
        "proj_music_median": float(np.median(r[:, 3])), "proj_music_worst": float(r[:, 3].min()),
    }  # fmt: skip


def speed(name: str = "music12", rate: int = 48_000) -> None:
    """mix() separate vs duck at 48 kHz stereo: the separation's cost per second of speech."""
    program = rs.program(name).audio.astype(np.float32) / 32768
    x = sp._resample(program, RATE, rate)
    stereo = np.stack([x, 0.8 * x])
    n, k = stereo.shape[1], rate // 1000
    spans = [(s.start_ms * k, s.end_ms * k) for s in rs.program(name).sentences]
    walls = {}
    for mode in ("duck", "separate"):
        clips = [_silent(a, b) for a, b in spans]
        t = time.monotonic()
        for _ in mix([stereo], rate, 2, clips, n, MixOptions(mode=mode)):
            pass
        walls[mode] = time.monotonic() - t
    child = resource.getrusage(resource.RUSAGE_CHILDREN)
    speech_s = sum(b - a for a, b in spans) / rate
    extra = walls["separate"] - walls["duck"]
    print(f"{name} at {rate} Hz stereo: {n / rate:.1f} s, {len(spans)} clips, {speech_s:.1f} s "
          f"under clips; mix duck {walls['duck']:.2f} s, separate {walls['separate']:.2f} s "
          f"(child CPU {child.ru_utime + child.ru_stime:.1f} s): separation "
          f"{speech_s / extra:.1f}x real time of the speech")  # fmt: skip


def model_run(runtime: str, threads: int, out: str) -> None:
    """One runtime's masks over a whole program (in a process of its own: OpenBLAS reads
    its thread count at import), the time they took, saved to ``out``."""
    import os

    from dubkit.mix import spleeter_onnx

    program = rs.program("music12").audio.astype(np.float32) / 32768
    y = sp._resample(np.stack([program, 0.8 * program]), RATE, sp.SR)
    mag = np.abs(sp.stft(y)[:, :, : sp.BINS])
    paths = spleeter_weights.checkpoint_paths()
    if runtime == "onnx":
        from dubkit.translate.cache import default_cache_dir

        model: sp.MaskModel = spleeter_onnx.OnnxMask(paths, default_cache_dir(os.environ), threads)
    else:
        model = sp.NumpyMask(paths)
    sp.vocal_mask(mag[:, : sp.SEGMENT], model)  # warm up
    wall, cpu = time.perf_counter(), time.process_time()
    mask = sp.vocal_mask(mag, model)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    seconds = y.shape[1] / sp.SR
    print(f"{runtime} {threads} thread(s): {seconds:.1f} s of audio, wall {wall:.2f} s "
          f"({seconds / wall:.1f}x real time), CPU {cpu:.2f} s ({seconds / cpu:.1f}x per CPU "
          f"second)", flush=True)  # fmt: skip
    np.save(out, mask)


def model_compare() -> None:
    """Each runtime with 1 and 2 threads on the same program; the masks against numpy's."""
    import os
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for runtime in ("numpy", "onnx"):
            for threads in (1, 2):
                env = {**os.environ, "OPENBLAS_NUM_THREADS": str(threads)}
                out = f"{tmp}/{runtime}{threads}.npy"
                cmd = [sys.executable, __file__, "model-run", runtime, str(threads), out]
                subprocess.run(cmd, env=env, check=True)
        ref = np.load(f"{tmp}/numpy1.npy")
        for name in ("numpy2", "onnx1", "onnx2"):
            d = np.abs(np.load(f"{tmp}/{name}.npy") - ref)
            print(f"mask {name} vs numpy1: max |diff| {d.max():.2e}, mean {d.mean():.2e}")


def dub(seconds: int, modes: list[str], latency_s: float = 0.0) -> None:
    import cases
    import inputs
    from harness import EmulatorProcess

    src = inputs.video(inputs.VideoSpec(seconds, 1280, 720, 25) if seconds <= 600
                       else inputs.VideoSpec(seconds, 160, 90, 5))  # fmt: skip
    with EmulatorProcess(latency_s=latency_s) as emu:
        for mode in modes:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            with cases.scratch() as out:
                cmd = [*cases.dub_cmd(src, emu.base_url, out), "--mix", mode]
                t = cases.run_timed(cmd, env=cases.dub_env())
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
            print(f"dub {seconds} s --mix {mode} (latency {latency_s:g} s): wall {t.wall_s:.1f} "
                  f"s, CPU {cpu:.1f} s (the dub and its children), rc {t.returncode}, dubkit "
                  f"RSS {t.maxrss_mb:.0f} MB, tree {t.tree_peak_mb:.0f} MB",
                  flush=True)  # fmt: skip


def main() -> None:
    what = sys.argv[1] if len(sys.argv) > 1 else "quality"
    if what == "quality":
        # Under a clip the bed is the accompaniment times the bed gain: every level moves
        # with it, so one pass at 0 dB gives the others.
        ahead = "--ahead" in sys.argv  # separated from the sentences' starts, ahead
        rows = {p: quality(*p, MixOptions(bed_db=0.0), ahead) for p in PROGRAMS}
        for bed_db in (0.0, -1.0, -2.0, -3.0):
            for (name, seed), r in rows.items():
                q = summary(r, bed_db)
                print(f"bed {bed_db:+.0f} dB {name} seed {seed}: " +
                      ", ".join(f"{k} {v:.2f}" for k, v in q.items()), flush=True)  # fmt: skip
    elif what == "halves":
        if "--no-harmonics" in sys.argv:  # the model's mask alone, as before 2026-12-06
            sp.HARMONIC_TOP_HZ = 0.0
        gain = float(sys.argv[sys.argv.index("--gain-db") + 1]) if "--gain-db" in sys.argv else 0
        halves(gain_db=gain)
    elif what == "model":
        model_compare()
    elif what == "model-run":
        model_run(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    elif what == "speed":
        speed()
    elif what == "dub":
        args = sys.argv[3:]
        latency = float(args[args.index("--latency") + 1]) if "--latency" in args else 0.0
        modes = [args[args.index("--only") + 1]] if "--only" in args else ["duck", "separate"]
        dub(int(sys.argv[2]), modes, latency)


if __name__ == "__main__":
    main()
