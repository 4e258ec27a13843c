"""Subtitle layout, timing rules, checker and SRT/VTT files."""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

import pysrt
import pytest
import srt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dubkit.errors import ConfigError, InputError
from dubkit.subtitles import (
    SubtitleError,
    SubtitleOptions,
    SubtitleSource,
    check,
    joined_text,
    layout,
    line_limit,
    parse_srt,
    read_srt,
    srt_text,
    text_width,
    vtt_text,
    write_srt,
    write_vtt,
)
from dubkit.subtitles._text import GLUE_AFTER, NO_END, NO_START, SPACELESS
from dubkit.types import Cue, Utterance

OPTS = SubtitleOptions()


def src(
    start: int, end: int, text: str, speech: tuple[tuple[int, int], ...] = ()
) -> SubtitleSource:
    return SubtitleSource(Utterance(start, end), text, speech)


def squash(text: str) -> str:
    return "".join(text.split())


def hard(cues: list[Cue], lang: str, duration_ms: int) -> list[str]:
    return [f"{v.index}:{v.rule}:{v.message}" for v in check(cues, lang, duration_ms) if v.hard]


# --- strategies ---------------------------------------------------------------------------

LATIN_WORDS = [
    "the", "a", "an", "and", "but", "of", "to", "in", "with", "for", "my", "your", "this",
    "casa", "la", "el", "de", "y", "que", "pero", "le", "les", "et", "der", "die", "und",
    "mit", "il", "che", "e", "Madrid", "Peter", "très", "über", "año", "niño", "café",
    "naïve", "l'homme", "x", "extraordinary", "responsibilities", "incomprehensibilities",
]  # fmt: skip
LATIN_PUNCT = [",", ".", "?", "!", ";", ":", " —", "…", "", "", "", "", ""]
HANZI = "我们你他的是了在有人这中大为上个国和不说时要就出会可也年生能而子那得于着下自之"
KANA = (
    "あいうえおかきくけこさしすせそたちつてとなにのはひまみむめもやゆよらりるれろわをん"
    "アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワヲン"
    "っゃゅょー"
)
KANJI = "日本語今昨明年月時間話見行来食飲読書電車駅東京大学先生友達"
CJK_PUNCT = "。，、！？：；「」（）…"


@st.composite
def latin_text(draw: st.DrawFn) -> str:
    words = draw(st.lists(st.sampled_from(LATIN_WORDS), min_size=1, max_size=60))
    out = []
    for w in words:
        out.append(w + draw(st.sampled_from(LATIN_PUNCT)))
    if draw(st.booleans()) and draw(st.integers(0, 9)) == 0:
        out.insert(draw(st.integers(0, len(out))), "z" * draw(st.integers(43, 130)))
    return " ".join(out)


@st.composite
def cjk_text(draw: st.DrawFn, alphabet: str) -> str:
    pieces = draw(
        st.lists(
            st.one_of(
                st.text(alphabet, min_size=1, max_size=12),
                st.sampled_from(list(CJK_PUNCT)),
                st.sampled_from(["iPhone", "2024", "OK", " ", "AI 模型", "abcdefghijklmnopq" * 2]),
            ),
            min_size=1,
            max_size=25,
        )
    )
    return "".join(pieces)


PUNCT_ONLY = st.text(".,!?…。、", min_size=1, max_size=120)
WEIRD = st.sampled_from(
    [" ", "\n\t ", "a", "—", "x" * 500, "Supercalifragilisticexpialidocious " * 4, "¿Qué? ¡Sí!"]
)


@st.composite
def text_for(draw: st.DrawFn, lang: str) -> str:
    if lang in ("zh", "yue"):
        return draw(st.one_of(cjk_text(HANZI), PUNCT_ONLY))
    if lang == "ja":
        return draw(st.one_of(cjk_text(KANA + KANJI), PUNCT_ONLY))
    if lang == "ko":
        return draw(st.text("가나다라마바사아자차카타파하는을를이 ,.", min_size=1, max_size=120))
    return draw(st.one_of(latin_text(), latin_text(), PUNCT_ONLY, WEIRD))


