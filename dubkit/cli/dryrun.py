"""``--dry-run``: what a run would send and cost in tokens, before anything is paid."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from dubkit import media
from dubkit.pipeline import Options, plan_jobs
from dubkit.segment import segment
from dubkit.translate.pacing import audio_tokens
from dubkit.types import VAD_RATE


def estimate(
    path: Path,
    options: Options,
    *,
    dubbing: bool,
    targets: Sequence[str] = (),
    subtitle_only: Sequence[str] = (),
    rpm: int = 100,
    tpm: int = 100_000,
) -> dict[str, Any]:
    """What a run into ``targets`` (default: ``options.target``) and, as text only,
    ``subtitle_only`` would send, and the least time the quota (``rpm`` requests, ``tpm``
    tokens a minute) lets it take."""
    info = media.probe(path)
    track = media.select_audio(info, options.track)
    chunks = media.iter_pcm16(path, VAD_RATE, track.index)
    utterances = segment(chunks, options.segment, duration_ms=info.duration_ms)
    langs = list(targets) or [options.target]
    every = [*langs, *subtitle_only]
    per_in = sum(audio_tokens(u.duration_ms) for u in utterances)
    # The answer's audio is about as long as the question's; text adds a little.
    out_tokens = per_in * len(langs) if dubbing else 0
    requests = len(utterances) * len(every)
    tokens = per_in * len(every) + out_tokens
    return {
        "input": str(path),
        "duration_ms": info.duration_ms,
        "targets": every,
        "requests": requests,
        "speech_ms": sum(u.duration_ms for u in utterances),
        "estimated_input_tokens": per_in * len(every),
        "estimated_output_audio_tokens": out_tokens,
        # the quota's floor: requests at rpm, tokens at tpm, whichever is slower
        "quota_minutes": round(max(requests / rpm, tokens / tpm), 2),
        "utterances": [{"start_ms": u.start_ms, "end_ms": u.end_ms} for u in utterances],
    }


def dry_run(
    args: argparse.Namespace,
    options: Options,
    targets: Sequence[str],
    *,
    dubbing: bool,
    subtitle_only: Sequence[str] = (),
) -> Callable[[Path], tuple[int, dict[str, Any]]]:
    """What ``--dry-run`` does with each input (the jobs are checked first, once)."""
    plan_jobs(options, targets, dubbing=dubbing, subtitle_only=subtitle_only)

    def one(path: Path) -> tuple[int, dict[str, Any]]:
        e = estimate(
            path, options, dubbing=dubbing, targets=targets, subtitle_only=subtitle_only,
            rpm=args.rpm, tpm=args.tpm,
        )  # fmt: skip
        if not args.json:
            langs = len(e["targets"])
            into = f" into {', '.join(e['targets'])}" if langs > 1 else ""
            print(
                f"{path}: {e['requests']} requests{into}, {e['speech_ms'] / 1000:.1f} s of "
                f"speech in {e['duration_ms'] / 1000:.1f} s"
            )
            for i, u in enumerate(e["utterances"]):
                print(
                    f"  {i:4d}  {u['start_ms'] / 1000:9.2f}  {u['end_ms'] / 1000:9.2f}  "
                    f"{(u['end_ms'] - u['start_ms']) / 1000:6.2f} s"
                )
            out = (
                f" + about {e['estimated_output_audio_tokens']} output audio tokens"
                if dubbing
                else ""
            )
            print(
                f"  estimate: {e['estimated_input_tokens']} input tokens{out} "
                f"(12.5 tokens per second of audio, at least 1 s per request); nothing sent"
            )
            print(
                f"  the quota ({args.rpm} requests, {args.tpm} tokens a minute) needs at least "
                f"{e['quota_minutes']:.1f} min for {'all ' if langs > 1 else ''}"
                f"{e['requests']} requests"
            )
        return 0, e

    return one
