"""Redo a dub from its edited manifest (:func:`redo`, ``dubkit redo``): every output
written again, only the utterances whose request changed sent again.

What a user may edit, per utterance of ``utterances``: ``text`` (the subtitles' text; the
speech stays), ``voice`` (requested again in that voice), ``start_ms``/``end_ms``
(requested again for that span), ``"skip": true`` (not dubbed: the original plays, no cue);
utterances may be removed or added (``start_ms``, ``end_ms``, optional ``voice``,
``speaker``). At the top, ``voices`` (``{"S1": "Ethan"}``) re-voices a speaker. Every
unchanged request is answered by the cache, bit for bit as before.

A manifest edited into nonsense is refused before anything is read or written, with one
line naming the utterance and the field (:class:`InputError`, or :class:`ConfigError`
for a voice the target language does not have).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from dubkit import media
from dubkit.errors import ConfigError, InputError
from dubkit.fit import FitOptions
from dubkit.languages import resolve, resolve_voice
from dubkit.mix import MixOptions
from dubkit.pipeline.given import Given, GivenUtterance
from dubkit.pipeline.options import Options, Progress, Result
from dubkit.subtitles import SubtitleOptions
from dubkit.translate.protocol import Translator
from dubkit.types import Utterance


@dataclasses.dataclass(frozen=True, slots=True)
class RedoPlan:
    """What a redo does: the input, the options the dub was made with, its utterances."""

    input: Path
    options: Options
    given: Given


def redo(
    manifest: str | Path,
    translator: Translator,
    *,
    cache_dir: Path | None = None,
    concurrency: int = 4,
    progress: Progress | None = None,
) -> Result:
    """Write the dub of the edited ``manifest`` again: dubbed media, subtitles, manifest,
    review page, where the dub wrote them. With the ``cache_dir`` of the first run, only
    the utterances whose request changed (span, voice) are sent.
    """
    from dubkit.pipeline.dubbing import dub

    plan = plan_redo(Path(manifest), cache_dir=cache_dir, concurrency=concurrency)
    return dub(plan.input, plan.options, translator, progress=progress, given=plan.given)


def plan_redo(
    manifest: Path, *, cache_dir: Path | None = None, concurrency: int = 4
) -> RedoPlan:
    """Read and check ``manifest``: the input, the options and the utterances of its redo."""
    from dubkit.review import load_manifest

    data = load_manifest(manifest)
    if data.get("languages") is not None:
        raise InputError("redo takes a one-language manifest (this one has several)", path=manifest)
    target = _field(data, "target", str, manifest)
    lang = resolve(target)
    source = _input(data, manifest)
    duration_ms = media.probe(source).duration_ms

    def voice_of(v: str) -> str:
        return resolve_voice(v, lang)

    voices = _voice_map(data, "voices", voice_of, manifest)
    written = _voice_map(data, "voices_written", str, manifest) if "voices_written" in data else {}
    items = [
        _item(k, u, duration_ms, written or voices, voice_of, manifest)
        for k, u in enumerate(data["utterances"])
    ]
    ordered = sorted(enumerate(items), key=lambda p: p[1].utterance.start_ms)
    for (i, a), (j, b) in itertools.pairwise(ordered):
        if b.utterance.start_ms < a.utterance.end_ms:
            raise InputError(
                f"utterances[{j}].start_ms: {b.utterance.start_ms} is inside utterances[{i}] "
                f"[{a.utterance.start_ms}, {a.utterance.end_ms}) ms (utterances may not overlap)",
                path=manifest,
            )
    given = Given(tuple(g for _, g in ordered))
    if not given.active:
        raise InputError("utterances: every utterance is skipped, nothing to dub", path=manifest)
    options = _options(data, voices, cache_dir, concurrency, manifest)
    return RedoPlan(source, options, given)


def _input(data: Mapping[str, Any], manifest: Path) -> Path:
    """The dubbed input: where the manifest says, else relative to the manifest's folder."""
    path = Path(_field(data, "input", str, manifest))
    if path.exists():
        return path
    files = data.get("files")
    rel = files.get("input") if isinstance(files, dict) else None
    if isinstance(rel, str) and (manifest.parent / rel).exists():
        return manifest.parent / rel
    raise InputError(f"input: {path} is missing (the manifest's input file)", path=manifest)


