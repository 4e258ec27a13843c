"""The run manifest ``<stem>.<lang>.dubkit.json``: every utterance, its fate, and the totals.

A run into several languages writes one ``<stem>.dub.dubkit.json`` (``.subs.`` for
subtitles only) holding each language's manifest under ``languages``."""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dubkit import __version__
from dubkit.files import write_text_atomic
from dubkit.review.envelope import Envelope
from dubkit.translate.pacing import audio_tokens
from dubkit.translate.protocol import Job
from dubkit.types import Cue, MediaInfo, Utterance

if TYPE_CHECKING:
    from dubkit.pipeline.given import GivenUtterance
    from dubkit.pipeline.options import Options, Result
    from dubkit.pipeline.timeline import Entry

SCHEMA = 1


def manifest_data(
    result: Result,
    info: MediaInfo,
    options: Options,
    job: Job,
    *,
    envelope: Envelope | None = None,
    created: datetime.datetime | None = None,
    dub_track: int = 0,
    dub_tracks: int = 1,
    skipped: Sequence[GivenUtterance] = (),
) -> dict[str, Any]:
    """The manifest as plain JSON-ready data (no secrets: the key is never part of a Result).

    ``created`` (default: now) is the run's date; ``envelope`` the source waveform's peaks;
    ``dub_track`` is this language's dubbed track among the output's ``dub_tracks``;
    ``skipped``: the utterances a redo was told to leave undubbed, listed in their place.
    """
    cues = cues_by_utterance([e.result.utterance for e in result.timeline], result.cues)
    when = created or datetime.datetime.now(datetime.timezone.utc)
    voices = result.casting.as_dict() if result.casting is not None else {}
    items = [
        _item(i, e, mine, voices)
        for i, (e, mine) in enumerate(zip(result.timeline, cues, strict=True))
    ]
    items = _with_skipped(items, skipped)
    totals = result.totals
    folder = result.outputs.manifest.parent
    return {
        "dubkit": __version__,
        "schema": SCHEMA,
        "created": when.astimezone(datetime.timezone.utc).isoformat(timespec="seconds"),
        "input": str(result.input),
        "duration_ms": info.duration_ms,
        "has_video": info.has_video,
        "engine": result.engine,
        "target": result.target.code,
        "source": job.source,
        "voice": options.voice if result.casting is not None else job.voice,
        "voices": voices,
        # the voices as written: `dubkit redo` compares `voices` and each utterance's voice
        # with them to see which the user changed
        "voices_written": voices,
        "outputs": {
            "media": str(result.outputs.media) if result.outputs.media else None,
            "subtitles": [str(p) for p in result.outputs.subtitles],
            "review": str(result.outputs.review) if result.outputs.review else None,
        },
        "files": {  # relative to the manifest's folder, for pages written beside it
            "input": _relative(result.input, folder),
            "media": _relative(result.outputs.media, folder),
        },
        "options": _options(info, options, dub_track, dub_tracks),
        "cost": {
            "billed_tokens": totals.usage.total_tokens,
            "estimated_tokens": _estimated_tokens(result, dubbing=result.outputs.media is not None),
        },
        "envelope": (
            {"bin_ms": envelope.bin_ms, "peaks": list(envelope.peaks)}
            if envelope is not None
            else None
        ),
        "totals": dataclasses.asdict(totals),
        "utterances": items,
    }


def _item(i: int, e: Entry, cues: Sequence[Cue], voices: dict[str, str]) -> dict[str, Any]:
    """Utterance ``i`` of the manifest: its span, translation, cues, speaker and placement."""
    r, t, p = e.result, e.translation, e.placement
    item: dict[str, Any] = {
        "index": i,
        "start_ms": r.utterance.start_ms,
        "end_ms": r.utterance.end_ms,
        "status": e.status,
        "skip": False,
        "text": t.text if t is not None else None,
        "cached": r.cached,
        "attempts": r.attempts,
        "error": r.error,
        "usage": dataclasses.asdict(t.usage) if t is not None else None,
        "cues": [{"start_ms": c.start_ms, "end_ms": c.end_ms, "text": c.text} for c in cues],
    }
    if t is not None and t.source_text is not None:
        item["source_text"] = t.source_text
    if e.speaker is not None:
        who = e.speaker
        item["speaker"] = who.speaker
        item["gender"] = who.gender
        item["f0_hz"] = round(who.f0_hz)
        heard = t.voice if t is not None else None
        item["voice"] = heard or r.voice or voices.get(who.speaker)
    if p is not None:
        item["dub"] = {
            "start_ms": p.start_ms,
            "end_ms": p.end_ms,
            "slot_end_ms": p.slot_end_ms,
            "clip_ms": p.clip_ms,
            "ratio": round(p.ratio, 4),
            "rule": p.rule,
            "cut_ms": p.cut_ms,
        }
    if r.edited:
        item["text_edited"] = True
    return item


