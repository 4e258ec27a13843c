"""The dub end to end through the emulator: placement, mix, loudness, mux (issue 6)."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import av
import numpy as np
import pyloudnorm
import pytest
from scipy.signal import resample_poly

import dubkit
from dubkit import media
from dubkit.fit import ms_to_samples
from dubkit.mix import MixOptions
from dubkit.pipeline import Options, Result
from dubkit.subtitles import read_srt
from dubkit.translate.cloud import CloudTranslator
from tests.conftest import FIX, truth

FIXED_RULES = ("fit", "sped_up")


def decode(path: Path, index: int = 0) -> tuple[np.ndarray, int]:
    """Audio stream ``index`` of ``path`` as float32 (channels, n) and its rate."""
    with av.open(str(path)) as c:
        s = c.streams.audio[index]
        rs = av.AudioResampler(format="fltp", layout=s.layout.name, rate=s.rate)
        parts = [f.to_ndarray() for fr in c.decode(s) for f in rs.resample(fr)]
        return np.concatenate(parts, axis=1), s.rate


def true_peak_dbtp(x: np.ndarray) -> float:
    up = resample_poly(x, 4, 1, axis=-1)
    return float(20 * np.log10(np.abs(up).max() + 1e-12))


def spans_loudness(x: np.ndarray, rate: int, spans: list[tuple[int, int]]) -> float:
    parts = [x[:, ms_to_samples(s, rate) : ms_to_samples(e, rate)] for s, e in spans]
    return float(pyloudnorm.Meter(rate).integrated_loudness(np.concatenate(parts, axis=1).T))


def check_placements(result: Result, duration_ms: int, max_ratio: float = 1.3) -> None:
    placed = [(r, p) for r, p in zip(result.results, result.placements, strict=True) if p]
    assert placed
    for r, p in placed:
        if p.rule in FIXED_RULES:
            assert p.start_ms == r.utterance.start_ms
            assert p.ratio <= max_ratio + 1e-9
        else:
            assert p.start_ms <= r.utterance.start_ms
    for (_, a), (_, b) in itertools.pairwise(placed):
        assert a.end_ms <= b.start_ms  # never overlapping
    assert placed[-1][1].end_ms <= duration_ms


def test_dub_mp4_end_to_end(tmp_path: Path, cloud: CloudTranslator) -> None:
    src = tmp_path / "talk.mp4"
    shutil.copy(FIX / "speech.mp4", src)
    before = src.read_bytes()
    result = dubkit.dub(src, Options(target="es", formats=("srt", "vtt")), cloud)
    assert src.read_bytes() == before

    out = tmp_path / "talk.es.mp4"
    assert result.outputs.media == out and out.exists()
    assert {p.name for p in tmp_path.iterdir()} == {
        "talk.mp4", "talk.es.mp4", "talk.es.srt", "talk.es.vtt", "talk.es.dubkit.json",
        "talk.es.review.html",
    }  # fmt: skip
    info = media.probe(src)
    check_placements(result, info.duration_ms)

    # video packets untouched, tracks ordered and tagged, durations within a frame
    def packets(p: Path) -> list[tuple[bytes, int | None]]:
        with av.open(str(p)) as c:
            return [(bytes(k), k.pts) for k in c.demux(c.streams.video[0]) if k.size]

    assert packets(out) == packets(src)
    got = media.probe(out)
    kinds = [(s.kind, s.language) for s in got.streams]
    assert kinds == [("video", None), ("audio", "spa"), ("audio", None), ("subtitle", "spa")]
    assert abs(got.duration_ms - info.duration_ms) <= 1000 / 12

    manifest = json.loads((tmp_path / "talk.es.dubkit.json").read_text())
    assert manifest["totals"]["utterances"] == len(result.results) >= 6
    assert manifest["totals"]["failed"] == 0
    for item, r in zip(manifest["utterances"], result.results, strict=True):
        assert item["start_ms"] == r.utterance.start_ms and item["status"] == "ok"
        assert item["dub"]["rule"] in ("fit", "sped_up", "borrowed", "over_cap", "cut")


def test_loudness_matched_and_true_peak_limited(tmp_path: Path, cloud: CloudTranslator) -> None:
    """Lossless output (WAV) so the measures see the mix itself, not an encoder's overshoot."""
    src = tmp_path / "talk.wav"
    shutil.copy(FIX / "speech.wav", src)
    result = dubkit.dub(src, Options(target="fr"), cloud)
    out = result.outputs.media
    assert out is not None and out.suffix == ".wav"
    dub, rate = decode(out)
    orig, _ = decode(src)
    assert abs(dub.shape[1] - orig.shape[1]) <= rate // 100
    assert true_peak_dbtp(dub) <= -1.0 + 0.05
    assert np.abs(dub).max() < 1.0
    dub_spans = [(p.start_ms, p.end_ms) for p in result.placements if p]
    orig_spans = [(u["start_ms"], u["end_ms"]) for u in truth("speech")["utterances"]]
    assert abs(spans_loudness(dub, rate, dub_spans) - spans_loudness(orig, rate, orig_spans)) <= 1.0


