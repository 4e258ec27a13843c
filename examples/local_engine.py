"""Translate a recording offline with the local engine and print each utterance.

    python examples/local_engine.py [PATH] [--to es] [--text-only]

PATH defaults to the repository's ``fixtures/speech.wav``. The speech is found
with :func:`dubkit.segment.segment` (webrtcvad) and each utterance goes through
:class:`dubkit.translate.local.LocalTranslator`: Whisper -> Apertium -> eSpeak NG.
Needs the Debian packages ``apertium``, ``apertium-eng-<lang>`` and ``espeak-ng``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

import numpy as np

from dubkit.media import iter_pcm16
from dubkit.segment import segment
from dubkit.translate.local import LocalTranslator
from dubkit.translate.protocol import Job
from dubkit.types import VAD_RATE

DEFAULT = Path(__file__).resolve().parent.parent / "fixtures" / "speech.wav"


async def main(path: Path, target: str, speak: bool) -> None:
    pcm = np.concatenate(list(iter_pcm16(path, rate=VAD_RATE)))
    utterances = segment(pcm)
    engine = LocalTranslator()
    job = Job(target=target, source="en", voice="default" if speak else None)
    engine.check(job)  # a missing pair or program fails here, before any work
    try:
        for utt in utterances:
            clip = pcm[utt.start_ms * VAD_RATE // 1000 : utt.end_ms * VAD_RATE // 1000]
            result = await engine.translate(clip, job)
            audio = f"{result.audio_ms:5d} ms of speech" if speak else "text only"
            print(f"{utt.start_ms / 1000:6.2f}-{utt.end_ms / 1000:6.2f} s [{audio}] {result.text}")
    finally:
        await engine.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT, help="audio or video file")
    parser.add_argument("--to", default="es", help="target language code (default: es)")
    parser.add_argument("--text-only", action="store_true", help="no speech synthesis")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main(args.path, args.to, not args.text_only))