@st.composite
def scenario(draw: st.DrawFn) -> tuple[str, list[SubtitleSource], int]:
    lang = draw(st.sampled_from(["en", "es", "fr", "de", "zh", "ja", "ko", "yue"]))
    n = draw(st.integers(1, 6))
    tight = draw(st.booleans())  # very short utterances packed tightly
    t = draw(st.integers(0, 3000))
    sources = []
    for _ in range(n):
        length = draw(st.integers(1, 40) if tight else st.integers(200, 12_000))
        text = draw(text_for(lang))
        speech: tuple[tuple[int, int], ...] = ()
        if not tight and draw(st.booleans()):
            cuts = sorted(draw(st.lists(st.integers(t, t + length + 1500), min_size=2, max_size=6)))
            speech = tuple((a, b) for a, b in zip(cuts[::2], cuts[1::2], strict=False) if a < b)
        sources.append(src(t, t + length, text, speech))
        t += length + draw(st.integers(0, 20) if tight else st.integers(0, 4000))
    # Media ending right after the last utterance (or later), with room for every cue.
    chars = sum(len(squash(s.text)) for s in sources)
    duration = max(t + draw(st.sampled_from([0, 0, 500, 5000])), chars * (OPTS.min_gap_ms + 1))
    return lang, sources, duration


# --- properties --------------------------------------------------------------------------


def assert_roundtrip(cues: list[Cue]) -> None:
    text = srt_text(cues)
    expected = [(c.start_ms, c.end_ms, c.lines) for c in cues]
    with tempfile.TemporaryDirectory() as tmp:
        path = write_srt(cues, Path(tmp) / "out.srt")
        via_pysrt = [
            (it.start.ordinal, it.end.ordinal, tuple(it.text.split("\n")))
            for it in pysrt.open(str(path), encoding="utf-8")
        ]
        assert path.read_text(encoding="utf-8") == text
    via_srt = [
        (
            round(s.start.total_seconds() * 1000),
            round(s.end.total_seconds() * 1000),
            tuple(s.content.split("\n")),
        )
        for s in srt.parse(text)
    ]
    assert via_pysrt == expected
    assert via_srt == expected
    assert [(c.start_ms, c.end_ms, c.lines) for c in parse_srt(text)] == expected


@pytest.mark.slow
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
def test_layout_properties(case: tuple[str, list[SubtitleSource], int]) -> None:
    lang, sources, duration = case
    cues = layout(sources, lang, duration)
    # Sorted, never overlapping, inside the media, at least 1 ms long.
    for a, b in itertools.pairwise(cues):
        assert a.end_ms + OPTS.min_gap_ms <= b.start_ms
    assert all(0 <= c.start_ms < c.end_ms <= duration for c in cues)
    assert hard(cues, lang, duration) == []
    # No text lost or duplicated (sources are already in time order).
    full = " ".join(s.text for s in sources)
    assert squash(joined_text(cues, lang)) == squash(full)
    limit = line_limit(lang, OPTS)
    words = full.split()
    breakable = all(  # every space a legal break: no word after it opens with "." or ")"...
        b[0] not in NO_START and a[-1] not in NO_END for a, b in itertools.pairwise(words)
    )
    if lang not in SPACELESS and breakable and all(text_width(w, lang) <= limit for w in words):
        assert joined_text(cues, lang) == " ".join(full.split())
    # No line ends with an article or determiner.
    for c in cues:
        for line in c.lines[:-1]:
            assert line.split()[-1].lower() not in GLUE_AFTER.get(lang, ())
    assert_roundtrip(cues)


JA_PIECE = st.tuples(
    st.sampled_from(["", "「"]),
    st.text(KANA + KANJI, min_size=1, max_size=8),
    st.sampled_from(["", "ー", "。", "、", "」", "。」", "っ", "！"]),
).map("".join)


