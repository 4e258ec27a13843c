"""Speakers decided as the speech is heard, so that a dub's requests start before the
segmentation ends (issue 26 item 3).

Each request names its voice, and a voice is cast from its speaker's gender: an utterance's
speaker must be known, and never changed, by the time its request leaves. :class:`AsHeard`
decides utterance ``i`` once an utterance starting at least :data:`LOOKAHEAD_MS` after
``i`` ends has been heard (or the input has ended): the whole-file rule
(:func:`dubkit.speakers.cluster`) is run on everything heard by then, its clusters are
matched to the labels already given (greedily, most shared utterances first, one cluster per
label), and ``i`` takes its cluster's label, or a new one whose gender is its cluster's at
that moment and stays.

10 s of look-ahead was the shortest that tied the whole-file rule on the tune half of the
development people (``bench/bench_online_voices.py``, BENCHMARKS.md).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from dubkit.speakers import Speaker, SpeakerInfo, Speakers, VoiceFeatures, _speaker, cluster

#: An utterance is labelled once speech this long after its end (ms) has been heard.
LOOKAHEAD_MS = 10_000


def match(ids: Sequence[str], sent: Sequence[str]) -> dict[str, str]:
    """Each cluster of ``ids`` that holds utterances already labelled (``sent``, a prefix of
    the same utterances) -> the label it holds most of, one cluster per label, the largest
    overlaps first."""
    votes = Counter(zip(ids, sent, strict=False))
    out: dict[str, str] = {}
    taken: set[str] = set()
    for (cid, label), _ in sorted(votes.items(), key=lambda kv: -kv[1]):
        if cid not in out and label not in taken:
            out[cid] = label
            taken.add(label)
    return out


class AsHeard:
    """The labels of utterances fed in timeline order, each decided once (see the module doc)."""

    def __init__(self, lookahead_ms: int = LOOKAHEAD_MS) -> None:
        self.lookahead_ms = lookahead_ms
        self._feats: list[VoiceFeatures] = []
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._sent: list[SpeakerInfo] = []
        self._gender: dict[str, str] = {}

    def add(self, start_ms: int, end_ms: int, feats: VoiceFeatures) -> list[SpeakerInfo]:
        """Hear one more utterance; the labels it lets us decide, in order."""
        self._feats.append(feats)
        self._starts.append(start_ms)
        self._ends.append(end_ms)
        due = len(self._sent)
        while due < len(self._feats) and self._starts[-1] >= self._ends[due] + self.lookahead_ms:
            due += 1
        return self._decide(due)

    def finish(self) -> list[SpeakerInfo]:
        """The labels still undecided once nothing more will be heard."""
        return self._decide(len(self._feats))

    def _decide(self, upto: int) -> list[SpeakerInfo]:
        first = len(self._sent)
        if upto <= first:
            return []
        ids = [u.speaker for u in cluster(self._feats).utterances]
        for i in range(first, upto):
            sent = [s.speaker for s in self._sent]
            label = match(ids, sent).get(ids[i])
            if label is None:
                label = f"S{len(self._gender) + 1}"
                members = [f for f, c in zip(self._feats, ids, strict=True) if c == ids[i]]
                self._gender[label] = _speaker(label, members).gender
            self._sent.append(SpeakerInfo(label, self._gender[label], self._feats[i].f0_hz))
        return self._sent[first:upto]

    def speakers(self) -> Speakers:
        """Every utterance's label as given, and each speaker measured over all of theirs
        (their gender the one they were given)."""
        infos = tuple(self._sent)
        people = []
        for label, gender in self._gender.items():
            members = [f for f, s in zip(self._feats, infos, strict=False) if s.speaker == label]
            s = _speaker(label, members)
            people.append(Speaker(label, gender, s.f0_hz, s.voiced_ms, s.centroid))
        return Speakers(infos, tuple(people))


def labels_of(
    feats: Sequence[VoiceFeatures], spans: Sequence[tuple[int, int]], lookahead_ms: int
) -> Speakers:
    """What :class:`AsHeard` gives for a whole program fed at once, utterance by utterance."""
    heard = AsHeard(lookahead_ms)
    for f, (start, end) in zip(feats, spans, strict=True):
        heard.add(start, end, f)
    heard.finish()
    return heard.speakers()
