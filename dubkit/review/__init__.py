"""The review page ``<stem>.<lang>.review.html``: see and hear every utterance of a dub.

:func:`review_html` is pure: a manifest (the data of ``<stem>.<lang>.dubkit.json``) in,
one self-contained HTML page out. The page's script and styles are inline, it loads
nothing from the network, and it plays the media files beside it by relative URL. Each
row's translation, voice and skip can be edited in it, and the edited manifest saved (a
download) for ``dubkit redo``; so the page carries what a redo needs of the manifest.
The manifest's data goes in as JSON inside ``<script type="application/json">`` with
``<``, ``>`` and ``&`` escaped, and the page's script shows text with ``textContent``
only, so a translation reading ``</script>`` stays text.

>>> page = review_html({"input": "a</script>.mp4", "utterances": []})
>>> "a</script>" in page, "a\\\\u003c/script\\\\u003e.mp4" in page
(False, True)
"""

from __future__ import annotations

import json
import logging
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

from dubkit.errors import InputError
from dubkit.files import write_text_atomic

log = logging.getLogger(__name__)

MARKER = "__DUBKIT_REVIEW_DATA__"
#: Utterance keys the page uses; anything else in the manifest stays out of the page.
UTTERANCE_KEYS = (
    "index", "start_ms", "end_ms", "status", "text", "source_text", "attempts", "error", "cached",
    "dub", "cues", "speaker", "gender", "f0_hz", "voice", "skip", "text_edited",
)  # fmt: skip
HEADER_KEYS = (
    "dubkit", "created", "input", "duration_ms", "has_video", "engine", "target", "source",
    "voice", "voices", "options", "totals", "cost", "envelope", "schema", "voices_written",
    "outputs", "files",
)  # fmt: skip


def review_path(manifest: Path) -> Path:
    """``<stem>.<lang>.review.html`` beside ``<stem>.<lang>.dubkit.json``."""
    name = manifest.name
    stem = name[: -len(".dubkit.json")] if name.endswith(".dubkit.json") else manifest.stem
    return manifest.with_name(f"{stem}.review.html")


def page_data(manifest: dict[str, Any]) -> dict[str, Any]:
    """What the page needs from ``manifest``: the header, the utterances, file URLs."""
    data = {k: manifest[k] for k in HEADER_KEYS if k in manifest}
    data["utterances"] = [
        {k: u[k] for k in UTTERANCE_KEYS if k in u} for u in manifest.get("utterances", [])
    ]
    files = manifest.get("files") or {}
    outputs = manifest.get("outputs") or {}
    media = files.get("media") or _name(outputs.get("media"))
    data["urls"] = {
        "media": _url(media),
        "input": _url(files.get("input")),
    }
    data["voice_choices"] = _voices(manifest.get("target"))
    return data


def review_html(manifest: dict[str, Any]) -> str:
    """The review page for ``manifest``, as one HTML string."""
    template = resources.files("dubkit.review").joinpath("page.html").read_text(encoding="utf-8")
    payload = json.dumps(page_data(manifest), ensure_ascii=False, separators=(",", ":"))
    payload = payload.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
    before, marker, after = template.partition(MARKER)
    if not marker:
        raise RuntimeError("review.html has no data marker")  # a packaging fault, not input
    return before + payload + after


def write_review(path: Path, manifest: dict[str, Any]) -> Path:
    """Write the page for ``manifest`` to ``path`` atomically."""
    write_text_atomic(path, review_html(manifest))
    log.debug("wrote the review page %s", path)
    return path


def load_manifest(path: Path) -> dict[str, Any]:
    """Read a ``.dubkit.json`` manifest, refusing anything else with one clear line naming
    the field at fault (see :mod:`dubkit.pipeline.manifest_schema`)."""
    from dubkit.pipeline.manifest_schema import read_manifest

    return read_manifest(path)


def pages(manifest: dict[str, Any], path: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Each review page of the manifest at ``path`` and its data: one, or one per language
    of a run into several (``<stem>.<lang>.review.html``, where the run wrote it). Every page
    goes beside the manifest, under a ``*.review.html`` name, never over the manifest itself
    nor twice in one call (the manifest is expected validated, as :func:`load_manifest`
    does)."""
    sections = manifest.get("languages")
    if not sections:
        out = [(review_path(path), manifest)]
    else:
        out = []
        stem = path.name.removesuffix(".dubkit.json").removesuffix(".dub").removesuffix(".subs")
        for section in sections:
            data = {**section, "envelope": manifest.get("envelope")}
            written = (section.get("outputs") or {}).get("review")
            name = written.replace("\\", "/").rsplit("/", 1)[-1] if written else ""
            name = name or f"{stem}.{section.get('target')}.review.html"
            out.append((path.with_name(name), data))
    seen: set[Path] = set()
    for page, _ in out:
        if page.resolve() == path.resolve() or page.resolve() in seen:
            what = "the manifest itself" if page.resolve() == path.resolve() else "twice"
            raise InputError(f"refusing to write the review page {page.name} over {what}",
                             path=path)  # fmt: skip
        seen.add(page.resolve())
    return out


def _voices(target: object) -> list[str]:
    """The voices the page offers for ``target`` (none for an unknown language)."""
    from dubkit.errors import ConfigError
    from dubkit.languages import resolve

    try:
        return list(resolve(str(target)).voices) if target else []
    except ConfigError:
        return []


def _name(path: str | None) -> str | None:
    return Path(path).name if path else None


def _url(relative: str | None) -> str | None:
    return quote(relative) if relative else None
