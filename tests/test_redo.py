"""Fix a dub (issue 28): `dubkit redo` of an edited manifest requests only what changed;
`--segments` takes the utterances from a subtitle file."""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path
from typing import Any

import av
import numpy as np
import pysrt
import pytest

import dubkit
from dubkit.emulator import Emulator
from dubkit.errors import ConfigError, InputError
from dubkit.mix import MixOptions
from dubkit.pipeline import Options, Result
from dubkit.pipeline.given import from_cues
from dubkit.pipeline.redo import plan_redo
from dubkit.types import Utterance
from tests.conftest import DUCK, FIX, KEY, run_cli, translator_for


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("redo-cache")


def _dub(
    emu: Emulator, folder: Path, cache: Path, name: str = "speech.wav", mix: MixOptions = DUCK
) -> Result:
    src = folder / name
    shutil.copy(FIX / name, src)
    return dubkit.dub(src, Options(target="es", cache_dir=cache, mix=mix), translator_for(emu))


def _samples(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        return np.concatenate([f.to_ndarray() for f in c.decode(c.streams.audio[0])], axis=-1)


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _save(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")


def test_redo_of_an_unedited_manifest_sends_nothing_and_gives_the_same_dub(
    emulator: Emulator, tmp_path: Path, cache: Path
) -> None:
    first = _dub(emulator, tmp_path, cache, mix=MixOptions())  # the default: separated again
    assert first.outputs.media is not None
    before = _samples(first.outputs.media)
    srt = first.outputs.subtitles[0].read_text(encoding="utf-8")
    emulator.reset_records()
    again = dubkit.redo(first.outputs.manifest, translator_for(emulator), cache_dir=cache)
    assert emulator.records == []
    assert np.array_equal(_samples(first.outputs.media), before)  # the same dubbed samples
    assert first.outputs.subtitles[0].read_text(encoding="utf-8") == srt
    assert [e.utterance for e in again.timeline] == [e.utterance for e in first.timeline]
    assert again.casting == first.casting


def test_redo_requests_only_the_changed_voice_and_span_and_lays_out_the_new_text(
    emulator: Emulator, tmp_path: Path, cache: Path
) -> None:
    first = _dub(emulator, tmp_path, cache)
    path = first.outputs.manifest
    data = _load(path)
    items = data["utterances"]
    assert len(items) >= 4
    old = items[0]["voice"]
    items[0]["voice"] = next(v for v in ("Ethan", "Cherry", "Nofish") if v != old)
    items[1]["end_ms"] -= 200
    items[3]["text"] = "Una frase corregida a mano."
    _save(path, data)
    emulator.reset_records()
    again = dubkit.redo(path, translator_for(emulator), cache_dir=cache)

    assert len([r for r in emulator.records if r.ok]) == 2  # exactly two requests
    sent = [k for k, r in enumerate(again.results) if not r.cached]
    assert sent == [0, 1]
    assert again.results[1].utterance.end_ms == items[1]["end_ms"]
    subs = pysrt.open(str(first.outputs.subtitles[0]))
    assert "Una frase corregida a mano." in " ".join(s.text.replace("\n", " ") for s in subs)
    written = _load(path)["utterances"]
    assert written[0]["voice"] == items[0]["voice"]  # the edit is kept for the next redo
    assert written[3]["text_edited"] is True and written[3]["cached"] is True
    assert not any(w.get("text_edited") for k, w in enumerate(written) if k != 3)
    # a redo of what the redo wrote sends nothing again
    emulator.reset_records()
    dubkit.redo(path, translator_for(emulator), cache_dir=cache)
    assert emulator.records == []


def test_redo_skip_remove_add_and_revoice_a_speaker(emulator: Emulator, tmp_path: Path) -> None:
    cache = tmp_path / "own-cache"  # no voice of another test's edits already in it
    first = _dub(emulator, tmp_path, cache)
    path = first.outputs.manifest
    data = _load(path)
    items = data["utterances"]
    skipped = items[1]
    skipped["skip"] = True
    removed = items.pop(2)
    items.append({"start_ms": removed["start_ms"], "end_ms": removed["start_ms"] + 1500})
    _save(path, data)
    emulator.reset_records()
    again = dubkit.redo(path, translator_for(emulator), cache_dir=cache)
    assert len([r for r in emulator.records if r.ok]) == 1  # only the added one
    assert again.skipped == (Utterance(skipped["start_ms"], skipped["end_ms"]),)
    spans = [(e.utterance.start_ms, e.utterance.end_ms) for e in again.timeline]
    assert (skipped["start_ms"], skipped["end_ms"]) not in spans
    for c in again.cues:  # no cue for the skipped utterance
        assert c.end_ms <= skipped["start_ms"] or c.start_ms >= skipped["end_ms"]
    written = _load(path)["utterances"]
    assert [w["status"] for w in written].count("skipped") == 1
    assert next(w for w in written if w["skip"])["start_ms"] == skipped["start_ms"]

    # the whole speaker re-voiced from the top-level map: every one of its utterances sent
    data = _load(path)
    speaker, voice = next(iter(data["voices"].items()))
    data["voices"][speaker] = next(v for v in ("Ethan", "Cherry", "Nofish") if v != voice)
    _save(path, data)
    mine = [w for w in data["utterances"] if w.get("speaker") == speaker and not w["skip"]]
    emulator.reset_records()
    again = dubkit.redo(path, translator_for(emulator), cache_dir=cache)
    assert len([r for r in emulator.records if r.ok]) == len(mine) > 0
    assert again.casting is not None
    assert again.casting.voice_of(speaker) == data["voices"][speaker]


@pytest.mark.parametrize(
    ("edit", "error", "field"),
    [
        (lambda d: d["utterances"][2].update(start_ms=d["utterances"][1]["end_ms"] - 50),
         InputError, "utterances[2].start_ms"),
        (lambda d: d["utterances"][-1].update(end_ms=d["duration_ms"] + 5000),
         InputError, "end_ms"),
        (lambda d: d["utterances"][1].update(voice="Bogus"), ConfigError, "utterances[1].voice"),
        (lambda d: d["utterances"][0].update(skip="yes"), InputError, "utterances[0].skip"),
        (lambda d: d["utterances"][0].update(text=5), InputError, "utterances[0].text"),
        (lambda d: d["utterances"][0].update(start_ms=1.5), InputError, "utterances[0].start_ms"),
        (lambda d: d["voices"].update(S1="Nobody"), ConfigError, "voices"),
    ],
)  # fmt: skip
def test_plan_refuses_a_manifest_edited_into_nonsense(
    emulator: Emulator, cache: Path, tmp_path_factory: pytest.TempPathFactory,
    edit: Any, error: type[Exception], field: str,
) -> None:  # fmt: skip
    folder = tmp_path_factory.mktemp("nonsense")
    path = _dub(emulator, folder, cache).outputs.manifest
    data = _load(path)
    edit(data)
    _save(path, data)
    with pytest.raises(error, match=field.replace("[", r"\[").replace("]", r"\]")):
        plan_redo(path, cache_dir=cache)


def test_cli_redo_refuses_nonsense_with_one_line_and_writes_nothing(
    emulator: Emulator, tmp_path: Path, cache: Path
) -> None:
    first = _dub(emulator, tmp_path, cache)
    path = first.outputs.manifest
    data = _load(path)
    env = {"DASHSCOPE_API_KEY": KEY}
    common = ["--base-url", emulator.base_url, "--cache-dir", str(cache)]

    def state() -> dict[str, tuple[int, int]]:
        return {p.name: (p.stat().st_mtime_ns, p.stat().st_size) for p in tmp_path.iterdir()}

    cases = [
        ("{ not json", 2, "bad JSON"),
        (json.dumps({**data, "utterances": [*data["utterances"], data["utterances"][0]]}), 2,
         f"utterances[{len(data['utterances'])}]"),
        (json.dumps({**data, "utterances": [{**data["utterances"][0], "voice": "Zed"}]}), 3,
         "utterances[0].voice"),
    ]  # fmt: skip
    for text, code, what in cases:
        path.write_text(text, encoding="utf-8")
        before = state()
        r = run_cli("redo", path, *common, env=env)
        assert r.returncode == code, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and what in lines[0] and str(path) in lines[0], r.stderr
        assert state() == before  # nothing written
    _save(path, data)
    r = run_cli("redo", path, *common, "--json", env=env)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["requested"] == 0 and out["tokens"] == 0
    assert out["from_cache"] == out["utterances"]


def _three_cues(path: Path, vtt: bool = False) -> list[tuple[int, int]]:
    spans = [(700, 2216), (5793, 9000), (14815, 16369)]
    if vtt:
        body = "\n\n".join(
            f"00:{a // 60000:02d}:{a // 1000 % 60:02d}.{a % 1000:03d} --> "
            f"00:{b // 60000:02d}:{b // 1000 % 60:02d}.{b % 1000:03d} align:start\nline {k}"
            for k, (a, b) in enumerate(spans)
        )
        path.write_text("WEBVTT\n\nNOTE made by hand\n\n" + body + "\n", encoding="utf-8")
    else:
        subs = pysrt.SubRipFile()
        for k, (a, b) in enumerate(spans):
            subs.append(
                pysrt.SubRipItem(
                    k + 1, pysrt.SubRipTime(milliseconds=a), pysrt.SubRipTime(milliseconds=b),
                    f"line {k}",
                )
            )  # fmt: skip
        subs.save(str(path), encoding="utf-8")
    return spans


def test_segments_from_a_three_cue_srt(emulator: Emulator, tmp_path: Path, cache: Path) -> None:
    srt = tmp_path / "mine.srt"
    spans = _three_cues(srt)
    src = tmp_path / "speech.mp4"
    shutil.copy(FIX / "speech.mp4", src)
    r = run_cli(
        "dub", src, "--to", "es", "--segments", srt, "--base-url", emulator.base_url,
        "--cache-dir", cache, "--json", env={"DASHSCOPE_API_KEY": KEY},
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    items = _load(tmp_path / "speech.es.dubkit.json")["utterances"]
    assert len(items) == 3
    for item, (a, b) in zip(items, spans, strict=True):
        assert abs(item["start_ms"] - a) <= 20 and abs(item["end_ms"] - b) <= 20
        assert item["speaker"] and item["voice"]  # speakers and voices still found


def test_segments_from_vtt_on_subs(emulator: Emulator, tmp_path: Path, cache: Path) -> None:
    vtt = tmp_path / "mine.vtt"
    spans = _three_cues(vtt, vtt=True)
    src = tmp_path / "speech.wav"
    shutil.copy(FIX / "speech.wav", src)
    given = from_cues(vtt, 30_000)
    assert [(g.utterance.start_ms, g.utterance.end_ms) for g in given.items] == spans
    result = dubkit.subtitle(
        src, Options(target="es", cache_dir=cache), translator_for(emulator), given=given
    )
    assert [(r.utterance.start_ms, r.utterance.end_ms) for r in result.results] == spans


def test_segments_refuses_overlapping_cues(tmp_path: Path) -> None:
    srt = tmp_path / "bad.srt"
    srt.write_text(
        "1\n00:00:01,000 --> 00:00:03,000\na\n\n2\n00:00:02,000 --> 00:00:04,000\nb\n",
        encoding="utf-8",
    )
    with pytest.raises(InputError, match="overlap"):
        from_cues(srt, 10_000)


@pytest.mark.slow
def test_redo_killed_and_resumed_gives_the_uninterrupted_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kill/resume guarantees of dub hold for redo: nothing half-written under a final
    name, complete outputs kept until replaced, no stored answer asked for again, and the
    same outputs as an uninterrupted redo."""
    import signal

    from dubkit.emulator import EmulatorConfig
    from tests.test_reliability import (
        Watcher,
        _cache_keys,
        _dub_track,
        _manifest_core,
        _part_files,
        _run,
    )

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    with Emulator(EmulatorConfig(api_key=KEY, latency_s=0.3)) as emu:

        def dubbed(folder: Path, cache: Path) -> list[str]:
            folder.mkdir()
            shutil.copy(FIX / "speech.mp4", folder / "talk.mp4")
            args = ["dub", str(folder / "talk.mp4"), "--to", "es", "--base-url", emu.base_url,
                    "--cache-dir", str(cache), "--quiet", "--min-pause", "300",
                    "--mix", "duck"]  # fmt: skip
            assert run_cli(*args, env={"DASHSCOPE_API_KEY": KEY}).returncode == 0
            manifest = folder / "talk.es.dubkit.json"
            data = _load(manifest)
            for speaker, voice in data["voices"].items():  # every utterance sent again
                data["voices"][speaker] = "Ethan" if voice != "Ethan" else "Cherry"
            _save(manifest, data)
            return ["redo", str(manifest), "--base-url", emu.base_url, "--cache-dir", str(cache),
                    "--quiet"]  # fmt: skip

        ref_dir, work = tmp_path / "ref", tmp_path / "work"
        ref_cache, cache = tmp_path / "ref-cache", tmp_path / "cache"
        ref_args = dubbed(ref_dir, ref_cache)
        ref = _run(ref_args, "reference", emu, ref_cache, Watcher(ref_dir, "talk"))
        assert ref.returncode == 0, ref.stderr
        args = dubbed(work, cache)
        n = len(_cache_keys(cache)) + len(ref.records)
        watcher = Watcher(work, "talk")
        edited = (work / "talk.es.dubkit.json").read_text()

        def entries(k: int) -> Any:
            return lambda _: len(_cache_keys(cache)) >= k

        def encoding() -> Any:  # this run's output, under its temporary name, being written
            old = set(_part_files(work))

            def fired(_: float) -> bool:
                for p in set(_part_files(work)) - old:
                    with contextlib.suppress(FileNotFoundError):
                        if p.suffix == ".mp4" and p.stat().st_size > 0:
                            return True
                return False

            return fired

        runs = []
        for label, trigger in [
            ("startup", lambda: lambda t: t >= 0.8), ("translating", lambda: entries(n - 6)),
            ("translating later", lambda: entries(n - 2)), ("muxing", encoding),
        ]:  # fmt: skip
            runs.append(_run(args, label, emu, cache, watcher, trigger(), signal.SIGKILL))
            assert runs[-1].returncode == -signal.SIGKILL, (label, runs[-1].stderr)
            # the edited manifest stays until a redo completes
            assert (work / "talk.es.dubkit.json").read_text() == edited, label
        runs.append(_run(args, "final", emu, cache, watcher))
        assert runs[-1].returncode == 0, runs[-1].stderr
        assert _part_files(work) == []

    assert (work / "talk.es.srt").read_text() == (ref_dir / "talk.es.srt").read_text()
    assert _manifest_core(work / "talk.es.dubkit.json") == _manifest_core(
        ref_dir / "talk.es.dubkit.json"
    )
    assert np.array_equal(_dub_track(work / "talk.es.mp4"), _dub_track(ref_dir / "talk.es.mp4"))
    asked = [x.audio_sha256 for r in runs for x in r.records if x.ok]
    assert len(asked) - len(set(asked)) <= 1  # paid twice only if killed between answer and store
    assert sum(1 for r in runs if r.records) >= 2  # the kills did cut translation
