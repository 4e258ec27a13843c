"""Redo a dub from its edited manifest (:func:`redo`, ``dubkit redo``): every output
written again, only the utterances whose request changed sent again.

What a user may edit, per utterance of ``utterances``: ``text`` (the subtitles' text; the
speech stays), ``voice`` (requested again in that voice), ``start_ms``/``end_ms``
(requested again for that span), ``"skip": true`` (not dubbed: the original plays, no cue);
utterances may be removed or added (``start_ms``, ``end_ms``, optional ``voice``,
``speaker``). At the top, ``voices`` (``{"S1": "Ethan"}``) re-voices a speaker. Every
unchanged request is answered by the cache, bit for bit as before.

A dub in several languages (one ``<stem>.dub.<ext>``) is redone whole, from its own
manifest or from its languages' manifests (each saved from its review page), the languages
not given read from its own manifest: each language's voices, texts and skips are its own,
and the spans are shared (a span edited in one language is requested in every language).

A manifest edited into nonsense is refused before anything is read or written, with one
line naming the utterance and the field (:class:`InputError`, or :class:`ConfigError`
for a voice the target language does not have).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from dubkit import media
from dubkit.errors import ConfigError, InputError
from dubkit.fit import FitOptions
from dubkit.languages import resolve, resolve_voice
from dubkit.mix import MixOptions
from dubkit.pipeline.given import Given, GivenUtterance
from dubkit.pipeline.options import Options, Progress, Result
from dubkit.pipeline.outputs import SEVERAL_DUBBED
from dubkit.subtitles import SubtitleOptions
from dubkit.translate.protocol import Translator
from dubkit.types import Utterance


@dataclasses.dataclass(frozen=True, slots=True)
class RedoPlan:
    """What a redo does: the input, the options the dub was made with, its utterances; for
    a dub in several languages, its dubbed languages and its subtitled-only ones."""

    input: Path
    options: Options
    given: Given
    targets: tuple[str, ...] | None = None  # None: a dub in one language
    subtitle_only: tuple[str, ...] = ()


def redo(
    manifest: str | Path | Sequence[str | Path],
    translator: Translator,
    *,
    cache_dir: Path | None = None,
    concurrency: int = 4,
    progress: Progress | None = None,
) -> Result | tuple[Result, ...]:
    """Write the dub of the edited ``manifest`` again: dubbed media, subtitles, manifest,
    review page, where the dub wrote them. With the ``cache_dir`` of the first run, only
    the utterances whose request changed (span, voice) are sent.

    A dub in several languages (one ``<stem>.dub.<ext>``) is written again whole, one
    :class:`Result` per language: ``manifest`` is its ``<stem>.dub.dubkit.json``, or one or
    more of its languages' manifests (saved from their review pages), the other languages
    read from the dub's own manifest as it is. The languages share one timeline: the spans
    are the given manifests' (which must agree), and the others follow them.
    """
    from dubkit.pipeline.dubbing import dub

    paths = [Path(manifest)] if isinstance(manifest, str | Path) else [Path(m) for m in manifest]
    plan = plan_redo(paths, cache_dir=cache_dir, concurrency=concurrency)
    if plan.targets is None:
        return dub(plan.input, plan.options, translator, progress=progress, given=plan.given)
    return dub(
        plan.input, plan.options, translator, targets=plan.targets,
        subtitle_only=plan.subtitle_only, progress=progress, given=plan.given,
    )  # fmt: skip


def plan_redo(
    manifest: Path | Sequence[Path], *, cache_dir: Path | None = None, concurrency: int = 4
) -> RedoPlan:
    """Read and check ``manifest`` (or the manifests of one dub in several languages): the
    input, the options and the utterances of its redo."""
    from dubkit.review import load_manifest

    paths = [manifest] if isinstance(manifest, Path) else list(manifest)
    if not paths:
        raise ValueError("no manifest to redo")
    loaded = [(p, load_manifest(p)) for p in paths]
    joint = _joint_of(loaded)
    if joint is None:
        if len(loaded) > 1:
            raise InputError(
                "redo takes one manifest, or several of one dub in several languages",
                path=paths[1],
            )  # fmt: skip
        return _plan_one(*loaded[0], cache_dir, concurrency)
    return _plan_joint(joint, loaded, cache_dir, concurrency)


def joint_manifest(path: Path) -> Path | None:
    """The manifest of the dub in several languages that the manifest at ``path`` belongs
    to (itself, if it is one); None for a dub in one language or a manifest that cannot
    be read (the redo then says what is wrong with it)."""
    from dubkit.review import load_manifest

    try:
        found = _joint_of([(path, load_manifest(path))])
    except InputError:
        return None
    return found[0] if found is not None else None


def _joint_of(loaded: Sequence[tuple[Path, dict[str, Any]]]) -> tuple[Path, dict[str, Any]] | None:
    """The dub in several languages that every manifest of ``loaded`` belongs to, as its
    path and data; None when none belongs to one."""
    from dubkit.review import load_manifest

    found: list[tuple[Path, dict[str, Any]]] = []
    for path, data in loaded:
        if data.get("languages") is not None:
            found.append((path, data))
            continue
        shared = _shared_media(data, path)
        if shared is None:
            continue
        for where in shared:
            if where.is_file():
                found.append((where, load_manifest(where)))
                break
        else:
            raise InputError(
                f"outputs.media: {Path(data['outputs']['media']).name} holds several "
                "languages, and the redo reads the others from its manifest "
                f"{shared[0].name}, which is missing (run the redo where the dub was run, "
                "or keep the saved manifest beside the dub)",
                path=path,
            )  # fmt: skip
    if not found:
        return None
    if len(found) < len(loaded) or len({p.resolve() for p, _ in found}) > 1:
        raise InputError(
            "these manifests are not all of one dub: redo each dub on its own", path=loaded[0][0]
        )
    return found[0]


def _shared_media(data: Mapping[str, Any], path: Path) -> list[Path] | None:
    """Where the manifest of the dub in several languages whose media ``data`` names would
    be (as written, then beside ``path``); None when the media is this language's own."""
    outputs = data.get("outputs")
    media_out = outputs.get("media") if isinstance(outputs, dict) else None
    if not isinstance(media_out, str) or not Path(media_out).stem.endswith(f".{SEVERAL_DUBBED}"):
        return None
    files = data.get("files")
    rel = files.get("media") if isinstance(files, dict) else None
    where = [Path(media_out).with_suffix(".dubkit.json")]
    if isinstance(rel, str):
        where.append((path.parent / rel).with_suffix(".dubkit.json"))
    return where


