"""Speech synthesis with eSpeak NG (the Debian ``espeak-ng`` program).

``espeak-ng -v es --stdout`` reads UTF-8 text on stdin and writes a WAV on
stdout (22,050 Hz mono PCM16, with a streaming header whose sizes are
placeholders); the samples are resampled to the service's PCM16 mono 24 kHz
with FFmpeg's resampler (dubkit.media.resample, the one the dub uses).
"""

from __future__ import annotations

import io
import re
import shutil
import wave
from dataclasses import dataclass
from functools import cache

import numpy as np

from dubkit.errors import ConfigError, LocalToolError
from dubkit.fit import resample
from dubkit.tools import run_for_utterance
from dubkit.types import SERVICE_RATE

#: eSpeak NG voice for each service language.
VOICES: dict[str, str] = {
    "en": "en-us", "zh": "cmn", "ru": "ru", "fr": "fr-fr", "de": "de", "pt": "pt-br",
    "es": "es", "it": "it", "ko": "ko", "ja": "ja", "yue": "yue", "id": "id", "vi": "vi",
    "th": "th", "ar": "ar", "hi": "hi", "el": "el", "tr": "tr",
}
#: eSpeak NG's male and female variant for each service voice, so the offline engine
#: follows the same casting (a man dubbed by a man, each speaker their own voice).
VARIANTS: dict[str, str] = {
    "Nofish": "m3", "Ethan": "m1", "Dylan": "m2", "Peter": "m5", "Eric": "m4",
    "Cherry": "f3", "Jada": "f2", "Sunny": "f4", "Kiki": "f1",
}  # fmt: skip
#: Speaking rate in words per minute (eSpeak's default is 175).
DEFAULT_RATE_WPM = 165

_VERSION = re.compile(rb"eSpeak NG text-to-speech:\s*(\S+)")


def to_pcm16(samples: np.ndarray, rate: int, target_rate: int = SERVICE_RATE) -> np.ndarray:
    """Resample int16 mono ``samples`` from ``rate`` to ``target_rate`` (int16 out)."""
    if rate == target_rate or samples.size == 0:
        return samples.astype(np.int16, copy=False)
    out = resample(samples.astype(np.float32) / 32768.0, rate, target_rate)
    want = samples.size * target_rate // rate
    out = out[:want] if out.size >= want else np.pad(out, (0, want - out.size))
    return np.clip(np.rint(out * 32768.0), -32768, 32767).astype(np.int16)


def parse_wav(data: bytes, command: list[str]) -> tuple[np.ndarray, int]:
    """The int16 mono samples and rate of eSpeak's WAV output."""
    try:
        with wave.open(io.BytesIO(data)) as w:
            if w.getsampwidth() != 2 or w.getnchannels() != 1:
                raise wave.Error(f"{w.getnchannels()} channels of {w.getsampwidth()} bytes")
            rate = w.getframerate()
            frames = w.readframes(w.getnframes())  # the header's count is a placeholder
    except (wave.Error, EOFError) as e:
        raise LocalToolError(
            f"{command[0]} wrote no usable WAV ({e}): {' '.join(command)}", command=command
        ) from e
    usable = len(frames) - len(frames) % 2
    return np.frombuffer(frames[:usable], dtype="<i2"), rate


@dataclass(frozen=True, slots=True)
class Espeak:
    """The ``espeak-ng`` program and how it speaks."""

    program: str
    rate_wpm: int = DEFAULT_RATE_WPM

    @classmethod
    def find(cls, program: str | None = None, rate_wpm: int = DEFAULT_RATE_WPM) -> Espeak:
        """Resolve the program (``program``, else ``espeak-ng`` on PATH) or raise a ConfigError."""
        path = shutil.which(program or "espeak-ng")
        if path is None:
            raise ConfigError(
                f"the local engine speaks with eSpeak NG, and {program or 'espeak-ng'!r} was not "
                "found; install it with `apt-get install espeak-ng`, or ask for text only "
                "(`dubkit subs`), or use `--engine cloud` with DASHSCOPE_API_KEY"
            )
        return cls(path, rate_wpm)

    def version(self) -> str:
        """eSpeak NG's version, e.g. ``1.51``."""
        return _version(self.program)

    def voices(self) -> frozenset[str]:
        """The voice names this installation has."""
        return _voices(self.program)

    def voice_for(self, code: str, service_voice: str | None = None) -> str:
        """The voice for a service language code, or a ConfigError.

        With ``service_voice`` (``Cherry``, ``Nofish``...), the language's voice takes that
        voice's male or female variant (``es+m3``) when this installation has it.
        """
        voice = VOICES.get(code)
        if voice is None or voice not in self.voices():
            raise ConfigError(
                f"eSpeak NG at {self.program} has no voice for {code!r}; "
                "install the full `espeak-ng-data` (`apt-get install espeak-ng`)"
            )
        variant = VARIANTS.get(service_voice or "")
        if variant is not None and variant in _variants(self.program):
            return f"{voice}+{variant}"
        return voice

    def command(self, voice: str) -> list[str]:
        """The command that speaks UTF-8 stdin as a WAV on stdout (pure)."""
        return [self.program, "-v", voice, "-s", str(self.rate_wpm), "-b", "1", "--stdout"]

    def speak(self, text: str, voice: str) -> np.ndarray:
        """``text`` spoken by ``voice`` as int16 mono at 24 kHz; blank text gives no samples."""
        if not text.strip():
            return np.zeros(0, dtype=np.int16)
        command = self.command(voice)
        samples, rate = parse_wav(run_for_utterance(command, text.encode("utf-8")), command)
        return to_pcm16(samples, rate)


@cache
def _version(program: str) -> str:
    out = run_for_utterance([program, "--version"], b"")
    m = _VERSION.search(out)
    return m.group(1).decode() if m else "unknown"


@cache
def _voices(program: str) -> frozenset[str]:
    out = run_for_utterance([program, "--voices"], b"").decode("utf-8", "replace")
    names: set[str] = set()
    for line in out.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 2:
            names.add(fields[1])
    return frozenset(names)


@cache
def _variants(program: str) -> frozenset[str]:
    out = run_for_utterance([program, "--voices=variant"], b"").decode("utf-8", "replace")
    rows = (line.split() for line in out.splitlines()[1:])
    return frozenset(f[4].rsplit("/", 1)[-1] for f in rows if len(f) >= 5)
