"""``dubkit redo``: the dub of an edited manifest written again, only what changed requested."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dubkit.cli import common
from dubkit.cli import dub as dub_cli
from dubkit.cli.options import add_engine_options, add_output_options, engine_options
from dubkit.files import check_writable_dir
from dubkit.pipeline import Result
from dubkit.translate.config import Environment
from dubkit.translate.engines import make_translator

EXAMPLES = """examples:
  dubkit redo talk.es.dubkit.json        # after editing it (or saving it from the review page)
  dubkit redo talk.es.dubkit.json --json --base-url http://127.0.0.1:8000/compatible-mode/v1
  dubkit redo talk.es.dubkit.json talk.fr.dubkit.json   # two languages of one talk.dub.mp4

In the manifest, per utterance of "utterances": edit "text" (the subtitles; no request),
"voice" or "start_ms"/"end_ms" (requested again), set "skip": true (the original plays,
no cue), remove one, or add one ({"start_ms": 1000, "end_ms": 2500}, a "voice" optional).
At the top, "voices" ({"S1": "Ethan"}) re-voices a speaker. Every other utterance comes
from the translation cache, unchanged and free.

A dub in several languages (talk.dub.mp4) is written again whole: give the manifests
saved from its languages' pages together (or talk.dub.dubkit.json); the languages not
given keep what talk.dub.dubkit.json says. They share one timeline: a span edited in
one language is requested in every language.
"""


def register(sub: Any) -> None:
    p = sub.add_parser(
        "redo", help="re-render a dub from its edited manifest, requesting only what changed",
        description="Write a dub's outputs again (dubbed media, subtitles, manifest, review "
        "page) from its edited manifest, with the options it was made with.",
        epilog=EXAMPLES, formatter_class=common.HelpFormatter,
    )  # fmt: skip
    p.add_argument(
        "manifests", nargs="+", type=Path, metavar="MANIFEST", help="<stem>.<lang>.dubkit.json"
    )
    add_engine_options(p)
    add_output_options(p)
    p.set_defaults(run=run, inputs=None)


def summary(result: Result) -> dict[str, Any]:
    """``dubkit dub``'s summary, and what was requested again."""
    sent = [r for r in result.results if not r.cached and r.attempts > 0]
    return {
        **dub_cli.summary(result),
        "requested": len(sent),
        "requested_spans": [[r.utterance.start_ms, r.utterance.end_ms] for r in sent],
        "from_cache": sum(1 for r in result.results if r.cached),
        "edited_texts": sum(1 for r in result.results if r.edited),
        "skipped": len(result.skipped),
    }


def describe(s: dict[str, Any]) -> str:
    head, *rest = dub_cli.describe(s).splitlines()
    spans = ", ".join(f"[{a}, {b})" for a, b in s["requested_spans"][:8])
    if spans:
        spans = f" (ms: {spans}{' ...' if len(s['requested_spans']) > 8 else ''})"
    redo = (
        f"  requested again: {s['requested']} utterances{spans}, "
        f"{s['from_cache']} from the cache, {s['edited_texts']} texts edited, "
        f"{s['skipped']} skipped"
    )
    return "\n".join([head, redo, *rest])


def run(args: argparse.Namespace) -> int:
    from dubkit.pipeline.redo import joint_manifest, redo

    groups = _by_dub(args.manifests, joint_manifest)
    args.inputs = list(groups)
    env = Environment.read()
    cache = None if args.no_cache else (args.cache_dir or env.cache_dir)
    if cache is not None:
        check_writable_dir(cache, "cache folder (--cache-dir)")
    engine = make_translator(engine_options(args), env)

    def one(path: Path) -> tuple[int, dict[str, Any]]:
        with common.progress_display(args, path.name) as progress:
            done = redo(
                groups[path], engine, cache_dir=cache, concurrency=args.concurrency,
                progress=progress,
            )  # fmt: skip
        results = done if isinstance(done, tuple) else (done,)
        s = common.summarize_run(results, summary)
        if not args.json and not args.quiet:
            print(common.describe_run(s, describe))
        return (4 if s["failed"] else 0), s

    try:
        return common.run_inputs(args, one)
    finally:
        asyncio.run(engine.aclose())


def _by_dub(manifests: list[Path], joint: Callable[[Path], Path | None]) -> dict[Path, list[Path]]:
    """The manifests to redo together, by the first of each: those of one dub in several
    languages (its languages' pages' saved manifests) make one redo; each other is its own."""
    groups: dict[Path, list[Path]] = {}
    first_of: dict[Path, Path] = {}
    for m in manifests:
        dub = joint(m)
        key = first_of.setdefault(dub.resolve(), m) if dub is not None else m
        groups.setdefault(key, []).append(m)
    return groups
