"""``dubkit dub``: dubbed media, subtitles and a manifest for each input."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from dubkit.cli import common
from dubkit.mix import NO_MODEL, separation_available
from dubkit.mux import output_suffix
from dubkit.pipeline import Options, Progress, Result, dub
from dubkit.pipeline.given import Given
from dubkit.translate.protocol import Translator

EXAMPLES = """examples:
  dubkit dub talk.mp4 --to es                 # talk.es.mp4, .srt, .dubkit.json, .review.html
  dubkit dub talk.mp4 --to es,fr,ja           # talk.dub.mp4 with a track each, talk.es.srt, ...
  dubkit dub talk.mp4 --to es --subs-only th   # and Thai subtitles (text only) in the same file
  dubkit dub a.mkv b.mkv --to German --voice Ethan --format srt,vtt
  dubkit dub talk.mp4 --to es --voices S1=Ethan,S2=Cherry   # speakers as `dubkit segments`
  dubkit dub talk.mp4 --to ja --mix replace --out-dir dubbed/
  dubkit dub film.mkv --to fr --track eng      # dub the English track; every other track kept
  dubkit dub clip.avi --to es --container mp4  # AVI in, MP4 out (default: MKV)
  dubkit dub talk.mp4 --to es --segments talk.en.srt   # utterances at your cues' times
  dubkit dub talk.mp4 --to es --dry-run       # utterances and a token estimate, nothing sent
  dubkit dub talk.mp4 --to es --engine cloud --base-url http://127.0.0.1:8000/compatible-mode/v1
"""


def register(sub: Any) -> None:
    p = sub.add_parser(
        "dub", help="dub videos or audio into another language",
        description="Segment, translate (text and speech), subtitle, fit, mix and mux. "
        "The video stream is copied, never re-encoded.",
        epilog=EXAMPLES, formatter_class=common.HelpFormatter,
    )  # fmt: skip
    common.add_job_options(p, dubbing=True)
    p.set_defaults(run=run)


def summary(result: Result) -> dict[str, Any]:
    t, casting = result.totals, result.casting
    return {
        "input": str(result.input),
        "engine": result.engine,
        "target": result.target.code,
        "subtitles_only": result.casting is None,
        "media": str(result.outputs.media) if result.outputs.media else None,
        "subtitles": [str(p) for p in result.outputs.subtitles],
        "manifest": str(result.outputs.manifest),
        "review": str(result.outputs.review) if result.outputs.review else None,
        "utterances": t.utterances,
        "failed": t.failed,
        "sped_up": t.sped_up,
        "max_ratio": t.max_ratio,
        "cut": t.cut,
        "tokens": t.usage.total_tokens,
        "voices": casting.as_dict() if casting else {},
        "voices_shared": [{"speaker": s, "voice": v, "like": like} for s, v, like in casting.shared]
        if casting
        else [],
    }


def describe(s: dict[str, Any]) -> str:
    if s["subtitles_only"]:  # a --subs-only language
        head = f"{s['input']}: subtitles only, {s['utterances']} utterances, {s['failed']} failed"
        return "\n".join([f"{head}, {common.cost(s)}", *(f"  wrote {p}" for p in s["subtitles"])])
    lines = [
        f"{s['input']}: {s['utterances']} utterances, "
        f"{s['sped_up']} sped up (max {s['max_ratio']}x), "
        f"{s['cut']} cut, {s['failed']} failed, {common.cost(s)}",
        f"  voices: {_voices(s)}",
        f"  wrote {s['media']}",
        *(f"  wrote {p}" for p in s["subtitles"]),
        f"  wrote {s['manifest']}",
        *(
            [f"  wrote {s['review']} (open it in a browser to check every utterance)"]
            if s["review"]
            else []
        ),
    ]
    if s["failed"]:
        lines.append(
            f"  {s['failed']} utterances kept in the original language; rerun to fill them in"
        )
    return "\n".join(lines)


def _voices(s: dict[str, Any]) -> str:
    text = ", ".join(f"{k}={v}" for k, v in s["voices"].items()) or "none"
    if s["voices_shared"]:
        shared = (f"{x['speaker']} with {x['like']} ({x['voice']})" for x in s["voices_shared"])
        text += "; more speakers than voices, sharing: " + ", ".join(shared)
    return text


def run(args: argparse.Namespace) -> int:
    def work(
        path: Path,
        options: Options,
        engine: Translator,
        progress: Progress | None = None,
        targets: tuple[str, ...] = (),
        subtitle_only: tuple[str, ...] = (),
        given: Given | None = None,
    ) -> tuple[Result, ...]:
        note = output_suffix(path.suffix, options.container)[1]
        if note:
            common.notice(args, f"{path}: {note}")
        if options.mix.mode == "separate" and not separation_available():
            common.notice(args, f"{path}: {NO_MODEL}; --mix duck instead")
            options = dataclasses.replace(
                options, mix=dataclasses.replace(options.mix, mode="duck")
            )
        return dub(
            path, options, engine, targets=targets, subtitle_only=subtitle_only,
            progress=progress, given=given,
        )  # fmt: skip

    return common.run_job(args, dubbing=True, work=work, summarize=summary, describe=describe)
