"""The front of a dub whose requests start before the segmentation ends (``speakers="heard"``).

A thread decodes and segments the input (:func:`~dubkit.pipeline.prepare.analyze`), putting
each utterance in :attr:`AsHeard.utterances` and feeding it to the speaker child, which
labels each one as soon as it may (:mod:`dubkit.speakers.heard`). :meth:`AsHeard.items` pairs
each label with its utterance and gives the utterance's job in every language, its voice
chosen when its speaker first speaks (:class:`~dubkit.speakers.voices.LiveCasting`): the
translation takes them as they come, so the first request leaves within a second or so of
the start instead of after the whole file has been analysed. A label and a voice never change
once given, since the request that named them may already be on its way.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from dubkit.errors import DubkitError
from dubkit.mix.prepared import ClipReach
from dubkit.pipeline.growing import Growing
from dubkit.pipeline.options import Options, Progress
from dubkit.pipeline.prepare import analyze, raw_path
from dubkit.review.envelope import EnvelopeBuilder
from dubkit.speakers import SpeakerInfo
from dubkit.speakers.process import SpeakerProcess
from dubkit.speakers.voices import LiveCasting
from dubkit.translate.protocol import Job
from dubkit.types import Utterance


class _Stopped(Exception):
    """The dub ended (an error elsewhere, Ctrl-C) while the segmentation still ran."""


class AsHeard:
    """The segmentation running on its thread, and the speakers as the child labels them.

    Start it inside the dub's :class:`contextlib.ExitStack` (after the work folder's): on
    leaving, the segmentation is stopped and waited for before the folder goes.
    """

    def __init__(
        self,
        stack: contextlib.ExitStack,
        path: Path,
        options: Options,
        work: Path,
        speakers: SpeakerProcess,
        *,
        progress: Progress | None,
        duration_ms: int,
        envelope: EnvelopeBuilder,
        stream: int,
        reach: ClipReach | None = None,
    ) -> None:
        self.speakers = speakers
        self.utterances: Growing[Utterance] = Growing()
        self.who: Growing[SpeakerInfo] = Growing()
        self._stop = threading.Event()
        measured = functools.partial(progress, "speakers") if progress else None
        speakers.begin(raw_path(work), as_heard=True, on_progress=measured, source=path)

        def segment_progress(stage: str, done: int, total: int) -> None:
            if self._stop.is_set():
                raise _Stopped
            if progress is not None:
                progress(stage, done, total)

        def found(new: Sequence[Utterance]) -> None:
            self.utterances.extend(new)  # before the child can label them
            speakers.feed(new)
            if reach is not None:
                reach.heard(u.start_ms for u in new)

        def run() -> None:
            complete = False
            try:
                analyze(
                    path, options.segment, work, segment_progress, duration_ms, envelope,
                    stream, None, found,
                )  # fmt: skip
                complete = True
            except BaseException as e:  # handed to the readers (the dub's thread)
                self.utterances.fail(e)
            else:
                self.utterances.close()
            finally:
                speakers.end()
                if reach is not None:
                    with contextlib.suppress(DubkitError):  # the mix reports the child's end
                        reach.end(complete)

        self._thread = threading.Thread(target=run, name="dubkit-segment", daemon=True)
        self._thread.start()
        stack.callback(self._end)

    def _end(self) -> None:
        self._stop.set()
        self._thread.join()

    def items(
        self, jobs: Sequence[Job], castings: Sequence[LiveCasting | None]
    ) -> Iterator[tuple[Utterance, list[Job]]]:
        """Each utterance as its speaker is decided, with its job in every language
        (``jobs[k]``, in its speaker's voice where ``castings[k]`` casts one). Raises the
        segmentation's or the speaker child's error."""
        try:
            i = 0
            for info in self.speakers.labels():
                u = self.utterances.get(i)
                if u is None:
                    raise RuntimeError(f"speaker label {i + 1} came for no utterance")
                self.who.append(info)
                voiced = [
                    job if c is None else dataclasses.replace(job, voice=c.voice_of(info))
                    for job, c in zip(jobs, castings, strict=True)
                ]
                yield u, voiced
                i += 1
            found = len(self.utterances.all())  # raises the segmentation's error first
            if found != i:
                raise RuntimeError(f"{i} speaker labels for {found} utterances")
        except BaseException as e:
            self.who.fail(e)
            raise
        self.who.close()
