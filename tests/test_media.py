"""Probe, decode and mux on the real fixture files, with PyAV and the bundled ffmpeg."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import av
import numpy as np
import pytest

from dubkit import media, mux
from dubkit.errors import InputError, OutputError

FIX = Path(__file__).resolve().parent.parent / "fixtures"


def video_packets(path: Path) -> list[tuple[bytes, int | None, int | None, bool]]:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        return [(bytes(p), p.pts, p.dts, p.is_keyframe) for p in c.demux(v) if p.size]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_probe_speech_mp4() -> None:
    info = media.probe(FIX / "speech.mp4")
    assert "mp4" in info.container
    assert 29_000 < info.duration_ms < 33_000
    assert info.video is not None and info.video.codec == "h264"
    assert info.video.frame_rate is not None and info.video.width and info.video.height
    assert info.audio is not None and info.audio.codec == "aac"
    assert info.audio.sample_rate == 48_000 and info.audio.channels in (1, 2)


def test_probe_mkv_language_and_audio_only_wav() -> None:
    mkv = media.probe(FIX / "speech.mkv")
    assert mkv.container.startswith("matroska")
    assert mkv.audio is not None and mkv.audio.language == "eng"
    wav = media.probe(FIX / "speech.wav")
    assert wav.video is None and wav.audio is not None and wav.audio.codec.startswith("pcm")


def test_decode_pcm16_chunks_cover_the_file() -> None:
    chunks = list(media.iter_pcm16(FIX / "speech.mp4"))
    assert all(c.dtype == np.int16 and c.ndim == 1 for c in chunks)
    assert max(len(c) for c in chunks) <= media.CHUNK_SAMPLES
    total = sum(len(c) for c in chunks)
    info = media.probe(FIX / "speech.mp4")
    assert abs(total / 16 - info.duration_ms) < 50
    assert np.abs(np.concatenate(chunks)).max() > 1000  # speech, not silence


def test_decode_float_native_rate() -> None:
    info = media.probe(FIX / "speech.mp4")
    fmt = media.audio_format(info)
    blocks = list(media.iter_float(FIX / "speech.mp4", fmt))
    assert all(b.dtype == np.float32 and b.shape[0] == fmt.channels for b in blocks)
    assert abs(sum(b.shape[1] for b in blocks) * 1000 / fmt.rate - info.duration_ms) < 50


@pytest.mark.parametrize("name", ["speech.mp4", "speech.mkv"])
def test_mux_copies_video_packets_byte_identical(tmp_path: Path, name: str) -> None:
    src = tmp_path / name
    shutil.copy(FIX / name, src)
    before = sha(src)
    info = media.probe(src)
    fmt = media.audio_format(info)
    srt = tmp_path / "s.srt"
    srt.write_text("1\n00:00:01,000 --> 00:00:02,500\nHola mundo\n\n", encoding="utf-8")
    plan = mux.MuxPlan(fmt.rate, fmt.channels, "spa", "Spanish dub", "eng", srt, "spa")
    out = tmp_path / f"out{src.suffix}"
    blocks = (b * 0.5 for b in media.iter_float(src, fmt))
    mux.mux(src, out, blocks, plan, info=info)

    assert sha(src) == before  # the input is untouched
    assert video_packets(out) == video_packets(src)
    got = media.probe(out)
    frame_ms = 1000 / float(info.video.frame_rate)  # type: ignore[union-attr, arg-type]
    assert abs(got.duration_ms - info.duration_ms) <= frame_ms
    audio = [s for s in got.streams if s.kind == "audio"]
    subs = [s for s in got.streams if s.kind == "subtitle"]
    assert [a.language for a in audio] == ["spa", "eng"]
    assert audio[0].title == "Spanish dub"
    assert subs and subs[0].language == "spa"
    # ffmpeg names the SubRip decoder "srt" or "subrip": one codec id.
    assert subs[0].codec in (("mov_text",) if name.endswith("mp4") else ("subrip", "srt"))
    with av.open(str(out)) as c:
        assert c.streams.audio[0].disposition & av.stream.Disposition.default
        assert not c.streams.audio[1].disposition & av.stream.Disposition.default
    assert not list(tmp_path.glob(".*part*"))


def test_mux_audio_only_gives_audio(tmp_path: Path) -> None:
    src = FIX / "speech.wav"
    info = media.probe(src)
    fmt = media.audio_format(info)
    out = tmp_path / "speech.es.wav"
    mux.mux(
        src,
        out,
        media.iter_float(src, fmt),
        mux.MuxPlan(fmt.rate, fmt.channels, "spa", "dub"),
        info=info,
    )
    got = media.probe(out)
    assert got.video is None and len([s for s in got.streams if s.kind == "audio"]) == 1
    assert abs(got.duration_ms - info.duration_ms) < 30


def test_mux_failure_leaves_nothing(tmp_path: Path) -> None:
    src = FIX / "speech.mp4"
    info = media.probe(src)
    out = tmp_path / "out.mp4"
    plan = mux.MuxPlan(48_000, 2, "spa", "dub")
    with pytest.raises(RuntimeError), mux.Muxer(src, info, plan, out) as m:
        m.write(np.zeros((2, 4800), np.float32))
        raise RuntimeError("interrupted mid-mux")
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_output_equal_to_input_refused(tmp_path: Path) -> None:
    src = tmp_path / "a.mp4"
    shutil.copy(FIX / "speech.mp4", src)
    with pytest.raises(OutputError, match="is the input"):
        media.check_output(src, tmp_path / "." / "a.mp4")


def test_mux_command_is_a_pure_argument_list() -> None:
    info = media.probe(FIX / "speech.mkv")
    plan = mux.MuxPlan(48_000, 2, "deu", "German dub", "eng", Path("x.srt"), "deu")
    cmd = mux.mux_command("ffmpeg", Path("in.mkv"), info, plan, Path("out.mkv"))
    # output streams: 0 video (copied), 1 the dub, 2 the original, 3 the subtitles
    assert cmd[0] == "ffmpeg" and cmd[cmd.index("-c:0") + 1] == "copy"
    assert cmd[cmd.index("-c:2") + 1] == "copy" and cmd[cmd.index("-c:3") + 1] == "subrip"
    assert "language=deu" in cmd  # the original keeps its own tag (eng), copied by ffmpeg


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda d: d / "missing.mp4", "no such file"),
        (lambda d: d, "is a directory"),
        (lambda d: (d / "empty.mp4").write_bytes(b"") or d / "empty.mp4", "empty"),
        (lambda d: FIX / "notmedia.mp4", "not a readable media file"),
        (lambda d: FIX / "truncated.mp4", "truncated"),
    ],
    ids=["missing", "directory", "empty", "notmedia", "truncated"],
)
def test_bad_inputs_raise_one_line_errors(tmp_path: Path, make, match: str) -> None:
    path = make(tmp_path)
    with pytest.raises(InputError, match=match) as err:
        media.require_audio(media.probe(path))
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_video_without_audio_is_an_input_error() -> None:
    with pytest.raises(InputError, match="no audio stream"):
        media.require_audio(media.probe(FIX / "noaudio.mp4"))


def test_a_failing_ffmpeg_is_one_error_with_its_last_line(tmp_path: Path) -> None:
    from dubkit.errors import MediaToolError

    missing = tmp_path / "missing.mp4"
    cmd = [media.ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-i", str(missing),
           "-f", "null", "-"]  # fmt: skip
    want = r"missing\.mp4: ffmpeg could not go on \(.*No such file"
    with pytest.raises(MediaToolError, match=want) as e:
        media.run_ffmpeg(cmd, "ffmpeg could not go on", missing)
    assert e.value.path == missing


@pytest.mark.parametrize(("rate_in", "rate_out"), [(24_000, 48_000), (16_000, 8_000),
                                                   (22_050, 24_000), (24_000, 44_100)])  # fmt: skip
def test_resample_is_aligned_and_agrees_with_scipy(rate_in: int, rate_out: int) -> None:
    # FFmpeg's resampler (the one the decoder uses) against SciPy's polyphase one as reference:
    # the same length rule, no delay, and the same samples to within -60 dB on a tone
    # well inside both bands.
    from scipy.signal import resample_poly

    t = np.arange(rate_in) / rate_in
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    got = media.resample(tone, rate_in, rate_out)
    assert got.dtype == np.float32 and len(got) == -(-len(tone) * rate_out // rate_in)
    g = np.gcd(rate_in, rate_out)
    ref = resample_poly(tone, rate_out // g, rate_in // g)[: len(got)]
    inner = slice(rate_out // 50, -rate_out // 50)  # away from the edges' transients
    assert np.max(np.abs(got[inner] - ref[inner])) < 0.5e-3
    for n in (1, 2, 3, 101):  # short and odd lengths keep the same length rule
        assert len(media.resample(tone[:n], rate_in, rate_out)) == -(-n * rate_out // rate_in)
    assert media.resample(tone[:0], rate_in, rate_out).size == 0
