"""Voice activity segmentation: real webrtcvad on the fixtures, Hypothesis on the pure core."""

from __future__ import annotations

import dataclasses
import importlib.util
import itertools
import json
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dubkit.errors import ConfigError, InputError
from dubkit.segment import (
    MAX_REQUEST_MS,
    FrameGate,
    Segmenter,
    SegmentOptions,
    SpanTracker,
    choose_cut,
    segment,
    split_span,
)
from dubkit.types import Utterance

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
RATE = 16_000


def _need(name: str) -> Path:
    path = FIXTURES / name
    if not path.exists():
        pytest.skip(f"fixture {name} not generated")
    return path


def _truth(name: str) -> list[tuple[int, int]]:
    data = json.loads(_need(name).read_text(encoding="utf-8"))
    return [(u["start_ms"], u["end_ms"]) for u in data["utterances"]]


def _decode(name: str) -> np.ndarray:
    from dubkit.media import iter_pcm16

    return np.concatenate(list(iter_pcm16(_need(name), rate=RATE)))


@pytest.fixture(scope="module")
def speech_pcm() -> np.ndarray:
    return _decode("speech.mp4")


def _make_fixtures() -> ModuleType:
    path = _need("make_fixtures.py")
    spec = importlib.util.spec_from_file_location("dubkit_make_fixtures", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def check_invariants(utts: list[Utterance], duration_ms: int, options: SegmentOptions) -> None:
    for u in utts:
        assert 0 <= u.start_ms < u.end_ms <= duration_ms
        assert options.min_utterance_ms <= u.duration_ms <= options.max_utterance_ms
    for a, b in itertools.pairwise(utts):
        assert a.end_ms <= b.start_ms


def boundary_errors(utts: list[Utterance], truth: list[tuple[int, int]]) -> list[int]:
    """Match segments to true utterances by overlap; |start error| and |end error| of each.

    Asserts recall (every true utterance overlaps a segment) and that no segment lies
    wholly outside speech.
    """
    errors: list[int] = []
    for start, end in truth:
        hits = [u for u in utts if u.start_ms < end and u.end_ms > start]
        assert hits, f"true utterance [{start}, {end}) missed"
        errors += [abs(hits[0].start_ms - start), abs(hits[-1].end_ms - end)]
    for u in utts:
        assert any(u.start_ms < e and u.end_ms > s for s, e in truth), f"{u} lies in silence"
    return errors


# ------------------------------------------------------------------ real audio

#: Cuts at every pause between the fixtures' lines (the shortest is 350 ms), so that each line
#: can be matched to one utterance. The defaults bridge pauses under 500 ms (see below).
EVERY_PAUSE = SegmentOptions(min_pause_ms=300)


@pytest.mark.parametrize("name", ["speech.mp4", "speech.wav"])
def test_clean_speech_boundaries(name: str) -> None:
    truth = _truth("speech.json")
    utts = segment(_need(name), EVERY_PAUSE)
    data = json.loads((FIXTURES / "speech.json").read_text(encoding="utf-8"))
    check_invariants(utts, data["duration_ms"] + 50, EVERY_PAUSE)
    errors = boundary_errors(utts, truth)
    assert len(utts) == len(truth)
    assert np.percentile(errors, 90) <= 150, errors
    assert max(errors) <= 300, errors


def test_defaults_bridge_pauses_inside_sentences_not_between_them() -> None:
    """The fixture's 350 ms pause is bridged; its pauses of 800 ms and more are not."""
    truth = _truth("speech.json")
    utts = segment(_need("speech.wav"))
    check_invariants(utts, 31_000, SegmentOptions())
    for a, b in itertools.pairwise(truth):
        across = any(u.start_ms < a[1] and u.end_ms > b[0] for u in utts)
        if b[0] - a[1] <= 400:
            assert across, (a, b)
        if b[0] - a[1] >= 800:
            assert not across, (a, b)
    assert len(utts) < len(truth)


def test_speech_over_music_boundaries() -> None:
    truth = _truth("music.json")
    utts = segment(_need("music.mp4"), EVERY_PAUSE)
    errors = boundary_errors(utts, truth)
    assert np.percentile(errors, 90) <= 250, errors


def test_silence_tone_and_noise_give_nothing() -> None:
    t = np.arange(RATE * 8) / RATE
    rng = np.random.default_rng(3)
    assert segment(np.zeros(RATE * 5, dtype=np.int16)) == []
    assert segment((0.3 * 32767 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)) == []
    assert segment((rng.normal(0, 0.1, t.size) * 32767).astype(np.int16)) == []
    assert segment(np.empty(0, dtype=np.int16)) == []


@pytest.mark.parametrize(("seed", "gain"), [(1, 1.0), (2, 0.1)])
def test_pure_music_gives_nothing(seed: int, gain: float) -> None:
    mf = _make_fixtures()
    bed = mf.music_bed(RATE * 15, RATE, seed)  # chord pads, bass, drums
    assert segment(mf.to_pcm16(bed.mean(axis=0) * gain)) == []


def test_streaming_matches_one_array(speech_pcm: np.ndarray) -> None:
    whole = segment(speech_pcm)
    rng = np.random.default_rng(7)
    cuts = np.sort(rng.integers(0, speech_pcm.size, 60))
    chunks = np.split(speech_pcm, cuts)  # sizes from 0 to seconds, most not frame multiples
    seg = Segmenter()
    streamed: list[Utterance] = []
    for chunk in chunks:
        streamed += seg.feed(chunk)
        assert seg.buffered_samples < RATE * 30 // 1000
    streamed += seg.finish()
    assert streamed == whole
    assert segment(iter(chunks)) == whole
    assert len(whole) >= 6


def test_utterances_are_released_as_soon_as_complete(speech_pcm: np.ndarray) -> None:
    seg = Segmenter()
    released_at: list[tuple[Utterance, int]] = []
    for chunk in np.array_split(speech_pcm, speech_pcm.size // 1600):  # 100 ms chunks
        released_at += [(u, seg.duration_ms) for u in seg.feed(chunk)]
    assert len(released_at) >= 6
    for u, now in released_at:
        # a pause (500 ms), the hysteresis window (150 ms), Silero's lag (one or two groups of
        # 480 ms) and a chunk (100 ms) at most: not the whole file
        assert now - u.end_ms <= 1700


def test_state_stays_bounded_over_30_minutes() -> None:
    """30 minutes of tone bursts and noise: the segmenter holds no more than one utterance."""
    opts = SegmentOptions(max_utterance_ms=5_000)
    seg = Segmenter(opts)
    rng = np.random.default_rng(11)
    t = np.arange(RATE * 60) / RATE
    minute = 0.2 * np.sin(2 * np.pi * (150 + 80 * np.sin(2 * np.pi * 3 * t)) * t)
    minute *= (np.sin(2 * np.pi * 4 * t) > 0) * (np.sin(2 * np.pi * 0.1 * t) > -0.3)
    pcm = ((minute + rng.normal(0, 0.01, t.size)) * 32767).astype(np.int16)
    most = 0
    found: list[Utterance] = []
    for _ in range(30):
        for chunk in np.array_split(pcm, 7):
            found += seg.feed(chunk)
            most = max(most, seg.buffered_frames)
    found += seg.finish()
    assert seg.duration_ms == 30 * 60 * 1000
    check_invariants(found, seg.duration_ms, opts)
    assert most <= 2 * opts.max_utterance_ms // opts.frame_ms + 20


def test_duration_clips_and_inputs_are_checked(speech_pcm: np.ndarray) -> None:
    full = segment(speech_pcm)
    k = len(full) // 2
    limit = (full[k].start_ms + full[k].end_ms) // 2
    assert limit - full[k].start_ms >= SegmentOptions().min_utterance_ms
    assert segment(speech_pcm, duration_ms=limit) == [*full[:k], Utterance(full[k].start_ms, limit)]
    with pytest.raises(InputError):
        segment(speech_pcm.astype(np.float32))
    with pytest.raises(InputError):
        Segmenter().feed(np.zeros((2, 480), dtype=np.int16))


def test_long_speech_is_split_under_the_maximum(speech_pcm: np.ndarray) -> None:
    opts = SegmentOptions(max_utterance_ms=3_000, min_pause_ms=2_500)
    utts = segment(speech_pcm, opts)
    check_invariants(utts, speech_pcm.size * 1000 // RATE, opts)
    assert any(a.end_ms == b.start_ms for a, b in itertools.pairwise(utts))  # some were split


@pytest.mark.parametrize(
    "bad",
    [
        {"aggressiveness": 4},
        {"frame_ms": 25},
        {"pad_before_ms": -1},
        {"min_utterance_ms": 0},
        {"max_utterance_ms": MAX_REQUEST_MS + 1},
        {"max_utterance_ms": 700, "min_utterance_ms": 400},
        {"trigger_ratio": 0.0},
        {"energy_gate_db": -1.0},
        {"detector": "silero"},
        {"silero_threshold": 1.0},
        {"frame_ms": 20},  # the Silero stage needs 30 ms frames
    ],
)
def test_bad_options_are_config_errors(bad: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        SegmentOptions(**bad)  # type: ignore[arg-type]


# ------------------------------------------------------------------ pure core

LOUD, QUIET = -20.0, -70.0


def _track(
    flags: list[bool],
    opts: SegmentOptions,
    energy: list[float] | None = None,
) -> list[Utterance]:
    e = energy if energy is not None else [LOUD if f else QUIET for f in flags]
    tracker = SpanTracker(opts)
    return tracker.push(flags, e) + tracker.finish()


def test_short_pauses_are_bridged_and_long_ones_separate() -> None:
    opts = SegmentOptions(pad_before_ms=0, pad_after_ms=0)
    speech = [True] * 20  # 600 ms
    short = speech + [False] * 16 + speech  # 480 ms < 500 ms
    long = speech + [False] * 17 + speech  # 510 ms
    assert _track(short, opts) == [Utterance(0, 1680)]
    assert _track(long, opts) == [Utterance(0, 600), Utterance(1110, 1710)]


def test_one_noisy_frame_neither_starts_nor_ends_speech() -> None:
    opts = SegmentOptions(pad_before_ms=0, pad_after_ms=0, min_pause_ms=0, min_utterance_ms=250)
    silence = [False] * 30
    assert _track([*silence, True, *silence], opts) == []
    assert _track([*silence, True, False, True, *silence], opts) == []
    # one dropped frame inside speech does not end it, even with no pause bridging at all
    assert _track(silence + [True] * 20 + [False] + [True] * 20 + silence, opts) == [
        Utterance(900, 2130)
    ]


def test_padding_is_applied_and_clamped() -> None:
    opts = SegmentOptions(pad_before_ms=90, pad_after_ms=120)
    flags = [True] * 20 + [False] * 20
    assert _track(flags, opts) == [Utterance(0, 720)]
    assert _track([False] * 10 + [True] * 20, opts) == [Utterance(210, 900)]


def test_frame_gate_drops_frames_at_the_noise_floor() -> None:
    gate = FrameGate(SegmentOptions())
    n = 60
    energy = np.full(n, -60.0)
    energy[10:30] = -20.0
    energy[40:50] = -58.0  # 2 dB over the floor: room tone, not speech
    voiced = [True] * n
    voiced[15] = False
    out = gate.apply(voiced, energy)
    assert not any(out[:10]) and not any(out[30:])
    assert all(out[10:15]) and not out[15] and all(out[16:30])  # webrtcvad has the last word


def _decisions(draw: st.DrawFn) -> tuple[list[bool], list[float]]:
    runs = draw(st.lists(st.tuples(st.booleans(), st.integers(1, 60)), max_size=40))
    flags: list[bool] = []
    for value, length in runs:
        flags += [value] * length
    energy = draw(st.lists(st.floats(-90, 0), min_size=len(flags), max_size=len(flags)))
    return flags, energy


@st.composite
def tracker_cases(draw: st.DrawFn) -> tuple[SegmentOptions, list[bool], list[float]]:
    frame = draw(st.sampled_from([10, 20, 30]))
    min_utt = draw(st.integers(1, 600))
    opts = SegmentOptions(
        detector="webrtcvad",
        frame_ms=frame,
        pad_before_ms=draw(st.integers(0, 400)),
        pad_after_ms=draw(st.integers(0, 400)),
        min_pause_ms=draw(st.integers(0, 800)),
        min_utterance_ms=min_utt,
        max_utterance_ms=draw(st.integers(2 * min_utt + frame, 2 * min_utt + frame + 3000)),
        smoothing_ms=draw(st.integers(0, 300)),
        trigger_ratio=draw(st.floats(0.05, 1.0)),
    )
    flags, energy = _decisions(draw)
    return opts, flags, energy


@settings(max_examples=300, deadline=None)
@given(tracker_cases(), st.data())
def test_tracker_output_is_valid_and_batching_free(
    case: tuple[SegmentOptions, list[bool], list[float]], data: st.DataObject
) -> None:
    opts, flags, energy = case
    duration = len(flags) * opts.frame_ms + data.draw(st.integers(0, opts.frame_ms - 1))
    whole_tracker = SpanTracker(opts)
    whole = whole_tracker.push(flags, energy) + whole_tracker.finish(duration)
    check_invariants(whole, duration, opts)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(flags)), max_size=6)))
    tracker = SpanTracker(opts)
    pieces: list[Utterance] = []
    for a, b in zip([0, *cuts], [*cuts, len(flags)], strict=True):
        pieces += tracker.push(flags[a:b], energy[a:b])
    assert pieces + tracker.finish(duration) == whole
    # history never exceeds twice the longest utterance plus the pause/padding look-back
    f = opts.frame_ms
    bound = (2 * opts.max_utterance_ms + opts.pad_before_ms + opts.pad_after_ms) // f
    assert tracker.buffered_frames <= bound + 2 * opts.window_frames + opts.pause_frames + 4


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_split_span_pieces(data: st.DataObject) -> None:
    frame = data.draw(st.sampled_from([10, 20, 30]))
    min_utt = data.draw(st.integers(1, 500))
    max_utt = data.draw(st.integers(2 * min_utt + frame, 2 * min_utt + frame + 4000))
    opts = SegmentOptions(
        detector="webrtcvad", frame_ms=frame, min_utterance_ms=min_utt, max_utterance_ms=max_utt
    )
    start = data.draw(st.integers(0, 5000))
    end = start + data.draw(st.integers(1, 6 * max_utt))
    first = start // frame - data.draw(st.integers(0, 5))
    n = max(-(-end // frame) - first, 0) + data.draw(st.integers(0, 5))
    energy = np.array(data.draw(st.lists(st.floats(-90, 0), min_size=n, max_size=n)))
    voiced = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    pieces = split_span(start, end, energy, voiced, max(first, 0), opts)
    assert pieces[0][0] == start and pieces[-1][1] == end
    for (_a, b), (c, _) in itertools.pairwise(pieces):
        assert b == c
    if end - start <= max_utt:
        assert pieces == [(start, end)]
    else:
        assert all(min_utt <= b - a <= max_utt for a, b in pieces)


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_split_lands_in_the_pause_not_mid_word(data: st.DataObject) -> None:
    """One over-long utterance, one pause anywhere the cut may go: the cut is in the pause."""
    opts = SegmentOptions(min_utterance_ms=300, max_utterance_ms=6000)
    f = opts.frame_ms
    n = data.draw(st.integers(6000 // f + 1, 12000 // f - 1))  # needs exactly one cut
    energy = np.array(data.draw(st.lists(st.floats(-35, -15), min_size=n, max_size=n)))
    voiced = np.ones(n, dtype=bool)
    width = data.draw(st.integers(6, 15))  # 180-450 ms pause
    lo = max(300 // f + 1, n - 6000 // f)  # leaves both parts legal
    hi = min(n - 300 // f - width - 1, 6000 // f - width)
    if lo > hi:
        return
    at = data.draw(st.integers(lo, hi))
    energy[at : at + width] = data.draw(st.floats(-80, -50))
    voiced[at : at + width] = False
    pieces = split_span(0, n * f, energy, voiced, 0, opts)
    assert len(pieces) == 2
    cut = pieces[0][1] // f
    assert at < cut < at + width


def test_choose_cut_prefers_the_middle_among_equal_pauses() -> None:
    opts = SegmentOptions()
    energy = np.full(200, -20.0)
    voiced = np.ones(200, dtype=bool)
    for at in (30, 95, 160):
        energy[at : at + 8] = -60.0
        voiced[at : at + 8] = False
    cut = choose_cut(600, 5400, 3000, energy, voiced, 0, opts)
    assert cut is not None and 95 * 30 < cut < 103 * 30
    assert choose_cut(601, 602, 601, energy, voiced, 0, opts) is None


@st.composite
def speech_runs(draw: st.DrawFn) -> tuple[SegmentOptions, list[bool]]:
    """Speech runs long enough to trigger the hysteresis, separated by any silence."""
    opts = SegmentOptions(
        detector="webrtcvad",
        min_utterance_ms=30,
        min_pause_ms=draw(st.integers(0, 900)),
        max_utterance_ms=draw(st.integers(2_000, 12_000)),
        pad_before_ms=draw(st.integers(0, 200)),
        pad_after_ms=draw(st.integers(0, 200)),
    )
    flags: list[bool] = []
    for _ in range(draw(st.integers(1, 12))):
        flags += [False] * draw(st.integers(1, 60))
        flags += [True] * draw(st.integers(opts.window_frames + 1, 120))
    return opts, flags + [False] * draw(st.integers(0, 40))


@settings(max_examples=200, deadline=None)
@given(speech_runs())
def test_grouping_drops_no_speech_and_respects_its_bounds(
    case: tuple[SegmentOptions, list[bool]],
) -> None:
    opts, flags = case
    utts = _track(flags, opts)
    f = opts.frame_ms
    check_invariants(utts, len(flags) * f, opts)
    covered = np.zeros(len(flags) * f, dtype=bool)
    for u in utts:
        covered[u.start_ms : u.end_ms] = True
    for k in np.flatnonzero(flags):
        assert covered[k * f : (k + 1) * f].all(), k
    # a pause as long as min_pause_ms (or the hysteresis window) is never inside an utterance
    silent = np.asarray(flags) == 0
    bridged = max(opts.min_pause_ms, opts.window_frames * f)
    for u in utts:
        inside = silent[u.start_ms // f : u.end_ms // f].tolist()
        longest = max((len(list(g)) for v, g in itertools.groupby(inside) if v), default=0)
        assert longest * f < bridged + opts.pad_before_ms + opts.pad_after_ms + 2 * f


def test_silero_lowpass_is_scipys_firwin() -> None:
    # The FIR ahead of Silero's 8 kHz input is the textbook windowed sinc, as SciPy designs it.
    from scipy.signal import firwin

    from dubkit.segment import _lowpass_taps

    np.testing.assert_allclose(_lowpass_taps(31, 3_600, 16_000), firwin(31, 3_600, fs=16_000),
                               atol=1e-7)  # fmt: skip


@st.composite
def _talk(draw: st.DrawFn) -> tuple[SegmentOptions, list[bool]]:
    """Clean speech runs (long enough to trigger) and pauses, with any padding and pause."""
    opts = SegmentOptions(
        detector="webrtcvad",
        pad_before_ms=draw(st.integers(0, 600)),
        pad_after_ms=draw(st.integers(0, 600)),
        min_pause_ms=draw(st.integers(30, 900)),
        min_utterance_ms=30,
    )
    frames: list[bool] = [False] * draw(st.integers(0, 30))
    for _ in range(draw(st.integers(1, 6))):
        frames += [True] * draw(st.integers(5, 40)) + [False] * draw(st.integers(1, 40))
    return opts, frames


@given(_talk())
@settings(max_examples=200, deadline=None)
def test_padding_never_crosses_the_middle_of_a_pause(
    case: tuple[SegmentOptions, list[bool]],
) -> None:
    """Issue 29: edges are padded into the silence, but two utterances never overlap and one
    utterance's padding never reaches past the middle of the pause into the next one's speech."""
    opts, frames = case
    f = opts.frame_ms
    tracker = SpanTracker(opts)
    utts = tracker.push(frames, [-20.0 if v else -70.0 for v in frames]) + tracker.finish()
    runs, k = [], 0
    while k < len(frames):
        if frames[k]:
            j = k
            while j < len(frames) and frames[j]:
                j += 1
            runs.append((k * f, j * f))
            k = j
        else:
            k += 1
    for u, v in itertools.pairwise(utts):
        assert u.end_ms <= v.start_ms
        if u.end_ms == v.start_ms:
            continue  # a forced split of one long utterance
        before = max(b for a, b in runs if b <= u.end_ms)
        after = min(a for a, b in runs if a >= v.start_ms)
        middle = (before + after) / 2
        assert u.end_ms <= middle + f / 2 and v.start_ms >= middle - f / 2, (u, v, runs)


def _two_utterances(
    pause_db: float, options: SegmentOptions, gap_ms: int = 1980
) -> list[Utterance]:
    """About two seconds of pause at ``pause_db``, two of speech at -20 dBFS (from 1980 ms),
    two of pause again, two more of speech (from 5940 ms), one of pause: frame decisions
    and energies as the VAD gives them."""
    from dubkit.segment.spans import SpanTracker

    f = options.frame_ms
    parts = [(1980, False), (1980, True), (gap_ms, False), (1980, True), (990, False)]
    voiced = np.concatenate([np.full(ms // f, v) for ms, v in parts])
    energy = np.where(voiced, -20.0, pause_db)
    tracker = SpanTracker(options)
    return tracker.push(voiced, energy) + tracker.finish()


def test_the_onset_padding_grows_where_the_pause_before_is_loud() -> None:
    # Speech 40 dB over the pause: the fixed 90 ms lead. 12 dB over it (a loud bed masks a
    # soft first consonant): 10 ms more per dB under 27 dB, at most half the 500 ms pause.
    o = SegmentOptions()
    clean = _two_utterances(-60.0, o)
    noisy = _two_utterances(-32.0, o)
    assert [u.start_ms for u in clean] == [1980 - 90, 5940 - 90]
    assert [u.start_ms for u in noisy] == [1980 - 240, 5940 - 240]
    # the lead is kept apart: the speaker analysis reads from the usual 90 ms before the onset
    assert [u.core_start_ms for u in noisy] == [1980 - 90, 5940 - 90]
    assert [u.core_start_ms for u in clean] == [u.start_ms for u in clean]
    assert noisy[0] == Utterance(1980 - 240, noisy[0].end_ms)  # the lead is not its identity
    assert noisy[0].end_ms <= noisy[1].start_ms  # never into the utterance before
    fixed = _two_utterances(-32.0, dataclasses.replace(o, onset_ms_per_db=0.0))
    assert [u.start_ms for u in fixed] == [1980 - 90, 5940 - 90]
    # with a 300 ms minimum pause the lead stops at half of it
    short = dataclasses.replace(o, min_pause_ms=300)
    assert [u.start_ms for u in _two_utterances(-32.0, short)] == [1980 - 150, 5940 - 150]
    # the shortest pause that parts two utterances (510 ms): neither side crosses its middle
    first, second = _two_utterances(-32.0, o, gap_ms=510)
    middle = (3960 + 4470) // 2
    assert first.end_ms <= middle <= second.start_ms == 4470 - 240


def _held(speech_ms: int, held_ms: int, pause_ms: int, options: SegmentOptions) -> list[Utterance]:
    """One second of pause, ``speech_ms`` of confirmed speech held ``held_ms`` more by Silero,
    ``pause_ms`` of pause, the same speech again, one second of pause."""
    from dubkit.segment.spans import SpanTracker

    f = options.frame_ms
    parts = [(990, False, False), (speech_ms, True, True), (held_ms, False, True)]
    parts += [(pause_ms - held_ms, False, False), (speech_ms, True, True), (990, False, False)]
    voiced = np.concatenate([np.full(ms // f, v) for ms, v, _ in parts])
    held = np.concatenate([np.full(ms // f, h) for ms, _, h in parts])
    energy = np.where(voiced, -20.0, -50.0)
    tracker = SpanTracker(options)
    return tracker.push(voiced, energy, held) + tracker.finish()


def test_an_utterance_ends_where_silero_lets_go_within_half_the_pause() -> None:
    """Issue 29: the end is the last frame Silero holds (not webrtcvad's last), no padding;
    never past the middle of the pause; the confirmed frames alone decide which pauses
    separate utterances, so a hold never bridges two sentences."""
    o = SegmentOptions()
    assert o.silero_holds_end and o.end_pad_ms == 0
    a, b = _held(1980, 150, 900, o)
    assert (a.start_ms, a.end_ms) == (990 - 90, 990 + 1980 + 150)
    assert b.start_ms == 990 + 1980 + 900 - 90
    # held through the whole pause: cut at its middle
    a, b = _held(1980, 600, 600, o)
    assert a.end_ms == 990 + 1980 + 300 <= b.start_ms
    # a hold lasts at most the minimum pause (17 frames: 510 ms)
    assert _held(1980, 900, 2000, o)[0].end_ms == 990 + 1980 + 510
    # a 600 ms pause separates two utterances even where Silero holds 450 ms of it
    assert len(_held(1980, 450, 600, o)) == 2
    # without a hold, and for webrtcvad alone, the end padding as before
    w = SegmentOptions(detector="webrtcvad", frame_ms=30)
    assert not w.silero_holds_end and (w.end_pad_ms, w.release_slope) == (120, 10.0)
    none = SegmentOptions(silero_release=None)
    assert not none.silero_holds_end and none.end_pad_ms == 120
    assert _held(1980, 150, 900, none)[0].end_ms == 990 + 1980 + 120
    # padding asked for is added after the hold
    padded = dataclasses.replace(o, pad_after_ms=60)
    assert _held(1980, 150, 900, padded)[0].end_ms == 990 + 1980 + 150 + 60


@given(_talk(), st.data())
@settings(max_examples=200, deadline=None)
def test_silero_s_hold_never_crosses_the_middle_of_a_pause_and_is_batching_free(
    case: tuple[SegmentOptions, list[bool]], data: st.DataObject
) -> None:
    """Issue 29: whatever Silero holds (any frames, even where no speech was), an utterance's
    end stays in the first half of the pause after the speech; the result does not depend on
    how the frames were batched; the held frames never change which pauses part utterances."""
    talk, frames = case
    opts = dataclasses.replace(talk, detector="webrtcvad+silero", frame_ms=30)
    held = data.draw(st.lists(st.booleans(), min_size=len(frames), max_size=len(frames)))
    held = [h or v for h, v in zip(held, frames, strict=True)]
    energy = [-20.0 if v else -70.0 for v in frames]
    whole_tracker = SpanTracker(opts)
    whole = whole_tracker.push(frames, energy, held) + whole_tracker.finish()
    check_invariants(whole, len(frames) * 30, opts)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(frames)), max_size=5)))
    tracker, pieces = SpanTracker(opts), []
    for a, b in zip([0, *cuts], [*cuts, len(frames)], strict=True):
        pieces += tracker.push(frames[a:b], energy[a:b], held[a:b])
    assert pieces + tracker.finish() == whole
    runs = [(k * 30, (k + 1) * 30) for k, v in enumerate(frames) if v]
    for u, v in itertools.pairwise(whole):
        assert u.end_ms <= v.start_ms
        if u.end_ms == v.start_ms:
            continue
        before = max(b for a, b in runs if b <= u.end_ms)
        after = min(a for a, b in runs if a >= v.start_ms)
        assert u.end_ms <= (before + after) / 2 + 15, (u, v)
    plain = SpanTracker(opts)
    unheld = plain.push(frames, energy, [False] * len(frames)) + plain.finish()
    assert len(unheld) == len(whole)  # the same utterances, only their ends moved
    for a, b in zip(unheld, whole, strict=True):
        assert a.start_ms == b.start_ms and a.end_ms <= b.end_ms
