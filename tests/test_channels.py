"""Channel layouts: speech placement, BS.1770-4 weights, loudness over a layout, the mix."""

from __future__ import annotations

import numpy as np
import pyloudnorm
import pytest

from dubkit.media.channels import ChannelLayout, layout_loudness, placement_gain_db
from dubkit.mix import MixOptions, PlacedClip, mix
from dubkit.mix.loudness import loudness_gain_db

RATE = 48_000


def noise(channels: int, seconds: float, seed: int, level: float = 0.1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((channels, int(RATE * seconds))) * level).astype(np.float32)


def test_layouts_by_name() -> None:
    assert ChannelLayout.named("5.1").channels == ("FL", "FR", "FC", "LFE", "BL", "BR")
    assert ChannelLayout.named("7.1").count == 8
    assert ChannelLayout.default(6).name == "5.1" and ChannelLayout.default(1).name == "mono"
    assert ChannelLayout.named("quad").channels == ("FL", "FR", "BL", "BR")


def test_speech_goes_to_the_centre_where_there_is_one() -> None:
    assert ChannelLayout.named("mono").speech_gains().tolist() == [1.0]
    assert ChannelLayout.named("stereo").speech_gains().tolist() == [1.0, 1.0]
    assert ChannelLayout.named("5.1").speech_gains().tolist() == [0, 0, 1, 0, 0, 0]
    assert ChannelLayout.named("7.1").speech_gains().tolist() == [0, 0, 1, 0, 0, 0, 0, 0]
    assert ChannelLayout.named("quad").speech_gains().tolist() == [1, 1, 1, 1]  # no centre
    assert ChannelLayout.named("2.1").speech_gains().tolist() == [1, 1, 0]  # never the LFE


def test_bs1770_weights() -> None:
    assert ChannelLayout.named("5.1").loudness_weights().tolist() == [1, 1, 1, 0, 1.41, 1.41]
    assert ChannelLayout.named("5.1(side)").loudness_weights().tolist() == [
        1, 1, 1, 0, 1.41, 1.41
    ]
    # 7.1: the side pair is the one at 60-120 degrees; the back pair counts 1.0
    assert ChannelLayout.named("7.1").loudness_weights().tolist() == [
        1, 1, 1, 0, 1, 1, 1.41, 1.41
    ]
    assert placement_gain_db(ChannelLayout.named("5.1")) == pytest.approx(0.0)
    assert placement_gain_db(ChannelLayout.named("stereo")) == pytest.approx(3.0103, abs=1e-3)


def test_layout_loudness_agrees_with_pyloudnorm_and_ignores_the_lfe() -> None:
    x = noise(6, 3.0, 1)
    x[1] *= 0.5
    x[4] *= 0.3
    # pyloudnorm's five channels are L, R, C, Ls, Rs: 5.1 without its LFE
    reference = pyloudnorm.Meter(RATE).integrated_loudness(x[[0, 1, 2, 4, 5]].T.astype(float))
    got = layout_loudness(x, RATE, ChannelLayout.named("5.1"))
    assert got == pytest.approx(reference, abs=0.01)
    loud_lfe = x.copy()
    loud_lfe[3] = noise(1, 3.0, 2, level=0.9)[0]
    assert layout_loudness(loud_lfe, RATE, ChannelLayout.named("5.1")) == pytest.approx(got)
    mono = noise(1, 3.0, 3)
    assert layout_loudness(mono, RATE, ChannelLayout.named("mono")) == pytest.approx(
        pyloudnorm.Meter(RATE).integrated_loudness(mono[0].astype(float)), abs=0.01
    )
    assert layout_loudness(np.zeros((6, RATE * 2), np.float32), RATE,
                           ChannelLayout.named("5.1")) is None  # fmt: skip
    assert layout_loudness(x[:, : RATE // 10], RATE, ChannelLayout.named("5.1")) is None


def test_surround_gain_matches_centre_speech() -> None:
    """Original speech in FC of a 5.1 bed; a dub 6 dB quieter needs +6 dB."""
    layout = ChannelLayout.named("5.1")
    speech = noise(1, 3.0, 4, level=0.2)[0]
    original = np.zeros((6, speech.size), np.float32)
    original[2] = speech
    gain = loudness_gain_db(original, speech * 0.5, RATE, RATE, layout)
    assert gain == pytest.approx(20 * np.log10(2), abs=0.05)


def test_mix_places_speech_in_fc_and_ducks_every_channel() -> None:
    layout = ChannelLayout.named("5.1")
    bed = noise(6, 1.0, 5, level=0.05)
    clip = np.full(RATE // 2, 0.25, np.float32)
    placed = [PlacedClip(RATE // 4, clip.size, lambda: clip)]
    duck = MixOptions(mode="duck")
    out = np.concatenate(list(mix([bed], RATE, 6, placed, RATE, duck, 0.0, layout)), axis=1)
    mid = slice(RATE // 4 + RATE // 10, RATE * 3 // 4 - RATE // 10)
    for ch in (0, 1, 3, 4, 5):
        ratio = np.sqrt(np.mean(out[ch, mid] ** 2) / np.mean(bed[ch, mid] ** 2))
        assert 20 * np.log10(ratio) == pytest.approx(-15, abs=0.1)
    assert np.mean(out[2, mid] - bed[2, mid] * 10 ** (-15 / 20)) == pytest.approx(0.25, abs=1e-3)
    with pytest.raises(ValueError, match="layout stereo has 2 channels, not 6"):
        mix([bed], RATE, 6, placed, RATE, None, 0.0, ChannelLayout.named("stereo"))
