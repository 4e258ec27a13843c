"""The streamed dub: clips are placed, stretched and mixed while later requests are in flight,
and the output does not depend on when the answers arrive."""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import dubkit
from dubkit.emulator import Emulator, EmulatorConfig
from dubkit.mix import MixOptions
from dubkit.pipeline import Options
from dubkit.subtitles import read_srt
from dubkit.translate import ArrayAudio, translate_in_order
from dubkit.translate.cloud import CloudConfig, CloudTranslator
from dubkit.translate.pacing import RateLimiter
from dubkit.translate.protocol import Job
from dubkit.types import Utterance
from tests.conftest import FIX, KEY
from tests.test_dub import decode


class _LateFirst:
    """Holds back the answer to the first request until all the others are in: the answers
    arrive in the reverse of the timeline's order at its start."""

    name = "cloud"

    def __init__(self, inner: CloudTranslator, others: int) -> None:
        self.inner, self.others, self.seen, self.done = inner, others, 0, 0

    def identity(self) -> dict[str, str]:
        return self.inner.identity()

    async def translate(self, pcm: np.ndarray, job: Job, *, video: bytes | None = None) -> Any:
        self.seen += 1
        first = self.seen == 1
        answer = await self.inner.translate(pcm, job, video=video)
        while first and self.done < self.others:
            await asyncio.sleep(0.05)
        self.done += 1
        return answer

    async def aclose(self) -> None:
        await self.inner.aclose()


def _translator(emu: Emulator) -> CloudTranslator:
    return CloudTranslator(
        CloudConfig(api_key=KEY, base_url=emu.base_url),
        limiter=RateLimiter(rpm=100_000, tpm=100_000_000),
    )


@pytest.fixture(scope="module")
def slow() -> object:
    with Emulator(EmulatorConfig(api_key=KEY, latency_s=0.4)) as emu:
        yield emu


def test_the_mix_starts_before_the_last_answer_arrives(tmp_path: Path, slow: Emulator) -> None:
    src = tmp_path / "talk.wav"
    shutil.copy(FIX / "speech.wav", src)
    events: list[tuple[str, int, int]] = []
    lock = threading.Lock()

    def progress(stage: str, done: int, total: int) -> None:
        with lock:
            events.append((stage, done, total))

    opts = Options(target="es", concurrency=1, mix=MixOptions(loudness_ms=1_000))
    result = dubkit.dub(src, opts, _translator(slow), progress=progress)
    assert not result.failed and len(result.results) >= 4
    first_mix = next(i for i, e in enumerate(events) if e[0] == "mix" and e[1] > 0)
    last_answer = max(i for i, e in enumerate(events) if e[0] == "translate")
    assert first_mix < last_answer, events


def test_streamed_and_all_at_once_give_the_same_bytes(tmp_path: Path, slow: Emulator) -> None:
    """Answers arriving one by one with the first one last, or all at once from the cache:
    the same dubbed samples and the same subtitles, bit for bit."""
    src = tmp_path / "talk.mp4"
    shutil.copy(FIX / "speech.mp4", src)
    cache = tmp_path / "cache"
    runs = []
    n = len(dubkit.segment(src))
    for name in ("streamed", "cached"):
        out = tmp_path / name
        opts = Options(
            target="es", out_dir=out, cache_dir=cache, concurrency=n,
            mix=MixOptions(loudness_ms=5_000),
        )  # fmt: skip
        plain = _translator(slow)
        engine = _LateFirst(plain, n - 1) if name == "streamed" else plain
        runs.append(dubkit.dub(src, opts, engine))
    a, b = runs
    assert all(r.cached for r in b.results) and not any(r.cached for r in a.results)
    dub_a, _ = decode(a.outputs.media)  # type: ignore[arg-type]
    dub_b, _ = decode(b.outputs.media)  # type: ignore[arg-type]
    assert np.array_equal(dub_a, dub_b)
    assert a.placements == b.placements and a.cues == b.cues
    assert read_srt(a.outputs.subtitles[0]) == read_srt(b.outputs.subtitles[0])


def test_translate_in_order_yields_in_timeline_order_and_stops_cleanly(slow: Emulator) -> None:
    pcm = (np.random.default_rng(1).normal(0, 3000, 16_000 * 12)).astype(np.int16)
    utts = [Utterance(i * 2000, i * 2000 + 1500) for i in range(6)]
    job = Job("es", None, "Cherry")
    got = list(translate_in_order(_translator(slow), ArrayAudio(pcm), utts, job, concurrency=6))
    assert [rs[0].utterance for rs in got] == utts
    # closed early (as on Ctrl-C in the consumer): the requests in flight are cancelled
    stream = translate_in_order(_translator(slow), ArrayAudio(pcm), utts, job, concurrency=2)
    first = next(stream)
    t0 = time.perf_counter()
    stream.close()
    assert first[0].utterance == utts[0]
    assert time.perf_counter() - t0 < 2.0
    assert not [t for t in threading.enumerate() if t.name == "dubkit-translate"]


def test_requests_run_at_most_a_window_ahead_of_the_consumer(slow: Emulator) -> None:
    """A consumer slower than the answers (a CPU-bound mix) holds the requests back to
    AHEAD_PER_REQUEST x concurrency results, counting from the one it waits for; each result it
    takes lets one more request start, and every result still comes, in order."""
    import dubkit.translate as translate

    pcm = (np.random.default_rng(2).normal(0, 3000, 16_000 * 40)).astype(np.int16)
    utts = [Utterance(i * 2000, i * 2000 + 1500) for i in range(20)]
    job = Job("es", None, "Cherry")
    ahead = translate.AHEAD_PER_REQUEST * 2
    assert ahead < len(utts) - 2

    def settled(expected: int) -> int:
        """The requests received once ``expected`` have come (or 30 s have passed) and then
        2 s more, five times the emulator's latency, in which more would have come."""
        deadline = time.monotonic() + 30
        while len(slow.records) < expected and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(2.0)
        return len(slow.records)

    slow.reset_records()
    stream = translate_in_order(_translator(slow), ArrayAudio(pcm), utts, job, concurrency=2)
    got = [next(stream)]  # the consumer takes result 0 and does not yet ask for result 1
    assert settled(ahead) == ahead
    got.append(next(stream))  # it asks for result 1: one more request may start
    assert settled(ahead + 1) == ahead + 1
    got += list(stream)
    assert [rs[0].utterance for rs in got] == utts
    assert len(slow.records) == len(utts)


def test_the_mix_hands_freed_memory_back_once_a_minute_of_media(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import dubkit.pipeline.dubbing as dubbing

    calls: list[int] = []
    monkeypatch.setattr(dubbing, "_release_free_memory", lambda: calls.append(1))
    rate = 1000
    blocks = (np.zeros((2, 7 * rate), np.float32) for _ in range(22))  # 154 s of media
    seen = []
    out = dubbing._counted(blocks, rate, 154_000, lambda *a: seen.append(a))
    assert sum(b.shape[1] for b in out) == 154 * rate
    assert len(calls) == 2 and seen[-1] == ("mix", 154_000, 154_000)
    assert dubbing._malloc_trim() is not None  # this machine's glibc has it
