"""Real media as users have it (issue 18): every track kept, surround dubbed as surround,
common containers in and out. The inputs are made at test time (tests/media_matrix.py) and
dubbed end to end through the emulator; the outputs are checked with PyAV."""

from __future__ import annotations

import json
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

import dubkit
from dubkit import media
from dubkit.emulator import Emulator
from dubkit.fit import ms_to_samples
from dubkit.languages import resolve
from dubkit.media.channels import ChannelLayout, layout_loudness
from dubkit.mix import MixOptions
from dubkit.mux import output_suffix
from dubkit.pipeline import Options, Result
from dubkit.translate.cloud import CloudTranslator
from tests.conftest import KEY, run_cli
from tests.media_matrix import CASES, make

CASE = {c.name: c for c in CASES}
#: (case, options, output extension)
RUNS = [
    ("mp4", {}, ".mp4"),
    ("mkv", {}, ".mkv"),
    ("mov", {}, ".mov"),
    ("m4v", {}, ".m4v"),
    ("webm", {}, ".webm"),
    ("ts", {"track": "fre"}, ".ts"),
    ("avi", {}, ".mkv"),
    ("flv", {}, ".mkv"),
    ("mp4", {"container": "mkv"}, ".mkv"),
    ("mkv", {"container": "mp4"}, ".mp4"),
    ("avi", {"container": "mp4"}, ".mp4"),
    ("mp4", {"track": "1"}, ".mp4"),
]
SUB_HOLDERS = {".mp4", ".m4v", ".mov", ".mkv", ".webm"}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    folder = tmp_path_factory.mktemp("matrix")
    made: dict[str, Path] = {}

    class Lazy(dict[str, Path]):
        def __missing__(self, name: str) -> Path:
            made[name] = make(CASE[name], folder)
            return made[name]

    yield Lazy()


