"""The ``Translator`` interface: one utterance's audio in, a ``Translation`` out.

Two implementations: :class:`dubkit.translate.cloud.CloudTranslator` (qwen3-livetranslate-flash)
and :class:`dubkit.translate.local.LocalTranslator` (offline cascade).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from dubkit.types import Translation


@dataclass(frozen=True, slots=True)
class Job:
    """What every request of one run asks for.

    ``target``/``source`` are service language codes (``source`` None = auto-detect);
    ``voice`` None means text only (subtitles), otherwise text and speech.
    """

    target: str
    source: str | None = None
    voice: str | None = None

    @property
    def wants_audio(self) -> bool:
        return self.voice is not None


@runtime_checkable
class Translator(Protocol):
    """Translates one utterance. Implementations must be safe to call concurrently."""

    #: Short engine name shown to users and written to the manifest ("cloud", "local").
    name: str

    def identity(self) -> dict[str, str]:
        """Every engine setting that changes the answer (model, engine version...).

        Used in the cache key; must never contain secrets.
        """
        ...

    async def translate(
        self, pcm: np.ndarray, job: Job, *, video: bytes | None = None
    ) -> Translation:
        """Translate ``pcm`` (int16 mono at 16 kHz).

        ``video`` is an optional short MP4 of the same span, sent instead of the
        audio when the engine can use the picture. Raises
        :class:`dubkit.errors.ServiceError` (``retryable`` set for transient
        failures) or :class:`dubkit.errors.TruncatedError`.
        """
        ...

    async def aclose(self) -> None:
        """Release connections or subprocesses; the translator stays usable afterwards."""
        ...


# An engine may also offer ``check(job) -> None``, raising ConfigError for a job it can
# never do (the local engine without the Apertium pair, say); the pipeline calls it before
# any work, so the refusal comes first, not after decoding and segmenting.