@settings(max_examples=40, deadline=None)
@given(st.lists(JA_PIECE, min_size=1, max_size=30).map("".join))
def test_japanese_line_breaks_follow_kinsoku(text: str) -> None:
    cues = layout([src(0, 8000, text)], "ja", 60_000)
    assert joined_text(cues, "ja") == text
    lines = [line for c in cues for line in c.lines]
    assert all(len(line) <= 13 for line in lines)
    for line in lines[1:]:
        assert line[0] not in NO_START, lines
    for line in lines:
        assert line[-1] != "「", lines


def test_whitespace_text_gives_no_cue() -> None:
    assert layout([src(0, 1000, "  \n\t"), src(2000, 3000, "")], "en", 5000) == []
    assert layout([], "en", 5000) == []


def test_too_much_text_for_the_media_is_refused() -> None:
    sources = [src(i * 10, i * 10 + 10, "word " * 40) for i in range(10)]
    with pytest.raises(SubtitleError, match="media lasts 100 ms"):
        layout(sources, "en", 100)


# --- line breaking -----------------------------------------------------------------------


def lines_of(text: str, lang: str = "en") -> tuple[str, ...]:
    cues = layout([src(0, 6000, text)], lang, 10_000)
    assert len(cues) == 1
    return cues[0].lines


def test_short_text_stays_on_one_line() -> None:
    assert lines_of("Where are you going tonight, my friend?") == (
        "Where are you going tonight, my friend?",
    )


def test_conjunction_starts_the_second_line() -> None:
    lines = lines_of("I wanted to go to the market yesterday and buy some fresh bread")
    assert lines == ("I wanted to go to the market yesterday", "and buy some fresh bread")


def test_break_after_punctuation_is_preferred() -> None:
    lines = lines_of("When the rain finally stopped, everybody went outside to play")
    assert lines == ("When the rain finally stopped,", "everybody went outside to play")


def test_lines_are_balanced() -> None:
    text = "Everybody knows Peter Hamilton travelled seventeen thousand kilometres westward"
    lines = lines_of(text)
    assert len(lines) == 2
    widths = [len(line) for line in lines]
    assert abs(widths[0] - widths[1]) <= 12  # greedy filling would give 41 / 38... not this
    assert max(widths) <= 42


@pytest.mark.parametrize(
    ("text", "lang", "article"),
    [
        ("Yesterday afternoon my little brother finally bought the expensive car", "en", "the"),
        ("Ayer por la tarde mi hermano pequeño compró por fin el cuadro tan caro", "es", "el"),
        ("Hier après-midi mon petit frère a enfin acheté le tableau très cher", "fr", "le"),
        ("Gestern Nachmittag hat mein kleiner Bruder endlich das teure Bild gekauft", "de", "das"),
    ],
)
def test_article_stays_with_its_noun(text: str, lang: str, article: str) -> None:
    lines = lines_of(text, lang)
    assert len(lines) == 2
    assert not lines[0].endswith(" " + article)
    assert " ".join(lines) == text


def test_article_never_ends_a_line_even_at_the_balance_point() -> None:
    # Breaking after "the" would give two lines of 30 and 29 characters.
    text = "Somebody in our office took the wonderful old photographs home"
    for line in lines_of(text)[:-1]:
        assert line.split()[-1] != "the"


def test_french_question_mark_never_starts_a_line() -> None:
    text = "Est-ce que tu viens avec nous au cinéma ce soir ou demain ? Je ne sais pas encore"
    for c in layout([src(0, 6000, text)], "fr", 10_000):
        for line in c.lines:
            assert not line.startswith("?")


