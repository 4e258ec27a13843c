"""A run's options, and what it gives back: its files and its timeline."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dubkit.errors import ConfigError
from dubkit.fit import FitOptions, Placement
from dubkit.languages import Language
from dubkit.mix import MixOptions
from dubkit.pipeline.timeline import Entry, Totals, totals
from dubkit.segment import SegmentOptions
from dubkit.speakers import SpeakerInfo
from dubkit.speakers.voices import AUTO, Casting
from dubkit.subtitles import SubtitleOptions
from dubkit.translate import DEFAULT_CONCURRENCY, UtteranceResult
from dubkit.types import Cue, Usage, Utterance

#: ``progress(stage, done, total)``: stages "segment", "speakers", "translate", "mix".
Progress = Callable[[str, int, int], None]
SUBTITLE_FORMATS = ("srt", "vtt")


#: When each utterance's speaker is decided (:attr:`Options.speakers`).
SPEAKER_MODES = ("heard", "whole")


@dataclass(frozen=True, slots=True)
class Options:
    """Everything one run needs besides the input and the engine."""

    target: str
    source: str | None = None
    voice: str = AUTO  # "auto": each speaker a voice of their gender; or one voice for all
    voices: tuple[tuple[str, str], ...] = ()  # per-speaker voices: ("S1", "Ethan"), ...
    out_dir: Path | None = None
    formats: tuple[str, ...] = ("srt",)
    concurrency: int = DEFAULT_CONCURRENCY
    cache_dir: Path | None = None  # None: no cache
    visual: bool = False
    keep_original: bool = True
    review: bool = True  # dub: also write <stem>.<lang>.review.html
    track: str | None = None  # audio track to dub: its number among audio tracks, or a language
    container: str | None = None  # dubbed video's container (mp4, mkv, mov, ts); None: as input
    audio_bitrate: int | None = None  # dubbed track's kb/s; None: the source track's (capped)
    faststart: bool = False  # MP4 and MOV: the index before the data (one more pass)
    #: "heard": each utterance's speaker decided as the speech is heard, so the requests
    #: start before the segmentation ends; "whole": from the whole file (the requests wait).
    speakers: str = "heard"
    segment: SegmentOptions = field(default_factory=SegmentOptions)
    subtitles: SubtitleOptions = field(default_factory=SubtitleOptions)
    fit: FitOptions = field(default_factory=FitOptions)
    mix: MixOptions = field(default_factory=MixOptions)

    def __post_init__(self) -> None:
        bad = [f for f in self.formats if f not in SUBTITLE_FORMATS]
        if bad or not self.formats:
            raise ConfigError(f"unknown subtitle format {bad}; choose from srt, vtt")
        if self.concurrency < 1:
            raise ConfigError("concurrency must be at least 1")
        if self.speakers not in SPEAKER_MODES:
            raise ConfigError(f"unknown speakers mode {self.speakers!r}; choose heard or whole")


@dataclass(frozen=True, slots=True)
class Outputs:
    """The files a run writes (``media`` and ``review`` are None for ``subtitle``)."""

    subtitles: tuple[Path, ...]
    manifest: Path
    media: Path | None = None
    review: Path | None = None


@dataclass(frozen=True, slots=True)
class Result:
    """What a run produced: its files, its timeline (one
    :class:`~dubkit.pipeline.timeline.Entry` per utterance: translation, speaker, placement,
    status) and its subtitle cues.

    After :func:`~dubkit.pipeline.dub`, each translation's speech lives in the dubbed file (and
    the cache), not here: ``results[i].translation.audio`` is empty, so a long video's result
    stays small.
    """

    input: Path
    target: Language
    engine: str
    outputs: Outputs
    timeline: tuple[Entry, ...]
    cues: tuple[Cue, ...]
    #: Each speaker's voice (after a dub).
    casting: Casting | None = None
    #: The utterances a redo was told to leave undubbed (not in ``timeline``).
    skipped: tuple[Utterance, ...] = ()

    @property
    def totals(self) -> Totals:
        """The run's counts, the same in the manifest and the CLI's summaries."""
        return totals(self.timeline, len(self.cues))

    @property
    def usage(self) -> Usage:
        return self.totals.usage

    @property
    def results(self) -> tuple[UtteranceResult, ...]:
        return tuple(e.result for e in self.timeline)

    @property
    def placements(self) -> tuple[Placement | None, ...]:
        return tuple(e.placement for e in self.timeline)

    @property
    def speakers(self) -> tuple[SpeakerInfo, ...]:
        """Who speaks each utterance (after a dub; empty for subtitles)."""
        who = tuple(e.speaker for e in self.timeline if e.speaker is not None)
        return who if len(who) == len(self.timeline) else ()

    @property
    def failed(self) -> tuple[UtteranceResult, ...]:
        return tuple(e.result for e in self.timeline if e.result.error is not None)
