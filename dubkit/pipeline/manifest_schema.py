"""What a ``.dubkit.json`` manifest may hold, checked before anything is built from it.

``dubkit review`` (and ``dubkit redo``) read manifests that users edit by hand and that
may come from elsewhere. :func:`read_manifest` parses one (no ``NaN``/``Infinity``, no
nesting deep enough to exhaust the stack) and :func:`validate` checks it field by field:
types, ranges, finite numbers, ``end_ms`` not before ``start_ms``, and names that stay
beside the manifest (a review page is a bare ``*.review.html`` name, a target a language
code). The first problem refuses the manifest with one line naming the field, as an
:class:`ManifestError` (exit status 2). Keys the schema does not know are left alone.

>>> try:
...     validate({"dubkit": "1", "utterances": [{"start_ms": 5, "end_ms": 2}]})
... except ManifestError as e:
...     print(e.field, "|", e.reason)
utterances[0].end_ms | not a dubkit manifest: utterances[0].end_ms: 2 is before start_ms (5)
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from dubkit.errors import InputError

#: The longest media a manifest may describe: 2**31 - 1 ms, about 24.8 days.
MAX_MS = 2**31 - 1
MAX_COUNT = 2**53  # tokens, attempts, indexes: exact in a JSON number
MAX_TEXT = 1_000_000  # characters of one string
PAGE_SUFFIX = ".review.html"
NAME_MAX = 255  # bytes of one file name (ext4, APFS, NTFS)
LANGUAGE_CODE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{1,8}){0,2}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

Check = Callable[[Any, str], None]


class ManifestError(InputError):
    """A manifest that cannot be used: ``field`` names where (``utterances[3].dub.ratio``)."""

    def __init__(self, problem: str, *, field: str = "", path: str | Path | None = None) -> None:
        self.field = field
        where = f"{field}: " if field else ""
        super().__init__(f"not a dubkit manifest: {where}{problem}", path=path)


class _Bad(Exception):
    def __init__(self, field: str, problem: str) -> None:
        super().__init__(problem)
        self.field = field
        self.problem = problem


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=True) if not isinstance(value, dict | list) else ""
    return text[:40] + "..." if len(text) > 40 else text or type(value).__name__


# ---------------------------------------------------------------- checkers


def integer(lo: int = 0, hi: int = MAX_COUNT) -> Check:
    def check(v: Any, at: str) -> None:
        if isinstance(v, bool) or not isinstance(v, int):
            raise _Bad(at, f"must be a whole number, not {_show(v)}")
        if not lo <= v <= hi:
            raise _Bad(at, f"{v} is out of range [{lo}, {hi}]")

    return check


def number(lo: float, hi: float) -> Check:
    def check(v: Any, at: str) -> None:
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise _Bad(at, f"must be a number, not {_show(v)}")
        if not math.isfinite(v) or not lo <= v <= hi:
            raise _Bad(at, f"{_show(v)} is out of range [{lo:g}, {hi:g}]")

    return check


def string(max_len: int = MAX_TEXT, *, pattern: re.Pattern[str] | None = None) -> Check:
    def check(v: Any, at: str) -> None:
        if not isinstance(v, str):
            raise _Bad(at, f"must be a string, not {_show(v)}")
        if len(v) > max_len:
            raise _Bad(at, f"is longer than {max_len} characters")
        if pattern is not None and not pattern.fullmatch(v):
            raise _Bad(at, f"{_show(v)} is not a language code")

    return check


def boolean(v: Any, at: str) -> None:
    if not isinstance(v, bool):
        raise _Bad(at, f"must be true or false, not {_show(v)}")


def optional(check: Check) -> Check:
    def opt(v: Any, at: str) -> None:
        if v is not None:
            check(v, at)

    return opt


def array(item: Check, max_items: int = MAX_COUNT) -> Check:
    def check(v: Any, at: str) -> None:
        if not isinstance(v, list):
            raise _Bad(at, f"must be a list, not {_show(v)}")
        if len(v) > max_items:
            raise _Bad(at, f"has more than {max_items} items")
        for i, x in enumerate(v):
            item(x, f"{at}[{i}]")

    return check


def obj(fields: Mapping[str, Check], required: tuple[str, ...] = ()) -> Check:
    """An object whose listed ``fields`` pass their checks (unknown keys are left alone)."""

    def check(v: Any, at: str) -> None:
        if not isinstance(v, dict):
            raise _Bad(at, f"must be an object, not {_show(v)}")
        prefix = f"{at}." if at else ""
        for name in required:
            if name not in v:
                raise _Bad(f"{prefix}{name}", "is missing")
        for name, field_check in fields.items():
            if name in v:
                field_check(v[name], f"{prefix}{name}")

    return check


def mapping(value: Check) -> Check:
    """An object of string keys (at most 200 characters) to ``value``s."""

    def check(v: Any, at: str) -> None:
        if not isinstance(v, dict):
            raise _Bad(at, f"must be an object, not {_show(v)}")
        for k, x in v.items():
            if len(k) > 200:
                raise _Bad(at, "has a key longer than 200 characters")
            value(x, f"{at}.{k}")

    return check


def page_name(v: Any, at: str) -> None:
    """A review page's name (the folder part is ignored: pages go beside the manifest)."""
    string(4096)(v, at)
    name = v.replace("\\", "/").rsplit("/", 1)[-1]
    if not name.endswith(PAGE_SUFFIX) or name == PAGE_SUFFIX or name.startswith("."):
        raise _Bad(at, f"{_show(v)} is not a review page name (<stem>.<lang>{PAGE_SUFFIX})")
    if _CONTROL.search(name) or len(name.encode("utf-8", "surrogatepass")) > NAME_MAX:
        raise _Bad(at, f"{_show(v)} is not a usable file name")


