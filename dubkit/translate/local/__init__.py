"""The offline engine: pocketsphinx -> Apertium -> eSpeak NG, no key and no network.

English speech is recognized with pocketsphinx (the US English model its wheel
carries), the words are translated with Apertium (Debian ``apertium`` plus a
pair package such as ``apertium-eng-spa``) and spoken with eSpeak NG (Debian
``espeak-ng``) as PCM16 mono 24 kHz, like the cloud model's audio. Quality is
far below the cloud model's; it exists so the whole pipeline runs on a fresh
machine.

Errors: a missing program, pair or voice, or a source language other than
English, is a :class:`~dubkit.errors.ConfigError` raised before any work. A
program failing on one utterance is a :class:`LocalToolError`, a
non-retryable :class:`~dubkit.errors.ServiceError` carrying the command and
its stderr tail, so the run records that utterance as failed and goes on.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from dubkit.errors import ConfigError, InputError, LocalToolError
from dubkit.languages import LANGUAGES, Language, resolve
from dubkit.translate.local.apertium import (
    Apertium,
    installed_modes,
    installed_pairs,
    modes_dir_for,
)
from dubkit.translate.local.espeak import DEFAULT_RATE_WPM, VARIANTS, Espeak
from dubkit.translate.local.espeak import VOICES as ESPEAK_VOICES
from dubkit.translate.local.recognize import Recognizer, RecognizerOptions
from dubkit.translate.pacing import audio_tokens
from dubkit.translate.protocol import Job
from dubkit.types import SERVICE_RATE, VAD_RATE, Translation, Usage

__all__ = [
    "LocalOptions",
    "LocalTarget",
    "LocalToolError",
    "LocalTranslator",
    "audio_tokens",
    "describe_pairs",
    "installed_pairs",
]

log = logging.getLogger(__name__)

_ENGLISH = resolve("en")
def text_tokens(text: str) -> int:
    """A rough token count for ``text`` (about 4 UTF-8 bytes a token)."""
    return -(-len(text.encode("utf-8")) // 4)


def estimate_usage(in_ms: int, text: str, out_ms: int) -> Usage:
    """The usage the cloud model would report for the same answer (an estimate)."""
    prompt = audio_tokens(in_ms)
    out_audio = audio_tokens(out_ms)
    out_text = text_tokens(text)
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=out_audio + out_text,
        total_tokens=prompt + out_audio + out_text,
        input_audio_tokens=prompt,
        output_audio_tokens=out_audio,
        output_text_tokens=out_text,
    )


@dataclass(frozen=True, slots=True)
class LocalOptions:
    """Settings of the local engine. Programs default to ``apertium``/``espeak-ng`` on PATH."""

    apertium: str | None = None
    espeak: str | None = None
    rate_wpm: int = DEFAULT_RATE_WPM
    workers: int | None = None  # concurrent recognitions; None: the CPU count
    recognizer: RecognizerOptions = field(default_factory=RecognizerOptions)


@dataclass(frozen=True, slots=True)
class LocalTarget:
    """A language the local engine can translate English into on this machine."""

    code: str
    name: str
    apertium_mode: str | None  # None: English to English, no translation
    espeak_voice: str | None  # None: text only (eSpeak NG or its voice missing)

    @property
    def can_dub(self) -> bool:
        return self.espeak_voice is not None


def describe_pairs(options: LocalOptions | None = None) -> tuple[LocalTarget, ...]:
    """Which targets the local engine can do here (for ``dubkit languages``); never raises."""
    opts = options or LocalOptions()
    program = shutil.which(opts.apertium or "apertium")
    modes = installed_modes(modes_dir_for(program)) if program else {}
    try:
        espeak: Espeak | None = Espeak.find(opts.espeak, opts.rate_wpm)
    except ConfigError:
        espeak = None
    targets = []
    for lang in LANGUAGES:
        mode = modes.get(("en", lang.code))
        if lang.code != "en" and mode is None:
            continue
        voice = None
        if espeak is not None:
            try:
                voice = espeak.voice_for(lang.code)
            except (ConfigError, LocalToolError):
                voice = None
        targets.append(LocalTarget(lang.code, lang.name, mode, voice))
    return tuple(targets)


def check_source(job: Job) -> None:
    """Refuse a job whose source is set and is not English."""
    if job.source is not None and resolve(job.source) != _ENGLISH:
        raise ConfigError(
            f"the local engine recognizes English speech only, not {resolve(job.source).name} "
            "(--from); use the cloud engine (`--engine cloud` with DASHSCOPE_API_KEY)"
        )


@dataclass(frozen=True, slots=True)
class _Plan:
    """What one job needs, resolved once: the pair's mode and the voice."""

    target: Language
    mode: str | None
    voice: str | None


