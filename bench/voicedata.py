"""What bench_voices.py scores: dubkit's own utterances of real speech, measured once.

Each program (``fixtures/realspeech.py``'s conditions and seeds, and ``fixtures/turns.py``'s
turn programs of each half) is cut by dubkit's segmenter with its defaults, every utterance
measured by :func:`dubkit.speakers.analyze` (pitch and embedding, as the dub does) and
matched to the truth sentence it overlaps most. The measurements are cached under
``bench/.cache/voices/`` (keyed by the audio and the measuring code: the segmenter's and
the speaker features'), so that trying a rule costs nothing.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "bench" / ".cache" / "voices"
sys.path.insert(0, str(ROOT / "fixtures"))
sys.path.insert(0, str(ROOT))

import realspeech as rs  # noqa: E402
import turns  # noqa: E402

from dubkit.segment import segment  # noqa: E402
from dubkit.speakers import VoiceFeatures, analyze  # noqa: E402
from dubkit.translate import ArrayAudio  # noqa: E402

HALVES = {"tune": turns.TUNE, "report": turns.REPORT}
PERSON_GENDER = {r.speaker: r.gender for r in rs.RECORDINGS}


@dataclass(frozen=True)
class Measured:
    """One program's utterances: features, and whose speech each is ("" for the bed)."""

    name: str
    feats: tuple[VoiceFeatures, ...]
    truth: tuple[str, ...]
    spans: tuple[tuple[int, int], ...]


def _measure(name: str, prog: object) -> Measured:
    audio = prog.audio  # type: ignore[attr-defined]
    key = hashlib.sha256(audio.tobytes() + _code()).hexdigest()[:16]
    path = CACHE / f"{name}-{key}.json"
    if path.exists():
        d = json.loads(path.read_text())
        feats = tuple(
            VoiceFeatures(
                **{
                    **f,
                    "embedding": tuple(f["embedding"]),
                    "window_mean": tuple(f["window_mean"]),
                }
            )
            for f in d["feats"]
        )
        return Measured(name, feats, tuple(d["truth"]), tuple(map(tuple, d["spans"])))
    utts = segment(audio)
    feats = tuple(analyze(ArrayAudio(audio), utts))
    truth = []
    for u in utts:
        s = prog.sentence_at(u.start_ms, u.end_ms)  # type: ignore[attr-defined]
        truth.append(s.speaker if s is not None else "")
    spans = [(u.core_start_ms, u.end_ms) for u in utts]  # as the speaker child hears them
    CACHE.mkdir(parents=True, exist_ok=True)
    d = {"feats": [_asdict(f) for f in feats], "truth": truth, "spans": spans}
    path.write_text(json.dumps(d))
    return Measured(name, feats, tuple(truth), tuple((a, b) for a, b in spans))


def _code() -> bytes:
    """The source of what measures an utterance (the segmenter, the speaker features, the
    encoder and the background mean the window means are centred on), part of the cache
    key: a change there measures again; a change to the clustering does not."""
    import inspect

    import dubkit.speakers as sp

    files = sorted((ROOT / "dubkit" / "segment").glob("*.py"))
    files.append(ROOT / "dubkit" / "speakers" / "embed.py")
    files.append(ROOT / "dubkit" / "speakers" / "background.py")  # the window means' centre
    measuring = (sp.at_8k, sp._pitch, sp._loud_at, sp.voice_features, sp.centred, sp.analyze)
    code = "".join(inspect.getsource(f) for f in measuring)
    return b"".join(f.read_bytes() for f in files) + code.encode()


def _asdict(f: VoiceFeatures) -> dict[str, object]:
    return {k: getattr(f, k) for k in VoiceFeatures.__slots__}  # type: ignore[attr-defined]


def turn_programs(half: str) -> list[Measured]:
    """The turn programs of one half, every condition and seed."""
    return [
        _measure(f"turns-{half}-{c}-{s}", turns.program(rs, HALVES[half], c, s))
        for c in turns.CONDITIONS
        for s in turns.SEEDS
    ]


def real_programs() -> list[Measured]:
    """``fixtures/realspeech.py``'s programs, every condition and seed 0-3."""
    return [_measure(f"rs-{c}-{s}", rs.program(c, s)) for c in rs.CONDITIONS for s in range(4)]


def only(m: Measured, people: set[str]) -> Measured | None:
    """``m`` with the utterances of people not in ``people`` left out (the bed's kept), so
    that a rule tried on one half never hears the other half's people; None when none of
    ``people`` speaks in it."""
    keep = [i for i, who in enumerate(m.truth) if who in people or who == ""]
    if not any(m.truth[i] for i in keep):
        return None
    return Measured(m.name, tuple(m.feats[i] for i in keep),
                    tuple(m.truth[i] for i in keep), tuple(m.spans[i] for i in keep))  # fmt: skip


def half_real_programs(half: str) -> list[Measured]:
    """:func:`real_programs` with only ``half``'s people (see :func:`only`)."""
    kept = (only(m, set(HALVES[half])) for m in real_programs())
    return [m for m in kept if m is not None]


if __name__ == "__main__":
    for h in HALVES:
        print(h, len(turn_programs(h)), flush=True)
    print("real", len(real_programs()), flush=True)