def _plan_one(
    manifest: Path, data: dict[str, Any], cache_dir: Path | None, concurrency: int
) -> RedoPlan:
    target = _field(data, "target", str, manifest)
    source = _input(data, manifest)
    items, voices = _language(data, target, media.probe(source).duration_ms, manifest)
    given = Given(tuple(items))
    _check_active(given, manifest)
    options = _options(data, voices, cache_dir, concurrency, manifest)
    return RedoPlan(source, options, given)


def _plan_joint(
    joint: tuple[Path, dict[str, Any]],
    loaded: Sequence[tuple[Path, dict[str, Any]]],
    cache_dir: Path | None,
    concurrency: int,
) -> RedoPlan:
    """A dub in several languages: each given manifest's language as edited there, the
    others as the dub's own manifest has them, on the given manifests' shared timeline."""
    joint_path, joint_data = joint
    sections: list[tuple[Path, dict[str, Any]]] = [
        (joint_path, dict(s)) for s in joint_data["languages"]
    ]
    codes = [_field(s, "target", str, joint_path) for _, s in sections]
    edited: dict[str, Path] = {}
    for path, data in loaded:
        mine = (
            [(path, dict(s)) for s in data["languages"]] if "languages" in data else [(path, data)]
        )
        for p, section in mine:
            code = _field(section, "target", str, p)
            if code in edited:
                raise InputError(f"target: {code} is given twice (also in {edited[code].name})",
                                 path=p)  # fmt: skip
            if code not in codes:
                raise InputError(f"target: {code} is not one of the dub's languages "
                                 f"({', '.join(codes)})", path=p)  # fmt: skip
            edited[code] = p
            sections[codes.index(code)] = (p, section)
    dubbed = [k for k, (_, s) in enumerate(sections) if s.get("voices")]
    order = dubbed + [k for k in range(len(sections)) if k not in dubbed]
    if not dubbed:
        raise InputError("outputs: not a dub's manifest (no dubbed language)", path=joint_path)
    first_path, first = sections[order[0]]
    source = _input(first, joint_path)  # its relative paths are from the dub's folder
    duration_ms = media.probe(source).duration_ms

    langs: list[list[GivenUtterance]] = []
    voice_maps: list[tuple[tuple[str, str], ...]] = []
    timeline: tuple[Path, list[GivenUtterance]] | None = None
    for k in order:
        path, section = sections[k]
        items, voices = _language(section, codes[k], duration_ms, path)
        if codes[k] in edited:
            if timeline is None:
                timeline = (path, items)
            elif [g.utterance for g in items] != [g.utterance for g in timeline[1]]:
                raise InputError(
                    f"utterances: the spans differ from {timeline[0].name}'s: the languages of "
                    "one dub share one timeline, so split, move, add or remove an utterance in "
                    "each language's manifest alike (or redo with one of them: the others "
                    "follow its spans)", path=path,
                )  # fmt: skip
        langs.append(items)
        voice_maps.append(tuple(voices.items()))
    assert timeline is not None
    spans = timeline[1]
    each = [tuple(_following(items, spans)) for items in langs]
    given = Given(each[0], tuple(each[1:]), tuple(voice_maps))
    _check_active(given, timeline[0])
    options = _options(first, {}, cache_dir, concurrency, first_path)
    return RedoPlan(
        source, options, given,
        tuple(codes[k] for k in dubbed), tuple(codes[k] for k in order[len(dubbed):]),
    )  # fmt: skip


