"""The command line's options in one place: their flags, help and defaults, and the
options objects built from them (:class:`~dubkit.pipeline.Options`,
:class:`~dubkit.translate.engines.EngineOptions`, :class:`~dubkit.segment.spans.SegmentOptions`)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from dubkit.fit import FitOptions
from dubkit.mix import MixOptions
from dubkit.pipeline import Options, parse_targets
from dubkit.pipeline.options import SPEAKER_MODES
from dubkit.segment.spans import DETECTORS, MAX_REQUEST_MS, SegmentOptions
from dubkit.speakers.voices import parse_voice_map
from dubkit.translate import DEFAULT_CONCURRENCY
from dubkit.translate.config import Environment
from dubkit.translate.engines import EngineOptions

#: The largest ``--max-speed``: beyond it speech is no longer understood.
MAX_SPEED = 4.0


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
    g.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY,
                   help="requests in flight at once")  # fmt: skip
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
        _add_dub_options(p.add_argument_group("dub"))
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


def _add_dub_options(g: argparse._ArgumentGroup) -> None:
    """The options of a dub alone: voices, the mix, the fitting and the dubbed file."""
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
        "--speakers",
        choices=SPEAKER_MODES,
        default="heard",
        help="heard: each utterance's speaker decided as the speech is heard, so requests "
        "start within a second or two; whole: from the whole file first (the requests wait "
        "for it)",
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
        "--faststart",
        action="store_true",
        help="MP4 and MOV: put the index before the data, for playback while downloading "
        "(one more pass over the file)",
    )
    g.add_argument(
        "--no-review",
        action="store_true",
        help="do not write <stem>.<lang>.review.html (rebuild it later with `dubkit review`)",
    )


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
            "speakers": args.speakers,
            "keep_original": not args.no_original,
            "review": not args.no_review,
            "fit": FitOptions(
                max_ratio=finite("--max-speed", args.max_speed, 1.0, MAX_SPEED),
                hard_max_ratio=max(args.max_speed, 1.5),
            ),
            "mix": MixOptions(mode=args.mix),
            "container": args.container,
            "audio_bitrate": args.audio_bitrate,
            "faststart": args.faststart,
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
