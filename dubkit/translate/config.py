"""Environment variables, read in exactly one place.

Precedence everywhere: explicit options, then these variables, then defaults.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


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
