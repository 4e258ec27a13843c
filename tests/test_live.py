"""One short utterance against the real qwen3-livetranslate-flash (needs DASHSCOPE_API_KEY).

Optional: DASHSCOPE_BASE_URL (any compatible endpoint) or DASHSCOPE_REGION
(singapore, the default, or beijing).
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import numpy as np
import pytest

from dubkit.translate.cloud import CloudConfig, CloudTranslator
from dubkit.translate.pacing import RateLimiter
from dubkit.translate.protocol import Job
from dubkit.types import Translation

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(not os.environ.get("DASHSCOPE_API_KEY"), reason="DASHSCOPE_API_KEY not set"),
]

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def _first_utterance() -> np.ndarray:
    from dubkit.media import iter_pcm16

    truth = json.loads((FIXTURES / "speech.json").read_text())
    first = truth["utterances"][0]  # "The weather is nice today."
    pcm = np.concatenate(list(iter_pcm16(FIXTURES / "speech.mp4", rate=16_000)))
    return pcm[first["start_ms"] * 16 : first["end_ms"] * 16]


def _translate(pcm: np.ndarray, job: Job) -> Translation:
    env = os.environ
    config = CloudConfig(
        api_key=env["DASHSCOPE_API_KEY"],
        base_url=env.get("DASHSCOPE_BASE_URL") or None,
        region="beijing" if env.get("DASHSCOPE_REGION") == "beijing" else "singapore",
        max_retries=3,
    )

    async def main() -> Translation:
        tr = CloudTranslator(config, limiter=RateLimiter(rpm=60, tpm=50_000))
        try:
            return await tr.translate(pcm, job)
        finally:
            await tr.aclose()

    return asyncio.run(main())


def test_live_text_and_audio() -> None:
    pcm = _first_utterance()
    t = _translate(pcm, Job("es", "en", "Cherry"))
    assert t.finish_reason == "stop"
    assert t.text.strip() and any(w in t.text.lower() for w in ("tiempo", "clima", "hoy", "día"))
    assert t.sample_rate == 24_000 and len(t.audio) % 2 == 0
    assert 300 < t.audio_ms < 10_000
    assert np.abs(t.samples().astype(np.int32)).max() > 1000  # speech, not silence
    assert t.usage.total_tokens > 0


def test_live_text_only() -> None:
    t = _translate(_first_utterance(), Job("fr", "en"))
    assert t.text.strip() and t.audio == b""
