"""The public Python API: every exported name resolves, and the names are the contract's."""

from __future__ import annotations

import dubkit


def test_every_exported_name_resolves() -> None:
    for name in dubkit.__all__:
        assert getattr(dubkit, name) is not None, name
    for name in ("dub", "subtitle", "segment", "Options", "Utterance", "Translation", "Cue",
                 "CloudTranslator", "LocalTranslator", "Translator", "DubkitError"):  # fmt: skip
        assert name in dubkit.__all__


def test_segment_is_the_module_and_calling_it_segments() -> None:
    """``dubkit.segment`` is the stage's module (as README names every stage), and the
    documented shorthand ``dubkit.segment(path)`` still gives the utterances."""
    import importlib

    import numpy as np

    import dubkit.pipeline  # imports the dubkit.segment module
    import dubkit.segment

    assert dubkit.segment is importlib.import_module("dubkit.segment")
    assert dubkit.segment.Segmenter and dubkit.segment.SegmentOptions
    silence = np.zeros(16_000, dtype=np.int16)
    assert dubkit.segment(silence) == dubkit.segment.segment(silence) == []
    assert callable(dubkit.dub) and callable(dubkit.subtitle)