def test_music_bed_survives_under_and_between_clips(tmp_path: Path, cloud: CloudTranslator) -> None:
    wav = tmp_path / "music.wav"
    ff = media.ffmpeg_exe()
    subprocess.run(
        [ff, "-loglevel", "error", "-i", str(FIX / "music.mp4"), "-c:a", "pcm_s16le", str(wav)],
        check=True,
    )
    outs = {}
    for mode in ("duck", "replace"):
        d = tmp_path / mode
        d.mkdir()
        r = dubkit.dub(wav, Options(target="es", out_dir=d, mix=MixOptions(mode=mode)), cloud)
        outs[mode] = (decode(d / "music.es.wav")[0], r)
    orig, rate = decode(wav)
    bed = outs["duck"][0] - outs["replace"][0]  # what the duck mix kept of the original
    placed = [p for p in outs["duck"][1].placements if p]
    n = min(bed.shape[1], orig.shape[1])

    def level(x: np.ndarray, s: int, e: int) -> float:
        seg = x[:, ms_to_samples(s, rate) : ms_to_samples(e, rate)]
        return float(10 * np.log10(np.mean(seg**2) + 1e-20))

    # under each clip (away from the ramps) the original is there, about 15 dB down
    for p in placed:
        if p.end_ms - p.start_ms > 600:
            s, e = p.start_ms + 150, p.end_ms - 150
            assert level(bed[:, :n], s, e) - level(orig[:, :n], s, e) == pytest.approx(-15, abs=1.5)
    # between clips it is untouched
    for a, b in itertools.pairwise(placed):
        if b.start_ms - a.end_ms > 500:
            s, e = a.end_ms + 150, b.start_ms - 150
            assert level(bed[:, :n], s, e) - level(orig[:, :n], s, e) == pytest.approx(0, abs=0.5)
            assert level(orig, s, e) > -60  # there is music to keep


def test_mkv_gives_mkv_with_subrip(tmp_path: Path, cloud: CloudTranslator) -> None:
    src = tmp_path / "talk.mkv"
    shutil.copy(FIX / "speech.mkv", src)
    result = dubkit.dub(src, Options(target="de", source="en"), cloud)
    got = media.probe(tmp_path / "talk.de.mkv")
    assert result.outputs.media == tmp_path / "talk.de.mkv"
    subs = [s for s in got.streams if s.kind == "subtitle"]
    audio = [s for s in got.streams if s.kind == "audio"]
    assert [a.language for a in audio] == ["deu", "eng"]
    assert subs and subs[0].codec in ("subrip", "srt") and subs[0].language == "deu"