def test_long_text_is_cut_at_sentence_ends_and_punctuation() -> None:
    text = (
        "The train was late again this morning. Nobody on the platform seemed surprised, "
        "and the man next to me just kept reading his newspaper."
    )
    cues = layout([src(0, 8000, text)], "en", 20_000)
    assert [c.lines for c in cues] == [
        ("The train was late again this morning.", "Nobody on the platform seemed surprised,"),
        ("and the man next to me just", "kept reading his newspaper."),
    ]
    assert joined_text(cues, "en") == text


def test_word_longer_than_a_line_is_broken_between_characters() -> None:
    word = "Donaudampfschifffahrtsgesellschaftskapitänswitwenrentenversicherung"
    cues = layout([src(0, 3000, f"Das ist die {word}.")], "de", 10_000)
    assert squash(joined_text(cues, "de")) == squash(f"Das ist die {word}.")
    assert all(len(line) <= 42 for c in cues for line in c.lines)


def test_chinese_breaks_at_punctuation_between_characters() -> None:
    text = "我们昨天去了市场，想买一些新鲜的面包。但是商店关门了，所以我们回家了。"
    cues = layout([src(0, 8000, text)], "zh", 20_000)
    assert joined_text(cues, "zh") == text
    assert cues[0].lines == ("我们昨天去了市场，", "想买一些新鲜的面包。")
    assert all(text_width(line, "zh") <= 16 for c in cues for line in c.lines)


# --- width ---------------------------------------------------------------------------------


def test_cjk_width_counts_half_width_as_half() -> None:
    assert text_width("日本語", "ja") == 3
    assert text_width("ABC12", "ja") == 2.5
    assert text_width("ｶﾀｶﾅ", "ja") == 2  # half-width katakana
    assert text_width("ＡＢ", "zh") == 2  # full-width forms
    assert text_width("한국어 abc", "ko") == 5
    assert text_width("ABC12", "en") == 5
    assert text_width("日本語", "en") == 3


def test_cjk_line_limit_uses_the_width_rule() -> None:
    fits = "我" * 10 + "abcdefghijkl"  # 10 + 12 * 0.5 = 16
    assert lines_of(fits, "zh") == (fits,)
    over = "我" * 11 + "abcdefghijkl"  # 16.5
    assert len(lines_of(over, "zh")) == 2
    assert len(lines_of("日" * 13, "ja")) == 1
    assert len(lines_of("日" * 14, "ja")) == 2


# --- timing --------------------------------------------------------------------------------


def test_reading_speed_extends_into_the_silence_after() -> None:
    text = "This sentence needs some time to read."  # 38 characters: 2236 ms at 17 cps
    (cue,) = layout([src(1000, 1500, text)], "en", 20_000)
    assert (cue.start_ms, cue.end_ms) == (1000, 1000 + 2236)


def test_extension_stops_short_of_the_next_cue() -> None:
    text = "This sentence needs some time to read."
    first, second = layout([src(1000, 1500, text), src(2000, 3000, "Next.")], "en", 20_000)
    assert first.end_ms == 2000 - 84
    assert second.start_ms == 2000
    assert [v.rule for v in check([first, second], "en", 20_000) if v.index == 0] == [
        "reading_speed"
    ]


def test_extension_stops_at_the_end_of_the_media() -> None:
    (cue,) = layout([src(1000, 1200, "Short but not that short.")], "en", 1500)
    assert cue.end_ms == 1500


def test_min_duration_extension() -> None:
    (cue,) = layout([src(0, 300, "Hi.")], "en", 10_000)
    assert cue.end_ms == 833


def test_min_gap_opens_by_shortening_the_earlier_cue() -> None:
    a, b = layout([src(0, 1000, "Hello there."), src(1030, 2000, "Hi.")], "en", 10_000)
    assert (a.start_ms, a.end_ms) == (0, 1030 - 84)
    assert b.start_ms == 1030


