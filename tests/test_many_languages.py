"""Several languages in one run: one segmentation, one shared limiter and cache, one file.

Real parts throughout: the emulator over loopback HTTP through the real ``openai`` SDK, the
bundled ffmpeg muxing real files, PyAV reading them back.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import av
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dubkit import media
from dubkit.emulator import Emulator, EmulatorConfig
from dubkit.mux import CONTAINERS, DubTrack, MuxPlan, mux_command, stream_map
from dubkit.pipeline import Options, dub, plan_jobs
from dubkit.translate import ArrayAudio, deal, translate_in_order, translate_languages
from dubkit.translate.protocol import Job
from dubkit.types import Utterance
from tests.conftest import FIX, KEY, default_sigint, run_cli, translator_for
from tests.test_containers import packets


def talk_in(folder: Path) -> Path:
    """A copy of the fixture video as ``folder/talk.mp4``: the outputs go beside it."""
    return Path(shutil.copy(FIX / "speech.mp4", folder / "talk.mp4"))


def cli_env(emu: Emulator) -> dict[str, str]:
    return {"DASHSCOPE_API_KEY": KEY, "DASHSCOPE_BASE_URL": emu.base_url}


def audio_md5(path: Path, track: int) -> str:
    """The decoded samples of audio track ``track`` (among the audio tracks), hashed."""
    cmd = [media.ffmpeg_exe(), "-v", "error", "-i", str(path), "-map", f"0:a:{track}",
           "-f", "md5", "-"]  # fmt: skip
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()


def test_one_file_holds_a_dubbed_track_per_language(tmp_path: Path, emulator: Emulator) -> None:
    src = talk_in(tmp_path)
    emulator.reset_records()
    opts = Options(target="es", cache_dir=None)
    results = dub(src, opts, translator_for(emulator), targets=("es", "fr", "ja"))

    assert [r.target.code for r in results] == ["es", "fr", "ja"]
    out = tmp_path / "talk.dub.mp4"
    assert {r.outputs.media for r in results} == {out}
    assert {r.outputs.manifest for r in results} == {tmp_path / "talk.dub.dubkit.json"}
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted([
        "talk.mp4", "talk.dub.mp4", "talk.dub.dubkit.json",
        *(f"talk.{lang}.{ext}" for lang in ("es", "fr", "ja") for ext in ("srt", "review.html")),
    ])  # fmt: skip

    # one segmentation: every language asked for the same utterances, once each
    n = len(results[0].timeline)
    assert all(len(r.timeline) == n and not r.failed for r in results)
    asked = [(rec.target_lang, rec.audio_sha256) for rec in emulator.records]
    assert len(asked) == 3 * n and len(set(asked)) == 3 * n
    assert {lang for lang, _ in asked} == {"es", "fr", "ja"}

    info = media.probe(out)
    audio = [s for s in info.streams if s.kind == "audio"]
    assert [s.language for s in audio] == ["spa", "fra", "jpn", None]
    assert [s.title for s in audio] == [
        "Spanish dub (dubkit cloud)", "French dub (dubkit cloud)", "Japanese dub (dubkit cloud)",
        "Original",
    ]  # fmt: skip
    assert ["default" in s.dispositions for s in audio] == [True, False, False, False]
    subs = [s for s in info.streams if s.kind == "subtitle"]
    assert [(s.language, s.codec) for s in subs] == [
        ("spa", "mov_text"), ("fra", "mov_text"), ("jpn", "mov_text")
    ]
    assert packets(out) == packets(src)  # the video copied, never re-encoded
    original = media.probe(src)
    assert audio_md5(out, 3) == audio_md5(src, 0)  # the original kept as it was, last
    assert all(abs(s.duration_ms - original.duration_ms) < 100 for s in audio)

    data = json.loads((tmp_path / "talk.dub.dubkit.json").read_text())
    assert data["targets"] == ["es", "fr", "ja"] and data["envelope"]["peaks"]
    for k, section in enumerate(data["languages"]):
        assert section["target"] == results[k].target.code
        assert section["options"]["dub_track"] == k and section["options"]["original_track"] == 3
        assert len(section["utterances"]) == n and "envelope" not in section
    page = (tmp_path / "talk.fr.review.html").read_text()
    assert '"dub_track":1' in page and '"target":"fr"' in page

    for lang in ("es", "fr", "ja"):  # `dubkit review` rebuilds every language's page
        (tmp_path / f"talk.{lang}.review.html").unlink()
    r = run_cli("review", tmp_path / "talk.dub.dubkit.json", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["review"] == [
        str(tmp_path / f"talk.{lang}.review.html") for lang in ("es", "fr", "ja")
    ]
    again = (tmp_path / "talk.fr.review.html").read_text()
    assert '"dub_track":1' in again and '"target":"fr"' in again and '"peaks":[' in again


def test_each_track_is_the_one_run_of_its_language_alone(
    tmp_path: Path, emulator: Emulator
) -> None:
    """The languages' mixes share one decode of the original and advance in step; each track
    is still bit for bit what a run into that language alone writes."""
    src = talk_in(tmp_path)
    engine = translator_for(emulator)
    dub(src, Options(target="es"), engine, targets=("es", "de"))
    alone = dub(src, Options(target="de"), engine)
    assert alone.outputs.media == tmp_path / "talk.de.mp4"
    assert audio_md5(tmp_path / "talk.dub.mp4", 1) == audio_md5(alone.outputs.media, 0)
    assert (tmp_path / "talk.de.srt").read_bytes() == alone.outputs.subtitles[0].read_bytes()


def test_an_audio_input_gets_one_file_per_language(tmp_path: Path, emulator: Emulator) -> None:
    results = dub(
        FIX / "speech.wav", Options(target="es", out_dir=tmp_path, review=False),
        translator_for(emulator), targets=["fr", "es"],
    )  # fmt: skip
    assert [r.outputs.media for r in results] == [
        tmp_path / "speech.fr.wav", tmp_path / "speech.es.wav"
    ]
    for r in results:
        info = media.probe(r.outputs.media)
        assert [s.kind for s in info.streams] == ["audio"]
    assert audio_md5(tmp_path / "speech.fr.wav", 0) != audio_md5(tmp_path / "speech.es.wav", 0)
    data = json.loads((tmp_path / "speech.dub.dubkit.json").read_text())
    assert [s["target"] for s in data["languages"]] == ["fr", "es"]
    assert all(s["options"]["dub_track"] == 0 for s in data["languages"])


def test_one_language_down_leaves_the_others_whole_and_a_rerun_asks_only_for_it(
    tmp_path: Path,
) -> None:
    src = talk_in(tmp_path)
    cache = tmp_path / "cache"
    args = ("dub", src, "--to", "es,fr", "--cache-dir", cache, "--retries", "0", "--json")
    with Emulator(EmulatorConfig(api_key=KEY, down_targets=("fr",))) as down:
        r = run_cli(*args, env=cli_env(down))
        assert r.returncode == 4, r.stderr
        s = json.loads(r.stdout)
        es, fr = s["languages"]
        assert es["failed"] == 0 and fr["failed"] == fr["utterances"] > 0
        assert s["failed"] == fr["failed"] and s["status"] == 4
        assert (tmp_path / "talk.dub.mp4").exists()  # Spanish complete, French kept original
        asked = len(down.records)
        port = urllib.parse.urlsplit(down.base_url).port
    # the same service (the cache knows answers by endpoint), its French back up
    with Emulator(EmulatorConfig(api_key=KEY, port=port or 0)) as up:
        r = run_cli(*args, env=cli_env(up))
        assert r.returncode == 0, r.stderr
        assert [rec.target_lang for rec in up.records] == ["fr"] * fr["utterances"]
        assert asked == es["utterances"] + fr["utterances"]
    s = json.loads(r.stdout)
    assert [x["failed"] for x in s["languages"]] == [0, 0]
    audio = [x for x in media.probe(tmp_path / "talk.dub.mp4").streams if x.kind == "audio"]
    assert [x.language for x in audio] == ["spa", "fra", None]


def test_failures_are_listed_per_language(tmp_path: Path) -> None:
    src = tmp_path / "talk.wav"
    shutil.copy(FIX / "speech.wav", src)
    with Emulator(EmulatorConfig(api_key=KEY, down_targets=("de",))) as down:
        r = run_cli("dub", src, "--to", "es,de", "--no-cache", "--retries", "0",
                    env=cli_env(down))  # fmt: skip
    assert r.returncode == 4, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith(f"{src}: 2 languages, ")
    de = next(i for i, x in enumerate(lines) if x.strip().startswith("de: "))
    assert " 0 failed" not in lines[de] and "kept in the original language" in r.stdout
    es = next(x for x in lines if x.strip().startswith("es: "))
    assert " 0 failed" in es
    assert (tmp_path / "talk.es.wav").exists() and (tmp_path / "talk.de.wav").exists()


def test_a_text_only_language_is_refused_before_any_request(
    tmp_path: Path, emulator: Emulator
) -> None:
    emulator.reset_records()
    src = talk_in(tmp_path)
    r = run_cli("dub", src, "--to", "es,th", env=cli_env(emulator))
    assert r.returncode == 3 and "Thai (th) has text output only" in r.stderr
    assert emulator.records == [] and sorted(p.name for p in tmp_path.iterdir()) == ["talk.mp4"]
    r = run_cli("subs", src, "--to", "es,th", "--json", env=cli_env(emulator))
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["targets"] == ["es", "th"] and [x["cues"] > 0 for x in s["languages"]] == [True] * 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "talk.es.srt", "talk.mp4", "talk.subs.dubkit.json", "talk.th.srt"
    ]


def test_a_language_given_twice_is_refused() -> None:
    with pytest.raises(Exception, match="given more than once"):
        plan_jobs(Options(target="es"), ["es", "Spanish"], dubbing=False)
    r = run_cli("dub", FIX / "speech.mp4", "--to", "es,spa", "--dry-run")
    assert r.returncode == 3 and "es given more than once" in r.stderr


def test_dry_run_estimates_every_language_and_the_quota_time() -> None:
    one = json.loads(run_cli("dub", FIX / "speech.mp4", "--to", "es", "--dry-run", "--json").stdout)
    r = run_cli("dub", FIX / "speech.mp4", "--to", "es,fr,ja", "--dry-run", "--json",
                "--rpm", "2")  # fmt: skip
    three = json.loads(r.stdout)
    assert three["requests"] == 3 * one["requests"]
    assert three["estimated_input_tokens"] == 3 * one["estimated_input_tokens"]
    assert three["quota_minutes"] == round(three["requests"] / 2, 2)
    text = run_cli("dub", FIX / "speech.mp4", "--to", "es,fr,ja", "--dry-run").stdout
    assert f"{three['requests']} requests into es, fr, ja" in text
    assert "quota (100 requests, 100000 tokens a minute) needs at least" in text


def test_the_languages_stream_in_step_through_one_loop(emulator: Emulator) -> None:
    """Requests go utterance by utterance, every language at once; each language's stream
    equals what translating it alone gives."""
    audio = ArrayAudio(np.concatenate(list(media.iter_pcm16(FIX / "speech.wav", 16_000))))
    utts = [Utterance(0, 1500), Utterance(2000, 3500), Utterance(4000, 5200)]
    jobs = [[Job("es", voice="Cherry")] * 3, [Job("fr", voice="Ethan")] * 3]
    emulator.reset_records()
    shared, lanes = translate_languages(
        translator_for(emulator), audio, utts, jobs, concurrency=1
    )
    with contextlib.closing(shared):
        got = [[r for rs in lane for r in rs] for lane in lanes]
    assert [rec.target_lang for rec in emulator.records] == ["es", "fr"] * 3
    for lang, results in zip(("es", "fr"), got, strict=True):
        job = jobs[0][0] if lang == "es" else jobs[1][0]
        alone = [r for rs in translate_in_order(translator_for(emulator), audio, utts, job)
                 for r in rs]  # fmt: skip
        assert [r.translation for r in results] == [r.translation for r in alone]


def test_stream_map_puts_every_dub_first_and_the_original_last() -> None:
    info = media.probe(FIX / "speech.mp4")
    plan = MuxPlan(
        48_000, 2, "spa", "Spanish dub", subtitles=Path("es.srt"), subtitle_language="spa",
        more=(DubTrack("fra", "French dub", Path("fr.srt"), "fra"), DubTrack("jpn", "Japanese")),
    )  # fmt: skip
    mkv = stream_map(info, plan, CONTAINERS[".mkv"], encoded=True)
    assert [o.source for o in mkv] == ["0:0", "1:a:0", "2:a:0", "3:a:0", "0:1", "4:s:0", "5:s:0"]
    assert [o.disposition for o in mkv[1:4]] == ["default", "0", "0"]
    assert dict(mkv[5].metadata)["language"] == "spa" and dict(mkv[6].metadata)["language"] == "fra"
    cmd = mux_command("ffmpeg", info.path, info, plan, Path("o.mkv"),
                      dub=[Path("a.m4a"), Path("b.m4a"), Path("c.m4a")])  # fmt: skip
    inputs = [cmd[i + 1] for i, a in enumerate(cmd) if a == "-i"]
    assert [Path(x).name for x in inputs] == [
        "speech.mp4", "a.m4a", "b.m4a", "c.m4a", "es.srt", "fr.srt"
    ]
    with pytest.raises(ValueError, match="2 encoded dubs for 3"):
        mux_command("ffmpeg", info.path, info, plan, Path("o.mkv"), dub=[Path("a"), Path("b")])
    with av.open(str(FIX / "speech.mp4")):  # the fixture is what the map assumes
        assert [s.kind for s in info.streams] == ["video", "audio"]


@pytest.mark.parametrize("ext", [".mkv", ".mov"])
def test_mkv_and_mov_hold_the_tracks_too(tmp_path: Path, emulator: Emulator, ext: str) -> None:
    src = tmp_path / f"talk{ext}"
    subprocess.run(
        [media.ffmpeg_exe(), "-v", "error", "-i", str(FIX / "speech.mp4"), "-c", "copy", str(src)],
        check=True,
    )
    dub(src, Options(target="es", review=False), translator_for(emulator), targets=("es", "it"))
    out = tmp_path / f"talk.dub{ext}"
    streams = media.probe(out).streams
    assert [(s.kind, s.language) for s in streams if s.kind == "audio"] == [
        ("audio", "spa"), ("audio", "ita"), ("audio", None)
    ]
    subs = [s.language for s in streams if s.kind == "subtitle"]
    assert subs == ["spa", "ita"]
    assert packets(out) == packets(src)


@given(
    k=st.integers(1, 4),
    n=st.integers(0, 12),
    order=st.lists(st.integers(0, 3), max_size=80),
)
def test_deal_gives_each_lane_its_items_in_order_whatever_the_lanes_are_taken_in(
    k: int, n: int, order: list[int]
) -> None:
    lanes = deal(iter(range(k * n)), k)
    got: list[list[int]] = [[] for _ in range(k)]
    for j in [x % k for x in order] + [j for j in range(k) for _ in range(n)]:
        item = next(lanes[j], None)
        if item is not None:
            got[j].append(item)
    assert got == [list(range(j, k * n, k)) for j in range(k)]


def test_ctrl_c_leaves_nothing_and_the_rerun_asks_only_for_what_is_missing(
    tmp_path: Path,
) -> None:
    src = talk_in(tmp_path)
    cache = tmp_path / "cache"
    argv = [sys.executable, "-m", "dubkit", "dub", str(src), "--to", "es,fr", "--cache-dir",
            str(cache), "--concurrency", "2", "--quiet"]  # fmt: skip
    with Emulator(EmulatorConfig(api_key=KEY, latency_s=0.3)) as emu:
        env = {**os.environ, **cli_env(emu)}
        proc = subprocess.Popen(
            argv, env=env, stderr=subprocess.PIPE, start_new_session=True,
            preexec_fn=default_sigint,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while sum(r.ok for r in emu.records) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C reaches the whole group
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "talk.mp4"]
        kept = len(list(cache.rglob("*.dkc")))
        assert kept > 0  # (an answer still streaming at the Ctrl-C is asked again)
        first = len(emu.records)
        r = run_cli("dub", src, "--to", "es,fr", "--cache-dir", cache, "--json",
                    env=cli_env(emu))  # fmt: skip
        assert r.returncode == 0, r.stderr
        s = json.loads(r.stdout)
        asked = len(emu.records) - first
    n = s["utterances"]
    assert asked == 2 * n - kept  # every answer kept is not asked for again
    assert [x["failed"] for x in s["languages"]] == [0, 0]


def test_subtitles_only_languages_ride_along_in_the_same_file(
    tmp_path: Path, emulator: Emulator
) -> None:
    """`--subs-only th`: Thai (text output only) is translated as text in the same run and
    gets its subtitle track and sidecar beside the Spanish dub, and no audio track."""
    src = talk_in(tmp_path)
    emulator.reset_records()
    es, th = dub(
        src, Options(target="es"), translator_for(emulator), targets=["es"], subtitle_only=["th"]
    )
    n = len(es.timeline)
    asked = {lang: [r.modalities for r in emulator.records if r.target_lang == lang]
             for lang in ("es", "th")}  # fmt: skip
    assert asked["th"] == [("text",)] * n and all("audio" in m for m in asked["es"])
    assert th.casting is None and all(e.placement is None for e in th.timeline) and th.cues
    out = tmp_path / "talk.dub.mp4"
    streams = media.probe(out).streams
    assert [s.language for s in streams if s.kind == "audio"] == ["spa", None]
    assert [s.language for s in streams if s.kind == "subtitle"] == ["spa", "tha"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "talk.dub.dubkit.json", "talk.dub.mp4", "talk.es.review.html", "talk.es.srt",
        "talk.mp4", "talk.th.srt",
    ]  # fmt: skip
    data = json.loads((tmp_path / "talk.dub.dubkit.json").read_text())
    assert [s["options"]["original_track"] for s in data["languages"]] == [1, 1]

    r = run_cli("dub", src, "--to", "es", "--subs-only", "th", "--json", "--no-review",
                env=cli_env(emulator))  # fmt: skip
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert [x["subtitles_only"] for x in s["languages"]] == [False, True]
    r = run_cli("dub", src, "--to", "es,th", "--dry-run")
    assert r.returncode == 3 and "--subs-only th" in r.stderr