def _options(
    data: Mapping[str, Any],
    voices: dict[str, str],
    cache_dir: Path | None,
    concurrency: int,
    manifest: Path,
) -> Options:
    """The options the dub was made with, as its manifest records them."""
    outputs = _field(data, "outputs", dict, manifest)
    media_out, subs, review = outputs.get("media"), outputs.get("subtitles"), outputs.get("review")
    if not isinstance(media_out, str) or not isinstance(subs, list) or not subs:
        raise InputError("outputs: not a dub's manifest (no dubbed media)", path=manifest)
    found = data.get("options")
    opts: dict[str, Any] = found if isinstance(found, dict) else {}
    out = Path(media_out)
    container = out.suffix.lstrip(".").lower() if data.get("has_video") else None
    fit = FitOptions()
    try:
        return Options(
            target=data["target"], source=data.get("source"),
            voice=str(data.get("voice") or "auto"), voices=tuple(voices.items()),
            out_dir=out.parent, formats=tuple(Path(str(s)).suffix.lstrip(".") for s in subs),
            concurrency=concurrency, cache_dir=cache_dir, visual=bool(opts.get("visual", False)),
            review=review is not None, track=opts.get("track"),
            container=container if container in ("mp4", "mkv", "mov", "ts") else None,
            audio_bitrate=opts.get("audio_bitrate"),
            faststart=opts.get("faststart") is True,
            keep_original=bool(opts.get("keep_original", True)),
            fit=FitOptions(
                max_ratio=float(opts.get("max_ratio", fit.max_ratio)),
                hard_max_ratio=float(opts.get("hard_max_ratio", fit.hard_max_ratio)),
            ),
            mix=MixOptions(mode=str(opts.get("mix", MixOptions().mode))),
            subtitles=SubtitleOptions(
                target_cps=float(opts.get("target_cps", SubtitleOptions().target_cps))
            ),
        )  # fmt: skip
    except (TypeError, ValueError) as e:
        raise InputError(f"options: {e}", path=manifest) from e


def _item(
    k: int,
    u: Mapping[str, Any],
    duration_ms: int,
    written: Mapping[str, str],
    voice_of: Callable[[str], str],
    manifest: Path,
) -> GivenUtterance:
    """Utterance ``k`` of the manifest, checked; its voice kept only where the user
    changed it (else its speaker's, from ``voices``)."""
    where = f"utterances[{k}]"
    start = _field(u, "start_ms", int, manifest, where)
    end = _field(u, "end_ms", int, manifest, where)
    if not 0 <= start < end <= duration_ms:
        field = "start_ms" if not 0 <= start < duration_ms else "end_ms"
        raise InputError(
            f"{where}.{field}: [{start}, {end}) ms is not a span inside the media "
            f"(0 to {duration_ms} ms)",
            path=manifest,
        )
    skip = _field(u, "skip", bool, manifest, where, default=False)
    text = _field(u, "text", str, manifest, where, default=None)
    speaker = _field(u, "speaker", str, manifest, where, default=None)
    voice = _field(u, "voice", str, manifest, where, default=None)
    if voice is not None:
        try:
            voice = voice_of(voice)
        except ConfigError as e:
            raise ConfigError(f"{where}.voice: {e.reason}", path=manifest) from e
        if speaker is not None and written.get(speaker) == voice:
            voice = None  # not changed: it follows its speaker's voice in `voices`
    gender = u.get("gender") if isinstance(u.get("gender"), str) else None
    return GivenUtterance(Utterance(start, end), voice, text, speaker, skip, gender)


def _voice_map(
    data: Mapping[str, Any], name: str, check: Callable[[str], str], manifest: Path
) -> dict[str, str]:
    value = data.get(name, {})
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise InputError(f"{name}: not a map of speakers to voices", path=manifest)
    try:
        return {k: check(v) for k, v in value.items()}
    except ConfigError as e:
        raise ConfigError(f"{name}: {e.reason}", path=manifest) from e


_MISSING = object()


def _field(
    data: Mapping[str, Any],
    name: str,
    kind: type,
    manifest: Path,
    where: str = "",
    default: Any = _MISSING,
) -> Any:
    """``data[name]``, of type ``kind`` (a bool is no int); ``default`` where it is absent
    or null, when there is one."""
    value = data.get(name)
    label = f"{where}.{name}" if where else name
    if value is None:
        if default is not _MISSING:
            return default
        raise InputError(f"{label}: missing", path=manifest)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InputError(
            f"{label}: {value!r} is not {'a whole number' if kind is int else kind.__name__}",
            path=manifest,
        )
    return value
