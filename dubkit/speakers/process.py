"""The speaker analysis in a child Python process (``python -m dubkit.speakers``)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import queue
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from dubkit import tools
from dubkit.speakers import (
    ProgressFn,
    Speaker,
    SpeakerInfo,
    Speakers,
    VoiceFeatures,
    cluster,
    embed,
    voice_features,
)
from dubkit.types import Utterance

#: Set in the child's environment (see :class:`SpeakerProcess`).
CHILD_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


class SpeakerProcess:
    """:func:`~dubkit.speakers.find_speakers` in a child Python process
    (``python -m dubkit.speakers``), fed the utterances as the segmentation finds them.

    Praat, once loaded, stays in a process for good (some 110 MB with its threads and the
    analysis's share of SciPy, plus the speaker encoder's weights and work space): run
    apart, it never weighs on the process that goes on to translate, mix and encode, and
    is given back whole when the child exits. Start it early: the child's imports then
    overlap the segmentation. The encoder's weights are checked here first, so a missing
    or wrong file is the one :class:`~dubkit.errors.ConfigError` that says how to install
    it. The child runs BLAS on one thread (:data:`CHILD_ENV`): on a shared 2-core machine
    two OpenBLAS threads ran the encoder up to 10x slower (issue 26), and one thread
    leaves the other core to the segmenter.

    Use: :meth:`begin` with the raw 16 kHz int16 file being written, :meth:`feed` the
    utterances as they are found (their samples already written and flushed), then
    :meth:`finish`: the child measures each utterance as it arrives, while the segmentation
    goes on, and clusters them all once it is told there are no more. Its stdin takes one
    JSON line per message; it writes nothing until its stdin is closed (so neither side can
    block the other on a full pipe), then a line per utterance measured (the progress) and
    the speakers as JSON.

    With ``begin(raw, as_heard=True)`` the child labels each utterance as soon as it may
    (:class:`~dubkit.speakers.heard.AsHeard`) and writes each label at once: a thread here
    reads them as they come (so the child never blocks on a full pipe either), and
    :meth:`labels` hands them on in order while the segmentation goes on; :meth:`end` says
    there are no more utterances, and :meth:`finish` gives the speakers as labelled.
    """

    def __init__(self) -> None:
        embed.weights_path()
        env = {**os.environ, **CHILD_ENV}
        self._child = tools.Child([sys.executable, "-m", "dubkit.speakers"], stdout=True, env=env)
        self._sent = 0
        self._heard: queue.Queue[SpeakerInfo | None] | None = None  # labels as decided
        self._reader: threading.Thread | None = None
        self._found: dict[str, Any] | None = None
        self._source: Path | None = None
        self._on_progress: ProgressFn | None = None

    def _send(self, message: dict[str, object]) -> None:
        stdin = self._child.proc.stdin
        assert stdin is not None
        with contextlib.suppress(BrokenPipeError):  # a dead child is reported by finish()
            stdin.write(json.dumps(message).encode() + b"\n")
            stdin.flush()

    def begin(
        self,
        raw: Path,
        *,
        as_heard: bool = False,
        on_progress: ProgressFn | None = None,
        source: Path | None = None,
    ) -> None:
        """The raw file the utterances will be read from; ``as_heard``: label each one as
        soon as it may (:meth:`labels`), reporting ``on_progress(labelled, fed)``;
        ``source`` names the input in an error."""
        self._send({"raw": str(raw), "as_heard": as_heard})
        if as_heard:
            self._heard, self._on_progress, self._source = queue.Queue(), on_progress, source
            self._reader = threading.Thread(target=self._read, name="dubkit-speakers", daemon=True)
            self._reader.start()

    def _read(self) -> None:
        """The child's lines, read as they come (``as_heard``)."""
        assert self._heard is not None and self._child.proc.stdout is not None
        done = 0
        try:
            for line in self._child.proc.stdout:
                d = json.loads(line)
                if "label" in d:
                    self._heard.put(SpeakerInfo(*d["label"]))
                    done += 1
                    if self._on_progress is not None:
                        self._on_progress(done, max(done, self._sent))
                self._found = d.get("speakers", self._found)
        finally:
            self._heard.put(None)

    def labels(self) -> Iterator[SpeakerInfo]:
        """Each utterance's speaker, in order, as soon as the child has decided it; ends
        when every utterance fed (before :meth:`end`) is labelled. Raises the child's
        failure if it stops short."""
        assert self._heard is not None, "labels() needs begin(raw, as_heard=True)"
        while (info := self._heard.get()) is not None:
            yield info
        self._heard.put(None)  # for a second reader, or finish()
        if self._child.proc.wait() != 0 or self._found is None:
            raise self._failure()

    def end(self) -> None:
        """No more utterances: the child labels the last ones and gives the speakers."""
        stdin = self._child.proc.stdin
        assert stdin is not None
        with contextlib.suppress(BrokenPipeError, OSError):
            stdin.close()

    def _failure(self) -> Exception:
        what = "speaker analysis failed in its worker process"
        return self._child.failure(what, path=self._source)

    def feed(self, utterances: Sequence[Utterance]) -> None:
        """More utterances, in timeline order, whose samples are in the raw file."""
        for u in utterances:
            self._send({"span": [u.core_start_ms, u.end_ms]})  # without the onset's lead
        self._sent += len(utterances)

    def finish(self, on_progress: ProgressFn | None = None, source: Path | None = None) -> Speakers:
        """The speakers of every utterance fed; ``source`` names the input in an error."""
        if self._reader is not None:
            self.end()
            self._reader.join()
            if self._child.proc.wait() != 0 or self._found is None:
                raise self._failure()
            return _speakers(self._found)
        proc = self._child.proc
        assert proc.stdin is not None and proc.stdout is not None
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.close()
        found = None
        for line in proc.stdout:
            d = json.loads(line)
            if "done" in d and on_progress is not None:
                on_progress(d["done"], self._sent)
            found = d.get("speakers", found)
        if proc.wait() != 0 or found is None:
            raise self._child.failure("speaker analysis failed in its worker process", path=source)
        return _speakers(found)

    def find(
        self,
        raw: Path,
        utterances: Sequence[Utterance],
        on_progress: ProgressFn | None = None,
        source: Path | None = None,
    ) -> Speakers:
        """What :func:`~dubkit.speakers.find_speakers` gives for the utterances of the
        complete raw file ``raw``."""
        self.begin(raw)
        self.feed(utterances)
        return self.finish(on_progress, source)

    def close(self) -> None:
        self._child.close()
        if self._reader is not None:
            self._reader.join()

    def __enter__(self) -> SpeakerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _speakers(found: dict[str, Any]) -> Speakers:
    """:class:`Speakers` from the child's JSON."""
    return Speakers(
        tuple(SpeakerInfo(**u) for u in found["utterances"]),
        tuple(Speaker(**{**s, "centroid": tuple(s["centroid"])}) for s in found["speakers"]),
    )


