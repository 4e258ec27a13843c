"""The speaker analysis in a child Python process (``python -m dubkit.speakers``)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

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
    """

    def __init__(self) -> None:
        embed.weights_path()
        env = {**os.environ, **CHILD_ENV}
        self._child = tools.Child([sys.executable, "-m", "dubkit.speakers"], stdout=True, env=env)
        self._sent = 0

    def _send(self, message: dict[str, object]) -> None:
        stdin = self._child.proc.stdin
        assert stdin is not None
        with contextlib.suppress(BrokenPipeError):  # a dead child is reported by finish()
            stdin.write(json.dumps(message).encode() + b"\n")
            stdin.flush()

    def begin(self, raw: Path) -> None:
        """The raw file the utterances will be read from."""
        self._send({"raw": str(raw)})

    def feed(self, utterances: Sequence[Utterance]) -> None:
        """More utterances, in timeline order, whose samples are in the raw file."""
        for u in utterances:
            self._send({"span": [u.start_ms, u.end_ms]})
        self._sent += len(utterances)

    def finish(self, on_progress: ProgressFn | None = None, source: Path | None = None) -> Speakers:
        """The speakers of every utterance fed; ``source`` names the input in an error."""
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
        return Speakers(
            tuple(SpeakerInfo(**u) for u in found["utterances"]),
            tuple(Speaker(**{**s, "centroid": tuple(s["centroid"])}) for s in found["speakers"]),
        )

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

    def __enter__(self) -> SpeakerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def child() -> None:
    """The child of :class:`SpeakerProcess`: each span measured as its line arrives."""
    from dubkit.media.scratch import FileAudio
    from dubkit.speakers.embed import SpeakerEncoder

    encoder = SpeakerEncoder()
    audio: FileAudio | None = None
    feats: list[VoiceFeatures] = []
    for line in sys.stdin:
        d = json.loads(line)
        if "raw" in d:
            audio = FileAudio(Path(d["raw"]))
        else:
            if audio is None:
                raise ValueError("a span came before the raw file was named")
            start, end = d["span"]
            feats.append(voice_features(audio.read(start, end), encoder=encoder))
    sys.stdout.write(f'{{"done": {len(feats)}}}\n')
    sys.stdout.flush()
    found = cluster(feats)
    sys.stdout.write(json.dumps({"speakers": dataclasses.asdict(found)}) + "\n")
