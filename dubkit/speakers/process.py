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
from dubkit.speakers import ProgressFn, Speaker, SpeakerInfo, Speakers, embed, find_speakers
from dubkit.types import Utterance

#: Set in the child's environment (see :class:`SpeakerProcess`).
CHILD_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


class SpeakerProcess:
    """:func:`find_speakers` in a child Python process (``python -m dubkit.speakers``).

    Praat, once loaded, stays in a process for good (some 110 MB with its threads and the
    analysis's share of SciPy, plus the speaker encoder's weights and work space): run
    apart, it never weighs on the process that goes on to translate, mix and encode, and
    is given back whole when the child exits. Start it early: the child's imports then
    overlap the segmentation. The encoder's weights are checked here first, so a missing
    or wrong file is the one :class:`~dubkit.errors.ConfigError` that says how to install
    it. The child runs BLAS on one thread (:data:`CHILD_ENV`): on a shared 2-core machine
    two OpenBLAS threads ran the encoder up to 10x slower (issue 26), and one thread
    leaves the other core to the segmenter. The child reads the raw
    16 kHz int16 file and the spans to measure (JSON on stdin), writes a line as each
    utterance is measured (the progress), then the speakers as JSON.
    """

    def __init__(self) -> None:
        embed.weights_path()
        env = {**os.environ, **CHILD_ENV}
        self._child = tools.Child([sys.executable, "-m", "dubkit.speakers"], stdout=True, env=env)

    def find(
        self,
        raw: Path,
        utterances: Sequence[Utterance],
        on_progress: ProgressFn | None = None,
        source: Path | None = None,
    ) -> Speakers:
        """What :func:`find_speakers` gives for the utterances of the raw file ``raw``;
        ``source`` names the input in an error."""
        proc = self._child.proc
        assert proc.stdin is not None and proc.stdout is not None
        spans = [(u.start_ms, u.end_ms) for u in utterances]
        with contextlib.suppress(BrokenPipeError):  # a dead child is reported below
            proc.stdin.write(json.dumps({"raw": str(raw), "spans": spans}).encode())
            proc.stdin.close()
        found = None
        for line in proc.stdout:
            d = json.loads(line)
            if "done" in d and on_progress is not None:
                on_progress(d["done"], len(utterances))
            found = d.get("speakers", found)
        if proc.wait() != 0 or found is None:
            raise self._child.failure("speaker analysis failed in its worker process", path=source)
        return Speakers(
            tuple(SpeakerInfo(**u) for u in found["utterances"]),
            tuple(Speaker(**{**s, "centroid": tuple(s["centroid"])}) for s in found["speakers"]),
        )

    def close(self) -> None:
        self._child.close()

    def __enter__(self) -> SpeakerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def child() -> None:
    """The child of :class:`SpeakerProcess`."""
    from dubkit.media.scratch import FileAudio

    request = json.load(sys.stdin)
    utterances = [Utterance(start, end) for start, end in request["spans"]]

    def done(n: int, _: int) -> None:
        sys.stdout.write(f'{{"done": {n}}}\n')
        sys.stdout.flush()

    found = find_speakers(FileAudio(Path(request["raw"])), utterances, done)
    sys.stdout.write(json.dumps({"speakers": dataclasses.asdict(found)}) + "\n")
