"""Choosing the engine: cloud when a key is available, the offline cascade otherwise."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

from dubkit.errors import ConfigError
from dubkit.translate.config import Environment
from dubkit.translate.protocol import Translator

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EngineOptions:
    """How to reach the translation engine. ``engine`` None picks cloud if a key is set."""

    engine: str | None = None  # "cloud" | "local" | None
    api_key: str | None = field(default=None, repr=False)
    base_url: str | None = None
    region: Literal["singapore", "beijing"] = "singapore"
    model: str = "qwen3-livetranslate-flash"
    rpm: int = 100
    tpm: int = 100_000
    max_retries: int = 6
    #: The local engine's speech recognizer: "whisper" (any language) or "pocketsphinx".
    asr: str = "whisper"


def choose_engine(options: EngineOptions, env: Environment) -> str:
    if options.engine is not None:
        if options.engine not in ("cloud", "local"):
            raise ConfigError(f"unknown engine {options.engine!r}; choose cloud or local")
        return options.engine
    return "cloud" if (options.api_key or env.api_key) else "local"


def make_translator(options: EngineOptions, env: Environment | None = None) -> Translator:
    """A ready translator for ``options`` (explicit values, then the environment, then defaults)."""
    env = env if env is not None else Environment.read()
    if choose_engine(options, env) == "local":
        from dubkit.translate.local import LocalOptions, LocalTranslator

        return LocalTranslator(LocalOptions(asr=options.asr))
    from dubkit.translate.cloud import CloudConfig, CloudTranslator
    from dubkit.translate.pacing import RateLimiter

    key = options.api_key or env.api_key
    if not key:
        raise ConfigError(
            "the cloud engine needs an API key: set DASHSCOPE_API_KEY "
            "(or use --engine local for the offline engine)"
        )
    config = CloudConfig(
        api_key=key,
        base_url=options.base_url or env.base_url,
        region=options.region,
        model=options.model,
        max_retries=options.max_retries,
    )
    return CloudTranslator(config, limiter=RateLimiter(rpm=options.rpm, tpm=options.tpm))