def test_small_gaps_are_chained_to_the_minimum_gap() -> None:
    a, _ = layout([src(0, 1000, "Hello there."), src(1300, 2500, "Hi.")], "en", 10_000)
    assert a.end_ms == 1300 - 84
    a, _ = layout([src(0, 1000, "Hello there."), src(1600, 2500, "Hi.")], "en", 10_000)
    assert a.end_ms == 1000  # a 600 ms gap is left alone


def test_overlong_event_is_split_or_cut_to_the_maximum() -> None:
    text = "We waited for a very long time, and nothing happened at all."
    cues = layout([src(0, 20_000, text)], "en", 30_000)
    assert len(cues) >= 3
    assert all(c.end_ms - c.start_ms <= 7000 for c in cues)
    assert joined_text(cues, "en") == text
    (single,) = layout([src(0, 20_000, "Aaaaah!")], "en", 30_000)
    assert (single.start_ms, single.end_ms) == (0, 7000)


def test_cues_follow_text_share_of_the_utterance() -> None:
    first = "a" * 40 + " " + "c" * 40 + "."
    text = f"{first} {'B' * 37}."
    a, b = layout([src(0, 6000, text)], "en", 6000)
    assert a.lines == ("a" * 40, "c" * 40 + ".") and a.start_ms == 0
    assert b.start_ms == 83 * 6000 // 121  # 83 of 121 characters into the utterance
    assert b.end_ms == 6000
    assert a.end_ms == b.start_ms - 84


def test_cues_at_the_end_of_the_media_are_pulled_inside() -> None:
    text = (
        "One sentence. Another one. And a third one that is long enough to need a cue. "
        "And then a fourth one that makes it long."
    )
    cues = layout([src(9990, 10_000, text)], "en", 10_000)
    assert len(cues) == 2
    assert hard(cues, "en", 10_000) == []
    assert cues[-1].end_ms == 10_000
    # Both start earlier, into the silence before, to get their reading time.
    assert [v.rule for v in check(cues, "en", 10_000)] == []
    assert joined_text(cues, "en") == text


# --- speech spans --------------------------------------------------------------------------


def test_speech_spans_place_cues_and_split_at_pauses() -> None:
    text = "First part here. Second part there."
    cues = layout([src(0, 4000, text, ((0, 1500), (2500, 4000)))], "en", 10_000)
    assert [(c.start_ms, c.end_ms, c.lines) for c in cues] == [
        (0, 1500, ("First part here.",)),
        (2500, 4000, ("Second part there.",)),
    ]


def test_speech_spans_may_run_past_the_utterance() -> None:
    (cue,) = layout([src(0, 1000, "Hello, how are you?", ((200, 2600),))], "en", 10_000)
    assert (cue.start_ms, cue.end_ms) == (200, 2600)


def test_short_pause_does_not_split_a_short_line() -> None:
    cues = layout([src(0, 3000, "Yes, of course.", ((0, 1000), (1100, 3000)))], "en", 10_000)
    assert [c.lines for c in cues] == [("Yes, of course.",)]


def test_bad_speech_span_is_refused() -> None:
    with pytest.raises(SubtitleError):
        src(0, 1000, "x", ((500, 400),))


# --- checker -------------------------------------------------------------------------------


def test_check_reports_each_rule() -> None:
    cues = [
        Cue(-5, 100, ("a" * 43,)),
        Cue(50, 400, ("one", "two", "three")),
        Cue(420, 500, ("",)),
        Cue(300, 12_000, ("ok",)),
    ]
    found = {(v.index, v.rule, v.hard) for v in check(cues, "en", 11_000)}
    assert (0, "bounds", True) in found
    assert (0, "line_chars", True) in found
    assert (1, "overlap", True) in found
    assert (1, "lines", True) in found
    assert (2, "min_gap", True) in found
    assert (2, "lines", True) in found
    assert (3, "order", True) in found
    assert (3, "bounds", True) in found
    assert (3, "max_duration", False) in found
    assert (0, "min_duration", False) in found
    assert (0, "reading_speed", False) in found


