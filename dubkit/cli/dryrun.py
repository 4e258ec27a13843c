"""``--dry-run``: what a run would send and cost in tokens, before anything is paid."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dubkit import media
from dubkit.pacing import audio_tokens
from dubkit.pipeline import Options, plan_job
from dubkit.segment import segment
from dubkit.types import VAD_RATE


def estimate(path: Path, options: Options, *, dubbing: bool) -> dict[str, Any]:
    info = media.probe(path)
    track = media.select_audio(info, options.track)
    chunks = media.iter_pcm16(path, VAD_RATE, track.index)
    utterances = segment(chunks, options.segment, duration_ms=info.duration_ms)
    tokens_in = sum(audio_tokens(u.duration_ms) for u in utterances)
    # The answer's audio is about as long as the question's; text adds a little.
    tokens_out = tokens_in if dubbing else 0
    return {
        "input": str(path),
        "duration_ms": info.duration_ms,
        "requests": len(utterances),
        "speech_ms": sum(u.duration_ms for u in utterances),
        "estimated_input_tokens": tokens_in,
        "estimated_output_audio_tokens": tokens_out,
        "utterances": [{"start_ms": u.start_ms, "end_ms": u.end_ms} for u in utterances],
    }


def dry_run(
    args: argparse.Namespace, options: Options, *, dubbing: bool
) -> Callable[[Path], tuple[int, dict[str, Any]]]:
    """What ``--dry-run`` does with each input (the job is checked first, once)."""
    plan_job(options, dubbing=dubbing)

    def one(path: Path) -> tuple[int, dict[str, Any]]:
        e = estimate(path, options, dubbing=dubbing)
        if not args.json:
            print(
                f"{path}: {e['requests']} requests, {e['speech_ms'] / 1000:.1f} s of speech "
                f"in {e['duration_ms'] / 1000:.1f} s"
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
        return 0, e

    return one
