"""On-disk cache of translations, so a rerun repeats no request that already succeeded.

An entry is keyed by the SHA-256 of the utterance's audio and of every parameter that
changes the answer (target and source language, voice, the engine's identity such as
its model, and whether video was sent). Each entry is one file written atomically
(temporary file + ``os.replace``): a magic line, one line of JSON metadata, then the raw
PCM16 speech. Nothing is ever unpickled; an entry that is corrupt or partial is logged,
ignored and redone. The key names the file and is never stored inside it; neither is
anything secret (engine identities must not hold keys).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from dubkit.errors import OutputError
from dubkit.files import default_cache_dir as default_cache_dir
from dubkit.files import write_bytes_atomic
from dubkit.translate.protocol import Job
from dubkit.types import Translation, Usage

log = logging.getLogger(__name__)

_MAGIC = b"DUBKIT-CACHE 1\n"
_KEY_VERSION = "dubkit-translation-key-1"
_SUFFIX = ".dkc"


class TranslationCache:
    """A directory of cached :class:`Translation` values (created on first write)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def __repr__(self) -> str:
        return f"TranslationCache({str(self.directory)!r})"

    @staticmethod
    def key(
        pcm: np.ndarray, job: Job, identity: Mapping[str, str], *, video: bytes | None = None
    ) -> str:
        """The cache key of one request: hex SHA-256 of its audio and parameters."""
        params = {
            "target": job.target,
            "source": job.source,
            "voice": job.voice,
            "identity": dict(identity),
            "visual": video is not None,
            "video_sha256": hashlib.sha256(video).hexdigest() if video is not None else None,
        }
        h = hashlib.sha256(_KEY_VERSION.encode())
        h.update(json.dumps(params, sort_keys=True, separators=(",", ":")).encode())
        h.update(b"\0")
        h.update(np.ascontiguousarray(pcm, dtype="<i2").tobytes())
        return h.hexdigest()

    def path(self, key: str) -> Path:
        """Where the entry of ``key`` lives."""
        if len(key) < 8 or not all(c in "0123456789abcdef" for c in key):
            raise ValueError(f"not a cache key: {key!r}")
        return self.directory / key[:2] / f"{key}{_SUFFIX}"

    def get(self, key: str) -> Translation | None:
        """The cached translation of ``key``, or None (missing, corrupt or partial)."""
        path = self.path(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as e:
            log.warning("%s: cache entry unreadable, redoing it (%s)", path, e)
            return None
        try:
            return _decode(data)
        except (ValueError, KeyError, TypeError) as e:
            log.warning("%s: cache entry corrupt, redoing it (%s)", path, e)
            return None

    def put(self, key: str, translation: Translation) -> None:
        """Store ``translation`` under ``key`` atomically."""
        path = self.path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputError(f"cannot write cache entry ({e.strerror or e})", path=path) from e
        write_bytes_atomic(path, _encode(translation))


def _encode(t: Translation) -> bytes:
    meta = {
        "text": t.text,
        "sample_rate": t.sample_rate,
        "finish_reason": t.finish_reason,
        "voice": t.voice,
        "source_text": t.source_text,
        "usage": {f: getattr(t.usage, f) for f in Usage.__dataclass_fields__},
        "audio_bytes": len(t.audio),
        "audio_sha256": hashlib.sha256(t.audio).hexdigest(),
    }
    header = json.dumps(meta, ensure_ascii=True, separators=(",", ":")).encode()
    return _MAGIC + header + b"\n" + t.audio


def _decode(data: bytes) -> Translation:
    if not data.startswith(_MAGIC):
        raise ValueError("bad magic")
    header, sep, audio = data[len(_MAGIC) :].partition(b"\n")
    if not sep:
        raise ValueError("no metadata line")
    meta = json.loads(header)
    if not isinstance(meta, dict):
        raise ValueError("metadata is not an object")
    if len(audio) != int(meta["audio_bytes"]):
        raise ValueError(f"audio is {len(audio)} bytes, expected {meta['audio_bytes']}")
    if hashlib.sha256(audio).hexdigest() != meta["audio_sha256"]:
        raise ValueError("audio checksum mismatch")
    if len(audio) % 2:  # PCM16: whole samples only
        raise ValueError(f"audio is {len(audio)} bytes, not whole 16-bit samples")
    if not 8_000 <= int(meta["sample_rate"]) <= 192_000:
        raise ValueError(f"sample rate {meta['sample_rate']} is not an audio rate")
    usage = meta["usage"]
    if not isinstance(usage, dict):
        raise ValueError("usage is not an object")
    text = meta["text"]
    if not isinstance(text, str):
        raise ValueError("text is not a string")
    return Translation(
        text=text,
        audio=audio,
        sample_rate=int(meta["sample_rate"]),
        usage=Usage(**{f: int(usage.get(f, 0)) for f in Usage.__dataclass_fields__}),
        finish_reason=str(meta["finish_reason"]),
        voice=str(meta["voice"]) if meta.get("voice") is not None else None,
        source_text=_optional_str(meta.get("source_text")),
    )


def _optional_str(value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValueError("source_text is not a string")
    return value
