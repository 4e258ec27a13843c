"""The mux's pure parts: output naming, track choice, the stream map and the ffmpeg command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dubkit import media
from dubkit.errors import InputError
from dubkit.mux import CONTAINERS, MuxPlan, mux_command, output_suffix, stream_map
from dubkit.types import MediaInfo, StreamInfo


def stream(index: int, kind: str, codec: str, position: int = 0, **kw: object) -> StreamInfo:
    return StreamInfo(index, kind, codec, position=position, **kw)  # type: ignore[arg-type]


#: An MKV as users have it: a French stereo track, the default English 5.1 track, forced
#: English SubRip, a PGS track, a font attachment and a data stream.
FILM = MediaInfo(Path("/films/film.mkv"), "matroska,webm", 3000, (
    stream(0, "video", "h264", dispositions=("default",)),
    stream(1, "audio", "opus", 0, language="fre", title="VF", layout="stereo", channels=2),
    stream(2, "audio", "pcm_s16le", 1, language="eng", layout="5.1", channels=6,
           dispositions=("default",)),
    stream(3, "subtitle", "subrip", 0, language="eng", dispositions=("default", "forced")),
    stream(4, "subtitle", "hdmv_pgs_subtitle", 1, language="eng"),
    stream(5, "attachment", ""),
    stream(6, "data", "bin_data"),
))  # fmt: skip
PLAN = MuxPlan(48_000, 6, "spa", "Spanish dub", "eng", Path("s.srt"), "spa", layout="5.1")


def test_output_suffix() -> None:
    assert output_suffix(".MP4") == (".MP4".lower(), None)
    for ext in (".mkv", ".mov", ".m4v", ".webm", ".ts", ".wav", ".flac"):
        assert output_suffix(ext) == (ext, None)
    assert output_suffix(".m2ts") == (".ts", None)
    for ext in (".avi", ".flv", ".wmv", ""):
        suffix, note = output_suffix(ext)
        assert suffix == ".mkv" and note is not None and "MKV" in note and "\n" not in note
    assert output_suffix(".avi", "mp4") == (".mp4", None)
    assert output_suffix(".mkv", "ts") == (".ts", None)
    with pytest.raises(InputError, match="unknown container 'avi'"):
        output_suffix(".mkv", "avi")


def test_select_audio_default_number_language() -> None:
    assert media.select_audio(FILM).index == 2  # the default track, not the first
    assert media.select_audio(FILM, "0").index == 1
    assert media.select_audio(FILM, 1).index == 2
    for lang in ("fre", "fra", "fr", "French"):
        assert media.select_audio(FILM, lang).index == 1
    assert media.select_audio(FILM, "en").index == 2
    with pytest.raises(InputError, match=r"no audio track '2' \(its audio tracks: 0 fre opus"):
        media.select_audio(FILM, "2")
    with pytest.raises(InputError, match="no audio track 'de'"):
        media.select_audio(FILM, "de")
    untagged = MediaInfo(Path("a.mp4"), "mp4", 1, (stream(0, "audio", "aac"),
                                                     stream(1, "audio", "aac", 1)))  # fmt: skip
    assert media.select_audio(untagged).index == 0  # no default flag: the first


def test_stream_map_mkv_keeps_everything_but_data() -> None:
    out = stream_map(FILM, PLAN, CONTAINERS[".mkv"])
    assert [o.source for o in out] == ["0:0", "1:a:0", "0:1", "0:2", "2:s:0", "0:3", "0:4", "0:5"]
    dub = out[1]
    assert dub.disposition == "default" and ("language", "spa") in dub.metadata
    assert dub.codec == ("aac", "-b", "576k")  # 96k a channel for 5.1
    assert out[2].codec == ("copy",) and out[2].disposition == "0"
    assert ("title", "VF") in out[2].metadata
    assert out[3].codec == ("copy",) and out[3].disposition == "0"  # default moved to the dub
    assert ("title", "Original") in out[3].metadata  # the dubbed track had no title
    assert out[4].disposition == "0" and ("language", "spa") in out[4].metadata
    assert out[5].disposition == "forced"  # flags kept, default dropped
    assert all(o.codec == ("copy",) for o in out[5:])


def test_stream_map_other_containers() -> None:
    mp4 = stream_map(FILM, PLAN, CONTAINERS[".mp4"])
    # PCM re-encoded for MP4 at its own channel count, SubRip to mov_text, PGS and the font dropped
    assert [o.source for o in mp4] == ["0:0", "1:a:0", "0:1", "0:2", "2:s:0", "0:3"]
    assert mp4[3].codec == ("aac", "-b", "576k") and mp4[5].codec == ("mov_text",)
    ts = stream_map(FILM, PLAN, CONTAINERS[".ts"])
    # TS: opus and PCM re-encoded to AAC; subtitles only as sidecars
    assert [o.source for o in ts] == ["0:0", "1:a:0", "0:1", "0:2"]
    assert ts[2].codec[0] == ts[3].codec[0] == "aac"
    webm = stream_map(FILM, PLAN, CONTAINERS[".webm"])
    assert webm[1].codec[0] == "libopus" and webm[2].codec == ("copy",)
    assert [o.codec for o in webm if o.kind == "subtitle"] == [("webvtt",), ("webvtt",)]


def test_no_original_drops_only_the_dubbed_track() -> None:
    plan = MuxPlan(48_000, 6, "spa", "dub", keep_original=False, track=2)
    out = stream_map(FILM, plan, CONTAINERS[".mkv"])
    assert [o.source for o in out if o.kind == "audio"] == ["1:a:0", "0:1"]


def test_mux_command_maps_by_output_index() -> None:
    cmd = mux_command("ffmpeg", Path("in.mkv"), FILM, PLAN, Path("out.mkv"))
    assert cmd[:2] == ["ffmpeg", "-hide_banner"]
    raw = cmd.index("pipe:0")
    assert cmd[raw - 7 : raw + 1] == [
        "-f", "f32le", "-ar", "48000", "-ch_layout", "5.1", "-i", "pipe:0",
    ]  # fmt: skip
    assert cmd.count("-map") == 8 and cmd.count("-i") == 3
    assert cmd[cmd.index("-c:0") + 1] == "copy"
    assert cmd[cmd.index("-c:1") + 1 : cmd.index("-c:1") + 4] == ["aac", "-b:1", "576k"]
    assert cmd[cmd.index("-disposition:1") + 1] == "default"
    assert cmd[cmd.index("-disposition:5") + 1] == "forced"
    assert cmd[-3:] == ["-f", "matroska", str(Path("out.mkv").resolve())]
    ts = mux_command("ffmpeg", Path("in.mkv"), FILM, PLAN, Path("out.ts"))
    assert "s.srt" not in " ".join(ts) and ts[-2] == "mpegts"


def test_audio_only_to_a_video_container() -> None:
    wav = MediaInfo(Path("a.wav"), "wav", 1000, (stream(0, "audio", "pcm_s16le", channels=1),))
    cmd = mux_command("ffmpeg", Path("a.wav"), wav, MuxPlan(48_000, 1, "spa", "dub"), Path("a.mkv"))
    assert cmd[cmd.index("-c:a") + 1] == "aac" and cmd[cmd.index("-ch_layout") + 1] == "mono"
    assert cmd.count("-map") == 1


def test_cover_art_kept_only_where_it_stays_cover_art() -> None:
    song = MediaInfo(Path("a.mp4"), "mp4", 1000, (
        stream(0, "video", "h264", dispositions=("default",)),
        stream(1, "audio", "aac", channels=2, dispositions=("default",)),
        stream(2, "video", "png", 1, dispositions=("attached_pic",)),
    ))  # fmt: skip
    plan = MuxPlan(48_000, 2, "spa", "dub")
    assert [o.source for o in stream_map(song, plan, CONTAINERS[".mov"])][-1] == "0:2"
    for ext in (".mkv", ".ts", ".webm"):
        assert "0:2" not in [o.source for o in stream_map(song, plan, CONTAINERS[ext])]


def test_mux_imports_on_its_own() -> None:
    """``dubkit.mux`` and ``dubkit.media`` import each other; either may come first."""
    for module in ("dubkit.mux", "dubkit.media"):
        done = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True,
                              text=True, check=False)  # fmt: skip
        assert done.returncode == 0, done.stderr


def test_a_streamed_dub_is_encoded_alone_then_copied_in() -> None:
    """The streamed half encodes only the dub (from stdin, as the container wants it); the
    final mux copies it with every other stream, encoding nothing."""
    from dubkit.mux import encode_command, encoded_name

    assert encoded_name(".webm") == "dub.webm" and encoded_name(".mkv") == "dub.m4a"
    enc = encode_command("ffmpeg", PLAN, ".mkv", Path("/w/dub.m4a"))
    assert enc[enc.index("-f") + 1] == "f32le" and "pipe:0" in enc
    assert enc[enc.index("-ch_layout") + 1] == "5.1"
    assert enc[enc.index("-c:a") + 1] == CONTAINERS[".mkv"].dub_encoder
    assert enc[-3:] == ["-f", "mp4", "/w/dub.m4a"]
    cmd = mux_command("ffmpeg", FILM.path, FILM, PLAN, Path("out.mkv"), dub=Path("/w/dub.m4a"))
    assert "pipe:0" not in cmd and cmd[cmd.index("/w/dub.m4a") - 1] == "-i"
    dub = cmd.index("1:a:0")
    assert cmd[dub + 1].startswith("-c:") and cmd[dub + 2] == "copy"
    plain = mux_command("ffmpeg", FILM.path, FILM, PLAN, Path("out.mkv"))
    assert plain[plain.index("1:a:0") + 2] == CONTAINERS[".mkv"].dub_encoder


def test_the_dub_is_encoded_at_its_sources_bitrate() -> None:
    """Never above the source track's rate, at least 64k a channel (32k for Opus), at most
    the container's usual rate; ``--audio-bitrate`` overrides."""
    import dataclasses

    def dub_codec(plan: MuxPlan, ext: str) -> tuple[str, ...]:
        return stream_map(FILM, plan, CONTAINERS[ext])[1].codec

    stereo = MuxPlan(48_000, 2, "spa", "dub", track=1)
    assert dub_codec(stereo, ".mp4") == ("aac", "-b", "192k")  # source's rate unknown
    at = dataclasses.replace(stereo, source_bit_rate=128_000)
    assert dub_codec(at, ".mp4") == ("aac", "-b", "128k")
    low = dataclasses.replace(stereo, source_bit_rate=48_606)
    assert dub_codec(low, ".mp4") == ("aac", "-b", "128k")  # the floor
    assert dub_codec(low, ".webm") == ("libopus", "-b", "64k")
    pcm = dataclasses.replace(stereo, source_bit_rate=1_536_000)
    assert dub_codec(pcm, ".mkv") == ("aac", "-b", "192k")  # the ceiling
    asked = dataclasses.replace(low, bitrate_kbps=320)
    assert dub_codec(asked, ".mp4") == ("aac", "-b", "320k")
    cmd = mux_command("ffmpeg", Path("in.mkv"), FILM, at, Path("out.mp4"))
    assert cmd[cmd.index("-c:1") + 1 : cmd.index("-c:1") + 4] == ["aac", "-b:1", "128k"]
