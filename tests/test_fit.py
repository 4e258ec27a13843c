"""dubkit.fit: drift-free placement plans (Hypothesis) and rendering with real Rubber Band."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dubkit.errors import ConfigError, InputError
from dubkit.fit import (
    RULES,
    FitOptions,
    Placement,
    ms_to_samples,
    plan,
    render,
    sample_span,
    trim_silence,
    trimmed_ms,
)
from dubkit.types import SERVICE_RATE, Utterance

# --- signals -------------------------------------------------------------------------


def harmonic(f0: float, ms: int, rate: int, amp: float = 0.3) -> np.ndarray:
    """A voiced, speech-like tone: f0 and four harmonics falling 1/k, float64."""
    t = np.arange(ms * rate // 1000) / rate
    partials = [np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6)]
    return np.asarray(amp * np.sum(partials, axis=0) / 1.5)


def syllables(ms: int, rate: int, f0: float = 220.0) -> np.ndarray:
    """Tone bursts of 150 ms with 30 ms dips, like syllables."""
    x = harmonic(f0, ms, rate)
    t = np.arange(len(x)) / rate
    env = 0.55 + 0.45 * np.cos(2 * np.pi * t / 0.18)
    return x * env


def pcm(x: np.ndarray) -> np.ndarray:
    return np.round(np.clip(x, -1, 1) * 32767).astype(np.int16)


def peak_hz(x: np.ndarray, rate: int) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spec) * rate / len(x))


# --- plan(): properties ---------------------------------------------------------------


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[Utterance], list[int | None], int, FitOptions]:
    n = draw(st.integers(0, 25))
    utts, clips = [], []
    t = draw(st.integers(0, 3000))
    for _ in range(n):
        t += draw(st.integers(0, 2500))  # pause (0 = utterances back to back)
        length = draw(st.integers(1, 6000))
        utts.append(Utterance(t, t + length))
        clips.append(draw(st.one_of(st.none(), st.just(0), st.integers(1, 12000))))
        t += length
    duration = draw(st.integers(0, t + 3000))
    max_ratio = draw(st.floats(1.0, 2.0))
    opts = FitOptions(
        max_ratio=max_ratio,
        hard_max_ratio=max_ratio + draw(st.floats(0.0, 1.0)),
        gap_ms=draw(st.integers(0, 300)),
        borrow_ms=draw(st.integers(0, 1000)),
    )
    return utts, clips, duration, opts


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_plan_properties(case: tuple[list[Utterance], list[int | None], int, FitOptions]) -> None:
    utts, clips, duration, opts = case
    placements = plan(utts, clips, duration, opts)
    assert len(placements) == len(utts)
    previous: Placement | None = None
    for i, (utt, clip, p) in enumerate(zip(utts, clips, placements, strict=True)):
        if not clip:
            assert p is None
            continue
        assert p is not None and p.index == i and p.rule in RULES and p.clip_ms == clip
        start = min(utt.start_ms, duration)
        # Never later than the utterance; earlier only by borrowing, at most borrow_ms.
        assert p.start_ms <= start
        if p.rule in ("fit", "sped_up"):
            assert p.start_ms == start
        else:
            assert start - p.start_ms <= opts.borrow_ms
        assert 0 <= p.start_ms <= p.end_ms <= duration
        # No overlaps, and borrowed time never eats into the gap after the previous clip.
        if p.end_ms == p.start_ms:  # no room at all: empty, at the utterance start
            assert (p.rule, p.start_ms, p.cut_ms) == ("cut", start, clip)
            continue
        if previous is not None:
            assert p.start_ms >= previous.end_ms
            if p.start_ms < start:
                assert p.start_ms >= previous.end_ms + opts.gap_ms
        if i + 1 < len(utts):
            assert p.end_ms <= utts[i + 1].start_ms - opts.gap_ms
        # Ratios: never slowed; soft cap unless over_cap/cut; hard cap always.
        assert p.ratio >= 1.0
        if p.rule in ("fit", "sped_up", "borrowed"):
            assert p.ratio <= opts.max_ratio
        else:
            assert p.ratio <= opts.hard_max_ratio
        room = p.slot_end_ms - start
        if clip <= room:
            assert (p.rule, p.ratio, p.end_ms - p.start_ms) == ("fit", 1.0, clip)
        # What plays fills the placement (ms rounding aside); only "cut" drops audio.
        assert (p.cut_ms > 0) == (p.rule == "cut")
        assert abs((clip - p.cut_ms) / p.ratio - (p.end_ms - p.start_ms)) <= 1.0
        previous = p


def test_500_utterances_do_not_drift() -> None:
    rng = np.random.default_rng(7)
    utts = [Utterance(i * 2000 + 37, i * 2000 + 1537) for i in range(500)]
    clips: list[int | None] = [int(c) for c in rng.integers(1200, 3400, size=500)]
    clips[-1] = 1000  # fits
    duration = 500 * 2000 + 500
    placements = plan(utts, clips, duration)
    rules = {p.rule for p in placements if p is not None}
    assert {"fit", "sped_up", "borrowed", "over_cap"} <= rules
    for utt, p in zip(utts, placements, strict=True):
        assert p is not None
        if p.rule in ("fit", "sped_up"):
            assert p.start_ms == utt.start_ms
    last = placements[-1]
    assert last is not None and last.rule == "fit"
    assert (last.start_ms, last.end_ms) == (499 * 2000 + 37, 499 * 2000 + 37 + 1000)


def test_each_rule_in_turn() -> None:
    # The previous clip ends at 500; this utterance starts at 1000; the next at 3000.
    utts = [Utterance(0, 400), Utterance(1000, 2000), Utterance(3000, 3500)]
    opts = FitOptions()  # 1.3 / 1.5, gap 80, borrow 400

    def place(clip: int) -> Placement:
        p = plan(utts, [500, clip, None], 10_000, opts)[1]
        assert p is not None
        return p

    assert place(1500) == Placement(1, 1000, 2500, 2920, 1500, 1.0, "fit", 0)
    p = place(2000)
    assert (p.rule, p.start_ms, p.end_ms, p.ratio) == ("sped_up", 1000, 2920, 2000 / 1920)
    p = place(2600)  # 1920 ms at 1.3 holds 2496 ms: borrow 80 ms (2000 ms at 1.3)
    assert (p.rule, p.start_ms, p.end_ms) == ("borrowed", 920, 2920)
    assert p.ratio == pytest.approx(1.3)
    p = place(3200)  # borrowable down to 600 (start - 400; previous end 500 + 80 is earlier)
    assert (p.rule, p.start_ms, p.end_ms, p.ratio) == ("over_cap", 600, 2920, 3200 / 2320)
    p = place(4000)  # 2320 ms at 1.5 holds 3480 ms
    assert (p.rule, p.start_ms, p.end_ms, p.ratio, p.cut_ms) == ("cut", 600, 2920, 1.5, 520)


def test_borrowing_stops_at_previous_clip_plus_gap() -> None:
    utts = [Utterance(0, 900), Utterance(1000, 2000), Utterance(2500, 3000)]
    p = plan(utts, [850, 2100, None], 5000)
    assert p[0] is not None and p[0].end_ms == 850
    assert p[1] is not None and p[1].start_ms == 850 + 80  # not 1000 - 400
    assert (p[1].rule, p[1].end_ms, p[1].ratio) == ("over_cap", 2420, 2100 / 1490)


def test_no_room_at_all_is_a_full_cut() -> None:
    utts = [Utterance(1000, 1500), Utterance(1020, 2000)]
    # The media ends before the utterance starts, and nothing may be borrowed.
    p = plan(utts, [None, 300], 1010, FitOptions(borrow_ms=0))
    assert p[1] is not None
    assert (p[1].rule, p[1].start_ms, p[1].end_ms, p[1].cut_ms) == ("cut", 1010, 1010, 300)


def test_plan_rejects_bad_input() -> None:
    with pytest.raises(InputError, match="starts before"):
        plan([Utterance(500, 600), Utterance(100, 200)], [10, 10], 1000)
    with pytest.raises(InputError, match="2 utterances but 1"):
        plan([Utterance(0, 10), Utterance(20, 30)], [5], 100)
    with pytest.raises(ConfigError):
        FitOptions(max_ratio=1.6, hard_max_ratio=1.5)
    with pytest.raises(ConfigError):
        FitOptions(max_ratio=0.9)
    with pytest.raises(ConfigError):
        FitOptions(gap_ms=-1)


# --- trim_silence ------------------------------------------------------------------------


@pytest.mark.parametrize("as_int", [True, False])
def test_trim_silence_finds_speech_edges(as_int: bool) -> None:
    rate = SERVICE_RATE
    rng = np.random.default_rng(1)
    speech = syllables(900, rate)
    lead, tail = 317 * rate // 1000, 243 * rate // 1000
    x = np.concatenate([np.zeros(lead), speech, np.zeros(tail)])
    x += rng.normal(0, 10 ** (-65 / 20), len(x))  # a -65 dBFS noise floor stays "silence"
    a, b = trim_silence(pcm(x) if as_int else x.astype(np.float32), rate)
    assert abs(a - lead) <= rate // 100
    assert abs(b - (lead + len(speech))) <= rate // 100


def test_trim_silence_of_silence_is_empty() -> None:
    assert trim_silence(np.zeros(4800, np.int16), 24000) == (0, 0)
    assert trim_silence(np.zeros(0, np.int16), 24000) == (0, 0)
    assert trimmed_ms((0, 0), 24000) == 0
    assert trimmed_ms((0, 24001), 24000) == 1001  # rounded up: a fitting clip is never trimmed


# --- render ------------------------------------------------------------------------------


def fitted(
    clip: np.ndarray, in_rate: int, slot_ms: int, start_ms: int = 1234
) -> tuple[tuple[int, int], Placement]:
    """Plan one clip (int16) into a slot of ``slot_ms`` starting at ``start_ms``."""
    trim = (0, len(clip))
    utts = [Utterance(start_ms, start_ms + 10), Utterance(start_ms + slot_ms + 80, 10**7)]
    p = plan(utts, [trimmed_ms(trim, in_rate), None], 10**7, FitOptions(borrow_ms=0))[0]
    assert p is not None
    return trim, p


@pytest.mark.parametrize("out_rate", [48_000, 44_100, 24_000, 16_000])
@pytest.mark.parametrize("slot_ms", [2000, 877, 730, 420])  # fit, sped_up, over_cap, cut
def test_render_exact_length(out_rate: int, slot_ms: int) -> None:
    clip = pcm(syllables(1003, SERVICE_RATE))
    trim, p = fitted(clip, SERVICE_RATE, slot_ms, start_ms=1001)
    y = render(clip, SERVICE_RATE, trim, p, out_rate)
    first, n = sample_span(p, out_rate)
    assert first == ms_to_samples(1001, out_rate) == (1001 * out_rate + 500) // 1000
    assert y.dtype == np.float32 and y.shape == (n,)
    assert n == ms_to_samples(p.end_ms, out_rate) - ms_to_samples(p.start_ms, out_rate)
    assert np.max(np.abs(y)) > 0.1


def onset(x: np.ndarray, level: float = 0.05) -> int:
    return int(np.argmax(np.abs(x) > level))


@pytest.mark.parametrize("slot_ms", [900, 640])  # fit (no stretch), sped_up by 1.25
def test_render_lands_sample_exact(slot_ms: int) -> None:
    in_rate, out_rate = SERVICE_RATE, 48_000
    t = np.arange(800 * in_rate // 1000) / in_rate
    clip = pcm(0.4 * np.cos(2 * np.pi * 220 * t))  # loud from its very first sample
    trim, p = fitted(clip, in_rate, slot_ms, start_ms=2503)
    timeline = np.zeros(4 * out_rate, np.float32)
    first, n = sample_span(p, out_rate)
    timeline[first : first + n] = render(clip, in_rate, trim, p, out_rate)
    expected = 2503 * out_rate // 1000
    if p.rule == "fit":  # resampled only: no latency, no shift
        assert onset(timeline) == expected
    else:
        assert p.rule == "sped_up"
        assert abs(onset(timeline) - expected) <= out_rate * 6 // 1000  # Rubber Band's smear
    assert np.max(np.abs(timeline[first + n - out_rate // 20 : first + n])) > 0.2  # clip fills it


def test_speed_up_keeps_pitch_and_all_the_content() -> None:
    in_rate, out_rate = SERVICE_RATE, 48_000
    # 1.0 s at 220 Hz, then 0.3 s at 330 Hz: sped up 1.3x, the 330 Hz part must end the clip.
    x = np.concatenate([harmonic(220, 1000, in_rate), harmonic(330, 300, in_rate)])
    trim, p = fitted(pcm(x), in_rate, 1000)
    assert p.rule == "sped_up" and p.ratio == pytest.approx(1.3)
    y = render(pcm(x), in_rate, trim, p, out_rate)
    body, end = y[out_rate // 10 : out_rate * 6 // 10], y[-out_rate * 15 // 100 :]
    assert peak_hz(body, out_rate) == pytest.approx(220, rel=0.03)  # not 286 Hz
    assert peak_hz(end, out_rate) == pytest.approx(330, rel=0.03)


def test_cut_keeps_the_beginning_and_fades_out() -> None:
    in_rate = out_rate = SERVICE_RATE
    x = np.concatenate([harmonic(220, 1000, in_rate), harmonic(330, 1000, in_rate)])
    trim, p = fitted(pcm(x), in_rate, 1000)
    assert p.rule == "cut" and p.cut_ms == 500
    y = render(pcm(x), in_rate, trim, p, out_rate)
    assert len(y) == out_rate
    assert peak_hz(y[: out_rate // 2], out_rate) == pytest.approx(220, rel=0.03)
    fade = 40 * out_rate // 1000
    assert np.max(np.abs(y[-fade // 8 :])) < 0.15 * np.max(np.abs(y[-2 * fade : -fade]))
    assert y[-1] == 0.0


def test_render_rejects_a_clip_it_was_not_planned_for() -> None:
    clip = pcm(syllables(1000, SERVICE_RATE))
    _, p = fitted(clip, SERVICE_RATE, 2000)
    with pytest.raises(InputError, match="planned for a 1000 ms clip"):
        render(clip, SERVICE_RATE, (0, len(clip) // 2), p, 48_000)
    with pytest.raises(InputError, match="outside"):
        render(clip, SERVICE_RATE, (0, len(clip) + 1), p, 48_000)


def test_render_empty_placement() -> None:
    clip = pcm(syllables(300, SERVICE_RATE))
    p = Placement(0, 500, 500, 500, 300, 1.5, "cut", 300)
    assert render(clip, SERVICE_RATE, (0, len(clip)), p, 48_000).shape == (0,)


@settings(max_examples=200, deadline=None)
@given(scenarios(), st.data())
def test_placing_one_at_a_time_gives_the_plan(
    case: tuple[list[Utterance], list[int | None], int, FitOptions], data: st.DataObject
) -> None:
    """The streamed dub places each clip as it arrives (Planner); the result is the plan's,
    and each clip is heard only inside its placement, in order, whatever its pauses."""
    from dubkit.fit import Planner, heard_spans

    utts, clips, duration, opts = case
    whole = plan(utts, clips, duration, opts)
    planner = Planner(duration, opts)
    nexts: list[int | None] = [u.start_ms for u in utts[1:]]
    nexts = [*nexts, None][: len(utts)]
    one_by_one = [planner.place(u, n, c) for u, n, c in zip(utts, nexts, clips, strict=True)]
    assert one_by_one == whole
    for p, c in zip(whole, clips, strict=True):
        if p is None or c is None:
            continue
        cuts = sorted(data.draw(st.lists(st.integers(0, c), max_size=6)))
        spans = [(a, b) for a, b in zip(cuts[::2], cuts[1::2], strict=False) if a < b]
        heard = heard_spans(spans, p)
        assert all(p.start_ms <= a < b <= p.end_ms for a, b in heard) or not heard
        assert all(b0 <= a1 for (_, b0), (a1, _) in itertools.pairwise(heard))
