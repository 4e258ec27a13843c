"""English speech recognition with pocketsphinx and the US English model its wheel carries.

A ``pocketsphinx.Decoder`` is not thread-safe, so :class:`Recognizer` keeps a
small pool: each call borrows a decoder no other thread is using (creating one
when all are busy) and gives it back.

Two cheap things make the default model much better on clean audio (on six
eSpeak NG sentences with digital silence, the reference words recognized in
order went from 37% to 76%; on ``fixtures/speech.wav``, which has a -60 dBFS
noise floor, 89% of the words are recognized):

- a low, fixed, seeded dither (Gaussian, sigma :data:`DITHER` LSB, about -50 dBFS)
  so that digital silence does not reach the log-energy features as -inf;
- a short silence pad at each end, so the utterance-level cepstral mean is
  computed with some background in it, as in the model's training data.

The dither's seed is fixed, so the same audio always gives the same words.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import numpy as np

from dubkit.errors import ConfigError, InputError, LocalToolError
from dubkit.types import VAD_RATE

log = logging.getLogger(__name__)

#: Standard deviation of the added dither, in int16 steps.
DITHER = 100.0
#: Silence added before and after an utterance, in ms.
PAD_MS = 300
#: Shorter input is not worth decoding (no word is this short).
MIN_MS = 100

_FILLER = re.compile(r"^(<.*>|\[.*\]|\+\+.*\+\+)$")
_ALT = re.compile(r"\(\d+\)$")


def _pocketsphinx() -> Any:
    try:
        import pocketsphinx
    except ImportError as e:
        raise ConfigError(
            "the local engine's speech recognition needs pocketsphinx; "
            "install it with `pip install 'dubkit[local]'` (or `pip install pocketsphinx`)"
        ) from e
    return pocketsphinx


def version() -> str:
    """The installed pocketsphinx version, e.g. ``5.1.1``."""
    try:
        return metadata.version("pocketsphinx")
    except metadata.PackageNotFoundError:
        return "missing"


def prepare(pcm: np.ndarray, *, pad_ms: int = PAD_MS, dither: float = DITHER) -> np.ndarray:
    """The int16 16 kHz samples the decoder gets: padded with silence and dithered (pure)."""
    pad = np.zeros(pad_ms * VAD_RATE // 1000, dtype=np.float32)
    signal = np.concatenate([pad, pcm.astype(np.float32), pad])
    if dither > 0:
        signal += np.random.default_rng(0).normal(0.0, dither, signal.size).astype(np.float32)
    return np.clip(np.rint(signal), -32768, 32767).astype(np.int16)


def clean(hypothesis: str) -> str:
    """pocketsphinx's words as a sentence: no fillers or ``(2)`` marks, a capital, a stop."""
    words = [_ALT.sub("", w) for w in hypothesis.split() if not _FILLER.match(w)]
    words = ["I" if w == "i" else ("I" + w[1:] if w.startswith("i'") else w) for w in words]
    if not words:
        return ""
    sentence = " ".join(words)
    return sentence[0].upper() + sentence[1:] + "."


@dataclass(frozen=True, slots=True)
class RecognizerOptions:
    """How the recognizer treats audio (part of the engine's identity)."""

    dither: float = DITHER
    pad_ms: int = PAD_MS

    def identity(self) -> str:
        return f"pocketsphinx {version()} en-us dither={self.dither:g} pad={self.pad_ms}ms"


class Recognizer:
    """English speech to text; safe to call from several threads at once.

    At most ``workers`` decodes run at the same time (default: the CPU count),
    since decoding is CPU-bound; further callers wait for a free decoder.
    """

    def __init__(
        self, options: RecognizerOptions | None = None, workers: int | None = None
    ) -> None:
        self.options = options or RecognizerOptions()
        self._slots = threading.BoundedSemaphore(max(1, workers or os.cpu_count() or 1))
        self._lock = threading.Lock()
        self._idle: list[Any] = []
        self._created = 0

    def _new_decoder(self) -> Any:
        ps = _pocketsphinx()
        try:
            decoder = ps.Decoder(loglevel="FATAL")
        except (RuntimeError, ValueError) as e:
            raise ConfigError(f"pocketsphinx could not load its English model: {e}") from e
        self._created += 1
        log.debug("pocketsphinx decoder %d ready", self._created)
        return decoder

    @contextmanager
    def _decoder(self) -> Iterator[Any]:
        with self._slots:
            with self._lock:
                decoder = self._idle.pop() if self._idle else None
            if decoder is None:
                decoder = self._new_decoder()
            try:
                yield decoder
            finally:
                with self._lock:
                    self._idle.append(decoder)

    def recognize(self, pcm: np.ndarray) -> str:
        """The English words in ``pcm`` (int16 mono 16 kHz) as a sentence, or ``""``."""
        if pcm.ndim != 1:
            raise InputError(f"expected mono samples, got shape {pcm.shape}")
        if pcm.size < MIN_MS * VAD_RATE // 1000 or not np.any(pcm):
            return ""
        audio = prepare(pcm, pad_ms=self.options.pad_ms, dither=self.options.dither)
        with self._decoder() as decoder:
            try:
                decoder.start_utt()
                decoder.process_raw(audio.tobytes(), full_utt=True)
                decoder.end_utt()
            except RuntimeError as e:
                raise LocalToolError(
                    f"pocketsphinx failed on {pcm.size} samples: {e}", command=["pocketsphinx"]
                ) from e
            hyp = decoder.hyp()
        return clean(hyp.hypstr) if hyp is not None else ""

    def close(self) -> None:
        """Drop the idle decoders (they are rebuilt on the next call)."""
        with self._lock:
            self._idle.clear()
