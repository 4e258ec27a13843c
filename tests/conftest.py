"""Shared test fixtures: paths, an emulator on loopback, and translators pointed at it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dubkit.emulator import Emulator, EmulatorConfig
from dubkit.mix import MixOptions
from dubkit.translate import ArrayAudio
from dubkit.translate.cloud import CloudConfig, CloudTranslator
from dubkit.translate.pacing import RateLimiter
from dubkit.types import Utterance

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "fixtures"
KEY = "sk-test-0123456789abcdef"
#: The mix of tests that do not look at it: ducking, where the default separates the dialogue
#: out in a child process (2.3 s more CPU for the 30 s fixture). The separation is tested in
#: test_separate.py and by the end-to-end, example and kill-and-resume tests, which keep it.
DUCK = MixOptions(mode="duck")


def noise_bursts(
    n: int, utt_ms: int, gap_ms: int, seed: int, peak: int
) -> tuple[ArrayAudio, list[Utterance]]:
    """``n`` distinct bursts of noise (16 kHz, up to ``peak``) separated by ``gap_ms`` of
    silence, and their spans: audio whose every utterance hashes differently."""
    rng = np.random.default_rng(seed)
    step = utt_ms + gap_ms
    samples = np.zeros(n * step * 16, np.int16)
    utts = []
    for i in range(n):
        a = i * step
        samples[a * 16 : (a + utt_ms) * 16] = rng.integers(-peak, peak, utt_ms * 16)
        utts.append(Utterance(a, a + utt_ms))
    return ArrayAudio(samples), utts


def truth(name: str) -> dict:  # type: ignore[type-arg]
    return json.loads((FIX / f"{name}.json").read_text())


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No test, nor any CLI it starts, reads or fills the user's own translation cache."""
    saved = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    yield
    if saved is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = saved


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig(api_key=KEY)) as emu:
        yield emu


def translator_for(emu: Emulator, **config: object) -> CloudTranslator:
    cfg = CloudConfig(api_key=KEY, base_url=emu.base_url, **config)  # type: ignore[arg-type]
    return CloudTranslator(cfg, limiter=RateLimiter(rpm=100_000, tpm=100_000_000))


@pytest.fixture
def cloud(emulator: Emulator) -> CloudTranslator:
    return translator_for(emulator)


def default_sigint() -> None:
    """For ``preexec_fn``: the child takes Ctrl-C as from a terminal, whatever this test run
    inherited (a suite started in the background runs with SIGINT ignored, which its children
    would keep: they would never see the Ctrl-C a test sends)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_cli(
    *args: str | Path, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m dubkit ARGS`` as a user would, with a clean environment."""
    child = {k: v for k, v in os.environ.items() if not k.startswith(("DASHSCOPE_", "DUBKIT_"))}
    child.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "dubkit", *map(str, args)],
        capture_output=True, text=True, env=child, timeout=timeout, check=False,
    )  # fmt: skip


@pytest.fixture(scope="session")
def whisper_asr() -> Any:
    """One Whisper recognizer for the session: the model is loaded once (about 2 s)."""
    from dubkit.translate.local.whisper import WhisperRecognizer

    asr = WhisperRecognizer()
    asr.load()
    return asr
