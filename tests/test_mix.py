"""dubkit.mix: block mixing, ducking, loudness matching (pyloudnorm), true-peak limiting."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable, Iterator

import numpy as np
import pyloudnorm
import pytest
from scipy.signal import resample_poly

from dubkit.errors import ConfigError, InputError
from dubkit.mix import BLOCK, MixOptions, PlacedClip, TruePeakLimiter, mix
from dubkit.mix.loudness import loudness_gain_db

RATE = 24_000


def music(n: int, channels: int = 2, level: float = 0.1, seed: int = 0) -> np.ndarray:
    """A music-like bed: a few detuned partials with slow tremolo, per channel."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / RATE
    out = np.zeros((channels, n))
    if n == 0:
        return out.astype(np.float32)
    for ch in range(channels):
        for f in (110.0, 164.8, 220.0, 277.2, 329.6):
            phase = rng.uniform(0, 2 * np.pi)
            out[ch] += np.sin(2 * np.pi * f * (1 + 0.001 * ch) * t + phase)
        out[ch] *= 1 + 0.3 * np.sin(2 * np.pi * 0.7 * t)
    return (level * out / np.max(np.abs(out))).astype(np.float32)


def speech(n: int, level: float = 0.3, f0: float = 180.0) -> np.ndarray:
    """Speech-like mono: harmonic bursts (syllables) with pauses."""
    t = np.arange(n) / RATE
    x = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6))
    env = np.clip(np.sin(2 * np.pi * t / 0.4), 0, None) ** 0.5
    return (level * x * env / 2).astype(np.float32)


def blocks(x: np.ndarray, sizes: list[int]) -> Iterator[np.ndarray]:
    """Split ``x`` (channels, n) into blocks cycling through ``sizes``."""
    i = k = 0
    while i < x.shape[1]:
        step = sizes[k % len(sizes)]
        yield x[:, i : i + step]
        i += step
        k += 1


def clip_of(start: int, samples: np.ndarray, calls: list[int] | None = None) -> PlacedClip:
    def load() -> np.ndarray:
        if calls is not None:
            calls.append(start)
        return samples

    return PlacedClip(start, len(samples), load)


#: The duck these tests check (the default mode is ``separate``: see tests/test_separate.py).
DUCK = MixOptions(mode="duck")


def run(*args: object, **kw: object) -> np.ndarray:
    if len(args) < 6:
        kw.setdefault("options", DUCK)
    out = list(mix(*args, **kw))  # type: ignore[arg-type]
    assert all(b.dtype == np.float32 and b.ndim == 2 for b in out)
    return np.concatenate(out, axis=1) if out else np.zeros((0, 0), np.float32)


def true_peak_db(x: np.ndarray) -> float:
    return float(20 * np.log10(np.max(np.abs(resample_poly(x, 4, 1, axis=-1)))))


def lufs(x: np.ndarray) -> float:
    return float(pyloudnorm.Meter(RATE).integrated_loudness(x.T if x.ndim == 2 else x))


# --- structure ---------------------------------------------------------------------------