def relative_url(v: Any, at: str) -> None:
    """A file the page plays, relative to the manifest's folder."""
    string(4096)(v, at)
    if not v or v.startswith(("/", "\\")) or ":" in v.split("/", 1)[0] or _CONTROL.search(v):
        raise _Bad(at, f"{_show(v)} is not a path relative to the manifest")


# ---------------------------------------------------------------- the schema

MS = integer(0, MAX_MS)
TEXT = string()
SHORT = string(200)
COUNT = integer()
RATIO = number(0.0, 1000.0)
USAGE = mapping(COUNT)
CUE = obj({"start_ms": MS, "end_ms": MS, "text": TEXT}, ("start_ms", "end_ms", "text"))
DUB = obj(
    {"start_ms": MS, "end_ms": MS, "slot_end_ms": MS, "clip_ms": MS, "ratio": RATIO,
     "rule": SHORT, "cut_ms": MS},
    ("start_ms", "end_ms", "ratio"),
)  # fmt: skip
UTTERANCE = obj(
    {"index": COUNT, "start_ms": MS, "end_ms": MS, "status": SHORT, "text": optional(TEXT),
     "cached": boolean, "attempts": COUNT, "error": optional(TEXT), "usage": optional(USAGE),
     "cues": array(CUE), "speaker": optional(SHORT), "gender": optional(SHORT),
     "f0_hz": optional(number(0.0, 100_000.0)), "voice": optional(SHORT), "dub": optional(DUB)},
    ("start_ms", "end_ms"),
)  # fmt: skip
OPTIONS = obj(
    {"max_ratio": RATIO, "hard_max_ratio": RATIO, "mix": optional(SHORT),
     "keep_original": boolean, "track": optional(SHORT), "dub_track": integer(0, 1000),
     "original_track": integer(0, 1000), "target_cps": number(0.0, 1000.0)}
)  # fmt: skip
ENVELOPE = obj({"bin_ms": integer(1, MAX_MS), "peaks": array(number(0.0, 1.0e6))}, ("peaks",))
TOTALS = obj(
    {"usage": USAGE, "max_ratio": RATIO,
     **{k: COUNT for k in ("utterances", "translated", "empty", "failed", "cached", "sped_up",
                           "borrowed", "over_cap", "cut", "cues")}}
)  # fmt: skip
HEADER: dict[str, Check] = {
    "dubkit": SHORT, "schema": integer(0, 1000), "created": optional(SHORT),
    "input": optional(string(4096)), "duration_ms": MS, "has_video": boolean,
    "engine": optional(SHORT), "source": optional(SHORT), "voice": optional(SHORT),
    "envelope": optional(ENVELOPE),
}  # fmt: skip
SECTION = obj(
    {**HEADER, "target": string(40, pattern=LANGUAGE_CODE), "voices": mapping(SHORT),
     "outputs": obj({"media": optional(string(4096)), "subtitles": array(string(4096)),
                     "review": optional(page_name)}),
     "files": obj({"input": optional(relative_url), "media": optional(relative_url)}),
     "options": OPTIONS, "cost": mapping(COUNT), "totals": TOTALS,
     "utterances": array(UTTERANCE)},
    ("utterances",),
)  # fmt: skip
SEVERAL = obj(
    {**HEADER, "targets": array(string(40, pattern=LANGUAGE_CODE)),
     "languages": array(SECTION, 1000)},
    ("languages",),
)  # fmt: skip


