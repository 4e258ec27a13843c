"""The review page (issue 16): its data, its escaping, its size, and its DOM in a real browser."""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import dubkit
from dubkit.emulator import Emulator
from dubkit.pipeline import Options, Result
from dubkit.pipeline.manifest import cues_by_utterance
from dubkit.review import MARKER, review_html, review_path, write_review
from dubkit.review.envelope import EnvelopeBuilder
from dubkit.types import Cue
from tests.conftest import DUCK, FIX, run_cli, translator_for
from tests.review_fixtures import HOSTILE, dump_dom, find_chromium, synthetic_manifest

SPED = 1.15


# ---------------------------------------------------------------- pure parts


@pytest.mark.parametrize("sizes", [[16_000], [1, 15_999], [4000] * 4, [7, 333, 15_000, 660]])
def test_envelope_same_for_any_chunking(sizes: list[int]) -> None:
    rng = np.random.default_rng(1)
    audio = (rng.standard_normal(16_000) * 3000).astype(np.int16)
    audio[8000:] //= 10  # the second half quieter
    whole = EnvelopeBuilder(1000, 16_000, bins=50)
    whole.feed(audio)
    parts = EnvelopeBuilder(1000, 16_000, bins=50)
    at = 0
    for n in sizes:
        parts.feed(audio[at : at + n])
        at += n
    env = parts.finish()
    assert env == whole.finish()
    assert env.bin_ms == 20 and len(env.peaks) == 50
    first, second = max(env.peaks[:25]), max(env.peaks[25:])
    assert first > 3 * second > 0
    peak = int(np.abs(audio[:320].astype(np.int32)).max())
    assert env.peaks[0] == -(-peak * 255 // 32768)


def test_envelope_bins_bounded_and_grows_past_a_short_probe() -> None:
    b = EnvelopeBuilder(7_200_000, 16_000)  # 2 hours: at most 2000 bins, each 3.6 s
    assert b.bin_ms == 3600
    short = EnvelopeBuilder(100, 16_000, bins=10)  # the audio runs past the probed length
    short.feed(np.full(3200, 1000, np.int16))
    assert short.finish().peaks == (8,) * 20


def test_cues_by_utterance_follows_the_text() -> None:
    from dubkit.subtitles import SubtitleSource, layout
    from dubkit.types import Utterance

    utts = [Utterance(0, 1900), Utterance(2000, 2500), Utterance(3000, 3500), Utterance(4000, 4100)]
    texts = ["Hello there, my friend.", "", "Hi.", ""]
    cues = layout([SubtitleSource(u, t) for u, t in zip(utts, texts, strict=True)], "en", 5000)
    got = cues_by_utterance(utts, cues)
    assert [" ".join(c.text for c in mine) for mine in got] == [
        "Hello there, my friend.", "", "Hi.", ""
    ]
    assert got[1] == got[3] == [] and len(cues) == sum(len(m) for m in got)


def test_review_path() -> None:
    assert review_path(Path("out/talk.es.dubkit.json")) == Path("out/talk.es.review.html")
    assert review_path(Path("x/run.json")) == Path("x/run.review.html")


def _data(page: str) -> dict[str, Any]:
    m = re.search(r'<script type="application/json" id="data">(.*?)</script>', page, re.S)
    assert m is not None
    return json.loads(m.group(1))  # type: ignore[no-any-return]


def test_page_escapes_text_and_is_self_contained() -> None:
    page = review_html(synthetic_manifest(n=20))
    assert MARKER not in page
    assert HOSTILE not in page and "<img" not in page and "<b>" not in page
    assert page.count("</script>") == 2  # the data block's and the script's own, nothing else
    data = _data(page)
    assert data["utterances"][1]["text"] == HOSTILE  # the data survives, as data
    # nothing loaded from elsewhere: no network URL, no external script, style or font
    assert not re.search(r"https?:|//[a-z]", page.replace("</", ""))
    markup = page.split('<script type="application/json"')[0] + page.split("</script>")[-2]
    assert not re.search(r"<(link|iframe|img|object|embed)\b|<\w+[^>]*\s(src|href)=", markup)
    assert "@import" not in markup and "url(" not in markup
    assert "innerHTML" not in page and "insertAdjacentHTML" not in page


def test_page_for_two_hours_and_1500_utterances_is_under_5_mb() -> None:
    page = review_html(synthetic_manifest(n=1500, duration_ms=7_200_000))
    size = len(page.encode("utf-8"))
    assert 100_000 < size < 5_000_000
    assert len(_data(page)["utterances"]) == 1500


def test_page_urls_are_relative_and_quoted() -> None:
    data = _data(review_html(synthetic_manifest(n=3)))
    assert data["urls"] == {"media": "two-hour%20talk.es.mp4", "input": "two-hour%20talk.mp4"}


# ---------------------------------------------------------------- a real dub


@pytest.fixture(scope="module")
def dubbed(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Result]:
    folder = tmp_path_factory.mktemp("review")
    src = folder / "talk.mp4"
    shutil.copy(FIX / "speech.mp4", src)
    result = dubkit.dub(src, Options(target="es", mix=DUCK), translator_for(emulator))
    return folder, result


def test_dub_writes_the_page_and_the_data_it_needs(dubbed: tuple[Path, Result]) -> None:
    folder, result = dubbed
    page = folder / "talk.es.review.html"
    assert result.outputs.review == page and page.is_file()
    manifest = json.loads((folder / "talk.es.dubkit.json").read_text(encoding="utf-8"))
    assert manifest["outputs"]["review"] == str(page)
    assert manifest["files"] == {"input": "talk.mp4", "media": "talk.es.mp4"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", manifest["created"])
    assert manifest["has_video"] is True
    assert manifest["cost"]["billed_tokens"] == result.usage.total_tokens > 0
    assert manifest["cost"]["estimated_tokens"] > 0
    env = manifest["envelope"]
    peaks = env["peaks"]
    assert 0 < len(peaks) <= 2000 and len(peaks) * env["bin_ms"] >= manifest["duration_ms"]

    # louder inside the utterances than in the gaps between them
    def level(spans: list[tuple[int, int]]) -> float:
        return float(
            np.mean([p for s, e in spans for p in peaks[s // env["bin_ms"] : e // env["bin_ms"]]])
        )

    items = manifest["utterances"]
    speech = [(u["start_ms"], u["end_ms"]) for u in items]
    gaps = [(a[1] + 200, b[0] - 200) for a, b in itertools.pairwise(speech) if b[0] - a[1] > 600]
    assert gaps and level(speech) > 2 * level(gaps)
    cues = [
        Cue(c["start_ms"], c["end_ms"], tuple(c["text"].split("\n")))
        for u in items
        for c in u["cues"]
    ]
    assert cues == list(result.cues)
    for u in items:
        joined = "".join("".join(c["text"].split()) for c in u["cues"])
        assert joined == "".join((u["text"] or "").split())
    assert _data(page.read_text(encoding="utf-8"))["urls"]["media"] == "talk.es.mp4"


def test_review_command_rebuilds_the_same_page(dubbed: tuple[Path, Result], tmp_path: Path) -> None:
    folder, _ = dubbed
    copy = tmp_path / "talk.es.dubkit.json"
    shutil.copy(folder / "talk.es.dubkit.json", copy)
    proc = run_cli("review", copy, "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {
        "status": 0, "manifest": str(copy), "review": str(tmp_path / "talk.es.review.html")
    }  # fmt: skip
    rebuilt = (tmp_path / "talk.es.review.html").read_bytes()
    assert rebuilt == (folder / "talk.es.review.html").read_bytes()


def test_no_review(emulator: Emulator, tmp_path: Path) -> None:
    src = tmp_path / "talk.wav"
    shutil.copy(FIX / "speech.wav", src)
    result = dubkit.dub(src, Options(target="es", review=False), translator_for(emulator))
    assert result.outputs.review is None
    assert not list(tmp_path.glob("*.html"))
    assert json.loads(result.outputs.manifest.read_text())["outputs"]["review"] is None


@pytest.mark.parametrize(
    ("content", "cause"),
    [
        (None, "no such manifest"),
        ("{not json", "bad JSON"),
        ('{"hello": 1}', "not a dubkit manifest"),
        ('{"dubkit": "0.1.0", "utterances": [1, 2]}', "utterances[0]: must be an object"),
    ],
)
def test_review_command_refuses_bad_manifests(
    tmp_path: Path, content: str | None, cause: str
) -> None:
    path = tmp_path / "x.es.dubkit.json"
    if content is not None:
        path.write_text(content)
    proc = run_cli("review", path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and cause in lines[0]
    assert not (tmp_path / "x.es.review.html").exists()


# ---------------------------------------------------------------- in a real browser


@pytest.fixture(scope="module")
def chromium() -> str:
    exe = find_chromium()
    if exe is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI: chromium is missing (scripts/setup.sh installs it)")
        pytest.skip(
            "chromium is not installed (apt-get install chromium, as scripts/setup.sh does)"
        )
    return exe


class Dom(HTMLParser):
    """Each element's tag, attributes and text, from a dumped DOM."""

    VOID = frozenset(("area", "br", "col", "embed", "hr", "img", "input", "link", "meta", "wbr"))

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[dict[str, Any]] = []
        self._open: list[dict[str, Any]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        e: dict[str, Any] = {"tag": tag, "attrs": {k: v or "" for k, v in attrs}, "text": []}
        self.elements.append(e)
        if tag not in self.VOID:
            self._open.append(e)

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            if self._open.pop()["tag"] == tag:
                break

    def handle_data(self, data: str) -> None:
        for e in self._open:
            e["text"].append(data)

    def find(self, tag: str | None = None, **attrs: str) -> list[dict[str, Any]]:
        return [
            e
            for e in self.elements
            if (tag is None or e["tag"] == tag)
            and all(e["attrs"].get(k) == v for k, v in attrs.items())
        ]

    def rows(self) -> list[dict[str, Any]]:
        return [e for e in self.elements if re.fullmatch(r"u-\d+", e["attrs"].get("id", ""))]


def text(e: dict[str, Any]) -> str:
    return "".join(e["text"])


def problems(u: dict[str, Any]) -> set[str]:
    """The page's filters, computed independently from the manifest."""
    out = set()
    dub = u.get("dub")
    if dub and dub["ratio"] > SPED:
        out.add("sped")
    if dub and dub["rule"] in ("over_cap", "cut"):
        out.add(dub["rule"])
    if u["status"] in ("failed", "empty"):
        out.add(u["status"])
    for c in u["cues"]:
        chars = sum(len(line) for line in c["text"].split("\n"))
        if chars * 1000 > 17 * (c["end_ms"] - c["start_ms"]):
            out.add("fast")
    return out


def _page(folder: Path, n: int) -> tuple[Path, dict[str, Any]]:
    manifest = synthetic_manifest(n=n)
    page = folder / "two-hour talk.es.review.html"
    page.write_text(review_html(manifest), encoding="utf-8")
    return page, manifest


@pytest.fixture(scope="module")
def big_page(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    return _page(tmp_path_factory.mktemp("page"), 1500)


@pytest.fixture(scope="module")
def small_page(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    return _page(tmp_path_factory.mktemp("page"), 240)


def test_browser_renders_every_row_and_keeps_text_as_text(
    chromium: str, big_page: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    page, manifest = big_page
    dom = Dom(dump_dom(chromium, page, tmp_path / "profile"))
    assert dom.find("html")[0]["attrs"].get("data-ready") == "1"
    rows = dom.rows()
    items = manifest["utterances"]
    assert [r["attrs"]["id"] for r in rows] == [f"u-{i}" for i in range(len(items))]
    assert not any("hidden" in r["attrs"] for r in rows)
    assert len(dom.find("button", **{"data-i": "1499"})) == 1  # its timeline block
    assert sum(1 for e in dom.elements if "cue" in e["attrs"].get("class", "").split()) == sum(
        len(u["cues"]) for u in items
    )
    # the hostile translation is shown as text: no element, no script ran
    assert HOSTILE.replace("\u2028", "") in text(rows[1]).replace("\u2028", "")
    assert not dom.find("img") and not dom.find("b")
    assert text(dom.find("title")[0]) == "Review: two-hour talk.mp4 \u2192 es"
    # the header carries the run's facts
    header = text(dom.find("header")[0])
    for fact in (
        "cloud",
        "en \u2192 es",
        "S1 Ethan, S2 Cherry",
        "183000",
        "180000 tokens",
        "2:00:00.0",
    ):
        assert fact in header
    assert (
        "1500 utterances" in header
        and f"{sum(1 for u in items if u['status'] == 'failed')} failed" in header
    )
    # speaker and voice per row
    assert "S1 (male)" in text(rows[0]) and "Ethan" in text(rows[0])


@pytest.mark.parametrize(
    "query", ["?filter=problems", "?filter=cut", "#filter=fast", "?filter=sped"]
)
def test_browser_filter_preselected_by_the_url(
    chromium: str, small_page: tuple[Path, dict[str, Any]], tmp_path: Path, query: str
) -> None:
    page, manifest = small_page
    dom = Dom(dump_dom(chromium, page, tmp_path / "profile", query))
    wanted = query.split("=")[1]
    shown = [
        i for i, u in enumerate(manifest["utterances"])
        if (problems(u) if wanted == "problems" else wanted in problems(u))
    ]  # fmt: skip
    assert 0 < len(shown) < len(manifest["utterances"])
    rows = dom.rows()
    assert [i for i, r in enumerate(rows) if "hidden" not in r["attrs"]] == shown
    assert text(dom.find("span", id="count")[0]) == f"{len(shown)} of {len(rows)} shown"
    dimmed = [
        int(e["attrs"]["data-i"]) for e in dom.find("button")
        if "blk" in e["attrs"].get("class", "") and "dim" in e["attrs"]["class"].split()
    ]  # fmt: skip
    assert len(dimmed) == len(rows) - len(shown)


def test_browser_clicking_a_block_selects_its_row(
    chromium: str, small_page: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    page, manifest = small_page
    dom = Dom(dump_dom(chromium, page, tmp_path / "profile", "?click=170"))
    assert dom.find("html")[0]["attrs"].get("data-selected") == "170"
    selected = [r["attrs"]["id"] for r in dom.rows() if "sel" in r["attrs"]["class"].split()]
    assert selected == ["u-170"]
    blocks = [
        e["attrs"]["data-i"]
        for e in dom.find("button")
        if "sel" in e["attrs"].get("class", "").split()
    ]
    assert blocks == ["170"]
    # a block whose row the filter hides brings every row back
    assert "cut" not in problems(manifest["utterances"][0])
    dom = Dom(dump_dom(chromium, page, tmp_path / "profile", "?filter=cut&click=0"))
    assert not any("hidden" in r["attrs"] for r in dom.rows())
    assert dom.find("html")[0]["attrs"].get("data-selected") == "0"


def test_browser_real_dub_page(chromium: str, dubbed: tuple[Path, Result], tmp_path: Path) -> None:
    folder, result = dubbed
    dom = Dom(dump_dom(chromium, folder / "talk.es.review.html", tmp_path / "profile"))
    rows = dom.rows()
    assert len(rows) == len(result.results) > 0
    for row, r in zip(rows, result.results, strict=True):
        assert r.translation is not None
        assert " ".join(r.translation.text.split()) in " ".join(text(row).split())
    plays = [e for e in dom.find("button") if "data-play" in e["attrs"]]
    assert len(plays) == 2 * len(rows) and not any("disabled" in e["attrs"] for e in plays)


@pytest.mark.parametrize("dub_track", [0, 1])
def test_browser_says_when_it_cannot_play_this_languages_track(
    chromium: str, tmp_path: Path, dub_track: int
) -> None:
    """A run into several languages writes one file: Chromium cannot switch its audio
    tracks, so the page of any language but the first says what its dub button plays."""
    manifest = synthetic_manifest(20, 60_000)
    manifest["options"] = {**manifest["options"], "dub_track": dub_track, "original_track": 2}
    page = write_review(tmp_path / "talk.fr.review.html", manifest)
    dom = Dom(dump_dom(chromium, page, tmp_path / "profile"))
    note = dom.find("p", id="tracks")[0]
    if dub_track:
        assert "hidden" not in note["attrs"] and "audio track 2" in text(note)
    else:
        assert "hidden" in note["attrs"]


def _saved(dom: Dom) -> dict[str, Any]:
    """What the page saved (its test hook keeps a copy of the download's text)."""
    pre = dom.find("pre", id="saved")
    assert len(pre) == 1, "the page saved nothing"
    return json.loads(text(pre[0]))  # type: ignore[no-any-return]


def test_browser_edits_appear_in_the_saved_manifest(
    chromium: str, dubbed: tuple[Path, Result], tmp_path: Path
) -> None:
    """Issue 28: a translation, a voice and a skip edited in the page are in the manifest it
    saves, the rest as the dub wrote it; `dubkit redo` takes the saved file."""
    from urllib.parse import quote

    from dubkit.pipeline.redo import plan_redo

    folder, _ = dubbed
    page = folder / "talk.es.review.html"
    written = json.loads((folder / "talk.es.dubkit.json").read_text(encoding="utf-8"))
    items = written["utterances"]
    voice = next(v for v in ("Ethan", "Cherry", "Nofish") if v != items[1]["voice"])
    new = "Texto <b>corregido</b> & \u00a1bien!"
    query = f"?edit=1&text={quote(new)}&voice={voice}&save"
    dom = Dom(dump_dom(chromium, page, tmp_path / "profile", query))
    assert "redo" in text(dom.find("div", id="save-box")[0])  # the page says what to run
    assert "edited" in dom.find("div", id="u-1")[0]["attrs"]["class"].split()
    saved = _saved(dom)
    got = saved["utterances"]
    assert got[1]["text"] == new and got[1]["voice"] == voice
    assert len(got) == len(items)
    for k, (a, b) in enumerate(zip(got, items, strict=True)):
        edited = () if k == 1 else ("text", "voice")
        for key in ("start_ms", "end_ms", "speaker", "skip", *edited):
            assert a.get(key) == b.get(key), (k, key)
    for key in ("target", "input", "voices", "voices_written", "outputs", "options"):
        assert saved[key] == written[key], key

    dom = Dom(dump_dom(chromium, page, tmp_path / "profile2", "?edit=2&skip=1&save"))
    skipped = _saved(dom)["utterances"]
    assert [k for k, u in enumerate(skipped) if u["skip"]] == [2]

    # redo reads the saved file from anywhere (a downloads folder)
    downloads = tmp_path / "Downloads"
    downloads.mkdir()
    (downloads / "talk.es.dubkit.json").write_text(json.dumps(saved), encoding="utf-8")
    plan = plan_redo(downloads / "talk.es.dubkit.json")
    assert plan.given.items[1].voice == voice and plan.given.items[1].text == new
    assert [g.voice for k, g in enumerate(plan.given.items) if k != 1] == [None] * (len(items) - 1)
    assert plan.options.out_dir == folder


def test_browser_splits_an_utterance_that_holds_two_people(
    chromium: str, emulator: Emulator, tmp_path: Path
) -> None:
    """Quick dialogue can put two people in one utterance (BENCHMARKS.md): the page splits it
    where the second begins, that part in its own voice; `dubkit redo` of the saved manifest
    requests the two parts (their spans are new) and nothing else."""
    src = tmp_path / "talk.wav"
    shutil.copy(FIX / "speech.wav", src)
    cache = tmp_path / "cache"
    opts = Options(target="es", cache_dir=cache, mix=DUCK)
    first = dubkit.dub(src, opts, translator_for(emulator))
    page, path = first.outputs.review, first.outputs.manifest
    assert page is not None
    items = json.loads(path.read_text(encoding="utf-8"))["utterances"]
    k = max(range(len(items)), key=lambda i: items[i]["end_ms"] - items[i]["start_ms"])
    start, end = items[k]["start_ms"], items[k]["end_ms"]
    assert end - start >= 1000
    at = (start + end) // 20 * 10  # the middle, to the 10 ms the page's field keeps
    voice = next(v for v in ("Ethan", "Cherry", "Nofish") if v != items[k]["voice"])
    query = f"?edit={k}&split={at / 1000:.2f}&splitvoice={voice}&save"
    dom = Dom(dump_dom(chromium, page, tmp_path / "profile", query))
    assert "edited" in dom.find("div", id=f"u-{k}")[0]["attrs"]["class"].split()
    saved = _saved(dom)
    got = saved["utterances"]
    assert len(got) == len(items) + 1
    assert (got[k]["start_ms"], got[k]["end_ms"]) == (start, at)
    assert got[k]["speaker"] == items[k]["speaker"] and "text" not in got[k]
    assert got[k + 1] == {"start_ms": at, "end_ms": end, "voice": voice, "skip": False}
    assert [(u["start_ms"], u["end_ms"]) for u in got[:k] + got[k + 2 :]] == [
        (u["start_ms"], u["end_ms"]) for u in items[:k] + items[k + 1 :]
    ]

    # a split leaving a part under 300 ms is not saved
    late = f"?edit={k}&split={end / 1000 - 0.1:.2f}&save"
    dom = Dom(dump_dom(chromium, page, tmp_path / "profile2", late))
    assert len(_saved(dom)["utterances"]) == len(items)

    path.write_text(json.dumps(saved), encoding="utf-8")
    emulator.reset_records()
    again = dubkit.redo(path, translator_for(emulator), cache_dir=cache)
    assert len([r for r in emulator.records if r.ok]) == 2  # the two parts, nothing else
    assert [i for i, r in enumerate(again.results) if not r.cached] == [k, k + 1]
    written = json.loads(path.read_text(encoding="utf-8"))["utterances"]
    assert [(u["start_ms"], u["end_ms"]) for u in written[k : k + 2]] == [(start, at), (at, end)]
    assert written[k + 1]["voice"] == voice


def test_browser_says_what_a_redo_of_one_language_of_several_rewrites(
    chromium: str, emulator: Emulator, dubbed: tuple[Path, Result], tmp_path: Path
) -> None:
    """A dub in several languages has one file (talk.dub.mp4) and a page per language; a
    page's saved manifest redoes that file with its language's edits, and the page says so."""
    src = tmp_path / "talk.mp4"
    shutil.copy(FIX / "speech.mp4", src)
    dubkit.dub(src, Options(target="es", mix=DUCK), translator_for(emulator), targets=["es", "fr"])
    dom = Dom(dump_dom(chromium, tmp_path / "talk.fr.review.html", tmp_path / "p", "?save"))
    note = text(dom.find("span", id="save-note")[0])
    assert "dubkit redo talk.fr.dubkit.json" in note
    assert "This dub holds several languages in talk.dub.mp4: the redo writes it again" in note
    assert "the others as talk.dub.dubkit.json has them" in note

    folder, _ = dubbed  # one language: nothing more to say
    dom = Dom(dump_dom(chromium, folder / "talk.es.review.html", tmp_path / "p2", "?save"))
    note = text(dom.find("span", id="save-note")[0])
    assert "dubkit redo talk.es.dubkit.json" in note and "several languages" not in note