class LocalTranslator:
    """The offline :class:`~dubkit.translate.protocol.Translator`: English speech in, any pair out.

    ``job.voice`` None means text only; otherwise eSpeak NG speaks with its voice for the
    target language in the male or female variant of that service voice
    (:data:`dubkit.translate.local.espeak.VARIANTS`). Safe to call
    concurrently: the blocking work runs in worker threads, each borrowing its
    own pocketsphinx decoder.
    """

    name = "local"

    def __init__(self, options: LocalOptions | None = None) -> None:
        self.options = options or LocalOptions()
        self._recognizer = Recognizer(self.options.recognizer, self.options.workers)
        self._plans: dict[Job, _Plan] = {}

    @cached_property
    def _apertium(self) -> Apertium:
        return Apertium.find(self.options.apertium)

    @cached_property
    def _espeak(self) -> Espeak:
        return Espeak.find(self.options.espeak, self.options.rate_wpm)

    def check(self, job: Job) -> None:
        """Raise a ConfigError now if ``job`` cannot run here (source, pair, programs, voice)."""
        self._plan(job)

    def _plan(self, job: Job) -> _Plan:
        plan = self._plans.get(job)
        if plan is None:
            check_source(job)
            target = resolve(job.target)
            mode = None if target == _ENGLISH else self._apertium.mode(_ENGLISH, target)
            voice = self._espeak.voice_for(target.code, job.voice) if job.wants_audio else None
            plan = self._plans[job] = _Plan(target, mode, voice)
        return plan

    def identity(self) -> dict[str, str]:
        """Engine name and versions: recognizer, Apertium pairs' data, eSpeak NG and its voices."""
        return {
            "engine": self.name,
            "asr": self.options.recognizer.identity(),
            "mt": self._mt_identity(),
            "tts": self._tts_identity(),
        }

    def _mt_identity(self) -> str:
        try:
            apertium = self._apertium
        except ConfigError:
            return "apertium missing"
        modes = sorted(m for (s, _), m in installed_modes(apertium.modes_dir).items() if s == "en")
        return "apertium " + ",".join(apertium.fingerprint(m) for m in modes)

    def _tts_identity(self) -> str:
        try:
            espeak = self._espeak
        except ConfigError:
            return "espeak-ng missing"
        voices = ",".join(f"{c}={v}" for c, v in sorted(ESPEAK_VOICES.items()))
        variants = ",".join(f"{k}={v}" for k, v in sorted(VARIANTS.items()))
        return (
            f"espeak-ng {espeak.version()} rate={espeak.rate_wpm} voices={voices} "
            f"variants={variants}"
        )

    async def translate(
        self, pcm: np.ndarray, job: Job, *, video: bytes | None = None
    ) -> Translation:
        """Recognize, translate and (if ``job.voice``) speak one utterance; ``video`` is unused."""
        if pcm.ndim != 1 or pcm.dtype != np.int16:
            raise InputError(f"expected int16 mono samples, got {pcm.dtype} of shape {pcm.shape}")
        plan = await asyncio.to_thread(self._plan, job)
        return await asyncio.to_thread(self._translate, pcm, plan)

    def _translate(self, pcm: np.ndarray, plan: _Plan) -> Translation:
        english = self._recognizer.recognize(pcm)
        text = english if plan.mode is None else self._apertium.translate(english, plan.mode)
        audio = np.zeros(0, dtype=np.int16)
        if plan.voice is not None and text:
            audio = self._espeak.speak(text, plan.voice)
        in_ms = pcm.size * 1000 // VAD_RATE
        out_ms = audio.size * 1000 // SERVICE_RATE
        log.debug("local: %r -> %r (%d ms of speech)", english, text, out_ms)
        return Translation(
            text=text,
            audio=audio.astype("<i2").tobytes(),
            sample_rate=SERVICE_RATE,
            usage=estimate_usage(in_ms, text, out_ms),
            finish_reason="stop",
        )

    async def aclose(self) -> None:
        """Drop the idle recognizers."""
        self._recognizer.close()
