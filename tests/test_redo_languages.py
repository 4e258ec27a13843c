"""Redo of a dub in several languages: one talk.dub.mp4 written again whole, each language
with its own edits (from its page's saved manifest), on one shared timeline."""

from __future__ import annotations

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
from dubkit.errors import InputError
from dubkit.pipeline import Options, Result
from dubkit.pipeline.redo import plan_redo
from tests.conftest import DUCK, FIX, KEY, run_cli, translator_for


def _dub(emu: Emulator, folder: Path, cache: Path) -> tuple[Result, ...]:
    src = folder / "talk.mp4"
    shutil.copy(FIX / "speech.mp4", src)
    engine = translator_for(emu)
    opts = Options(target="es", cache_dir=cache, mix=DUCK)
    return dubkit.dub(src, opts, engine, targets=["es", "fr"])


def _dubbed(emu: Emulator, folder: Path) -> tuple[Path, dict[str, Path]]:
    """A fresh dub in es and fr: its cache, and its languages' page-saved manifests."""
    cache = folder / "cache"
    _dub(emu, folder, cache)
    return cache, _pages(folder)


def _pages(folder: Path) -> dict[str, Path]:
    """Each language's manifest as its review page saves it (its section, the waveform)."""
    joint = _load(folder / "talk.dub.dubkit.json")
    out = {}
    for section in joint["languages"]:
        path = folder / "downloads" / f"talk.{section['target']}.dubkit.json"
        path.parent.mkdir(exist_ok=True)
        _save(path, {**section, "envelope": joint["envelope"]})
        out[section["target"]] = path
    return out