def _following(
    items: Sequence[GivenUtterance], timeline: Sequence[GivenUtterance]
) -> Iterator[GivenUtterance]:
    """A language's ``items`` on the shared ``timeline``: each span it has keeps its voice,
    text and skip; a span it lacks (split, moved or added in another language) is
    requested in its speaker's voice. The speakers are the timeline's (a span given to
    another speaker there takes that speaker's voice)."""
    mine = {g.utterance: g for g in items}
    for t in timeline:
        g = mine.get(t.utterance) or GivenUtterance(t.utterance)
        if g.speaker != t.speaker:  # given to another speaker: that speaker's voice
            g = dataclasses.replace(g, voice=None)
        yield dataclasses.replace(g, speaker=t.speaker, gender=t.gender)


def _language(
    data: Mapping[str, Any], target: str, duration_ms: int, manifest: Path
) -> tuple[list[GivenUtterance], dict[str, str]]:
    """One language's utterances (checked, in timeline order) and speaker voices."""
    lang = resolve(target)

    def voice_of(v: str) -> str:
        return resolve_voice(v, lang)

    voices = _voice_map(data, "voices", voice_of, manifest)
    written = _voice_map(data, "voices_written", str, manifest) if "voices_written" in data else {}
    return _items(data, duration_ms, written or voices, voice_of, manifest), voices


def _items(
    data: Mapping[str, Any],
    duration_ms: int,
    written: Mapping[str, str],
    voice_of: Callable[[str], str],
    manifest: Path,
) -> list[GivenUtterance]:
    """A manifest's utterances, checked, in timeline order; overlaps refused."""
    items = [
        _item(k, u, duration_ms, written, voice_of, manifest)
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
    return [g for _, g in ordered]


def _check_active(given: Given, manifest: Path) -> None:
    if not given.active:
        raise InputError("utterances: every utterance is skipped, nothing to dub", path=manifest)


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
