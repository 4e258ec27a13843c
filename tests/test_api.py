"""The public Python API: every exported name resolves, and the names are the contract's."""

from __future__ import annotations

import dubkit


def test_every_exported_name_resolves() -> None:
    for name in dubkit.__all__:
        assert getattr(dubkit, name) is not None, name
    for name in ("dub", "subtitle", "segment", "Options", "Utterance", "Translation", "Cue",
                 "CloudTranslator", "LocalTranslator", "Translator", "DubkitError"):  # fmt: skip
        assert name in dubkit.__all__


def test_segment_stays_the_function_after_its_module_is_imported() -> None:
    import dubkit.pipeline  # imports the dubkit.segment module
    import dubkit.segment

    assert callable(dubkit.segment) and dubkit.segment.__name__ == "segment"
    assert callable(dubkit.dub) and callable(dubkit.subtitle)
