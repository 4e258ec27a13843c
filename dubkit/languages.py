"""The languages and voices of qwen3-livetranslate-flash, and how users name them.

A language is accepted as its code (``es``), its English name in any case
(``Spanish``) or its ISO 639-2 code (``spa``). Codes are what goes on the wire.
"""

from __future__ import annotations

from dataclasses import dataclass

from dubkit.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Language:
    code: str  # the code the service takes
    name: str  # English name
    iso639_2: str  # three-letter tag written into media files
    can_dub: bool  # audio output available
    voices: tuple[str, ...]
    max_line_chars: int = 42  # Netflix per-line limit


_MULTI = ("Cherry", "Nofish", "Ethan")
_ZH = ("Cherry", "Nofish", "Ethan", "Jada", "Dylan", "Sunny", "Peter", "Eric")

LANGUAGES: tuple[Language, ...] = (
    Language("en", "English", "eng", True, _MULTI),
    Language("zh", "Chinese", "zho", True, _ZH, 16),
    Language("ru", "Russian", "rus", True, _MULTI),
    Language("fr", "French", "fra", True, _MULTI),
    Language("de", "German", "deu", True, _MULTI),
    Language("pt", "Portuguese", "por", True, _MULTI),
    Language("es", "Spanish", "spa", True, _MULTI),
    Language("it", "Italian", "ita", True, _MULTI),
    Language("ko", "Korean", "kor", True, _MULTI, 16),
    Language("ja", "Japanese", "jpn", True, _MULTI, 13),
    Language("yue", "Cantonese", "yue", True, ("Kiki",), 16),
    Language("id", "Indonesian", "ind", False, ()),
    Language("vi", "Vietnamese", "vie", False, ()),
    Language("th", "Thai", "tha", False, ()),
    Language("ar", "Arabic", "ara", False, ()),
    Language("hi", "Hindi", "hin", False, ()),
    Language("el", "Greek", "ell", False, ()),
    Language("tr", "Turkish", "tur", False, ()),
)

#: Every voice the service documents, with the languages it speaks.
VOICES: dict[str, tuple[str, ...]] = {}
for _lang in LANGUAGES:
    for _voice in _lang.voices:
        VOICES.setdefault(_voice, ())
        VOICES[_voice] = (*VOICES[_voice], _lang.code)

DEFAULT_VOICE = "Cherry"

#: Whose voice each service voice is: "male" or "female".
VOICE_GENDER: dict[str, str] = {
    "Cherry": "female", "Nofish": "male", "Ethan": "male", "Jada": "female", "Dylan": "male",
    "Sunny": "female", "Peter": "male", "Eric": "male", "Kiki": "female",
}  # fmt: skip
#: A voice the service may not know yet (Ethan is only in the newest documents), and the voice
#: of the same gender the cloud engine uses when the service refuses it.
FALLBACK_VOICES: dict[str, str] = {"Ethan": "Nofish"}

_ALIASES: dict[str, Language] = {}
for _lang in LANGUAGES:
    for _alias in (_lang.code, _lang.name.lower(), _lang.iso639_2):
        _ALIASES[_alias] = _lang
# Common alternatives users type.
for _alias, _code in {
    "chi": "zh",
    "ger": "de",
    "fre": "fr",
    "gre": "el",
    "zh-cn": "zh",
    "zh-hans": "zh",
    "mandarin": "zh",
    "pt-br": "pt",
    "jp": "ja",
    "kr": "ko",
    "cn": "zh",
    "ind": "id",
}.items():
    _ALIASES[_alias] = next(lg for lg in LANGUAGES if lg.code == _code)


def resolve(name: str) -> Language:
    """The language a user means by ``name``, or a :class:`ConfigError` listing the choices."""
    lang = _ALIASES.get(name.strip().lower())
    if lang is None:
        choices = ", ".join(f"{lg.code} ({lg.name})" for lg in LANGUAGES)
        raise ConfigError(f"unknown language {name!r}; supported: {choices}")
    return lang


def resolve_dub_target(name: str) -> Language:
    """Like :func:`resolve`, but refuses a language the service cannot speak."""
    lang = resolve(name)
    if not lang.can_dub:
        dubbable = ", ".join(lg.code for lg in LANGUAGES if lg.can_dub)
        raise ConfigError(
            f"{lang.name} ({lang.code}) has text output only and cannot be dubbed; "
            f"use `dubkit subs`, or `--subs-only {lang.code}` beside the dubs, for its "
            f"subtitles, or dub into one of: {dubbable}"
        )
    return lang


def resolve_voice(voice: str | None, target: Language) -> str:
    """The voice to use for ``target``: checked, with the matching spelling."""
    if voice is None:
        return DEFAULT_VOICE if DEFAULT_VOICE in target.voices else target.voices[0]
    match = next((v for v in VOICES if v.lower() == voice.strip().lower()), None)
    if match is None or match not in target.voices:
        raise ConfigError(
            f"voice {voice!r} does not speak {target.name}; "
            f"voices for {target.code}: {', '.join(target.voices)}"
        )
    return match
