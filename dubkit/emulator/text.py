"""Pseudo-words in the target language's script, for the synthetic translation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_HANZI = (
    "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过"
    "家学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本"
    "见经头面公同三已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月明其种声全工己"
)
_HIRAGANA = (
    "あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほ"
    "まみむめもやゆよらりるれろわをん"
)
_CANTONESE = "嘅咗喺佢啲冇乜嘢睇咁"


@dataclass(frozen=True, slots=True)
class Script:
    """How pseudo-words of one language are built and punctuated."""

    consonants: str
    vowels: str
    chars_per_s: float = 15.0
    word_sep: str = " "
    comma: str = ","
    stop: str = "."
    question: str = "?"
    cased: bool = True
    syllables: tuple[int, int] = (1, 3)  # per word, inclusive
    kind: str = "alphabet"  # "alphabet", "hangul", "logogram"


_LATIN_C = "bcdfghklmnprstvz"
_LATIN_V = "aeiou"
SCRIPTS: dict[str, Script] = {
    "en": Script(_LATIN_C + "wy", _LATIN_V),
    "es": Script(_LATIN_C + "ñ", _LATIN_V + "áéíó"),
    "fr": Script(_LATIN_C + "ç", _LATIN_V + "éèàê"),
    "de": Script(_LATIN_C + "w", _LATIN_V + "äöü"),
    "pt": Script(_LATIN_C + "ç", _LATIN_V + "ãõáé"),
    "it": Script(_LATIN_C, _LATIN_V + "àèò"),
    "id": Script(_LATIN_C + "j", _LATIN_V),
    "vi": Script(_LATIN_C, _LATIN_V + "ăâêôơưạảá"),
    "tr": Script(_LATIN_C + "şğç", _LATIN_V + "ıöü"),
    "ru": Script("бвгдзклмнпрстфхчш", "аеиоуыя"),
    "el": Script("βγδζθκλμνξπρστφχ", "αεηιουω", question=";"),
    "ar": Script("بتجحدرزسشصطعفقكلمنهوي", "اوي", comma="،", question="؟", cased=False),
    "hi": Script(
        "कखगचजटडतदनपबमयरलवसह", "ािीुेो", stop="।", question="?", cased=False, syllables=(1, 2)
    ),
    "th": Script(
        "กขคงจชดตทนบปพมยรลวสห", "ะาิีุู", word_sep="", comma=" ", stop=" ", question=" ",
        cased=False, chars_per_s=12.0, syllables=(1, 2),
    ),
    "ko": Script(
        "", "", chars_per_s=7.0, cased=False, syllables=(1, 3), kind="hangul"
    ),
    "zh": Script(_HANZI, "", chars_per_s=5.0, word_sep="", comma="，", stop="。", question="？",
                 cased=False, syllables=(1, 2), kind="logogram"),
    "yue": Script(_HANZI + _CANTONESE, "", chars_per_s=5.0, word_sep="", comma="，", stop="。",
                  question="？", cased=False, syllables=(1, 2), kind="logogram"),
    "ja": Script(_HANZI[:80] + _HIRAGANA * 2, "", chars_per_s=5.0, word_sep="", comma="、",
                 stop="。", question="？", cased=False, syllables=(1, 3), kind="logogram"),
}


def _pick(rng: np.random.Generator, chars: str) -> str:
    return chars[int(rng.integers(len(chars)))]


def _hangul(rng: np.random.Generator) -> str:
    lead, vowel = int(rng.integers(19)), int(rng.integers(21))
    tail = int(rng.integers(28)) if rng.random() < 0.4 else 0
    return chr(0xAC00 + (lead * 21 + vowel) * 28 + tail)


def _word(rng: np.random.Generator, script: Script) -> str:
    lo, hi = script.syllables
    parts: list[str] = []
    for _ in range(int(rng.integers(lo, hi + 1))):
        if script.kind == "hangul":
            parts.append(_hangul(rng))
        elif script.kind == "logogram":
            parts.append(_pick(rng, script.consonants))
        else:
            parts.append(_pick(rng, script.consonants) + _pick(rng, script.vowels))
            if rng.random() < 0.25:
                parts.append(_pick(rng, script.consonants))
    return "".join(parts)


def pseudo_text(rng: np.random.Generator, lang: str, speech_ms: int) -> str:
    """Sentences of pseudo-words in ``lang``'s script, about ``chars_per_s`` x duration long."""
    script = SCRIPTS[lang]
    target = max(2, round(script.chars_per_s * speech_ms / 1000))
    sentences: list[str] = []
    length = 0
    while length < target:
        words: list[str] = []
        n_words = int(rng.integers(3, 10))
        while len(words) < n_words and length + len(script.word_sep.join(words)) < target:
            word = _word(rng, script)
            if words and rng.random() < 0.15:
                words[-1] += script.comma
            words.append(word)
        end = script.question if rng.random() < 0.15 else script.stop
        sentence = script.word_sep.join(words) + end
        if script.cased:
            sentence = sentence[0].upper() + sentence[1:]
        sentences.append(sentence.strip())
        length += len(sentences[-1]) + 1
    joiner = "" if script.kind == "logogram" else " "
    return joiner.join(sentences)


def text_pieces(text: str, rng: np.random.Generator) -> list[str]:
    """Split ``text`` into token-like stream pieces whose concatenation is ``text``."""
    pieces: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == " " or text[i].isascii() or not _is_logogram(text[i]):
            j = text.find(" ", i + 1)
            j = len(text) if j < 0 else j
            j = min(j, i + 8)
        else:
            j = min(len(text), i + int(rng.integers(1, 4)))
        pieces.append(text[i:j])
        i = j
    return pieces


def _is_logogram(ch: str) -> bool:
    return "\u3000" <= ch <= "\u9fff" or "\uac00" <= ch <= "\ud7af"


def text_tokens(text: str) -> int:
    """Output text tokens: a quarter of the UTF-8 bytes, rounded up (at least 1)."""
    return max(1, -(-len(text.encode("utf-8")) // 4))