def packets(path: Path) -> list[tuple[bytes, Fraction | None]]:
    """The video packets: bytes, and time from the first (containers differ in time base and
    start offset: MPEG-TS starts at 1.4 s)."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        got = [(bytes(p), p.pts) for p in c.demux(v) if p.size]
        start = min((pts for _, pts in got if pts is not None), default=0)
        return [(b, None if t is None else (t - start) * v.time_base) for b, t in got]


def decode(path: Path, index: int) -> tuple[np.ndarray, int]:
    """Stream ``index`` (file index) as float32 (channels, n), and its rate."""
    with av.open(str(path)) as c:
        s = c.streams[index]
        # packed: PyAV 18 crashes reading a planar 7.1 frame
        rs = av.AudioResampler(format="flt", layout=s.layout.name, rate=s.rate)
        n = s.layout.nb_channels
        parts = [f.to_ndarray().reshape(-1, n).T for fr in c.decode(s) for f in rs.resample(fr)]
        return np.concatenate(parts, axis=1), s.rate


def decodes_cleanly(path: Path) -> int:
    """Decode every audio, video and subtitle stream; the number of frames (raises on error)."""
    with av.open(str(path)) as c:
        streams = [s for s in c.streams if s.type in ("audio", "video", "subtitle")]
        return sum(1 for _ in c.decode(*streams))


def chapters(path: Path) -> list[str]:
    with av.open(str(path)) as c:
        return [ch["metadata"].get("title", "") for ch in c.chapters()]


def without_default(s: Any) -> tuple[str, ...]:
    return tuple(d for d in s.dispositions if d != "default")


def check_streams(src: Path, out: Path, options: Options, result: Result) -> None:
    i, o = media.probe(src), media.probe(out)
    track = media.select_audio(i, options.track)
    target = result.target.iso639_2
    # video: the same streams, packets identical
    assert [s.codec for s in o.streams if s.kind == "video"] == [
        s.codec for s in i.streams if s.kind == "video"
    ]
    assert packets(out) == packets(src)
    # audio: the dub first and only default, then every input track with its tags and flags
    dub, *rest = o.audio_tracks
    flags = () if out.suffix == ".ts" else ("default",)  # MPEG-TS has no default flag
    assert (dub.language, dub.dispositions, dub.layout) == (target, flags, track.layout)
    assert [(s.language or track.language if s.position - 1 == track.position else s.language,
             s.layout, without_default(s)) for s in rest] == [
        (s.language, s.layout, without_default(s)) for s in i.audio_tracks
    ]  # fmt: skip
    titles = [s.title for s in i.audio_tracks]
    if out.suffix != ".ts":  # MPEG-TS has no track titles
        assert [s.title for s in rest] == [t or "Original" if n == track.position else t
                                           for n, t in enumerate(titles)]  # fmt: skip
    # subtitles: the dub's, then the input's, where the container holds text subtitles
    subs = [s for s in o.streams if s.kind == "subtitle"]
    want = [(target, ())] + [(s.language, without_default(s)) for s in i.streams
                             if s.kind == "subtitle"]  # fmt: skip
    # MP4 has no "default" flag but "enabled", which ffmpeg sets on the first track of a kind
    assert sum(s.default for s in subs) <= int(out.suffix in (".mp4", ".m4v", ".mov"))
    assert [(s.language, without_default(s)) for s in subs] == (
        want if out.suffix in SUB_HOLDERS else []
    )
    # attachments and chapters where the container holds them
    attached = [s for s in i.streams if s.kind == "attachment"]
    assert len([s for s in o.streams if s.kind == "attachment"]) == (
        len(attached) if out.suffix == ".mkv" else 0
    )
    assert chapters(out) == chapters(src)
    # nothing else, but the text track that carries MP4 chapters
    data = [s for s in o.streams if s.kind == "data"]
    assert len(data) == int(bool(chapters(src)) and out.suffix in (".mp4", ".m4v", ".mov"))
    dropped = len(attached) * (out.suffix != ".mkv") + sum(
        s.kind == "subtitle" for s in i.streams
    ) * (out.suffix not in SUB_HOLDERS)
    added = 1 + (out.suffix in SUB_HOLDERS)
    assert len(o.streams) - len(data) == len(i.streams) - dropped + added


def check_audio(src: Path, out: Path, options: Options) -> None:
    i, o = media.probe(src), media.probe(out)
    track = media.select_audio(i, options.track)
    assert abs(o.duration_ms - i.duration_ms) <= 50
    dubbed, rate = decode(out, o.audio_tracks[0].index)
    original, rate_in = decode(src, track.index)
    assert rate == rate_in and dubbed.shape[0] == original.shape[0] == track.channels
    assert abs(dubbed.shape[1] - original.shape[1]) * 1000 / rate <= 50
    assert decodes_cleanly(out) > 0


@pytest.mark.parametrize(("name", "extra", "ext"), RUNS, ids=[
    f"{n}{'-' + '-'.join(f'{k}={v}' for k, v in e.items()) if e else ''}" for n, e, _ in RUNS
])  # fmt: skip
def test_dub_keeps_every_stream(
    tmp_path: Path, inputs: dict[str, Path], cloud: CloudTranslator, name: str,
    extra: dict[str, str], ext: str,
) -> None:  # fmt: skip
    src = inputs[name]
    before = src.read_bytes()
    options = Options(target="es", out_dir=tmp_path, review=False, **extra)  # type: ignore[arg-type]
    result = dubkit.dub(src, options, cloud)
    assert src.read_bytes() == before
    out = tmp_path / f"{name}.es{ext}"
    assert result.outputs.media == out and out.exists()
    assert [p for p in result.placements if p], "the fixture's speech was dubbed"
    check_streams(src, out, options, result)
    check_audio(src, out, options)
    # the track's language tag is the source language; the review page finds the original
    track = media.select_audio(media.probe(src), options.track)
    manifest = json.loads(result.outputs.manifest.read_text(encoding="utf-8"))
    assert manifest["source"] == (resolve(track.language).code if track.language else None)
    assert manifest["options"]["original_track"] == 1 + track.position


def _level_db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.square(x, dtype=np.float64)) + 1e-20))


@pytest.mark.parametrize("name", ["mkv", "m4v"])
def test_surround_speech_in_the_centre_everything_ducked(
    tmp_path: Path, inputs: dict[str, Path], cloud: CloudTranslator, name: str
) -> None:
    src = inputs[name]
    opts = Options(target="es", out_dir=tmp_path, review=False, mix=MixOptions(mode="duck"))
    result = dubkit.dub(src, opts, cloud)
    assert result.outputs.media is not None
    info = media.probe(src)
    track = media.select_audio(info)
    out, _ = decode(result.outputs.media, media.probe(result.outputs.media).audio_tracks[0].index)
    orig, rate = decode(src, track.index)
    layout = ChannelLayout.named(track.layout or "")
    assert layout.channels[2] == "FC" and layout.count in (6, 8)
    spans = [(p.start_ms + 100, p.end_ms - 100) for p in result.placements
             if p and p.end_ms - p.start_ms > 400]  # fmt: skip
    assert spans
    cut = np.concatenate([np.arange(ms_to_samples(s, rate), ms_to_samples(e, rate))
                          for s, e in spans])  # fmt: skip
    for ch, label in enumerate(layout.channels):
        if label == "LFE":
            continue
        change = _level_db(out[ch, cut]) - _level_db(orig[ch, cut])
        if label == "FC":  # the dub, loudness-matched to the original speech, plays here
            assert change > -6, change
        else:  # only the ducked original
            assert change == pytest.approx(-15, abs=1.0), (label, change)
    # the dubbed speech is as loud as the original speech, over the whole layout
    assert layout_loudness(out[:, cut], rate, layout) == pytest.approx(
        layout_loudness(orig[:, cut], rate, layout), abs=1.0
    )


def test_cli_avi_notice_and_track_choice(
    tmp_path: Path, inputs: dict[str, Path], emulator: Emulator
) -> None:
    env = {"DASHSCOPE_API_KEY": KEY, "DASHSCOPE_BASE_URL": emulator.base_url}
    r = run_cli("dub", inputs["avi"], "--to", "es", "--out-dir", tmp_path, "--no-review", env=env)
    assert r.returncode == 0, r.stderr
    notes = [line for line in r.stderr.splitlines() if "MKV" in line]
    assert notes == [f"dubkit: {inputs['avi']}: {output_suffix('.avi')[1]}"]
    assert (tmp_path / "avi.es.mkv").exists()
    r = run_cli("dub", inputs["ts"], "--to", "es", "--track", "de", "--out-dir", tmp_path, env=env)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "no audio track 'de'" in r.stderr
    assert "0 eng aac stereo; 1 fre aac 5.1" in r.stderr
    r = run_cli("dub", inputs["ts"], "--to", "es", "--track", "fr", "--dry-run", "--json", env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["requests"] >= 1  # the French track holds the speech