def _many_utterances(path: Path, count: int) -> list[tuple[int, int]]:
    """A WAV of ``count`` fixture sentences with pauses of 0.6-1.2 s; their true spans."""
    speech, rate = decode(FIX / "speech.wav")
    clips = [
        speech[0, ms_to_samples(u["start_ms"], rate) : ms_to_samples(u["end_ms"], rate)]
        for u in truth("speech")["utterances"]
        if u["end_ms"] - u["start_ms"] < 3000
    ]
    rng = np.random.default_rng(7)
    parts, spans, t = [np.zeros(rate // 2, np.float32)], [], rate // 2
    for i in range(count):
        clip = clips[i % len(clips)]
        spans.append((t * 1000 // rate, (t + len(clip)) * 1000 // rate))
        pause = np.zeros(int(rate * rng.uniform(0.6, 1.2)), np.float32)
        parts += [clip, pause]
        t += len(clip) + len(pause)
    pcm = (np.concatenate(parts) * 32767).astype("<i2")
    import wave

    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return spans


@pytest.mark.slow
def test_no_drift_over_200_utterances(tmp_path: Path, cloud: CloudTranslator) -> None:
    src = tmp_path / "long.wav"
    _many_utterances(src, 210)
    opts = Options(target="es", mix=MixOptions(mode="replace"), concurrency=8)
    result = dubkit.dub(src, opts, cloud)
    assert len(result.results) >= 200 and not result.failed
    info = media.probe(src)
    check_placements(result, info.duration_ms)
    dub, rate = decode(result.outputs.media)  # type: ignore[arg-type]
    mono = np.abs(dub[0])
    # each clip's audio begins at its planned sample: nothing before it, sound right after
    late = []
    for p in result.placements:
        if p is None or p.end_ms - p.start_ms < 200:
            continue
        first = ms_to_samples(p.start_ms, rate)
        assert mono[max(0, first - rate // 100) : first - 2].max() < 1e-3, p
        onset = first + int(np.argmax(mono[first : first + rate // 5] > 1e-3))
        late.append(onset - first)
    assert np.median(late) * 1000 / rate < 10  # trimmed clips start at once, last one too
    assert late[-1] * 1000 / rate < 30


def test_visual_sends_video_clips(tmp_path: Path, cloud: CloudTranslator) -> None:
    """--visual: each request carries a short video clip; the service counts its frames."""
    usage = {}
    for visual in (False, True):
        d = tmp_path / str(visual)
        d.mkdir()
        r = dubkit.subtitle(
            FIX / "speech.mp4", Options(target="es", out_dir=d, visual=visual), cloud
        )
        assert not r.failed and r.cues
        usage[visual] = r.usage
    assert usage[False].input_video_tokens == 0
    assert usage[True].input_video_tokens > 0


def test_subtitle_cues_sit_inside_their_utterances(tmp_path: Path, cloud: CloudTranslator) -> None:
    """`dubkit.subtitle` end to end: the sidecar parses and each cue shows during its
    utterance, extended at most into the silence around it (never over the next one)."""
    from dubkit.subtitles import read_srt

    result = dubkit.subtitle(FIX / "speech.mp4", Options(target="es", out_dir=tmp_path), cloud)
    srt = tmp_path / "speech.es.srt"
    assert result.outputs.subtitles == (srt,) and read_srt(srt) == list(result.cues)
    starts = [r.utterance.start_ms for r in result.results]
    duration = media.probe(FIX / "speech.mp4").duration_ms
    for cue in result.cues:
        i = max(k for k, s in enumerate(starts) if s < cue.end_ms)  # shown during utterance i
        assert cue.start_ms < result.results[i].utterance.end_ms
        limit = starts[i + 1] if i + 1 < len(starts) else duration
        assert cue.end_ms <= limit


@pytest.mark.slow
def test_local_engine_dub_has_speech_where_the_utterances_are(
    tmp_path: Path, whisper_asr: Any
) -> None:
    from dubkit.translate.local import LocalTranslator

    src = tmp_path / "talk.wav"
    shutil.copy(FIX / "speech.wav", src)
    opts = Options(target="es", mix=MixOptions(mode="replace"))
    result = dubkit.dub(src, opts, LocalTranslator(whisper=whisper_asr))
    assert result.engine == "local" and not result.failed
    manifest = json.loads(result.outputs.manifest.read_text())
    heard = [u.get("source_text") for u in manifest["utterances"]]
    assert all(heard) and "coffee" in " ".join(heard).lower(), heard  # the recognised English
    assert result.outputs.review is not None
    assert "source_text" in result.outputs.review.read_text()  # shown beside the translation
    dub, rate = decode(result.outputs.media)  # type: ignore[arg-type]
    voiced = 0
    for u in truth("speech")["utterances"]:
        seg = dub[:, ms_to_samples(u["start_ms"], rate) : ms_to_samples(u["end_ms"], rate)]
        voiced += float(np.sqrt(np.mean(seg**2))) > 10 ** (-40 / 20)
    assert voiced == len(truth("speech")["utterances"])
    assert any(c.text.strip() for c in result.cues)


def test_without_an_interpreter_to_start_the_speakers_are_measured_in_process(
    tmp_path: Path, cloud: CloudTranslator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An embedded Python may have no interpreter to start for the speaker child: the same
    # speakers are then found in the dub's own process.
    src = tmp_path / "talk.wav"
    shutil.copy(FIX / "speech.wav", src)
    apart = dubkit.dub(src, Options(target="es", out_dir=tmp_path / "apart"), cloud)
    monkeypatch.setattr("sys.executable", str(tmp_path / "no-python"))
    here = dubkit.dub(src, Options(target="es", out_dir=tmp_path / "here"), cloud)
    assert [e.speaker for e in here.timeline] == [e.speaker for e in apart.timeline]
    assert here.casting == apart.casting


def _subtitle_track(path: Path) -> list[tuple[int, int, str]]:
    """(start ms, end ms, text) of the first subtitle track's cues (MP4's empty gap samples
    left out)."""
    with av.open(str(path)) as c:
        s = c.streams.subtitles[0]
        assert s.time_base is not None
        tb = s.time_base
        out = []
        for k in c.demux(s):
            if not k.size or k.pts is None:
                continue
            data = bytes(k)
            text = data[2:].decode() if s.codec_context.name == "mov_text" else data.decode()
            if text:
                start = round(k.pts * tb * 1000)
                out.append((start, start + round(k.duration * tb * 1000), text))
        return out


def _cue_rows(cues: Any) -> list[tuple[int, int, str]]:
    return [(c.start_ms, c.end_ms, "\n".join(c.lines)) for c in cues]


@pytest.mark.parametrize("ext", ["mp4", "mkv"])
def test_video_written_in_one_pass_with_its_subtitles(
    tmp_path: Path, cloud: CloudTranslator, monkeypatch: pytest.MonkeyPatch, ext: str
) -> None:
    """The dub, the copied streams and the subtitle track go into the output in one ffmpeg
    run: no stream-copy pass after it, and the track holds exactly the sidecar's cues."""
    from dubkit import mux

    def second_pass(*args: object, **kwargs: object) -> None:
        raise AssertionError("a second pass over the output")

    monkeypatch.setattr(mux, "resubtitle", second_pass)
    monkeypatch.setattr(mux, "mux_file", second_pass)
    src = tmp_path / f"talk.{ext}"
    shutil.copy(FIX / f"speech.{ext}", src)
    result = dubkit.dub(src, Options(target="es", mix=MixOptions(mode="duck")), cloud)
    assert result.outputs.media is not None
    assert len(result.cues) >= 4
    assert _subtitle_track(result.outputs.media) == _cue_rows(result.cues)
    assert _cue_rows(result.cues) == _cue_rows(read_srt(result.outputs.subtitles[0]))


def test_cues_that_changed_after_they_were_written_are_written_again(
    tmp_path: Path, cloud: CloudTranslator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where a cue written during the pass differs from the whole timeline's (here bent on
    purpose), the subtitle track is written again from the final cues, the rest copied."""
    import dataclasses

    from dubkit import mux
    from dubkit.pipeline.subtitling import LiveCues

    settled, rewrites = LiveCues.settled, []

    def bent(self: LiveCues, timeline: Any, complete: bool) -> list[Any]:
        new = settled(self, timeline, complete)
        if new and len(self.sent) == len(new):  # the first cue handed on, a millisecond short
            self.sent[0] = new[0] = dataclasses.replace(new[0], end_ms=new[0].end_ms - 1)
        return new

    resubtitle = mux.resubtitle
    monkeypatch.setattr(LiveCues, "settled", bent)
    monkeypatch.setattr(mux, "resubtitle", lambda *a: rewrites.append(1) or resubtitle(*a))
    src = tmp_path / "talk.mp4"
    shutil.copy(FIX / "speech.mp4", src)
    result = dubkit.dub(src, Options(target="es", mix=MixOptions(mode="duck")), cloud)
    out = result.outputs.media
    assert out is not None and rewrites == [1]
    assert _subtitle_track(out) == _cue_rows(result.cues)
    kinds = [(s.kind, s.language) for s in media.probe(out).streams]
    assert kinds == [("video", None), ("audio", "spa"), ("audio", None), ("subtitle", "spa")]

    def packets(p: Path) -> list[bytes]:
        with av.open(str(p)) as c:
            return [bytes(k) for k in c.demux(c.streams.video[0]) if k.size]

    assert packets(out) == packets(src)


def test_faststart_puts_the_index_first_only_when_asked(
    tmp_path: Path, cloud: CloudTranslator
) -> None:
    src = tmp_path / "talk.mp4"
    shutil.copy(FIX / "speech.mp4", src)
    for faststart in (False, True):
        opts = Options(target="es", out_dir=tmp_path / str(faststart), faststart=faststart,
                       mix=MixOptions(mode="duck"))  # fmt: skip
        out = dubkit.dub(src, opts, cloud).outputs.media
        assert out is not None
        boxes = _top_level_boxes(out.read_bytes())
        assert (boxes.index(b"moov") < boxes.index(b"mdat")) is faststart


def _top_level_boxes(data: bytes) -> list[bytes]:
    """An MP4's top-level box types, in file order."""
    out, at = [], 0
    while at + 8 <= len(data):
        size = int.from_bytes(data[at : at + 4], "big")
        if size == 1:  # a 64-bit size follows the type
            size = int.from_bytes(data[at + 8 : at + 16], "big")
        out.append(data[at + 4 : at + 8])
        if size < 8:
            break
        at += size
    return out