def _write(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


#: How far the child lowers its priority (an `os.nice` increment) once its first labels are
#: out (BENCHMARKS.md, 2026-12-06).
NICE_ONCE_LABELLING = 10


def _write_labels(infos: Sequence[SpeakerInfo]) -> None:
    for info in infos:
        _write({"label": [info.speaker, info.gender, info.f0_hz]})


def child() -> None:
    """The child of :class:`SpeakerProcess`: each span measured as its line arrives (and,
    as heard, labelled as soon as it may be)."""
    from dubkit.media.scratch import FileAudio
    from dubkit.speakers.embed import SpeakerEncoder
    from dubkit.speakers.heard import AsHeard

    encoder = SpeakerEncoder()
    audio: FileAudio | None = None
    heard: AsHeard | None = None
    feats: list[VoiceFeatures] = []
    lowered = False
    for line in sys.stdin:
        d = json.loads(line)
        if "raw" in d:
            audio = FileAudio(Path(d["raw"]))
            heard = AsHeard() if d.get("as_heard") else None
            continue
        if audio is None:
            raise ValueError("a span came before the raw file was named")
        start, end = d["span"]
        feats.append(voice_features(audio.read(start, end), encoder=encoder))
        if heard is not None:
            labels = heard.add(start, end, feats[-1])
            if labels and not lowered:
                # The first request can leave. From here on the labels are needed only as
                # fast as the requests' window moves (translate.AHEAD_PER_REQUEST), and the
                # encoder is the dub's critical path: this child goes below both (before
                # the labels are written, so that whoever reads one sees the change made).
                os.nice(NICE_ONCE_LABELLING)
                lowered = True
            _write_labels(labels)
    if heard is not None:
        _write_labels(heard.finish())
    _write({"done": len(feats)})
    found = heard.speakers() if heard is not None else cluster(feats)
    _write({"speakers": dataclasses.asdict(found)})