def _tracks(path: Path) -> dict[str, np.ndarray]:
    """Each audio track's samples, by its title's first word (Spanish, French, ...)."""
    with av.open(str(path)) as c:
        title = {
            s.index: str(s.metadata.get("handler_name", "?")).split()[0] for s in c.streams.audio
        }
        out: dict[str, list[np.ndarray]] = {t: [] for t in title.values()}
        for packet in c.demux(*c.streams.audio):
            out[title[packet.stream.index]] += [f.to_ndarray() for f in packet.decode()]
    return {k: np.concatenate(v, axis=-1) for k, v in out.items() if v}


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _save(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")


def _texts(srt: Path) -> str:
    return " ".join(s.text.replace("\n", " ") for s in pysrt.open(str(srt)))


def _sent(emu: Emulator) -> int:
    return len([r for r in emu.records if r.ok])


def test_redo_of_two_languages_pages_rewrites_the_one_dub(
    emulator: Emulator, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    es, fr = _dub(emulator, tmp_path, cache)
    media = tmp_path / "talk.dub.mp4"
    assert es.outputs.media == fr.outputs.media == media
    before = media.read_bytes()
    pages = _pages(tmp_path)
    common = ["--base-url", emulator.base_url, "--cache-dir", str(cache)]
    env = {"DASHSCOPE_API_KEY": KEY}

    # unedited: nothing sent, the same file byte for byte, no file of its own per language
    emulator.reset_records()
    r = run_cli("redo", pages["fr"], *common, env=env)
    assert r.returncode == 0, r.stderr
    assert _sent(emulator) == 0
    assert media.read_bytes() == before
    assert not (tmp_path / "talk.fr.mp4").exists()
    tracks = _tracks(media)

    # French: one voice changed, one utterance skipped; Spanish: one text corrected
    fdata, edata = _load(pages["fr"]), _load(pages["es"])
    old = fdata["utterances"][0]["voice"]
    fdata["utterances"][0]["voice"] = next(v for v in ("Ethan", "Cherry") if v != old)
    skipped = fdata["utterances"][2]
    skipped["skip"] = True
    edata["utterances"][3]["text"] = "Una frase corregida a mano."
    _save(pages["fr"], fdata)
    _save(pages["es"], edata)
    emulator.reset_records()
    r = run_cli("redo", pages["es"], pages["fr"], *common, "--json", env=env)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["targets"] == ["es", "fr"] and out["media"] == str(media)
    assert [lang["requested"] for lang in out["languages"]] == [0, 1]
    assert [lang["skipped"] for lang in out["languages"]] == [0, 1]
    assert _sent(emulator) == 1  # the French voice; the skip sends nothing
    assert emulator.records[0].target_lang == "fr"

    again = _tracks(media)
    assert np.array_equal(again["Spanish"], tracks["Spanish"])  # Spanish dub untouched
    assert not np.array_equal(again["French"], tracks["French"])
    assert "Una frase corregida a mano." in _texts(tmp_path / "talk.es.srt")
    span = (skipped["start_ms"], skipped["end_ms"])
    for sub in pysrt.open(str(tmp_path / "talk.fr.srt")):  # no French cue there
        assert sub.end.ordinal <= span[0] or sub.start.ordinal >= span[1]
    assert any(  # Spanish still has its cue there
        s.start.ordinal < span[1] and s.end.ordinal > span[0]
        for s in pysrt.open(str(tmp_path / "talk.es.srt"))
    )

    joint = _load(tmp_path / "talk.dub.dubkit.json")
    esec, fsec = joint["languages"]
    assert [u["status"] for u in fsec["utterances"]].count("skipped") == 1
    assert "skipped" not in [u["status"] for u in esec["utterances"]]
    assert fsec["utterances"][0]["voice"] == fdata["utterances"][0]["voice"]
    assert esec["utterances"][0]["voice"] == old  # Spanish keeps its voice
    assert esec["utterances"][3]["text_edited"] is True

    # the dub's own manifest, redone as written: nothing sent, the same file
    kept = media.read_bytes()
    emulator.reset_records()
    results = dubkit.redo(tmp_path / "talk.dub.dubkit.json", translator_for(emulator),
                          cache_dir=cache)  # fmt: skip
    assert isinstance(results, tuple) and len(results) == 2
    assert _sent(emulator) == 0 and media.read_bytes() == kept


def test_a_span_edited_in_one_language_is_requested_in_both(
    emulator: Emulator, tmp_path: Path
) -> None:
    cache, pages = _dubbed(emulator, tmp_path)
    fdata = _load(pages["fr"])
    u = fdata["utterances"][1]
    at = (u["start_ms"] + u["end_ms"]) // 2
    fdata["utterances"][1:2] = [{**u, "end_ms": at}, {**u, "start_ms": at, "voice": "Cherry"}]
    _save(pages["fr"], fdata)
    emulator.reset_records()
    es, fr = dubkit.redo(pages["fr"], translator_for(emulator), cache_dir=cache)  # type: ignore[misc]
    # both parts in both languages; the second part's voice is French's edit alone
    sent = sorted((r.target_lang, r.voice) for r in emulator.records if r.ok)
    assert len(sent) == 4 and [t for t, _ in sent] == ["es", "es", "fr", "fr"]
    assert ("fr", "Cherry") in sent and ("es", "Cherry") not in sent
    for result in (es, fr):
        spans = [(e.utterance.start_ms, e.utterance.end_ms) for e in result.timeline]
        assert (u["start_ms"], at) in spans and (at, u["end_ms"]) in spans
    joint = _load(tmp_path / "talk.dub.dubkit.json")
    assert [len(s["utterances"]) for s in joint["languages"]] == [len(fdata["utterances"])] * 2


def test_an_utterance_skipped_in_one_language_is_not_requested_in_it(
    emulator: Emulator, tmp_path: Path
) -> None:
    """A new span (so nothing in the cache) skipped in Spanish alone: sent in French only."""
    cache, pages = _dubbed(emulator, tmp_path)
    for lang, data in (("es", _load(pages["es"])), ("fr", _load(pages["fr"]))):
        u = data["utterances"][1]
        at = (u["start_ms"] + u["end_ms"]) // 2
        data["utterances"][1:2] = [{**u, "end_ms": at}, {**u, "start_ms": at, "skip": lang == "es"}]
        _save(pages[lang], data)
    emulator.reset_records()
    es, fr = dubkit.redo([pages["es"], pages["fr"]], translator_for(emulator), cache_dir=cache)  # type: ignore[misc]
    sent = sorted(r.target_lang or "" for r in emulator.records if r.ok)
    assert sent == ["es", "fr", "fr"]
    assert len(fr.timeline) == len(es.timeline) + 1
    joint = _load(tmp_path / "talk.dub.dubkit.json")
    statuses = [[u["status"] for u in s["utterances"]] for s in joint["languages"]]
    assert statuses[0].count("skipped") == 1 and "skipped" not in statuses[1]


def test_a_redo_of_several_languages_refuses_what_it_cannot_do(
    emulator: Emulator, tmp_path: Path
) -> None:
    cache, pages = _dubbed(emulator, tmp_path)
    edata, fdata = _load(pages["es"]), _load(pages["fr"])
    fdata["utterances"][1]["end_ms"] -= 200  # a span only French has
    _save(pages["fr"], fdata)
    with pytest.raises(InputError, match="share one timeline") as e:
        plan_redo([pages["es"], pages["fr"]])
    assert e.value.path == pages["fr"]
    joint = tmp_path / "talk.dub.dubkit.json"
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    common = ["--base-url", emulator.base_url, "--cache-dir", str(cache)]
    r = run_cli("redo", pages["es"], pages["fr"], *common, env={"DASHSCOPE_API_KEY": KEY})
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert str(pages["fr"]) in lines[0] and "share one timeline" in lines[0]
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == before
    with pytest.raises(InputError, match="given twice"):
        plan_redo([pages["es"], pages["es"]])
    other = tmp_path / "other"
    other.mkdir()
    (one,) = [dubkit.dub(shutil.copy(FIX / "speech.wav", other / "a.wav"), Options(target="es"),
                         translator_for(emulator))]  # fmt: skip
    with pytest.raises(InputError, match="not all of one dub"):
        plan_redo([pages["es"], one.outputs.manifest])
    joint.unlink()
    with pytest.raises(InputError, match=r"talk\.dub\.dubkit\.json, which is missing"):
        plan_redo(pages["es"])
    assert _load(pages["es"]) == edata  # nothing written


def test_the_cli_redoes_the_manifests_of_one_dub_together() -> None:
    from dubkit.cli.redo import _by_dub

    a, b, c, d = (Path(n) for n in ("talk.es.dubkit.json", "x.es.dubkit.json",
                                    "talk.fr.dubkit.json", "talk.dub.dubkit.json"))  # fmt: skip
    joint = {a: d, c: d, d: d}
    groups = _by_dub([a, b, c, d], joint.get)
    assert groups == {a: [a, c, d], b: [b]}
