"""dubkit: subtitle and dub videos with qwen3-livetranslate-flash, without drift or re-encoding.

>>> import dubkit
>>> dubkit.Utterance(1000, 2500).duration_ms
1500

The heavy parts (media, engines, pipeline) load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# ``dubkit.segment`` is the segmentation module, as every other stage's module is; calling
# it, ``dubkit.segment(path)``, is its function :func:`dubkit.segment.segment`.
from dubkit import segment

_EXPORTS = {
    # pipeline
    "dub": "dubkit.pipeline",
    "subtitle": "dubkit.pipeline",
    "redo": "dubkit.pipeline",
    "Options": "dubkit.pipeline.options",
    "Result": "dubkit.pipeline.options",
    "Outputs": "dubkit.pipeline.options",
    "Entry": "dubkit.pipeline.timeline",
    "Totals": "dubkit.pipeline.timeline",
    # stages
    "SegmentOptions": "dubkit.segment",
    "SubtitleOptions": "dubkit.subtitles",
    "FitOptions": "dubkit.fit",
    "Placement": "dubkit.fit",
    "MixOptions": "dubkit.mix",
    "probe": "dubkit.media",
    # engines
    "Translator": "dubkit.translate.protocol",
    "Job": "dubkit.translate.protocol",
    "CloudTranslator": "dubkit.translate.cloud",
    "CloudConfig": "dubkit.translate.cloud",
    "LocalTranslator": "dubkit.translate.local",
    "make_translator": "dubkit.translate.engines",
    "EngineOptions": "dubkit.translate.engines",
    # data types
    "Utterance": "dubkit.types",
    "Translation": "dubkit.types",
    "Usage": "dubkit.types",
    "Cue": "dubkit.types",
    "MediaInfo": "dubkit.types",
    "StreamInfo": "dubkit.types",
    # errors
    "DubkitError": "dubkit.errors",
    "InputError": "dubkit.errors",
    "OutputError": "dubkit.errors",
    "ConfigError": "dubkit.errors",
    "ServiceError": "dubkit.errors",
    "AuthError": "dubkit.errors",
    "PartialFailure": "dubkit.errors",
}

__all__ = ["__version__", "segment", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'dubkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
