"""The offline engine, with the real pocketsphinx, Apertium and eSpeak NG on the fixture speech."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
import wave
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from dubkit.errors import ConfigError, InputError, ServiceError
from dubkit.translate.local import (
    LocalOptions,
    LocalToolError,
    LocalTranslator,
    audio_tokens,
    describe_pairs,
    installed_pairs,
)
from dubkit.translate.local.apertium import Apertium, installed_modes
from dubkit.translate.local.espeak import Espeak, to_pcm16
from dubkit.translate.local.recognize import clean, prepare
from dubkit.translate.protocol import Job, Translator
from dubkit.types import SERVICE_RATE, VAD_RATE, Translation

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"

needs_tools = pytest.mark.skipif(
    not (shutil.which("apertium") and shutil.which("espeak-ng")),
    reason="apertium and espeak-ng (Debian packages) are not installed",
)
needs_spanish = pytest.mark.skipif(
    ("en", "es") not in installed_pairs(), reason="apertium-eng-spa is not installed"
)


def decode_16k(path: Path) -> np.ndarray:
    """The first audio stream of ``path`` as int16 mono 16 kHz, with PyAV."""
    chunks = []
    with av.open(str(path)) as container:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=VAD_RATE)
        for frame in container.decode(audio=0):
            chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
        chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.concatenate(chunks).astype(np.int16)


Speech = tuple[np.ndarray, list[dict[str, Any]]]


@pytest.fixture(scope="module")
def speech() -> Speech:
    truth = json.loads((FIXTURES / "speech.json").read_text())
    return decode_16k(FIXTURES / "speech.wav"), truth["utterances"]


def cut(pcm: np.ndarray, utt: dict[str, Any]) -> np.ndarray:
    start, end = int(utt["start_ms"]), int(utt["end_ms"])
    return pcm[start * VAD_RATE // 1000 : end * VAD_RATE // 1000]


def words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


def rms_dbfs(samples: np.ndarray) -> float:
    x = samples.astype(np.float64) / 32768.0
    return float(10 * np.log10(np.mean(x * x) + 1e-12))


@pytest.fixture()
def translator(whisper_asr: Any) -> LocalTranslator:
    return LocalTranslator(whisper=whisper_asr)


# --- pure parts -------------------------------------------------------------


def test_audio_tokens_follow_the_documented_rule() -> None:
    assert audio_tokens(0) == 0
    assert audio_tokens(300) == 13  # under 1 s counts as 1 s, 12.5 rounded up
    assert audio_tokens(1000) == 13
    assert audio_tokens(2000) == 25
    assert audio_tokens(8000) == 100


def test_commands_are_argument_lists() -> None:
    assert Apertium("/usr/bin/apertium", Path("/m")).command("eng-spa") == [
        "/usr/bin/apertium", "-u", "-f", "txt", "eng-spa"]
    assert Espeak("/usr/bin/espeak-ng", 150).command("es") == [
        "/usr/bin/espeak-ng", "-v", "es", "-s", "150", "-b", "1", "--stdout"]


def test_clean_makes_a_sentence_of_the_hypothesis() -> None:
    assert clean("i think <sil> [NOISE] it's read(2) now") == "I think it's read now."
    assert clean("i'm here") == "I'm here."
    assert clean("<sil>") == ""


def test_prepare_pads_and_dithers_deterministically() -> None:
    pcm = np.zeros(1600, dtype=np.int16)
    a, b = prepare(pcm, pad_ms=100), prepare(pcm, pad_ms=100)
    assert a.dtype == np.int16 and a.size == 1600 + 2 * 1600
    assert np.array_equal(a, b) and np.any(a)


def test_resampling_to_24k_keeps_length_and_level() -> None:
    t = np.arange(22050) / 22050
    tone = (np.sin(2 * np.pi * 440 * t) * 10000).astype(np.int16)
    out = to_pcm16(tone, 22050)
    assert out.dtype == np.int16 and out.size == SERVICE_RATE
    assert abs(rms_dbfs(out[1000:-1000]) - rms_dbfs(tone)) < 0.5


def test_installed_modes_parse_a_modes_folder(tmp_path: Path) -> None:
    for name in ("eng-spa", "spa-eng_US", "spa-eng", "eng-cat", "en-fr", "README"):
        (tmp_path / f"{name}.mode").write_text("cat\n")
    assert installed_modes(tmp_path) == {
        ("en", "es"): "eng-spa", ("es", "en"): "spa-eng", ("en", "fr"): "en-fr"}
    assert installed_pairs(tmp_path) == [("en", "es"), ("en", "fr"), ("es", "en")]
    assert installed_pairs(tmp_path / "missing") == []


# --- configuration errors, before any work ------------------------------------


def test_a_missing_pair_names_the_package(translator: LocalTranslator) -> None:
    if ("en", "ja") in installed_pairs():
        pytest.skip("an English-Japanese pair is installed here")
    with pytest.raises(ConfigError, match=r"apt-get install apertium-eng-jpn") as e:
        asyncio.run(translator.translate(np.zeros(16000, np.int16), Job("ja", "en", "Cherry")))
    assert "--engine cloud" in str(e.value) and e.value.exit_status == 3


@pytest.mark.parametrize("source", ["es", "Japanese", "deu"])
def test_pocketsphinx_refuses_a_non_english_source(source: str) -> None:
    expected = r"English speech only.*--asr whisper.*cloud engine"
    with pytest.raises(ConfigError, match=expected):
        LocalTranslator(LocalOptions(asr="pocketsphinx")).check(Job("es", source, "Cherry"))


@pytest.mark.parametrize("source", ["Japanese", "deu"])
def test_whisper_refuses_a_source_without_a_pair(translator: LocalTranslator, source: str) -> None:
    with pytest.raises(ConfigError, match=r"no Apertium pair for .* -> Spanish.*installed: "):
        translator.check(Job("es", source, "Cherry"))
    translator.check(Job("es", "es", None))  # Spanish to Spanish: nothing to translate


def test_missing_programs_name_the_debian_packages(whisper_asr: Any) -> None:
    no_apertium = LocalTranslator(
        LocalOptions(apertium="/nonexistent/apertium"), whisper=whisper_asr
    )
    with pytest.raises(ConfigError, match=r"apt-get install apertium apertium-eng-<lang>"):
        no_apertium.check(Job("es", "en", None))
    with pytest.raises(ConfigError, match=r"apt-get install apertium apertium-eng-<lang>"):
        no_apertium.check(Job("es", None, None))
    no_espeak = LocalTranslator(LocalOptions(espeak="/nonexistent/espeak-ng"), whisper=whisper_asr)
    with pytest.raises(ConfigError, match=r"apt-get install espeak-ng"):
        no_espeak.check(Job("en", "en", "Cherry"))
    no_espeak.check(Job("en", None, None))  # text only needs no synthesis
    no_apertium.check(Job("en", None, None))  # English to English needs no translation
    assert no_apertium.identity()["mt"] == "apertium missing"


@needs_tools
def test_a_failing_program_is_a_service_error_with_command_and_stderr() -> None:
    apertium = Apertium.find()
    with pytest.raises(LocalToolError) as e:
        apertium.translate("hello", "eng-xxx")
    assert isinstance(e.value, ServiceError) and not e.value.retryable
    assert e.value.command[-1] == "eng-xxx" and "does not exist" in e.value.stderr_tail
    with pytest.raises(LocalToolError, match="voice does not exist"):
        Espeak.find().speak("hola", "zz")


# --- identity and discovery -----------------------------------------------------


@needs_tools
@needs_spanish
def test_identity_is_stable_and_names_the_versions() -> None:
    first, second = LocalTranslator().identity(), LocalTranslator().identity()
    assert first == second == LocalTranslator().identity()
    assert first["engine"] == "local"
    assert re.match(r"faster-whisper 1\.\S+ whisper-base", first["asr"])
    sphinx = LocalTranslator(LocalOptions(asr="pocketsphinx")).identity()["asr"]
    assert re.match(r"pocketsphinx 5\.\S+ en-us", sphinx)
    assert re.search(r"eng-spa:[0-9a-f]{12}", first["mt"])
    assert re.match(r"espeak-ng \d", first["tts"]) and "es=es" in first["tts"]
    json.dumps(first)


@needs_tools
@needs_spanish
def test_describe_pairs_lists_what_runs_here() -> None:
    targets = {t.code: t for t in describe_pairs()}
    assert targets["en"].apertium_mode is None and targets["en"].can_dub
    assert targets["es"].apertium_mode == "eng-spa" and targets["es"].espeak_voice == "es"
    assert set(targets) == {"en"} | {t for s, t in installed_pairs() if s == "en"}
    assert isinstance(LocalTranslator(), Translator)


# --- real recognition, translation and synthesis ------------------------------------


def test_bad_samples_are_an_input_error(translator: LocalTranslator) -> None:
    with pytest.raises(InputError, match="int16 mono"):
        asyncio.run(translator.translate(np.zeros(800, np.float32), Job("en", "en", None)))


def test_silence_gives_empty_text_and_audio(translator: LocalTranslator) -> None:
    result = asyncio.run(translator.translate(np.zeros(8000, np.int16), Job("en", "en", "x")))
    assert result.text == "" and result.audio == b"" and result.finish_reason == "stop"
    assert result.usage.input_audio_tokens == 13 and result.usage.output_audio_tokens == 0


@needs_tools
@needs_spanish
def test_one_utterance_to_spanish_text_and_speech(
    speech: Speech, translator: LocalTranslator
) -> None:
    pcm, utts = speech
    utt = next(u for u in utts if "market" in str(u["text"]))
    clip = cut(pcm, utt)
    result = asyncio.run(translator.translate(clip, Job("es", "en", "Cherry")))
    reference = Apertium.find().translate(str(utt["text"]), "eng-spa")
    assert len(words(result.text) & words(reference)) >= 0.7 * len(words(reference))
    assert result.sample_rate == SERVICE_RATE and len(result.audio) % 2 == 0
    samples = result.samples()
    assert rms_dbfs(samples) > -35  # real speech, not silence
    assert 1000 <= result.audio_ms <= 3 * len(clip) * 1000 // VAD_RATE
    assert result.usage.input_audio_tokens == audio_tokens(len(clip) * 1000 // VAD_RATE)
    assert result.usage.output_audio_tokens == audio_tokens(result.audio_ms)
    text_only = asyncio.run(translator.translate(clip, Job("es", "en", None)))
    assert text_only.text == result.text and text_only.audio == b""
    assert text_only.usage.output_audio_tokens == 0


@needs_tools
@needs_spanish
def test_espeak_follows_the_casting_with_male_and_female_variants(
    speech: Speech, translator: LocalTranslator
) -> None:
    from scipy.signal import resample_poly

    from dubkit.speakers import pitch_track

    espeak = Espeak.find()
    assert espeak.voice_for("es", "Nofish") == "es+m3"
    assert espeak.voice_for("es", "Cherry") == "es+f3"
    assert espeak.voice_for("es") == "es"
    pcm, utts = speech
    clip = cut(pcm, next(u for u in utts if "market" in str(u["text"])))
    f0 = {}
    for voice in ("Nofish", "Ethan", "Cherry"):
        out = asyncio.run(translator.translate(clip, Job("es", "en", voice))).samples()
        f0[voice] = float(np.median(pitch_track(resample_poly(out, 2, 3).astype(np.int16))))
    assert f0["Nofish"] < 140 and f0["Ethan"] < 140 and f0["Cherry"] > 165, f0


@needs_tools
def test_english_to_english_passes_the_words_through(speech: Speech, whisper_asr: Any) -> None:
    pcm, utts = speech
    utt = next(u for u in utts if "window" in str(u["text"]))
    engine = LocalTranslator(LocalOptions(apertium="/nonexistent/apertium"), whisper=whisper_asr)
    result = asyncio.run(engine.translate(cut(pcm, utt), Job("en", None, "Cherry")))
    assert words(result.text) >= {"open", "window"} and result.text.endswith(".")
    assert result.audio_ms > 500


@pytest.mark.slow
@needs_tools
@needs_spanish
def test_every_fixture_utterance_translates_to_spanish(speech: Speech, whisper_asr: Any) -> None:
    pcm, utts = speech
    engine = LocalTranslator(whisper=whisper_asr)
    job = Job("es", "en", "Cherry")
    apertium = Apertium.find()

    async def run_all() -> list[Translation]:
        results = await asyncio.gather(*(engine.translate(cut(pcm, u), job) for u in utts))
        await engine.aclose()
        return results

    results = asyncio.run(run_all())
    hit = total = 0
    for utt, result in zip(utts, results, strict=True):
        reference = apertium.translate(str(utt["text"]), "eng-spa")
        hit += len(words(result.text) & words(reference))
        total += len(words(reference))
        spoken = Espeak.find().speak(reference, "es").size * 1000 // SERVICE_RATE
        assert 0.5 * spoken <= result.audio_ms <= 1.6 * spoken, (result.text, reference)
        assert rms_dbfs(result.samples()) > -35
    assert hit / total >= 0.75, f"Spanish word overlap {hit}/{total}"
    again = asyncio.run(engine.translate(cut(pcm, utts[1]), job))
    assert again == results[1]  # deterministic, also across concurrent calls


@pytest.mark.slow
@needs_tools
@needs_spanish
def test_example_script_runs(speech: Speech, tmp_path: Path) -> None:
    pcm, utts = speech
    short = tmp_path / "two.wav"  # the first two utterances keep the test fast
    with wave.open(str(short), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(VAD_RATE)
        w.writeframes(pcm[: (utts[1]["end_ms"] + 500) * VAD_RATE // 1000].tobytes())
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "local_engine.py"), str(short), "--to", "es"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert len(lines) == 2, proc.stdout
    assert "ms of speech" in lines[1] and {"taza", "café"} <= words(lines[1])
