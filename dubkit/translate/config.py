"""Environment variables, read in exactly one place.

Precedence everywhere: explicit options, then these variables, then defaults.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dubkit.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Environment:
    """The settings dubkit takes from the environment."""

    api_key: str | None = field(default=None, repr=False)
    base_url: str | None = None
    cache_dir: Path = Path("~/.cache/dubkit")

    @classmethod
    def read(cls, environ: Mapping[str, str] | None = None) -> Environment:
        from dubkit.translate.cache import default_cache_dir

        env = os.environ if environ is None else environ
        return cls(
            api_key=(env.get("DASHSCOPE_API_KEY") or "").strip() or None,
            base_url=(env.get("DASHSCOPE_BASE_URL") or "").strip() or None,
            cache_dir=default_cache_dir(env),
        )


def check_key(key: str) -> None:
    """Refuse a key no server can take (it goes in an HTTP header): printable ASCII only.
    The message never repeats the key."""
    if not key or not key.strip():
        raise ConfigError("no API key: set DASHSCOPE_API_KEY or pass api_key")
    if not all("!" <= ch <= "~" for ch in key.strip()):
        raise ConfigError(
            "the API key holds characters other than printable ASCII (a line break, a space "
            "or a non-ASCII letter pasted with it?): check DASHSCOPE_API_KEY"
        )


def check_base_url(url: str | None) -> None:
    """Refuse a base URL that is not ``http(s)://host[:port][/path]``, before any request
    (None: the region's own)."""
    from urllib.parse import urlsplit

    if url is None:
        return
    shown = url if len(url) <= 80 else url[:77] + "..."
    try:
        parts = urlsplit(url)
        port = parts.port  # ValueError when not a number in 0-65535
    except ValueError:
        parts, port = None, None
    if (
        parts is None
        or parts.scheme.lower() not in ("http", "https")
        or not parts.hostname
        or any(ch.isspace() or not ch.isprintable() for ch in url)
        or port == 0
    ):
        raise ConfigError(
            f"base URL {shown!r} is not usable: give http:// or https:// and a host "
            "(--base-url or DASHSCOPE_BASE_URL)"
        )
