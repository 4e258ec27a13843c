"""Machine translation with Apertium (Debian ``apertium`` plus a pair such as ``apertium-eng-spa``).

The installed language pairs are read from Apertium's modes directory
(``<prefix>/share/apertium/modes/eng-spa.mode``); a translation runs
``apertium -u eng-spa`` with the text on stdin (``-u`` drops the ``*`` marks
Apertium puts on unknown words).
"""

from __future__ import annotations

import hashlib
import re
import shutil
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from dubkit.errors import ConfigError
from dubkit.languages import LANGUAGES, Language
from dubkit.tools import run_for_utterance

#: Where Debian's ``apertium`` keeps its modes when the program is not found.
DEFAULT_MODES_DIR = Path("/usr/share/apertium/modes")

# Apertium names languages with ISO 639-3 codes (older pairs with two-letter ones).
_CODES: dict[str, str] = {lg.iso639_2: lg.code for lg in LANGUAGES}
_CODES.update({lg.code: lg.code for lg in LANGUAGES})
_CODES.update({"cmn": "zh", "zho": "zh", "fre": "fr", "ger": "de", "gre": "el"})

_MODE_NAME = re.compile(r"^([a-z]{2,3})-([a-z]{2,3})(?:_[A-Za-z0-9]+)?$")
_QUOTED_PATH = re.compile(r"'(/[^']+)'")


def modes_dir_for(program: str | None) -> Path:
    """The modes directory that belongs to the ``apertium`` program at ``program``."""
    if program:
        candidate = Path(program).resolve().parent.parent / "share" / "apertium" / "modes"
        if candidate.is_dir():
            return candidate
    return DEFAULT_MODES_DIR


def installed_modes(modes_dir: Path | None = None) -> dict[tuple[str, str], str]:
    """Every installed pair between two service languages, as ``(src, tgt) -> mode name``.

    A plain mode (``spa-eng``) wins over a variant of it (``spa-eng_US``).
    """
    folder = modes_dir if modes_dir is not None else modes_dir_for(shutil.which("apertium"))
    found: dict[tuple[str, str], str] = {}
    if not folder.is_dir():
        return found
    for path in sorted(folder.glob("*.mode")):
        m = _MODE_NAME.match(path.stem)
        if m is None or m.group(1) not in _CODES or m.group(2) not in _CODES:
            continue
        key = (_CODES[m.group(1)], _CODES[m.group(2)])
        if key not in found or "_" in found[key]:
            found[key] = path.stem
    return found


def installed_pairs(modes_dir: Path | None = None) -> list[tuple[str, str]]:
    """The installed Apertium pairs as service codes, e.g. ``[("en", "es"), ("es", "en")]``."""
    return sorted(installed_modes(modes_dir))


def package_for(target: Language) -> str:
    """The Debian package that would carry the English -> ``target`` pair."""
    return f"apertium-eng-{target.iso639_2}"


@cache
def _fingerprint(mode_file: Path) -> str:
    """A short hash of a mode's pipeline and of every data file it names."""
    digest = hashlib.sha256()
    text = mode_file.read_bytes()
    digest.update(text)
    for name in sorted(set(_QUOTED_PATH.findall(text.decode("utf-8", "replace")))):
        data = Path(name)
        if data.is_file():
            digest.update(data.read_bytes())
    return digest.hexdigest()[:12]


@dataclass(frozen=True, slots=True)
class Apertium:
    """The ``apertium`` program and the modes it can run."""

    program: str
    modes_dir: Path

    @classmethod
    def find(cls, program: str | None = None) -> Apertium:
        """Resolve the program (``program``, else ``apertium`` on PATH) or raise a ConfigError."""
        path = shutil.which(program or "apertium")
        if path is None:
            raise ConfigError(
                f"the local engine needs Apertium, and {program or 'apertium'!r} was not found; "
                "install it with `apt-get install apertium apertium-eng-<lang>` "
                "(e.g. apertium-eng-spa), or use `--engine cloud` with DASHSCOPE_API_KEY"
            )
        return cls(path, modes_dir_for(path))

    def mode(self, source: Language, target: Language) -> str:
        """The mode name for ``source -> target``, or a ConfigError naming what to install."""
        modes = installed_modes(self.modes_dir)
        name = modes.get((source.code, target.code))
        if name is None:
            have = ", ".join(f"{s}->{t}" for s, t in sorted(modes)) or "none"
            raise ConfigError(
                f"no Apertium pair for {source.name} -> {target.name} in {self.modes_dir} "
                f"(installed: {have}); install it with `apt-get install {package_for(target)}` "
                "where Debian has it, or use `--engine cloud` with DASHSCOPE_API_KEY"
            )
        return name

    def command(self, mode: str) -> list[str]:
        """The command that translates stdin to stdout with ``mode`` (pure)."""
        return [self.program, "-u", "-f", "txt", mode]

    def translate(self, text: str, mode: str) -> str:
        """``text`` translated through ``mode``; blank text comes back blank without a run."""
        if not text.strip():
            return ""
        out = run_for_utterance(self.command(mode), text.encode("utf-8"))
        return " ".join(out.decode("utf-8", "replace").split())

    def fingerprint(self, mode: str) -> str:
        """``mode:<hash>``: changes when the pair's data changes (for cache keys)."""
        return f"{mode}:{_fingerprint(self.modes_dir / f'{mode}.mode')}"

