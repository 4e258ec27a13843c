"""What deciding voices as the speech is heard would cost (issue 26 item 3; not the product).

Run: ``.venv/bin/python bench/bench_online_voices.py [--head]``. A dub's requests wait for
the segmentation and speaker analysis of the whole file, because each request names its
voice and a speaker's voice is cast from all of their speech (``dubkit.speakers.cluster``).
Starting requests as the segmentation goes needs each utterance's speaker, and that
speaker's gender, decided from what has been heard by then and never changed afterwards (a
request already sent keeps its voice).

The rule measured here (:func:`as_heard`): utterance ``i`` is labelled once every utterance
that ends within ``lookahead_ms`` after it is known (the segmenter has passed that point).
At that moment the product's own whole-file rule (:func:`dubkit.speakers.cluster`) is run
on everything heard so far; each of its clusters is matched to the labels already sent
(greedily, by how many of their utterances it holds), and ``i`` takes its cluster's label,
or a new one. A new label's gender is its cluster's at that moment, and stays.

Figures on the programs of ``bench/voicedata.py`` (each half's turn programs, and the
real-speech programs with only that half's people), as ``bench/bench_voices.py`` scores
them, whole file against as heard, for several look-aheads (chosen on the tune half).
``--head`` also times, on bench case 6's 10-minute input, how soon the first utterance
could be labelled: decode and segmentation streamed as ``pipeline.prepare.analyze`` does
them, each utterance embedded as it is found (in this process, one BLAS thread), against
the whole file's segmentation plus its speaker analysis.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the speaker child runs
os.environ.setdefault("OMP_NUM_THREADS", "1")

import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402
from bench_voices import HEADER, Tally, tally  # noqa: E402
from voicedata import HALVES, Measured, half_real_programs, turn_programs  # noqa: E402

from dubkit.speakers import SpeakerInfo, Speakers, VoiceFeatures, cluster  # noqa: E402

LOOKAHEADS_MS = (0, 5_000, 10_000, 20_000)


def _match(ids: Sequence[str], sent: Sequence[str]) -> dict[str, str]:
    """Each cluster of ``ids`` (over the heard utterances) that holds utterances already
    labelled (``sent``, a prefix of them) -> the sent label it holds most of, one cluster per
    label, the largest overlaps first."""
    votes = Counter(zip(ids, sent, strict=False))
    out: dict[str, str] = {}
    taken: set[str] = set()
    for (cid, label), _ in sorted(votes.items(), key=lambda kv: -kv[1]):
        if cid not in out and label not in taken:
            out[cid] = label
            taken.add(label)
    return out


def as_heard(
    feats: Sequence[VoiceFeatures], spans: Sequence[tuple[int, int]], lookahead_ms: int
) -> Speakers:
    """Each utterance's speaker, decided once every utterance ending within
    ``lookahead_ms`` after it is known, never changed (see the module doc)."""
    sent: list[str] = []
    gender: dict[str, str] = {}
    known = 0
    for i, (_, end) in enumerate(spans):
        while known < len(spans) and spans[known][1] <= end + lookahead_ms:
            known += 1
        found = cluster(feats[:known])
        ids = [u.speaker for u in found.utterances]
        label = _match(ids, sent).get(ids[i])
        if label is None:
            label = f"S{len(gender) + 1}"
            gender[label] = found.speaker(ids[i]).gender
        sent.append(label)
    infos = tuple(
        SpeakerInfo(label, gender[label], f.f0_hz) for label, f in zip(sent, feats, strict=True)
    )
    return Speakers(infos, ())


def _tally_online(progs: Sequence[Measured], people: set[str], ms: int) -> Tally:
    t = Tally()
    for m in progs:
        t.add(m, as_heard(m.feats, m.spans, ms), people)
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
            for u in new:
                feats.append(voice_features(pcm[u.start_ms * 16 : u.end_ms * 16], encoder=encoder))
            utts += new
            if fed * 1000 // VAD_RATE >= utts[0].end_ms + lookahead_ms + 2000:
                as_heard(feats, [(u.start_ms, u.end_ms) for u in utts], lookahead_ms)
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
