"""The offline engine's speech recognition: pocketsphinx against Whisper base (not a test).

Run: ``.venv/bin/python bench/bench_asr.py [--sets fixtures,harvard]``. Prints, per recognizer
and set, the word error rate and the real-time factor (seconds of work per second of audio, wall
and process CPU) of each stage of the offline engine: recognition, Apertium (English -> Spanish)
and eSpeak NG. Sets, both with known text:

- ``fixtures``: the 8 utterances of ``fixtures/speech.wav`` (eSpeak NG, US English), cut at the
  edges ``fixtures/speech.json`` gives;
- ``harvard``: the 4 codec2-examples recordings of real people reading IEEE Harvard sentences
  (``tests/asr_truth.py``; mostly 8 kHz narrowband, upsampled), each as one utterance.

Whisper's model load (and, in a fresh cache, the one-time join of its two parts) is timed apart.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dubkit.translate.local.apertium import Apertium  # noqa: E402
from dubkit.translate.local.espeak import Espeak  # noqa: E402
from dubkit.translate.local.recognize import Recognizer  # noqa: E402
from dubkit.translate.local.whisper import WhisperRecognizer  # noqa: E402
from dubkit.types import VAD_RATE  # noqa: E402
from tests.asr_truth import HARVARD, wer  # noqa: E402

Clip = tuple[np.ndarray, str]


def fixtures() -> list[Clip]:
    from tests.test_local import cut, decode_16k

    truth = json.loads((ROOT / "fixtures" / "speech.json").read_text())["utterances"]
    pcm = decode_16k(ROOT / "fixtures" / "speech.wav")
    return [(cut(pcm, u), str(u["text"])) for u in truth]


def harvard() -> list[Clip]:
    sys.path.insert(0, str(ROOT / "fixtures"))
    import realspeech as rs

    clips = []
    for rec in rs.RECORDINGS:
        if rec.name in HARVARD:
            pcm = (rs.load(rec.path) * 32767).clip(-32768, 32767).astype(np.int16)
            clips.append((pcm, HARVARD[rec.name]))
    return clips


class Clock:
    """Wall and process CPU seconds spent in the calls it times."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0

    def time(self, fn: Callable[[], object]) -> object:
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        self.wall += time.perf_counter() - w
        self.cpu += time.process_time() - c
        return out


def run(name: str, hear: Callable[[np.ndarray], str], clips: list[Clip]) -> dict[str, object]:
    apertium, espeak = Apertium.find(), Espeak.find()
    asr, mt, tts = Clock(), Clock(), Clock()
    hyps = []
    for pcm, _ in clips:
        text = str(asr.time(lambda pcm=pcm: hear(pcm)))
        spanish = str(mt.time(lambda text=text: apertium.translate(text, "eng-spa")))
        tts.time(lambda spanish=spanish: espeak.speak(spanish, "es") if spanish else None)
        hyps.append(text)
    seconds = sum(p.size for p, _ in clips) / VAD_RATE
    row: dict[str, object] = {
        "asr": name, "audio_s": round(seconds, 1),
        "words": sum(len(t.split()) for _, t in clips),
        "wer": round(wer([t for _, t in clips], hyps), 3),
    }  # fmt: skip
    for stage, clock in (("asr", asr), ("mt", mt), ("tts", tts)):
        row[f"{stage}_rtf_wall"] = round(clock.wall / seconds, 3)
        row[f"{stage}_rtf_cpu"] = round(clock.cpu / seconds, 3)
    row["hyps"] = hyps
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default="fixtures,harvard", help="fixtures and/or harvard")
    parser.add_argument("--json", action="store_true", help="the rows as JSON, with transcripts")
    args = parser.parse_args()
    print(f"# {platform.node()} {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    sphinx = Recognizer(workers=1)
    whisper = WhisperRecognizer()
    start = time.perf_counter()
    whisper.load()
    print(f"# whisper base load (join included if first): {time.perf_counter() - start:.2f} s")
    recognizers: dict[str, Callable[[np.ndarray], str]] = {
        "pocketsphinx": sphinx.recognize,
        "whisper-base (detect)": lambda pcm: whisper.hear(pcm).text,
        "whisper-base (--from en)": lambda pcm: whisper.hear(pcm, "en").text,
    }
    sets = {"fixtures": fixtures, "harvard": harvard}
    for set_name in args.sets.split(","):
        clips = sets[set_name]()
        for name, hear in recognizers.items():
            row = {"set": set_name, **run(name, hear, clips)}
            if not args.json:
                row.pop("hyps")
            print(json.dumps(row, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
