"""``dubkit emulate``: a local server speaking the qwen3-livetranslate-flash protocol."""

from __future__ import annotations

import argparse
from typing import Any

from dubkit.cli import common
from dubkit.errors import DubkitError as UsageError

EXAMPLES = """examples:
  dubkit emulate --port 8000
  DASHSCOPE_API_KEY=sk-test dubkit dub talk.mp4 --to es --base-url http://127.0.0.1:8000/compatible-mode/v1
  dubkit emulate --latency 1.5 --rpm 100 --fault-rate 0.1
  dubkit emulate --engine local     # real offline translations over the protocol
"""


def register(sub: Any) -> None:
    p = sub.add_parser(
        "emulate", help="serve an emulator of the service on loopback",
        description="Serve POST /compatible-mode/v1/chat/completions with the documented "
        "validation, "
        "SSE chunks, errors, quotas and injected faults. Deterministic.",
        epilog=EXAMPLES, formatter_class=common.HelpFormatter,
    )  # fmt: skip
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=8000, help="port (0 picks a free one)")
    p.add_argument(
        "--api-key", default=None, help="the only key accepted (default: any non-empty key)"
    )
    p.add_argument(
        "--engine",
        choices=("synthetic", "local"),
        default="synthetic",
        help="synthetic speech-like answers, or real offline translations",
    )
    p.add_argument("--latency", type=float, default=0.0, help="seconds before the first byte")
    p.add_argument("--chunk-interval", type=float, default=0.0, help="seconds between SSE chunks")
    p.add_argument("--rpm", type=int, default=None, help="requests-per-minute quota (429 above)")
    p.add_argument("--tpm", type=int, default=None, help="tokens-per-minute quota (429 above)")
    p.add_argument("--fault-rate", type=float, default=0.0, help="share of requests given a fault")
    p.add_argument(
        "--faults",
        default="429,429_native,500,503,drop,error_event,stall",
        help="fault kinds to draw from",
    )
    p.add_argument("--stall", type=float, default=30.0, help="seconds a stalled stream hangs")
    p.add_argument("--chunk-bytes", type=int, default=9600, help="PCM bytes per audio chunk")
    p.add_argument("--seed", type=int, default=0, help="seed for faults and answers")
    p.add_argument(
        "--canned", action="store_true",
        help="cut synthetic speech from a bank made once per voice (cheap, for benchmarks)",
    )  # fmt: skip
    p.add_argument("--debug", action="store_true", help="verbose logs")
    p.set_defaults(run=run, quiet=False)


def run(args: argparse.Namespace) -> int:
    import logging

    from dubkit.emulator import EmulatorConfig, serve

    logging.getLogger("dubkit.emulator").setLevel(logging.INFO)
    cfg = EmulatorConfig(
        api_key=args.api_key, latency_s=args.latency, chunk_interval_s=args.chunk_interval,
        rpm=args.rpm, tpm=args.tpm, fault_rate=args.fault_rate,
        faults=tuple(f.strip() for f in args.faults.split(",") if f.strip()),
        seed=args.seed, engine=args.engine, host=args.host, port=args.port,
        stall_s=args.stall, audio_chunk_bytes=args.chunk_bytes, canned=args.canned,
    )  # fmt: skip
    try:
        serve(cfg)
    except OSError as exc:  # port taken, address not local...
        raise UsageError(
            f"cannot listen on {args.host}:{args.port} ({exc.strerror or exc})"
        ) from exc
    return 0
