"""Speakers decided as the speech is heard against the whole file (issue 26 item 3).

Run: ``.venv/bin/python bench/bench_online_voices.py [--head]``. A dub sends each request
naming its voice, and a speaker's voice follows their gender: with ``speakers="heard"`` (the
default) each utterance's speaker is decided from what has been heard by then and never
changed afterwards (a request already sent keeps its voice), so that the requests start
while the segmentation goes on; ``speakers="whole"`` waits for the whole file.

The rule measured is the product's (:class:`dubkit.speakers.heard.AsHeard`, through
:func:`~dubkit.speakers.heard.labels_of`): utterance ``i`` is labelled once an utterance
starting ``lookahead_ms`` after its end has been heard (or the input has ended); the
whole-file rule is run on everything heard by then, its clusters matched to the labels
already given, and ``i`` takes its cluster's label or a new one, whose gender stays.

Figures on the programs of ``bench/voicedata.py`` (each half's turn programs, and the
real-speech programs with only that half's people), as ``bench/bench_voices.py`` scores
them, whole file against as heard, for several look-aheads (chosen on the tune half).
``--head`` also times, on bench case 6's 10-minute input, how soon the first utterance
could be labelled in one process (decode, segmentation and embedding streamed), against
the whole file's segmentation plus its speaker analysis; the dub's own head is bench case 6.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the speaker child runs
os.environ.setdefault("OMP_NUM_THREADS", "1")

import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402
from bench_voices import HEADER, Tally, tally  # noqa: E402
from voicedata import HALVES, Measured, half_real_programs, turn_programs  # noqa: E402

from dubkit.speakers import cluster  # noqa: E402
from dubkit.speakers.heard import labels_of  # noqa: E402

LOOKAHEADS_MS = (0, 5_000, 10_000, 20_000)


def _tally_online(progs: Sequence[Measured], people: set[str], ms: int) -> Tally:
    t = Tally()
    for m in progs:
        t.add(m, labels_of(m.feats, m.spans, ms), people)
    return t


def accuracy() -> list[str]:
    rows = [HEADER.replace("| programs, half |", "| programs, half, rule |")]
    for half, people in HALVES.items():
        for what, progs in (
            ("turns", turn_programs(half)),
            ("realspeech", half_real_programs(half)),
        ):
            rows.append(tally(progs, set(people), cluster).row(f"{what}, {half}, whole file"))
            for ms in LOOKAHEADS_MS:
                t = _tally_online(progs, set(people), ms)
                rows.append(t.row(f"{what}, {half}, as heard +{ms // 1000} s"))
            print("\n".join(rows[-1 - len(LOOKAHEADS_MS) :]), flush=True)
    return rows


def head(lookahead_ms: int) -> list[str]:
    """Seconds from the start of decoding to: the first utterance labelled as heard; the
    whole file segmented; its speakers found (case 6's input, in this process)."""
    from dubkit import media
    from dubkit.segment import Segmenter, SegmentOptions
    from dubkit.speakers import find_speakers, voice_features
    from dubkit.speakers.embed import SpeakerEncoder
    from dubkit.translate import ArrayAudio
    from dubkit.types import VAD_RATE

    sys.path.insert(0, str(ROOT / "bench"))
    import cases
    import inputs

    src = inputs.video(cases.overhead_spec(cases.FULL))
    t0 = time.monotonic()
    encoder = SpeakerEncoder()
    segmenter = Segmenter(SegmentOptions())
    chunks, utts, feats = [], [], []
    first_at = None
    fed = 0
    for chunk in media.prefetch(media.iter_pcm16(src, VAD_RATE, None)):
        chunks.append(chunk)
        fed += len(chunk)
        new = segmenter.feed(chunk)
        if first_at is None and new:
            pcm = np.concatenate(chunks)
            for u in new:  # as the speaker child reads them
                core = pcm[u.core_start_ms * 16 : u.end_ms * 16]
                feats.append(voice_features(core, encoder=encoder))
            utts += new
            if fed * 1000 // VAD_RATE >= utts[0].end_ms + lookahead_ms + 2000:
                labels_of(feats, [(u.core_start_ms, u.end_ms) for u in utts], lookahead_ms)
                first_at = time.monotonic() - t0
        else:
            utts += new
    utts += segmenter.finish()
    segmented_at = time.monotonic() - t0
    audio = ArrayAudio(np.concatenate(chunks))
    find_speakers(audio, utts, encoder=encoder)
    whole_at = time.monotonic() - t0
    return [
        f"case 6 input: {len(utts)} utterances, {fed / VAD_RATE:.0f} s; load {os.getloadavg()}",
        f"first utterance labelled as heard (+{lookahead_ms // 1000} s): {first_at:.2f} s",
        f"whole file segmented: {segmented_at:.2f} s; its speakers found: {whole_at:.2f} s",
    ]


if __name__ == "__main__":
    if sys.argv[1:2] == ["--head"]:
        for ms in (int(a) for a in sys.argv[2:] or ["10000"]):
            print("\n".join(head(ms)), flush=True)
    else:
        accuracy()