def _options(info: MediaInfo, options: Options, dub_track: int, dub_tracks: int) -> dict[str, Any]:
    """The options a run was made with, as `dubkit redo` and the review page read them."""
    return {
        "max_ratio": options.fit.max_ratio,
        "hard_max_ratio": options.fit.hard_max_ratio,
        "mix": options.mix.mode,
        "keep_original": options.keep_original,
        "track": options.track,
        "visual": options.visual,
        "audio_bitrate": options.audio_bitrate,
        "faststart": options.faststart,
        # where the review page finds the dub and the original among the dubbed file's
        # audio tracks
        "dub_track": dub_track,
        "original_track": dub_tracks + _dubbed_track(info, options.track),
        "target_cps": options.subtitles.target_cps,
    }


def _with_skipped(
    items: list[dict[str, Any]], skipped: Sequence[GivenUtterance]
) -> list[dict[str, Any]]:
    """``items`` with an entry for each skipped utterance, in time order, renumbered."""
    more: list[dict[str, Any]] = [
        {
            "index": 0, "start_ms": g.utterance.start_ms, "end_ms": g.utterance.end_ms,
            "status": "skipped", "skip": True, "text": g.text, "cached": False, "attempts": 0,
            "error": None, "usage": None, "cues": [],
            **({"speaker": g.speaker, "gender": g.gender} if g.speaker else {}),
            **({"voice": g.voice} if g.voice else {}),
        }
        for g in skipped
    ]  # fmt: skip
    if not more:
        return items
    merged = sorted([*items, *more], key=lambda item: int(item["start_ms"]))
    return [{**item, "index": i} for i, item in enumerate(merged)]


def cues_by_utterance(utterances: Sequence[Utterance], cues: Sequence[Cue]) -> list[list[Cue]]:
    """Which cues each of ``utterances`` became, in order: each cue laid out by
    :func:`dubkit.subtitles.layout` knows its utterance."""
    mine: dict[Utterance, list[Cue]] = {}
    for c in cues:
        if c.utterance is not None:
            mine.setdefault(c.utterance, []).append(c)
    return [mine.get(u, []) for u in utterances]


def _relative(path: Path | None, folder: Path) -> str | None:
    if path is None:
        return None
    try:
        return Path(os.path.relpath(path.resolve(), folder.resolve())).as_posix()
    except ValueError:  # another drive (Windows): no relative path exists
        return None


def _estimated_tokens(result: Result, *, dubbing: bool) -> int:
    """What the run's requests cost at 12.5 tokens a second of audio in (and out, for a dub)."""
    per = sum(audio_tokens(r.utterance.duration_ms) for r in result.results)
    return per * 2 if dubbing else per


def write_manifest(
    result: Result,
    info: MediaInfo,
    options: Options,
    job: Job,
    *,
    envelope: Envelope | None = None,
    skipped: Sequence[GivenUtterance] = (),
) -> dict[str, Any]:
    """Write the manifest atomically; return its data (what the review page is built from)."""
    data = manifest_data(result, info, options, job, envelope=envelope, skipped=skipped)
    text = json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    write_text_atomic(result.outputs.manifest, text)
    return data


def write_manifests(
    results: Sequence[Result],
    info: MediaInfo,
    options: Options,
    jobs: Sequence[Job],
    *,
    envelope: Envelope | None = None,
    skipped: Sequence[Sequence[GivenUtterance]] = (),
) -> list[dict[str, Any]]:
    """Write the run's one manifest; return each language's data (what its review page is
    built from). One language: :func:`write_manifest`'s. Several: one file whose
    ``languages`` holds each language's manifest, the waveform given once beside them.
    ``skipped``: each language's utterances a redo was told to leave undubbed."""
    if len(results) == 1:
        own = skipped[0] if skipped else ()
        return [write_manifest(results[0], info, options, jobs[0], envelope=envelope, skipped=own)]
    shared = len({r.outputs.media for r in results}) == 1
    dubbed = sum(1 for r in results if r.casting is not None)  # the others: subtitles only
    when = datetime.datetime.now(datetime.timezone.utc)
    datas = [
        manifest_data(
            r,
            info,
            options,
            j,
            envelope=envelope,
            created=when,
            dub_track=k if shared and k < dubbed else 0,
            dub_tracks=dubbed if shared else min(dubbed, 1),
            skipped=skipped[k] if skipped else (),
        )
        for k, (r, j) in enumerate(zip(results, jobs, strict=True))
    ]
    sections = [{k: v for k, v in d.items() if k != "envelope"} for d in datas]
    first = datas[0]
    data = {
        "dubkit": __version__,
        "schema": SCHEMA,
        "created": first["created"],
        "input": first["input"],
        "duration_ms": info.duration_ms,
        "targets": [r.target.code for r in results],
        "envelope": first["envelope"],
        "languages": sections,
    }
    text = json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    write_text_atomic(results[0].outputs.manifest, text)
    return datas


def _dubbed_track(info: MediaInfo, track: str | None) -> int:
    """The dubbed input track's number among the input's audio tracks (0 if there is none)."""
    from dubkit.errors import InputError
    from dubkit.media import select_audio

    try:
        return select_audio(info, track).position
    except InputError:
        return 0
