"""Options shared by the subcommands, engine set-up, progress display and messages."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from dubkit.files import check_writable_dir
from dubkit.fit import FitOptions
from dubkit.mix import MixOptions
from dubkit.pipeline import Options, Progress, Result, parse_targets, plan_jobs
from dubkit.pipeline.given import Given
from dubkit.pipeline.outputs import check_run
from dubkit.segment.spans import DETECTORS, MAX_REQUEST_MS, SegmentOptions
from dubkit.speakers.voices import parse_voice_map
from dubkit.translate.config import Environment
from dubkit.translate.engines import EngineOptions, choose_engine, make_translator
from dubkit.translate.protocol import Translator

#: The largest ``--max-speed``: beyond it speech is no longer understood.
MAX_SPEED = 4.0


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults shown, examples kept as written."""


def error(message: str) -> None:
    print(f"dubkit: error: {message}", file=sys.stderr)


def notice(args: argparse.Namespace, message: str) -> None:
    if not getattr(args, "quiet", False):
        print(f"dubkit: {message}", file=sys.stderr)


def _kbps(text: str) -> int:
    """``"128k"`` or ``"128"`` -> 128 (kb/s), for ``--audio-bitrate``."""
    digits = text.strip().lower().removesuffix("k")
    if not digits.isdigit() or not 8 <= int(digits) <= 1536:
        raise argparse.ArgumentTypeError(f"expected a bitrate such as 128k, got {text!r}")
    return int(digits)


def add_engine_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("engine")
    g.add_argument(
        "--engine",
        choices=("cloud", "local"),
        default=None,
        help="cloud (qwen3-livetranslate-flash) or local (offline); "
        "default: cloud when DASHSCOPE_API_KEY is set, else local",
    )
    g.add_argument(
        "--asr",
        choices=("whisper", "pocketsphinx"),
        default="whisper",
        help="the offline engine's speech recognizer: whisper (Whisper base, any language, "
        "about 0.6x real time on 2 cores) or pocketsphinx (English only, faster, far less "
        "accurate)",
    )
    g.add_argument(
        "--base-url",
        default=None,
        help="any compatible server, e.g. `dubkit emulate` (env DASHSCOPE_BASE_URL)",
    )
    g.add_argument(
        "--region",
        choices=("singapore", "beijing"),
        default="singapore",
        help="which official endpoint (keys are region-bound)",
    )
    g.add_argument("--model", default="qwen3-livetranslate-flash", help="model name")
    g.add_argument("--concurrency", type=int, default=4, help="requests in flight at once")
    g.add_argument("--rpm", type=int, default=100, help="requests-per-minute budget")
    g.add_argument("--tpm", type=int, default=100_000, help="tokens-per-minute budget")
    g.add_argument(
        "--retries",
        type=int,
        default=6,
        help="retries of a failed request (429, 5xx, broken streams) before giving up",
    )
    g.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="translation cache (env DUBKIT_CACHE_DIR; default $XDG_CACHE_HOME/dubkit)",
    )
    g.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")


def add_job_options(p: argparse.ArgumentParser, *, dubbing: bool) -> None:
    p.add_argument("inputs", nargs="+", metavar="INPUT", type=Path, help="video or audio files")
    p.add_argument(
        "--to", required=True, metavar="LANG[,LANG...]",
        help="target language: code, name or ISO 639-2; several, comma-separated (es,fr,ja), "
        "in one run" + (": one file with a dubbed track each" if dubbing else ""),
    )  # fmt: skip
    p.add_argument(
        "--from",
        dest="source",
        default=None,
        metavar="LANG",
        help="source language (default: auto-detect)",
    )
    p.add_argument(
        "--out-dir", type=Path, default=None, help="write outputs here instead of beside each input"
    )
    p.add_argument(
        "--format", dest="formats", default="srt", help="subtitle formats, comma-separated: srt,vtt"
    )
    p.add_argument(
        "--track",
        default=None,
        metavar="N|LANG",
        help="audio track to translate: its number among the audio tracks (0-based) or its "
        "language (fre, fr); none given: the default track, else the first",
    )
    if dubbing:
        g = p.add_argument_group("dub")
        g.add_argument(
            "--voice",
            default="auto",
            help="auto: each speaker a voice of their gender, kept throughout; "
            "or one voice for everyone (see `dubkit languages`)",
        )
        g.add_argument(
            "--voices",
            default="",
            metavar="MAP",
            help="voices of given speakers, e.g. S1=Ethan,S2=Cherry (labels as in "
            "`dubkit segments`); the others follow --voice",
        )
        g.add_argument(
            "--subs-only",
            default="",
            metavar="LANG[,LANG...]",
            help="languages to subtitle only, in the same run and file as the dubs (text-only "
            "languages such as th go here)",
        )
        g.add_argument(
            "--mix",
            choices=("separate", "duck", "replace"),
            default="separate",
            help="what becomes of the original under the dub: its dialogue separated out (music "
            "and effects kept; the centre channel in 5.1/7.1), all of it ducked, or replaced",
        )
        g.add_argument(
            "--max-speed",
            type=float,
            default=1.3,
            help="largest speed-up applied to a dubbed clip before other rules",
        )
        g.add_argument(
            "--no-original", action="store_true", help="do not keep the original audio track"
        )
        g.add_argument(
            "--audio-bitrate",
            type=_kbps,
            default=None,
            metavar="KBPS",
            help="dubbed track's bitrate in kb/s (e.g. 128k); none given: the source track's, "
            "at least 64k a channel (32k for Opus) and at most 96k a channel (64k for Opus)",
        )
        g.add_argument(
            "--container",
            choices=("mp4", "mkv", "mov", "ts"),
            default=None,
            help="dubbed video's container; none given: the input's (MKV for AVI, FLV, others)",
        )
        g.add_argument(
            "--no-review",
            action="store_true",
            help="do not write <stem>.<lang>.review.html (rebuild it later with `dubkit review`)",
        )
    p.add_argument(
        "--segments",
        type=Path,
        default=None,
        metavar="FILE.srt",
        help="take the utterances' times from this subtitle file's cues (SRT or VTT: your own, "
        "or a previous run's) instead of finding them; speakers and voices are still found",
    )
    p.add_argument(
        "--visual",
        action="store_true",
        help="send each utterance as a short video clip so the model sees the picture",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the utterances and a token estimate; send nothing",
    )
    add_segment_options(p)
    add_engine_options(p)
    add_output_options(p)


