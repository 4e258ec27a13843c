"""The manifest schema and the options, fuzzed: whatever comes in, the answer is a usable
value or one :class:`~dubkit.errors.DubkitError` line, never another exception."""

from __future__ import annotations

import copy
import json
import math
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dubkit.cli import build_parser
from dubkit.cli.options import job_options
from dubkit.errors import ConfigError
from dubkit.pipeline.manifest_schema import ManifestError, parse, sections, validate
from dubkit.review import pages, review_html
from dubkit.translate.cloud import CloudConfig
from dubkit.translate.config import Environment
from tests.review_fixtures import synthetic_manifest

#: FUZZ_EXAMPLES=5000 for a longer hunt.
FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
KEYS = (
    "dubkit", "utterances", "languages", "start_ms", "end_ms", "dub", "ratio", "outputs",
    "review", "target", "duration_ms", "files", "input", "cues", "text", "envelope",
)  # fmt: skip

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), inner, max_size=5),
    max_leaves=30,
)


#: Where the fuzzed manifests "are": nothing is written, pages are only named.
HERE = Path("/nonexistent/dubkit-fuzz")


def _usable(data: dict[str, Any], tmp: Path) -> None:
    """What review does with an accepted manifest: no exception, valid JSON, pages beside it."""
    manifest = tmp / "talk.dub.dubkit.json"
    json.dumps(data, allow_nan=False)
    for page, section in pages(data, manifest):
        assert page.parent == manifest.parent and page.name.endswith(".review.html")
        review_html(section)


@FUZZ
@given(data=json_values)
def test_any_json_value_is_accepted_or_refused_with_a_field(data: Any) -> None:
    try:  # as review reads it: the text, parsed, then checked
        checked = validate(parse(json.dumps(data)))
    except ManifestError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("not a dubkit manifest")
        return
    _usable(checked, HERE)


BASE = synthetic_manifest(n=6, duration_ms=60_000)


def _paths(value: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [at]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*at, k))
    elif isinstance(value, list):
        for i, v in enumerate(value[:3]):
            out += _paths(v, (*at, i))
    return out


PATHS = [p for p in _paths(BASE) if p]


@FUZZ
@given(where=st.sampled_from(PATHS), value=json_values)
def test_a_real_manifest_with_one_field_replaced(where: tuple[Any, ...], value: Any) -> None:
    data = copy.deepcopy(BASE)
    node = data
    for k in where[:-1]:
        node = node[k]
    node[where[-1]] = value
    try:
        checked = validate(parse(json.dumps(data)))
    except ManifestError as exc:
        assert exc.field or "bad JSON" in str(exc), str(exc)
        return
    _usable(checked, HERE)
    for section in sections(checked):
        for u in section["utterances"]:
            assert 0 <= u["start_ms"] <= u["end_ms"]
            ratio = (u.get("dub") or {}).get("ratio", 1.0)
            assert math.isfinite(ratio)


def test_the_synthetic_manifest_and_a_real_run_shape_pass() -> None:
    assert validate(BASE) is BASE
    several = {"dubkit": "0.1", "duration_ms": 60_000, "targets": ["es", "pt"],
               "languages": [{**BASE, "target": "es"}, {**BASE, "target": "pt"}]}  # fmt: skip
    assert len(sections(validate(several))) == 2


@FUZZ
@given(text=st.text(max_size=60) | st.sampled_from(["NaN", "-Infinity", "1e400", "[" * 3000]))
def test_any_text_parses_or_is_refused(text: str) -> None:
    try:
        parse(text)
    except ManifestError as exc:
        assert "\n" not in str(exc)


# --- the options ----------------------------------------------------------------------

numbers = st.floats() | st.sampled_from([0.0, 1.0, 1.3, 4.0, 240.0, 241.0, 1e308, -0.0])


@FUZZ
@given(speed=numbers, longest=numbers)
def test_numeric_options_are_finite_or_a_config_error(speed: float, longest: float) -> None:
    args = build_parser().parse_args(
        ["dub", "talk.mp4", "--to", "es", f"--max-speed={speed!r}", f"--max-utterance={longest!r}"]
    )
    try:
        options = job_options(args, Environment(), dubbing=True)
    except ConfigError as exc:
        assert "\n" not in str(exc)
        return
    assert 1.0 <= options.fit.max_ratio <= 4.0
    assert 0 < options.segment.max_utterance_ms <= 240_000


urls = st.text(max_size=40) | st.builds(
    "{}://{}{}".format,
    st.sampled_from(["http", "https", "HTTP", "ftp", "file", "javascript", ""]),
    st.text(max_size=15),
    st.sampled_from(["", "/v1", ":8000/v1", ":0", ":99999", " /x"]),
)


@FUZZ
@given(key=st.text(max_size=30), url=urls)
def test_keys_and_base_urls_are_usable_or_a_config_error(key: str, url: str) -> None:
    try:
        config = CloudConfig(api_key=key, base_url=url)
    except ConfigError as exc:
        assert "\n" not in str(exc)
        shown = str(exc).replace(url, "")  # the URL is named; the key never is
        assert len(key.strip()) < 8 or key.strip() not in shown
        return
    assert all("!" <= ch <= "~" for ch in config.api_key.strip())
    parts = urlsplit(config.endpoint)
    assert parts.scheme.lower() in ("http", "https") and parts.hostname
    assert f"Bearer {config.api_key.strip()}".isprintable()  # a header value as it is sent


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000/compatible-mode/v1", "https://h.example"])
def test_ordinary_base_urls_are_kept(url: str) -> None:
    assert CloudConfig(api_key="sk-1", base_url=url).endpoint == url
