"""The values of the subtitle stage: options, sources, violations, and its error."""

from __future__ import annotations

from dataclasses import dataclass

from dubkit.errors import ConfigError, DubkitError
from dubkit.types import Utterance


class SubtitleError(DubkitError, ValueError):
    """Cues that break a hard rule, or text that cannot be laid out in the media's time."""


@dataclass(frozen=True, slots=True)
class SubtitleOptions:
    """Netflix Timed Text Style Guide defaults, each configurable."""

    max_lines: int = 2
    #: None: per language (42; 16 for zh/yue/ko; 13 for ja).
    max_line_chars: int | None = None
    min_duration_ms: int = 833  # 5/6 s
    max_duration_ms: int = 7000
    min_gap_ms: int = 84  # 2 frames at 24 fps
    #: Gaps up to this long are closed ("chained") to exactly ``min_gap_ms``.
    chain_gap_ms: int = 500
    #: Reading speed aimed at, in characters per second.
    target_cps: float = 17.0

    def __post_init__(self) -> None:
        if self.max_lines < 1:
            raise ConfigError(f"subtitle max_lines must be at least 1, not {self.max_lines}")
        if self.max_line_chars is not None and self.max_line_chars < 1:
            raise ConfigError(
                f"subtitle max_line_chars must be at least 1, not {self.max_line_chars}"
            )
        if not 1 <= self.min_duration_ms <= self.max_duration_ms:
            raise ConfigError(
                "subtitle durations need 1 <= min_duration_ms <= max_duration_ms, not "
                f"{self.min_duration_ms} and {self.max_duration_ms}"
            )
        if self.min_gap_ms < 0 or self.chain_gap_ms < 0:
            raise ConfigError("subtitle min_gap_ms and chain_gap_ms must not be negative")
        if not self.target_cps > 0:
            raise ConfigError(f"subtitle target_cps must be positive, not {self.target_cps}")


@dataclass(frozen=True, slots=True)
class SubtitleSource:
    """One utterance's translated text, and optionally where its dubbed speech is heard.

    ``speech`` holds absolute ``[start_ms, end_ms)`` spans of the dubbed speech;
    when given, cues are placed on them (split at their pauses) instead of on
    the utterance.
    """

    utterance: Utterance
    text: str
    speech: tuple[tuple[int, int], ...] = ()

    def __post_init__(self) -> None:
        for span in self.speech:
            if len(span) != 2 or not 0 <= span[0] < span[1]:
                raise SubtitleError(f"bad speech span {span!r}: need 0 <= start_ms < end_ms")


@dataclass(frozen=True, slots=True)
class Violation:
    """A broken rule: ``index`` of the cue, ``rule`` name, ``hard`` or soft, a message."""

    index: int
    rule: str
    hard: bool
    message: str


#: The rules ``check`` knows: hard ones are enforced by the writers.
HARD_RULES = ("lines", "line_chars", "order", "overlap", "bounds", "min_gap")
SOFT_RULES = ("min_duration", "max_duration", "reading_speed")