def add_segment_options(p: argparse.ArgumentParser) -> None:
    d = SegmentOptions()
    g = p.add_argument_group("segmentation")
    g.add_argument(
        "--detector",
        choices=DETECTORS,
        default=d.detector,
        help="webrtcvad proposes and Silero VAD confirms, or webrtcvad alone (faster, lets "
        "music and noise into the edges)",
    )
    g.add_argument(
        "--min-pause",
        type=int,
        default=d.min_pause_ms,
        metavar="MS",
        help="shortest pause that ends an utterance; shorter ones are bridged",
    )
    g.add_argument(
        "--max-utterance",
        type=float,
        default=d.max_utterance_ms / 1000,
        metavar="SECONDS",
        help=f"longer utterances are cut at their quietest pause (at most {MAX_REQUEST_MS // 1000}"
        ")",
    )


def finite(flag: str, value: float, lo: float, hi: float) -> float:
    """``value`` of option ``flag`` if it is a number in ``[lo, hi]`` (never NaN or
    infinite), else a :class:`ConfigError` naming the option."""
    from dubkit.errors import ConfigError

    if not math.isfinite(value) or not lo <= value <= hi:
        raise ConfigError(f"{flag} must be a number from {lo:g} to {hi:g}, got {value}")
    return value


def segment_options(args: argparse.Namespace) -> SegmentOptions:
    finite("--max-utterance", args.max_utterance, 0.0, MAX_REQUEST_MS / 1000)
    return SegmentOptions(
        detector=args.detector,
        min_pause_ms=args.min_pause,
        max_utterance_ms=round(args.max_utterance * 1000),
    )


def add_output_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("output")
    g.add_argument("--json", action="store_true", help="machine-readable summary on stdout")
    g.add_argument("--quiet", action="store_true", help="no progress or notices")
    g.add_argument("--debug", action="store_true", help="verbose logs and tracebacks")


def job_options(args: argparse.Namespace, env: Environment, *, dubbing: bool) -> Options:
    formats = tuple(f.strip().lower() for f in args.formats.split(",") if f.strip())
    cache = None if args.no_cache else (args.cache_dir or env.cache_dir)
    kw: dict[str, Any] = {}
    if dubbing:
        kw = {
            "voice": args.voice,
            "voices": parse_voice_map(args.voices),
            "keep_original": not args.no_original,
            "review": not args.no_review,
            "fit": FitOptions(
                max_ratio=finite("--max-speed", args.max_speed, 1.0, MAX_SPEED),
                hard_max_ratio=max(args.max_speed, 1.5),
            ),
            "mix": MixOptions(mode=args.mix),
            "container": args.container,
            "audio_bitrate": args.audio_bitrate,
        }
    return Options(
        target=parse_targets(args.to)[0], source=args.source, out_dir=args.out_dir, formats=formats,
        concurrency=args.concurrency, cache_dir=cache, visual=args.visual,
        segment=segment_options(args), track=args.track, **kw,
    )  # fmt: skip


def engine_options(args: argparse.Namespace) -> EngineOptions:
    from dubkit.errors import ConfigError

    for flag, value in (("--rpm", args.rpm), ("--tpm", args.tpm)):
        if value < 1:
            raise ConfigError(f"{flag} must be at least 1, got {value}")
    return EngineOptions(
        engine=args.engine, base_url=args.base_url, region=args.region,
        model=args.model, rpm=args.rpm, tpm=args.tpm, max_retries=args.retries, asr=args.asr,
    )  # fmt: skip


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