def test_block_sizes_do_not_change_the_output() -> None:
    n = 3 * RATE + 123
    bed = music(n, level=0.7)
    clips = [
        clip_of(RATE // 3, speech(RATE // 2, level=0.6)),
        clip_of(RATE + 77, speech(RATE, level=0.9, f0=140)),  # hot: the limiter works
    ]
    ref = run(blocks(bed, [n]), RATE, 2, clips, n)
    assert ref.shape == (2, n)
    for sizes in ([1000], [1, 4095, 17, 30_000], [BLOCK], [BLOCK + 1, 3]):
        assert np.array_equal(run(blocks(bed, sizes), RATE, 2, clips, n), ref)


@pytest.mark.parametrize("have", [0, RATE // 2, 2 * RATE])
def test_total_length_is_exact(have: int) -> None:
    total = RATE + 5
    bed = music(have)
    out = run(blocks(bed, [700]), RATE, 2, [], total)
    assert out.shape == (2, total)
    keep = min(have, total)
    assert np.array_equal(out[:, :keep], bed[:, :keep])  # quiet: passed bit for bit
    assert not out[:, keep:].any()  # padded with silence
    assert run(iter([]), RATE, 2, [], 0).size == 0


def test_mono_blocks_and_bad_shapes() -> None:
    bed = music(RATE, channels=1)
    out = run(iter([bed[0][:100], bed[0][100:]]), RATE, 1, [], RATE)
    assert np.array_equal(out, bed)
    with pytest.raises(InputError, match="expected \\(2, n\\)"):
        run(iter([bed]), RATE, 2, [], RATE)
    bad = PlacedClip(10, 100, lambda: np.zeros(99, np.float32))
    with pytest.raises(InputError, match="clip at sample 10"):
        run(iter([]), RATE, 1, [bad], RATE)
    with pytest.raises(InputError):
        PlacedClip(-1, 10, lambda: np.zeros(10, np.float32))
    with pytest.raises(ConfigError):
        MixOptions(mode="overlay")
    with pytest.raises(ConfigError):
        MixOptions(duck_db=3.0)


# --- ducking and replace ------------------------------------------------------------------


def test_bed_is_ducked_under_a_clip_and_untouched_far_from_it() -> None:
    n = 4 * RATE
    bed = music(n, level=0.2)
    start, length = int(1.5 * RATE), RATE
    silent_clip = clip_of(start, np.zeros(length, np.float32))  # isolates the duck
    ramp = 60 * RATE // 1000
    out = run(blocks(bed, [5000]), RATE, 2, [silent_clip], n)
    before, after = slice(0, start - ramp), slice(start + length + ramp, n)
    assert np.array_equal(out[:, before], bed[:, before])
    assert np.array_equal(out[:, after], bed[:, after])
    inside = slice(start, start + length)
    ratio_db = 20 * np.log10(np.std(out[:, inside]) / np.std(bed[:, inside]))
    assert ratio_db == pytest.approx(-15.0, abs=0.1)
    # The ramps: the duck deepens steadily before the clip and lifts after it.
    end = start + length

    def gain(a: int, b: int) -> np.ndarray:
        return np.abs(out[0, a:b]) / np.maximum(np.abs(bed[0, a:b]), 1e-6)

    down, up = gain(start - ramp, start), gain(end, end + ramp)
    assert down[: ramp // 4].mean() > 0.6 and down[-ramp // 8 :].mean() < 0.25
    assert up[: ramp // 8].mean() < 0.25 and up[-ramp // 4 :].mean() > 0.6


def test_clips_play_over_the_ducked_bed() -> None:
    n = 2 * RATE
    bed = music(n, level=0.1)
    dub = speech(RATE // 2)
    start = RATE // 2
    deeper = MixOptions(mode="duck", duck_db=-20.0)
    out = run(blocks(bed, [n]), RATE, 2, [clip_of(start, dub)], n, deeper)
    seg = slice(start, start + len(dub))
    expected = bed[:, seg] * np.float32(0.1) + dub
    assert np.allclose(out[:, seg], expected, atol=1e-6)


def test_replace_mode_drops_the_original() -> None:
    n = 2 * RATE
    consumed: list[int] = []

    def original() -> Iterator[np.ndarray]:
        consumed.append(1)
        yield music(n)

    dub = speech(RATE // 2)
    out = run(original(), RATE, 2, [clip_of(1000, dub)], n, MixOptions(mode="replace"))
    assert out.shape == (2, n) and not consumed
    assert not out[:, :1000].any() and not out[:, 1000 + len(dub) :].any()
    assert np.array_equal(out[0, 1000 : 1000 + len(dub)], dub)
    assert np.array_equal(out[1], out[0])


# --- laziness and memory ------------------------------------------------------------------


def test_clips_are_loaded_lazily_and_once() -> None:
    n = 12 * BLOCK
    calls: list[int] = []
    starts = (3 * BLOCK + 10, 8 * BLOCK)
    clips = [clip_of(s, speech(BLOCK // 2), calls) for s in starts]
    clips.append(PlacedClip(5 * BLOCK, 0, lambda: pytest.fail("empty clip loaded")))
    produced = 0
    loaded_at: dict[int, int] = {}
    for out in mix(blocks(music(n), [999]), RATE, 2, clips, n, DUCK):
        for s in calls:
            loaded_at.setdefault(s, produced)
        produced += out.shape[1]
    assert calls == list(starts)  # in order, once each
    for s, at in loaded_at.items():
        assert s - 2 * BLOCK <= at <= s  # only when the mix reached it


def test_loaded_arrays_are_not_kept_after_the_clip() -> None:
    n = 10 * BLOCK
    holder: list[weakref.ref[np.ndarray]] = []

    def load() -> np.ndarray:
        a = speech(BLOCK)
        holder.append(weakref.ref(a))
        return a

    gen = mix(blocks(music(n), [BLOCK]), RATE, 2, [PlacedClip(BLOCK, BLOCK, load)], n, DUCK)
    produced = 0
    for out in gen:
        produced += out.shape[1]
        if produced >= 5 * BLOCK:
            break
    gc.collect()
    assert len(holder) == 1 and holder[0]() is None
    gen.close()


# --- loudness -------------------------------------------------------------------------------


def test_loudness_matching_within_one_lu() -> None:
    original = np.vstack([speech(3 * RATE, 0.5, 120), speech(3 * RATE, 0.45, 120)])
    dub = speech(2 * RATE, 0.05, 210)
    gain = loudness_gain_db(original, dub, RATE)
    assert gain > 10
    n = 2 * RATE
    out = run(iter([]), RATE, 2, [clip_of(0, dub)], n, MixOptions(mode="replace"), gain)
    assert lufs(out) == pytest.approx(lufs(original), abs=1.0)
    mono = loudness_gain_db(original[0], dub, RATE)
    assert lufs(dub * 10 ** (mono / 20)) == pytest.approx(lufs(original[0]), abs=1.0)


@pytest.mark.parametrize("rate", [16_000, 24_000, 48_000])
def test_the_loudness_meter_agrees_with_pyloudnorm(rate: int) -> None:
    # FFmpeg's ebur128 (the meter) against pyloudnorm (the reference), on speech-like audio
    # with pauses (so the gates matter) at the rates dubkit measures: 16 kHz for the
    # original's speech, 24 kHz for the service's, 48 kHz for a surround original.
    from dubkit.mix.loudness import _loudness

    voice = np.concatenate([speech(rate, 0.3, 140), np.zeros(rate // 2, np.float32),
                            speech(2 * rate, 0.05, 220)])  # fmt: skip
    mono = _loudness(voice[np.newaxis], rate)
    assert mono == pytest.approx(pyloudnorm.Meter(rate).integrated_loudness(voice), abs=0.15)
    both = _loudness(np.vstack([voice, voice * 0.5]), rate)
    reference = pyloudnorm.Meter(rate).integrated_loudness(np.vstack([voice, voice * 0.5]).T)
    assert both == pytest.approx(reference, abs=0.15)


def test_loudness_guards() -> None:
    voice = speech(RATE)
    assert loudness_gain_db(voice, voice[: RATE // 4], RATE) == 0.0  # < 400 ms
    assert loudness_gain_db(np.zeros(RATE, np.float32), voice, RATE) == 0.0  # silent
    assert loudness_gain_db(voice, voice * 0.01, RATE) == 30.0  # 40 dB: clamped
    ints = np.round(voice * 32767).astype(np.int16)
    assert loudness_gain_db(ints, voice * 0.5, RATE) == pytest.approx(6.02, abs=0.05)


# --- limiter --------------------------------------------------------------------------------


def hot_noise(n: int, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(0, 0.45, (2, n)), -1, 1).astype(np.float32)


def test_limiter_keeps_true_peak_under_ceiling() -> None:
    n = RATE
    t = np.arange(n) / RATE
    near_nyquist = 0.99 * np.sin(2 * np.pi * (RATE / 4 + 7) * t + 0.7)
    for bed in (hot_noise(n), np.vstack([near_nyquist, near_nyquist]).astype(np.float32)):
        assert true_peak_db(bed) > -0.1
        out = run(blocks(bed, [2000]), RATE, 2, [], n)
        assert true_peak_db(out) <= -1.0
        assert np.max(np.abs(out)) <= 1.0


def test_limited_dub_over_hot_bed_stays_in_range() -> None:
    n = 2 * RATE
    dub = speech(RATE, level=1.8)
    out = run(blocks(hot_noise(n), [3000]), RATE, 2, [clip_of(RATE // 2, dub)], n, dub_gain_db=6)
    assert np.max(np.abs(out)) <= 1.0 and true_peak_db(out) <= -1.0
    assert np.std(out[:, RATE // 2 : RATE]) > 0.2  # limited, not silenced


def test_limiter_passes_quiet_input_bit_for_bit() -> None:
    bed = music(2 * RATE, level=0.85)  # sample and true peak under -1 dBTP
    assert true_peak_db(bed) < -1.0
    limiter = TruePeakLimiter(RATE, 2)
    out = np.concatenate([limiter.process(b) for b in blocks(bed, [777])] + [limiter.flush()], 1)
    assert np.array_equal(out, bed)
    assert limiter.latency > 0


def test_limiter_attacks_before_the_peak_and_releases_after() -> None:
    n = RATE
    x = np.full((1, n), 0.5, np.float32)
    x[0, n // 2] = 1.0  # one hot sample
    limiter = TruePeakLimiter(RATE, 1, lookahead_ms=5.0, release_ms=80.0)
    out = np.concatenate([limiter.process(x), limiter.flush()], axis=1)[0]
    assert out[n // 2] <= 10 ** (-1 / 20)
    la = 5 * RATE // 1000
    assert np.array_equal(out[: n // 2 - la - 10], x[0, : n // 2 - la - 10])  # untouched before
    reduced = out[n // 2 - la : n // 2] < 0.5
    assert reduced.all()  # the gain is already down within the look-ahead
    assert out[n // 2 + la] < 0.5 and np.array_equal(out[-RATE // 4 :], x[0, -RATE // 4 :])


def call_counter() -> tuple[list[int], Callable[[], np.ndarray]]:
    calls: list[int] = []

    def load() -> np.ndarray:
        calls.append(1)
        return np.zeros(10, np.float32)

    return calls, load


def test_clip_beyond_the_end_is_never_loaded() -> None:
    calls, load = call_counter()
    out = run(blocks(music(RATE), [RATE]), RATE, 2, [PlacedClip(RATE, 10, load)], RATE)
    assert out.shape == (2, RATE) and calls == []


def test_clips_are_taken_from_their_iterable_only_when_the_mix_reaches_them() -> None:
    """A streamed dub hands clips over while the mix runs: none is asked for early."""
    n = 12 * BLOCK
    starts = (2 * BLOCK, 6 * BLOCK, 9 * BLOCK + 7)
    produced = 0
    asked_at: list[int] = []

    def arriving() -> Iterator[PlacedClip]:
        for s in starts:
            asked_at.append(produced)
            yield clip_of(s, speech(BLOCK // 2), [])

    for out in mix(blocks(music(n), [BLOCK]), RATE, 2, arriving(), n, DUCK):
        produced += out.shape[1]
    # each clip is asked for within two blocks before its start (one clip of look-ahead)
    for i, at in enumerate(asked_at):
        assert at <= starts[i], (i, at)
        if i:
            assert at >= starts[i - 1] - 2 * BLOCK
    unordered = [clip_of(s, speech(100), []) for s in (5 * BLOCK, BLOCK)]
    with pytest.raises(InputError, match="after one at"):
        list(mix(blocks(music(n), [BLOCK]), RATE, 2, unordered, n, DUCK))


def test_running_gain_refines_clip_by_clip_then_holds_the_two_minute_measure() -> None:
    """Each clip is matched with the dub's speech so far (never later clips'); once the
    budget of speech is in, the gain is what a measure of that speech at once gives."""
    from dubkit.mix.loudness import RunningGain, _loudness
    from dubkit.types import SERVICE_RATE

    rate = SERVICE_RATE
    original = speech(6 * rate, 0.3, 120)[np.newaxis]
    target = _loudness(original, rate)
    assert target is not None
    levels = [0.05, 0.08, 0.04, 0.06, 0.07, 0.02]  # the service's clips vary a little
    clips = [speech(rate * 3 // 2, lv, 210) for lv in levels]
    budget = 4 * rate
    g = RunningGain(target, 0.0, budget)
    gains = [g.next(c) for c in clips]
    again = RunningGain(target, 0.0, budget)
    assert [again.next(c) for c in clips[:2]] == gains[:2]  # later clips change nothing before
    head = np.concatenate(clips)[:budget]
    assert gains[3] == gains[4] == gains[5]  # budget reached within the third clip
    assert gains[2] == pytest.approx(loudness_gain_db(original, head, rate), abs=1e-6)
    assert gains[0] == pytest.approx(loudness_gain_db(original, clips[0], rate), abs=0.2)
    assert gains[0] != gains[1]
    assert RunningGain(None, 0.0, budget).next(clips[0]) == 0.0  # nothing to match
    assert RunningGain(target, 0.0, budget).next(clips[0][: rate // 4]) == 0.0  # < 400 ms
