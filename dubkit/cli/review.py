"""``dubkit review``: rebuild the review page of a dub from its manifest."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from dubkit.cli import common
from dubkit.cli.options import add_output_options
from dubkit.review import load_manifest, pages, write_review

EXAMPLES = """examples:
  dubkit review talk.es.dubkit.json      # writes talk.es.review.html beside it
  dubkit review out/*.dubkit.json --json

The page is self-contained (no server, no network): open it in a browser straight from
disk. It plays the dubbed file (and the input, for the original) by their paths relative
to the manifest, so keep them where the dub wrote them.
"""


def register(sub: Any) -> None:
    p = sub.add_parser(
        "review", help="rebuild the review page of a dub from its manifest",
        description="Write <stem>.<lang>.review.html beside each <stem>.<lang>.dubkit.json: "
        "a page to see and hear every utterance of the dub before publishing it.",
        epilog=EXAMPLES, formatter_class=common.HelpFormatter,
    )  # fmt: skip
    p.add_argument(
        "manifests", nargs="+", type=Path, metavar="MANIFEST", help="<stem>.<lang>.dubkit.json"
    )
    add_output_options(p)
    p.set_defaults(run=run, inputs=None)


def run(args: argparse.Namespace) -> int:
    args.inputs = args.manifests

    def one(path: Path) -> tuple[int, dict[str, Any]]:
        written = [write_review(page, data) for page, data in pages(load_manifest(path), path)]
        if not args.json and not args.quiet:
            print("\n".join(f"{path}: wrote {page}" for page in written))
        review = str(written[0]) if len(written) == 1 else [str(p) for p in written]
        return 0, {"manifest": str(path), "review": review}

    return common.run_inputs(args, one)
