"""Text measurement and break opportunities for subtitle layout.

Widths are counted in *half units* (integers) so that the CJK rule "a half-width
character counts 0.5" stays exact: a full-width character is 2 half units, an
ASCII letter in zh/ja/ko/yue text is 1, and every character of any other
language is 2 (one character).

A text is first normalized (whitespace runs become one space, ends stripped);
a :class:`Break` is a place where it may be cut: ``s[:left]`` ends the piece
before it and ``s[right:]`` starts the piece after it (``right == left + 1``
when the cut swallows a space, ``right == left`` between two characters).
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from dataclasses import dataclass
from enum import IntEnum

#: Languages whose widths follow the East Asian rule (half-width counts 0.5).
CJK_WIDTH = frozenset({"zh", "ja", "ko", "yue"})
#: Languages written without spaces between words: lines may break between characters.
SPACELESS = frozenset({"zh", "ja", "yue"})

SENTENCE_END = frozenset(".!?…。！？‼⁇⁈⁉．｡")
CLAUSE_END = frozenset(",;:—–、，；：､﹐﹑")
#: Closing quotes and brackets that may follow a sentence or clause end.
CLOSERS = frozenset("\"'”’»›)]}）」』】〉》〕］｝〗〙")
#: Characters that must not start a line or a cue (closing punctuation, kinsoku).
NO_START = frozenset(
    ",.;:!?%)]}…‥、。，．；：！？）」』】〉》〕］｝〗〙»›”’｡､"
    "ーぁぃぅぇぉっゃゅょゎゕゖァィゥェォッャュョヮヵヶ々ゝゞヽヾ〜・"
)
#: Characters that must not end a line or a cue (opening brackets and quotes).
NO_END = frozenset("([{（「『【〈《〔［｛〖〘«‹“‘¿¡")

_PUNCT_STRIP = "".join(sorted(SENTENCE_END | CLAUSE_END | CLOSERS | NO_END)) + "\"'"


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: Words a line may start with (conjunctions, prepositions): a good place to break before.
BREAK_BEFORE: dict[str, frozenset[str]] = {
    "en": _words(
        "and but or nor so yet because although though while when where whereas if unless "
        "until that which who whom whose than as after before since to of in on at by for "
        "with from about into through during over under between without against among like "
        "across"
    ),
    "es": _words(
        "y e o u ni pero sino porque aunque que cuando donde si mientras como a de en con "
        "por para sin sobre entre hasta desde hacia según tras contra"
    ),
    "fr": _words(
        "et ou mais donc car ni que qui quand si comme parce puisque lorsque à de en dans "
        "avec pour par sur sous sans chez vers entre pendant depuis contre après avant"
    ),
    "de": _words(
        "und oder aber denn sondern doch weil dass wenn als ob obwohl während bevor nachdem "
        "damit mit von zu für auf in an bei nach aus über unter durch ohne gegen um vor zwischen"
    ),
    "it": _words(
        "e ed o ma però perché che quando se mentre come di a da in con su per tra fra senza "
        "verso dopo prima"
    ),
    "pt": _words(
        "e ou mas porque porém que quando onde se enquanto como embora de em com por para sem "
        "sobre entre até desde contra a"
    ),
}

#: Articles and determiners: never end a line with one (keep it with its noun).
GLUE_AFTER: dict[str, frozenset[str]] = {
    "en": _words(
        "a an the this these those my your his her its our their some any no every each"
    ),
    "es": _words(
        "el la los las un una unos unas lo al del mi mis tu tus su sus este esta estos estas "
        "ese esa esos esas nuestro nuestra nuestros nuestras"
    ),
    "fr": _words(
        "le la les l' un une des du au aux ce cet cette ces mon ma mes ton ta tes son sa ses "
        "notre nos votre vos leur leurs"
    ),
    "de": _words(
        "der die das den dem des ein eine einen einem einer eines kein keine keinen keinem "
        "keiner mein meine dein deine sein seine ihr ihre unser unsere euer eure dieser diese "
        "dieses diesen diesem jeder jede jedes"
    ),
    "it": _words(
        "il lo la i gli le un uno una un' del della dei degli delle al alla ai agli alle nel "
        "nella nei sul sulla mio mia tuo tua suo sua questo questa quello quella"
    ),
    "pt": _words(
        "o a os as um uma uns umas do da dos das no na nos nas ao aos à às meu minha teu tua "
        "seu sua este esta esse essa aquele aquela"
    ),
}


class Kind(IntEnum):
    """How good a break is, best first."""

    SENTENCE = 0  # after . ! ? 。 ...
    CLAUSE = 1  # after , ; : — 、 ...
    CONJUNCTION = 2  # before a conjunction or preposition
    WORD = 3  # between two words
    CHAR = 4  # between two characters of a spaceless script
    FORCED = 5  # inside a word too long for a line (last resort)


@dataclass(frozen=True, slots=True)
class Break:
    left: int  # the piece before ends at s[:left]
    right: int  # the piece after starts at s[right:]
    kind: Kind
    glue: bool = False  # after an article/determiner: never a line break


#: Control characters (C0, DEL, C1) that are not whitespace: no player shows them, and a
#: NUL or an escape sequence in a subtitle file breaks players and terminals alike.
_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f]")


def normalize(text: str) -> str:
    """``text`` with control characters dropped and every whitespace run (newlines
    included) made one space, ends stripped.

    >>> normalize("Hola\x00 \x1b[31mmundo\n ")
    'Hola [31mmundo'
    """
    return " ".join(_CONTROLS.sub("", text).split())


def char_width2(ch: str, cjk: bool) -> int:
    """Width of one character in half units (2 = one character)."""
    if unicodedata.combining(ch) or ch in "\u200b\u200c\u200d\ufe0e\ufe0f":
        return 0
    if not cjk:
        return 2
    return 1 if unicodedata.east_asian_width(ch) in ("Na", "H") else 2


def width_prefix(s: str, cjk: bool) -> list[int]:
    """Cumulative half-unit widths: ``prefix[j] - prefix[i]`` is the width of ``s[i:j]``."""
    out = [0]
    total = 0
    for ch in s:
        total += char_width2(ch, cjk)
        out.append(total)
    return out


def width2(s: str, cjk: bool) -> int:
    return sum(char_width2(ch, cjk) for ch in s)


def _is_wide(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in ("W", "F")


def _joins_next(ch: str) -> bool:
    """True if no break may come just before ``ch`` (combining marks, joiners)."""
    return bool(unicodedata.combining(ch)) or unicodedata.category(ch) in ("Mn", "Mc", "Me") or (
        ch in "\u200d\ufe0e\ufe0f"
    )


def _end_kind(s: str, left: int, nxt: str) -> Kind | None:
    """SENTENCE or CLAUSE if ``s[:left]`` ends with such punctuation (closers skipped)."""
    j = left
    while j > 0 and s[j - 1] in CLOSERS:
        j -= 1
    if j == 0:
        return None
    c = s[j - 1]
    if c in SENTENCE_END:
        # "e.g. this": a period followed by a lowercase word is no sentence end.
        if c == "." and nxt.islower():
            return Kind.WORD
        return Kind.SENTENCE
    if c in CLAUSE_END:
        return Kind.CLAUSE
    return None


def _word_before(s: str, i: int) -> str:
    start = s.rfind(" ", 0, i) + 1
    return s[start:i].lower()


def _word_after(s: str, i: int) -> str:
    end = s.find(" ", i)
    word = s[i : end if end >= 0 else len(s)].lower()
    return word.strip(_PUNCT_STRIP)


def _space_break(s: str, i: int, lang: str) -> Break | None:
    if s[i + 1] in NO_START or s[i - 1] in NO_END:
        return None
    kind = _end_kind(s, i, s[i + 1])
    prev = _word_before(s, i)
    glue = prev in GLUE_AFTER.get(lang, ())
    if kind is None:
        kind = Kind.WORD
        if _word_after(s, i + 1) in BREAK_BEFORE.get(lang, ()):
            kind = Kind.CONJUNCTION
    return Break(i, i + 1, kind, glue and kind >= Kind.CONJUNCTION)


def _char_break(s: str, i: int) -> Break | None:
    a, b = s[i - 1], s[i]
    if a == " " or b == " " or not (_is_wide(a) or _is_wide(b)):
        return None
    if b in NO_START or a in NO_END or _joins_next(b):
        return None
    kind = _end_kind(s, i, b)
    return Break(i, i, Kind.CHAR if kind is None or kind is Kind.WORD else kind)


def _forced(s: str, prefix: list[int], start: int, end: int, line_w2: int) -> list[Break]:
    """Breaks cutting ``s[start:end]`` into pieces as wide as a line (greedy, grapheme-safe)."""
    out: list[Break] = []
    x = start
    while prefix[end] - prefix[x] > line_w2:
        i = bisect.bisect_right(prefix, prefix[x] + line_w2) - 1
        while i > x + 1 and (_joins_next(s[i]) or s[i - 1] in " \u200d"):
            i -= 1
        i = max(i, x + 1)
        if s[i] == " ":
            out.append(Break(i, i + 1, Kind.FORCED))
            x = i + 1
        else:
            out.append(Break(i, i, Kind.FORCED))
            x = i
    return out


def find_breaks(s: str, lang: str, line_w2: int) -> list[Break]:
    """Every place a normalized text ``s`` may be cut, sorted, for a line of ``line_w2``.

    A stretch between two ordinary breaks that is wider than a line (one huge
    word, a run of punctuation) is cut by FORCED breaks into pieces a line wide
    (never before a combining mark or around a joiner; no hyphen is added).
    """
    cjk = lang in CJK_WIDTH
    spaceless = lang in SPACELESS
    breaks: list[Break] = []
    for i in range(1, len(s) - 1 if s else 0):
        brk = None
        if s[i] == " ":
            brk = _space_break(s, i, lang)
        elif spaceless:
            brk = _char_break(s, i)
        if brk is not None:
            breaks.append(brk)
    prefix = width_prefix(s, cjk)
    forced: list[Break] = []
    edges = [0, *(b.right for b in breaks)]
    ends = [*(b.left for b in breaks), len(s)]
    for a, z in zip(edges, ends, strict=True):
        if prefix[z] - prefix[a] > line_w2:
            forced.extend(_forced(s, prefix, a, z, line_w2))
    if forced:
        breaks = sorted(breaks + forced, key=lambda b: b.left)
    return breaks


def breaks_inside(breaks: list[Break], keys: list[int], start: int, end: int) -> range:
    """Indices of the breaks strictly inside ``s[start:end]``."""
    lo = bisect.bisect_right(keys, start)
    hi = bisect.bisect_left(keys, end)
    while hi > lo and breaks[hi - 1].right >= end:
        hi -= 1
    return range(lo, hi)
