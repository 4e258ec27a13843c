"""The ``dubkit`` command. Only this package prints, prompts or exits."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import traceback
from collections.abc import Sequence

from dubkit import __version__
from dubkit.cli import common, dub, emulate, languages, redo, review, segments, subs
from dubkit.errors import DubkitError

COMMANDS = (dub, subs, redo, review, segments, emulate, languages)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dubkit",
        description=(
            "Subtitle and dub videos with Alibaba's qwen3-livetranslate-flash "
            "(or an offline engine), without drift and without re-encoding the video."
        ),
        epilog=(
            "examples:\n  dubkit dub talk.mp4 --to es\n  dubkit subs talk.mp4 --to Japanese\n"
            "  dubkit review talk.es.dubkit.json\n  dubkit redo talk.es.dubkit.json\n"
            "  dubkit segments talk.mp4 --json\n"
            "  dubkit languages\n\n"
            "exit status: 0 done, 2 bad usage or input, 3 configuration or authentication,\n"
            "4 some utterances failed (outputs written, rerun to fill the gaps), 130 interrupted\n"
            "(Ctrl-C or SIGTERM)"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"dubkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        module.register(sub)
    return parser


def _terminated(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    debug = getattr(args, "debug", False)
    quiet = getattr(args, "quiet", False)
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.ERROR if quiet else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    signal.signal(signal.SIGTERM, _terminated)  # stop as cleanly as on Ctrl-C
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        common.error("interrupted")
        return 130
    except DubkitError as exc:
        if debug:
            traceback.print_exc()
        common.error(str(exc))
        return exc.exit_status
    except BrokenPipeError:
        return 1