def _spans(section: dict[str, Any], at: str, duration_ms: Any) -> None:
    """Each utterance, cue and dub ends at or after its start."""
    for i, u in enumerate(section["utterances"]):
        here = f"{at}utterances[{i}]"
        parts = [(here, u), *((f"{here}.cues[{k}]", c) for k, c in enumerate(u.get("cues", [])))]
        if isinstance(u.get("dub"), dict):
            parts.append((f"{here}.dub", u["dub"]))
        for where, span in parts:
            if "end_ms" in span and span["end_ms"] < span.get("start_ms", 0):
                raise _Bad(f"{where}.end_ms", f"{span['end_ms']} is before start_ms "
                                              f"({span['start_ms']})")  # fmt: skip
        if isinstance(duration_ms, int) and u["start_ms"] > duration_ms:
            raise _Bad(f"{here}.start_ms", f"{u['start_ms']} is past duration_ms ({duration_ms})")


def sections(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Each language's section of a validated manifest: the manifest itself, or each of a
    run into several languages' ``languages``."""
    several = data.get("languages")
    return list(several) if isinstance(several, list) else [data]


def validate(data: Any, path: str | Path | None = None) -> dict[str, Any]:
    """``data`` if it is a usable manifest, else :class:`ManifestError` naming the field."""
    try:
        if not isinstance(data, dict):
            raise _Bad("", "not a JSON object")
        if "dubkit" not in data:
            raise _Bad("dubkit", "is missing (no dubkit version)")
        several = "languages" in data
        (SEVERAL if several else SECTION)(data, "")
        if several and not data["languages"]:
            raise _Bad("languages", "is empty")
        for k, section in enumerate(sections(data)):
            at = f"languages[{k}]." if several else ""
            _spans(section, at, section.get("duration_ms", data.get("duration_ms")))
    except _Bad as bad:
        raise ManifestError(bad.problem, field=bad.field, path=path) from None
    return data


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def parse(text: str, path: str | Path | None = None) -> Any:
    """JSON ``text`` as data: finite numbers only, nesting the stack can hold."""
    try:
        return json.loads(text, parse_float=_finite, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"bad JSON ({exc.msg}, line {exc.lineno})", path=path) from exc
    except ValueError as exc:  # _finite, _no_constant, or an integer of too many digits
        raise ManifestError(f"bad JSON ({exc})", path=path) from exc
    except RecursionError as exc:
        raise ManifestError("bad JSON (nested too deeply)", path=path) from exc


def read_manifest(path: Path) -> dict[str, Any]:
    """Read, parse and :func:`validate` the manifest at ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise InputError("no such manifest", path=path) from exc
    except IsADirectoryError as exc:
        raise InputError("is a directory, not a manifest", path=path) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the manifest ({exc})", path=path) from exc
    return validate(parse(text, path), path)
