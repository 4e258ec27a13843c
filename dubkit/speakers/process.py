"""The speaker analysis in a child Python process (``python -m dubkit.speakers``)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from dubkit import tools
from dubkit.speakers import ProgressFn, Speaker, SpeakerInfo, Speakers, find_speakers
from dubkit.types import Utterance


class SpeakerProcess:
    """:func:`find_speakers` in a child Python process (``python -m dubkit.speakers``).

    Praat, once loaded, stays in a process for good (some 110 MB with its threads and the
    analysis's share of SciPy): run apart, it never weighs on the process that goes on to
    translate, mix and encode, and is given back whole when the child exits. Start it
    early: the child's imports then overlap the segmentation. The child reads the raw
    16 kHz int16 file and the spans to measure (JSON on stdin), writes a line as each
    utterance is measured (the progress), then the speakers as JSON.
    """

    def __init__(self) -> None:
        self._child = tools.Child([sys.executable, "-m", "dubkit.speakers"], stdout=True)

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
