"""The run manifest ``<stem>.<lang>.dubkit.json``: every utterance, its fate, and the totals."""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

from dubkit import __version__
from dubkit.engine import Job
from dubkit.files import write_text_atomic
from dubkit.types import MediaInfo

if TYPE_CHECKING:
    from dubkit.pipeline import Options, Result

SCHEMA = 1


def manifest_data(result: Result, info: MediaInfo, options: Options, job: Job) -> dict[str, Any]:
    """The manifest as plain JSON-ready data (no secrets: the key is never part of a Result)."""
    placements = result.placements or (None,) * len(result.results)
    voices = result.casting.as_dict() if result.casting is not None else {}
    items = []
    for i, (r, p) in enumerate(zip(result.results, placements, strict=True)):
        t = r.translation
        status = (
            "failed"
            if r.error is not None
            else ("ok" if t is not None and t.text.strip() else "empty")
        )
        item: dict[str, Any] = {
            "index": i,
            "start_ms": r.utterance.start_ms,
            "end_ms": r.utterance.end_ms,
            "status": status,
            "text": t.text if t is not None else None,
            "cached": r.cached,
            "attempts": r.attempts,
            "error": r.error,
            "usage": dataclasses.asdict(t.usage) if t is not None else None,
        }
        if result.speakers:
            who = result.speakers[i]
            item["speaker"] = who.speaker
            item["gender"] = who.gender
            item["f0_hz"] = round(who.f0_hz)
            item["voice"] = (t.voice if t is not None else None) or voices.get(who.speaker)
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
        items.append(item)
    placed = [p for p in placements if p is not None]
    return {
        "dubkit": __version__,
        "schema": SCHEMA,
        "input": str(result.input),
        "duration_ms": info.duration_ms,
        "engine": result.engine,
        "target": result.target.code,
        "source": job.source,
        "voice": options.voice if result.casting is not None else job.voice,
        "voices": voices,
        "outputs": {
            "media": str(result.outputs.media) if result.outputs.media else None,
            "subtitles": [str(p) for p in result.outputs.subtitles],
        },
        "options": {
            "max_ratio": options.fit.max_ratio,
            "hard_max_ratio": options.fit.hard_max_ratio,
            "mix": options.mix.mode,
        },
        "totals": {
            "utterances": len(result.results),
            "translated": sum(1 for it in items if it["status"] == "ok"),
            "empty": sum(1 for it in items if it["status"] == "empty"),
            "failed": sum(1 for it in items if it["status"] == "failed"),
            "cached": sum(1 for r in result.results if r.cached),
            "sped_up": sum(1 for p in placed if p.ratio > 1.0),
            "max_ratio": round(max((p.ratio for p in placed), default=1.0), 4),
            "over_cap": sum(1 for p in placed if p.rule == "over_cap"),
            "cut": sum(1 for p in placed if p.rule == "cut"),
            "borrowed": sum(1 for p in placed if p.rule == "borrowed"),
            "cues": len(result.cues),
            "usage": dataclasses.asdict(result.usage),
        },
        "utterances": items,
    }


def write_manifest(result: Result, info: MediaInfo, options: Options, job: Job) -> None:
    data = manifest_data(result, info, options, job)
    text = json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    write_text_atomic(result.outputs.manifest, text)
