"""``dubkit languages``: codes, names, which can be dubbed, voices, local engine pairs."""

from __future__ import annotations

import argparse
from typing import Any

from dubkit.cli import common
from dubkit.languages import LANGUAGES


def register(sub: Any) -> None:
    p = sub.add_parser(
        "languages", help="list languages, whether each can be dubbed, and voices",
        description="Languages of qwen3-livetranslate-flash. "
        "Give them as code, English name or ISO 639-2.",
        epilog="examples:\n  dubkit languages\n  dubkit languages --json",
        formatter_class=common.HelpFormatter,
    )  # fmt: skip
    p.add_argument("--json", action="store_true", help="machine-readable list")
    p.set_defaults(run=run, quiet=False, debug=False)


def run(args: argparse.Namespace) -> int:
    from dubkit.translate.local import installed_pairs

    local = {dst for src, dst in installed_pairs() if src == "en"} | {"en"}
    rows: list[dict[str, Any]] = [
        {
            "code": lg.code, "name": lg.name, "iso639_2": lg.iso639_2, "dub": lg.can_dub,
            "voices": list(lg.voices), "local_engine": lg.code in local,
        }
        for lg in LANGUAGES
    ]  # fmt: skip
    if args.json:
        common.emit_json(rows)
        return 0
    print(f"{'code':<5} {'name':<11} {'ISO':<4} {'dub':<4} {'local':<6} voices")
    for r in rows:
        print(
            f"{r['code']:<5} {r['name']:<11} {r['iso639_2']:<4} {'yes' if r['dub'] else 'no':<4} "
            f"{'yes' if r['local_engine'] else 'no':<6} {', '.join(r['voices']) or '(text only)'}"
        )
    print(
        "\nlocal: the offline engine (English source; Apertium pairs installed here). "
        "Languages are accepted as code, English name or ISO 639-2."
    )
    return 0
