"""TranslationCache: keys, atomic round trips, corrupt entries, default directory."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from dubkit.errors import OutputError
from dubkit.translate.cache import TranslationCache, default_cache_dir
from dubkit.translate.protocol import Job
from dubkit.types import Translation, Usage

IDENT = {"engine": "cloud", "model": "qwen3-livetranslate-flash", "endpoint": "dashscope"}


def _pcm(seed: int = 0, n: int = 16_000) -> np.ndarray:
    return np.random.default_rng(seed).integers(-3000, 3000, n, dtype=np.int16)


def _translation() -> Translation:
    audio = (np.arange(4801, dtype=np.int16) * 7).astype("<i2").tobytes()
    usage = Usage(40, 60, 100, 38, 0, 50, 10)
    return Translation("¡Hola, mundo! ñ 你好", audio, 24_000, usage, "stop")


def test_key_depends_on_audio_and_every_parameter() -> None:
    pcm = _pcm()
    job = Job("es", "en", "Cherry")
    base = TranslationCache.key(pcm, job, IDENT)
    assert base == TranslationCache.key(pcm.copy(), Job("es", "en", "Cherry"), dict(IDENT))
    assert len(base) == 64
    variants = [
        TranslationCache.key(_pcm(1), job, IDENT),
        TranslationCache.key(pcm[:-1], job, IDENT),
        TranslationCache.key(pcm, Job("fr", "en", "Cherry"), IDENT),
        TranslationCache.key(pcm, Job("es", None, "Cherry"), IDENT),
        TranslationCache.key(pcm, Job("es", "en", "Ethan"), IDENT),
        TranslationCache.key(pcm, Job("es", "en", None), IDENT),
        TranslationCache.key(pcm, job, {**IDENT, "model": "qwen3-livetranslate-flash-2025-12-01"}),
        TranslationCache.key(pcm, job, {**IDENT, "engine": "local"}),
        TranslationCache.key(pcm, job, IDENT, video=b"\x00mp4"),
        TranslationCache.key(pcm, job, IDENT, video=b"\x01mp4"),
    ]
    assert len({base, *variants}) == len(variants) + 1


def test_round_trip_is_exact_and_stores_no_key(tmp_path: Path) -> None:
    cache = TranslationCache(tmp_path / "c")
    key = cache.key(_pcm(), Job("es"), IDENT)
    assert cache.get(key) is None
    t = _translation()
    cache.put(key, t)
    assert cache.get(key) == t
    files = [p for p in (tmp_path / "c").rglob("*") if p.is_file()]
    assert len(files) == 1
    data = files[0].read_bytes()
    assert key.encode() not in data
    assert not data.startswith(b"\x80")  # not a pickle
    # a second put of the same key replaces atomically, leaving no temporary file behind
    cache.put(key, Translation("otra", b"", 24_000))
    assert cache.get(key) == Translation("otra", b"", 24_000)
    assert [p.name for p in (tmp_path / "c").rglob("*") if p.is_file()] == [files[0].name]


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[: len(b) // 2],  # partial write
        lambda b: b[:-1],  # one byte short
        lambda b: b[:-2] + bytes([b[-2] ^ 1]) + b[-1:],  # flipped audio bit
        lambda b: b"garbage",
        lambda b: b"",
        lambda b: b.replace(b'"text"', b'"txet"'),  # missing field
        lambda b: b.split(b"\n", 1)[0] + b"\n{not json\n" + b"x" * 10,
    ],
)
def test_corrupt_entry_is_ignored_logged_and_redone(
    tmp_path: Path, damage: object, caplog: pytest.LogCaptureFixture
) -> None:
    cache = TranslationCache(tmp_path)
    key = cache.key(_pcm(), Job("es"), IDENT)
    cache.put(key, _translation())
    path = cache.path(key)
    path.write_bytes(damage(path.read_bytes()))  # type: ignore[operator]
    with caplog.at_level(logging.WARNING, logger="dubkit.translate.cache"):
        assert cache.get(key) is None
    assert "corrupt" in caplog.text and str(path) in caplog.text
    cache.put(key, _translation())
    assert cache.get(key) == _translation()


def test_unwritable_directory_raises_output_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    cache = TranslationCache(blocker / "sub")
    key = cache.key(_pcm(), Job("es"), IDENT)
    with pytest.raises(OutputError) as e:
        cache.put(key, _translation())
    assert "cache entry" in str(e.value)


def test_bad_key_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        TranslationCache(tmp_path).path("../../etc/passwd")


def test_default_cache_dir_precedence() -> None:
    env = {"HOME": "/home/u", "XDG_CACHE_HOME": "/xdg", "DUBKIT_CACHE_DIR": "/explicit"}
    assert default_cache_dir(env) == Path("/explicit")
    del env["DUBKIT_CACHE_DIR"]
    assert default_cache_dir(env) == Path("/xdg/dubkit")
    env["XDG_CACHE_HOME"] = ""
    assert default_cache_dir(env) == Path("/home/u/.cache/dubkit")
