"""What the subcommands share: messages, the engine set-up, progress display, running each
input and its summary (the options themselves are in :mod:`dubkit.cli.options`)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from dubkit.cli.options import engine_options, job_options
from dubkit.files import check_writable_dir
from dubkit.pipeline import Options, Progress, Result, parse_targets, plan_jobs
from dubkit.pipeline.given import Given
from dubkit.pipeline.outputs import check_run
from dubkit.translate.config import Environment
from dubkit.translate.engines import choose_engine, make_translator
from dubkit.translate.protocol import Translator


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults shown, examples kept as written."""


def error(message: str) -> None:
    print(f"dubkit: error: {message}", file=sys.stderr)


def notice(args: argparse.Namespace, message: str) -> None:
    if not getattr(args, "quiet", False):
        print(f"dubkit: {message}", file=sys.stderr)


def translator(
    args: argparse.Namespace, env: Environment, options: Options, *, dubbing: bool
) -> Translator:
    """The engine for this run, once the languages, voice and cache folder are known to be valid."""
    plan_jobs(options, parse_targets(args.to), dubbing=dubbing, subtitle_only=subs_only(args))
    if options.cache_dir is not None:
        check_writable_dir(options.cache_dir, "cache folder (--cache-dir)")
    opts = engine_options(args)
    if choose_engine(opts, env) == "local" and args.engine is None:
        notice(
            args,
            "no DASHSCOPE_API_KEY set: using the offline engine (lower quality). "
            "Set DASHSCOPE_API_KEY to use qwen3-livetranslate-flash.",
        )
    return make_translator(opts, env)


def show_progress(args: argparse.Namespace) -> bool:
    return not args.quiet and not args.json and sys.stdout.isatty() and sys.stderr.isatty()


@contextlib.contextmanager
def progress_display(args: argparse.Namespace, label: str) -> Iterator[Progress | None]:
    """A rich progress bar per stage on a terminal; nothing otherwise."""
    if not show_progress(args):
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, TextColumn, TimeElapsedColumn
    from rich.progress import (
        Progress as Bars,
    )

    names = {
        "segment": "segmenting", "speakers": "telling speakers apart",
        "translate": "translating", "mix": "mixing and muxing",
    }  # fmt: skip
    with Bars(
        TextColumn(f"{label} [bold]{{task.description}}"), BarColumn(),
        TextColumn("{task.fields[count]}"), TimeElapsedColumn(),
        console=Console(stderr=True), transient=True,
    ) as bars:  # fmt: skip
        tasks: dict[str, Any] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bars.add_task(names.get(stage, stage), total=total, count="")
            task = tasks[stage]
            if stage == "translate":  # utterances, and how fast they come back
                speed = bars.tasks[task].speed
                count = f"{done}/{total}" + (f" ({speed * 60:.0f}/min)" if speed else "")
            elif stage == "speakers":  # utterances
                count = f"{done}/{total}"
            else:  # milliseconds of media
                count = f"{done / 1000:.0f}/{total / 1000:.0f} s"
            bars.update(task, completed=done, total=total, count=count)

        yield update


def cost(summary: dict[str, Any]) -> str:
    """What the run cost, as the summary line says it."""
    if summary["engine"] == "local":
        return "offline engine, nothing billed"
    return f"{summary['tokens']} tokens billed (cloud engine; cached answers cost none)"


def emit_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


def run_inputs(args: argparse.Namespace, one: Callable[[Path], tuple[int, dict[str, Any]]]) -> int:
    """Run ``one`` on each input; a failing input does not stop the others.

    A configuration or authentication failure (bad key, unknown model) would fail every
    input the same way, so it stops the run instead of being sent again for each.
    """
    from dubkit.errors import AuthError, ConfigError, DubkitError

    worst = 0
    summaries = []
    for path in args.inputs:
        try:
            status, summary = one(path)
        except (ConfigError, AuthError):
            raise
        except DubkitError as exc:
            if args.debug:
                import traceback

                traceback.print_exc()
            error(str(exc))
            status, summary = exc.exit_status, {"input": str(path), "error": str(exc)}
        summaries.append({"status": status, **summary})
        worst = _worse(worst, status)
    if args.json:
        emit_json(summaries if len(summaries) > 1 else summaries[0])
    return worst


