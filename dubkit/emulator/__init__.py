"""An emulator of qwen3-livetranslate-flash, served over real HTTP on loopback.

>>> from dubkit.emulator import Emulator, EmulatorConfig
>>> with Emulator(EmulatorConfig(api_key="sk-test")) as emu:
...     emu.base_url.startswith("http://127.0.0.1:")
True

See :class:`EmulatorConfig` for the knobs (latency, streaming speed, quotas,
faults, engine) and :mod:`dubkit.emulator.protocol` for the validation rules.
"""

from __future__ import annotations

from dubkit.emulator.config import FAULT_KINDS, EmulatorConfig, RequestRecord
from dubkit.emulator.server import Emulator, serve

__all__ = ["FAULT_KINDS", "Emulator", "EmulatorConfig", "RequestRecord", "serve"]
