"""Where the emulator's translations come from: synthetic, or the local engine."""

from __future__ import annotations

import asyncio
import importlib
import logging
import threading
from typing import Any

import numpy as np

from dubkit.emulator.decode import DecodedInput
from dubkit.emulator.protocol import ApiError, ParsedRequest, bad
from dubkit.emulator.synth import synthesize_answer
from dubkit.errors import ConfigError, DubkitError
from dubkit.translate.protocol import Job
from dubkit.types import SERVICE_RATE

logger = logging.getLogger(__name__)


def synthetic(
    req: ParsedRequest, decoded: DecodedInput, *, canned: bool = False
) -> tuple[str, np.ndarray]:
    """The deterministic synthetic translation (text, PCM16 24 kHz)."""
    ans = synthesize_answer(
        decoded.pcm, decoded.sha256, req.target.code, req.voice, req.seed, canned=canned
    )
    return ans.text, ans.pcm


class LocalEngine:
    """:class:`dubkit.translate.local.LocalTranslator` on its own event-loop thread.

    Imported lazily, created on first use, closed by :meth:`close`.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._translator: Any = None

    def _ensure(self) -> tuple[asyncio.AbstractEventLoop, Any]:
        with self._lock:
            if self._translator is None:
                # Imported lazily: optional, heavy, and written separately.
                local = importlib.import_module("dubkit.translate.local")

                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="emulator-local-engine", daemon=True
                )
                thread.start()
                self._loop, self._thread = loop, thread
                self._translator = local.LocalTranslator()
            assert self._loop is not None
            return self._loop, self._translator

    def warm(self) -> None:
        """Load the engine's recognizer now (Whisper's model takes seconds), not on a request."""
        _, translator = self._ensure()
        try:
            translator.warm()
        except ConfigError as e:  # refused again, per request, with a 400
            logger.warning("local engine: %s", e)

    def translate(self, req: ParsedRequest, decoded: DecodedInput) -> tuple[str, np.ndarray]:
        loop, translator = self._ensure()
        job = Job(
            target=req.target.code,
            source=req.source.code if req.source else None,
            voice=req.voice,
        )
        future = asyncio.run_coroutine_threadsafe(translator.translate(decoded.pcm, job), loop)
        try:
            result = future.result()
        except ConfigError as e:  # e.g. no Apertium pair or voice for this language here
            raise bad(f"local engine cannot translate this request: {e}") from e
        except DubkitError as e:
            raise ApiError(500, "internal_error", f"local engine failed: {e}",
                           err_type="internal_error") from e
        pcm = result.samples().astype(np.int16)
        assert result.sample_rate == SERVICE_RATE or not len(pcm)  # the local engine's contract
        return result.text, pcm

    def close(self) -> None:
        with self._lock:
            loop, translator, thread = self._loop, self._translator, self._thread
            self._loop = self._translator = self._thread = None
        if loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(translator.aclose(), loop).result(timeout=5)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            if thread is not None:
                thread.join(timeout=1)