def _worse(a: int, b: int) -> int:
    rank = {0: 0, 4: 1, 2: 2, 3: 3, 130: 4}
    return a if rank.get(a, 2) >= rank.get(b, 2) else b


def run_job(
    args: argparse.Namespace,
    *,
    dubbing: bool,
    work: Callable[..., tuple[Result, ...]],
    summarize: Callable[[Result], dict[str, Any]],
    describe: Callable[[dict[str, Any]], str],
) -> int:
    """``dubkit dub`` / ``dubkit subs``: options checked once, then every input in turn,
    into every language of ``--to`` at once."""
    env = Environment.read()
    options = job_options(args, env, dubbing=dubbing)
    targets, subs = parse_targets(args.to), subs_only(args)
    if args.dry_run:
        from dubkit.cli.dryrun import dry_run

        return run_inputs(
            args, dry_run(args, options, targets, dubbing=dubbing, subtitle_only=subs)
        )
    engine = translator(args, env, options, dubbing=dubbing)
    more: dict[str, Any] = {"subtitle_only": subs} if subs else {}  # not on `dubkit subs`

    def one(path: Path) -> tuple[int, dict[str, Any]]:
        if args.segments is not None:
            more["given"] = segments_of(args.segments, path)
        with progress_display(args, path.name) as progress:
            results = work(path, options, engine, progress=progress, targets=targets, **more)
        summary = summarize_run(results, summarize)
        if not args.json and not args.quiet:
            print(describe_run(summary, describe))
        return (4 if summary["failed"] else 0), summary

    try:
        planned = plan_jobs(options, targets, dubbing=dubbing, subtitle_only=subs)
        check_run(args.inputs, [lang.code for lang, _ in planned], options,
                  with_media=dubbing, text_only=len(subs))  # fmt: skip
        return run_inputs(args, one)
    finally:
        asyncio.run(engine.aclose())


def segments_of(srt: Path, path: Path) -> Given:
    """``--segments``: the cue times of ``srt`` as the utterances of ``path``."""
    from dubkit.media import probe
    from dubkit.pipeline.given import from_cues

    return from_cues(srt, probe(path).duration_ms)


def subs_only(args: argparse.Namespace) -> tuple[str, ...]:
    """``--subs-only``'s languages (none for ``dubkit subs``, which has no such option)."""
    text = getattr(args, "subs_only", "")
    return parse_targets(text) if text.strip() else ()


def summarize_run(
    results: Sequence[Result], summarize: Callable[[Result], dict[str, Any]]
) -> dict[str, Any]:
    """One language's summary as it is; several languages' under ``languages``, with the
    run's files and totals."""
    if len(results) == 1:
        return summarize(results[0])
    langs = [summarize(r) for r in results]
    first = results[0]
    media = {r.outputs.media for r in results}
    return {
        "input": str(first.input),
        "engine": first.engine,
        "targets": [r.target.code for r in results],
        "media": str(first.outputs.media) if len(media) == 1 and first.outputs.media else None,
        "manifest": str(first.outputs.manifest),
        "utterances": langs[0]["utterances"],
        "failed": sum(s["failed"] for s in langs),
        "tokens": sum(s["tokens"] for s in langs),
        "languages": langs,
    }


def describe_run(summary: dict[str, Any], describe: Callable[[dict[str, Any]], str]) -> str:
    """What a run wrote, for people: one language's lines, or each language's, indented."""
    if "languages" not in summary:
        return describe(summary)
    s = summary
    media = f", one file: {s['media']}" if s["media"] else ""
    lines = [f"{s['input']}: {len(s['targets'])} languages{media}, {cost(s)}"]
    skip = {f"  wrote {s['media']}", f"  wrote {s['manifest']}"}
    for lang in s["languages"]:
        body = describe({**lang, "input": lang["target"]}).splitlines()
        tokens = "" if lang["engine"] == "local" else f", {lang['tokens']} tokens"
        head = body[0].replace(f", {cost(lang)}", tokens)  # the cost is said once, above
        lines += [f"  {head}", *(f"  {x}" for x in body[1:] if x not in skip)]
    if s["media"]:
        lines.append(f"  wrote {s['media']}")
    lines.append(f"  wrote {s['manifest']}")
    return "\n".join(lines)