def test_check_accepts_good_cues() -> None:
    cues = [Cue(0, 1000, ("Hello.",)), Cue(1084, 3000, ("Fine,", "thanks."))]
    assert check(cues, "en", 3000) == []


def test_options_are_validated() -> None:
    with pytest.raises(ConfigError):
        SubtitleOptions(max_lines=0)
    with pytest.raises(ConfigError):
        SubtitleOptions(min_duration_ms=8000)
    with pytest.raises(ConfigError):
        layout([src(0, 1000, "x")], "klingon", 5000)


def test_custom_options_are_followed() -> None:
    opts = SubtitleOptions(max_lines=1, max_line_chars=20, min_gap_ms=120)
    text = "A rather long sentence that needs several single-line cues to be shown."
    cues = layout([src(0, 9000, text)], "en", 20_000, opts)
    assert all(len(c.lines) == 1 and len(c.lines[0]) <= 20 for c in cues)
    assert [v for v in check(cues, "en", 20_000, opts) if v.hard] == []
    assert all(b.start_ms - a.end_ms >= 120 for a, b in itertools.pairwise(cues))


# --- files ---------------------------------------------------------------------------------

CUES = [
    Cue(0, 1500, ("Fish & chips", "<b>not</b> bold")),
    Cue(3_723_004, 3_725_000, ("Une heure plus tard…",)),
]


def test_vtt_format(tmp_path: Path) -> None:
    path = write_vtt(CUES, tmp_path / "x.vtt")
    assert path.read_text(encoding="utf-8") == (
        "WEBVTT\n"
        "\n"
        "1\n"
        "00:00:00.000 --> 00:00:01.500\n"
        "Fish &amp; chips\n"
        "&lt;b&gt;not&lt;/b&gt; bold\n"
        "\n"
        "2\n"
        "01:02:03.004 --> 01:02:05.000\n"
        "Une heure plus tard…\n"
    )
    assert vtt_text(CUES) == path.read_text(encoding="utf-8")


def test_srt_format_and_read_back(tmp_path: Path) -> None:
    path = write_srt(CUES, tmp_path / "x.srt")
    assert path.read_bytes().decode("utf-8").startswith(
        "1\n00:00:00,000 --> 00:00:01,500\nFish & chips\n<b>not</b> bold\n\n2\n01:02:03,004"
    )
    assert read_srt(path) == CUES
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.srt"]


def test_writers_refuse_broken_cues_and_leave_no_file(tmp_path: Path) -> None:
    overlapping = [Cue(0, 1000, ("a",)), Cue(900, 2000, ("b",))]
    for write in (write_srt, write_vtt):
        with pytest.raises(SubtitleError, match="overlap"):
            write(overlapping, tmp_path / "bad.out")
    with pytest.raises(SubtitleError, match="line_chars"):
        write_srt([Cue(0, 1000, ("日" * 14,))], tmp_path / "bad.out", lang="ja")
    with pytest.raises(SubtitleError, match="bounds"):
        write_srt([Cue(0, 1000, ("a",))], tmp_path / "bad.out", duration_ms=900)
    assert list(tmp_path.iterdir()) == []


def test_writer_replaces_an_existing_file_atomically(tmp_path: Path) -> None:
    path = tmp_path / "x.srt"
    path.write_text("old", encoding="utf-8")
    write_srt(CUES[:1], path)
    assert read_srt(path) == CUES[:1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.srt"]


def test_writer_reports_an_unwritable_place(tmp_path: Path) -> None:
    from dubkit.errors import OutputError

    with pytest.raises(OutputError, match="missing"):
        write_srt(CUES, tmp_path / "missing" / "x.srt")


def test_read_srt_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope\.srt"):
        read_srt(tmp_path / "nope.srt")
    bad = tmp_path / "bad.srt"
    bad.write_text("1\n00:00:01,000 --> garbage\nText\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"bad\.srt"):
        read_srt(bad)
