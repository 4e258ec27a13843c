"""The real-speech development set (``fixtures/realspeech.py``) for tests, loaded once.

Importing this module skips the importing test module where Debian's codec2-examples is
missing on a developer's machine, and fails in CI, where ``scripts/setup.sh`` installs it.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def _load(name: str = "dubkit_realspeech", file: str = "realspeech.py") -> ModuleType:
    if str(FIXTURES) not in sys.path:  # realspeech imports its sibling wordtruth
        sys.path.append(str(FIXTURES))
    spec = importlib.util.spec_from_file_location(name, FIXTURES / file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


rs = sys.modules.get("dubkit_realspeech") or _load()
#: ``fixtures/turns.py``: programs where 3 to 5 people of one half take turns.
turns = sys.modules.get("dubkit_turns") or _load("dubkit_turns", "turns.py")

if not rs.available():
    if os.environ.get("CI"):
        raise RuntimeError("codec2-examples is missing in CI: scripts/setup.sh installs it")
    pytest.skip(
        "codec2-examples is not installed (bash scripts/setup.sh installs it)",
        allow_module_level=True,
    )


def write_wav(audio: object, path: Path) -> Path:
    """A program's mono 16 kHz int16 ``audio`` as a WAV file at ``path``."""
    import wave

    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rs.RATE)
        w.writeframes(audio.tobytes())  # type: ignore[attr-defined]
    return path
