"""The examples in the docstrings run, and give what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "dubkit",
    "dubkit.pipeline.dubbing",
    "dubkit.pipeline.subtitling",
    "dubkit.tools",
    "dubkit.mux",
    "dubkit.segment",
    "dubkit.subtitles",
    "dubkit.emulator",
    "dubkit.moviepy",
    "dubkit.review.envelope",
    "dubkit.review",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
