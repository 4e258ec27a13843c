"""Whisper recognition from the packaged weights: offline loading, accuracy, language detection."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dubkit.errors import ConfigError
from dubkit.translate.local import LocalOptions, LocalTranslator, installed_pairs
from dubkit.translate.local import whisper as w
from dubkit.translate.local.espeak import Espeak
from dubkit.translate.protocol import Job
from dubkit.types import VAD_RATE
from tests.asr_truth import HARVARD, edits, norm, wer
from tests.test_local import FIXTURES, cut, decode_16k

ROOT = Path(__file__).resolve().parent.parent

needs_espeak = pytest.mark.skipif(not shutil.which("espeak-ng"), reason="espeak-ng is missing")


def espeak_16k(text: str, voice: str) -> np.ndarray:
    """``text`` spoken by eSpeak NG, as int16 mono 16 kHz."""
    from scipy.signal import resample_poly

    pcm = Espeak.find().speak(text, voice)  # 24 kHz
    return np.asarray(resample_poly(pcm.astype(np.float64), 2, 3), dtype=np.float64).clip(
        -32768, 32767
    ).astype(np.int16)


def test_wer_counts_word_edits() -> None:
    assert norm("It's a Cross-town bus!") == ["it's", "a", "cross", "town", "bus"]
    assert edits(["a", "b", "c"], ["a", "x", "c", "d"]) == 2
    assert wer(["the cat sat", "on it"], ["the cat sat", "on"]) == pytest.approx(1 / 5)


def test_choose_language_keeps_to_the_candidates() -> None:
    probs = [("fr", 0.5), ("es", 0.3), ("en", 0.2)]
    assert w.choose_language(probs, None) == "fr"
    assert w.choose_language(probs, {"en", "es"}) == "es"
    assert w.choose_language(probs, {"de"}) is None


def test_the_model_is_joined_once_and_checked(tmp_path: Path) -> None:
    folder = w.model_dir(tmp_path)
    assert folder.parent == tmp_path / "whisper" and folder.name == f"base-{w.SHA256[:12]}"
    model = folder / "model.bin"
    assert model.stat().st_size == w.SIZE
    assert {p.name for p in folder.iterdir()} == {
        "model.bin", "config.json", "tokenizer.json", "vocabulary.json"}
    stamp = model.stat().st_mtime_ns
    assert w.model_dir(tmp_path) == folder and model.stat().st_mtime_ns == stamp  # not rejoined
    with model.open("r+b") as f:  # a truncated copy is rebuilt
        f.truncate(1000)
    assert w.model_dir(tmp_path) == folder and model.stat().st_size == w.SIZE
    assert [p.name for p in (tmp_path / "whisper").iterdir()] == [folder.name]  # no leftovers


def test_a_missing_model_package_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(w, "PARTS", (("dubkit-no-such-package", "x/model.bin.part1"),))
    with pytest.raises(ConfigError, match=r"dubkit-no-such-package.*dubkit\[local\].*--asr"):
        w.model_dir(Path("/nonexistent"))


def test_the_model_loads_and_hears_with_the_network_off(tmp_path: Path) -> None:
    """A fresh process with HF_HUB_OFFLINE=1 and every socket refused loads and transcribes."""
    script = (
        "import socket, sys\n"
        "def refuse(*a, **k): raise OSError('network is off in this test')\n"
        "socket.socket.connect = refuse; socket.create_connection = refuse\n"
        "from tests.test_whisper import espeak_16k\n"
        "from dubkit.translate.local.whisper import WhisperRecognizer\n"
        "heard = WhisperRecognizer(cache=__import__('pathlib').Path(sys.argv[1])).hear(\n"
        "    espeak_16k('Where is the train station?', 'en-us'), 'en')\n"
        "print(heard.text)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    env.pop("HF_HOME", None)
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], env=env, cwd=ROOT,
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert norm(out.stdout) == norm("Where is the train station?"), out.stdout


def test_the_fixture_speech_is_recognised(whisper_asr: w.WhisperRecognizer) -> None:
    truth = json.loads((FIXTURES / "speech.json").read_text())["utterances"]
    pcm = decode_16k(FIXTURES / "speech.wav")
    refs = [str(u["text"]) for u in truth]
    hyps = [whisper_asr.hear(cut(pcm, u), "en").text for u in truth]
    assert wer(refs, hyps) <= 0.12, list(zip(refs, hyps, strict=True))


def test_real_read_speech_is_recognised(whisper_asr: w.WhisperRecognizer) -> None:
    """Human read speech from codec2-examples (narrowband, upsampled), language detected."""
    from tests.realspeech_set import rs

    names = ("hts1", "hts2", "mmt1")
    hyps = []
    for name in names:
        rec = next(r for r in rs.RECORDINGS if r.name == name)
        pcm = (rs.load(rec.path) * 32767).clip(-32768, 32767).astype(np.int16)
        heard = whisper_asr.hear(pcm)
        assert heard.language == "en", heard
        hyps.append(heard.text)
    refs = [HARVARD[n] for n in names]
    assert wer(refs, hyps) <= 0.15, list(zip(refs, hyps, strict=True))


@needs_espeak
def test_spanish_speech_is_detected_as_spanish(whisper_asr: w.WhisperRecognizer) -> None:
    pcm = espeak_16k("Mi hermano vive en una casa pequeña cerca del río.", "es")
    heard = whisper_asr.hear(pcm)
    assert heard.language == "es" and heard.probability > 0.5, heard
    assert {"hermano", "vive", "casa", "río"} <= set(norm(heard.text)), heard
    assert whisper_asr.hear(pcm, candidates={"en", "es"}).language == "es"


@needs_espeak
@pytest.mark.skipif(("es", "en") not in installed_pairs(), reason="apertium spa-eng missing")
def test_spanish_speech_is_translated_into_english_with_its_source_text(
    whisper_asr: w.WhisperRecognizer,
) -> None:
    engine = LocalTranslator(whisper=whisper_asr)
    pcm = espeak_16k("Mi hermano vive en una casa pequeña cerca del río.", "es")
    result = asyncio.run(engine.translate(pcm, Job("en", None, None)))
    assert result.source_text is not None and "hermano" in norm(result.source_text)
    assert {"brother", "house", "river"} <= set(norm(result.text)), result.text
    assert pcm.size * 1000 // VAD_RATE > 1000


def test_a_pair_apertium_lacks_is_refused_naming_what_is_installed(
    whisper_asr: w.WhisperRecognizer,
) -> None:
    if ("de", "es") in installed_pairs():
        pytest.skip("a German-Spanish pair is installed here")
    engine = LocalTranslator(whisper=whisper_asr)
    with pytest.raises(ConfigError, match=r"German -> Spanish.*installed: .*en->es") as e:
        engine.check(Job("es", "de", None))
    assert "\n" not in str(e.value) and e.value.exit_status == 3
    with pytest.raises(ConfigError, match=r"English speech only"):
        LocalTranslator(LocalOptions(asr="pocketsphinx")).check(Job("es", "es", None))


def test_the_recognizer_is_part_of_the_identity(whisper_asr: w.WhisperRecognizer) -> None:
    whisper = LocalTranslator(whisper=whisper_asr).identity()["asr"]
    sphinx = LocalTranslator(LocalOptions(asr="pocketsphinx")).identity()["asr"]
    assert whisper.startswith("faster-whisper ") and f"whisper-base {w.SHA256[:12]}" in whisper
    assert sphinx.startswith("pocketsphinx ") and whisper != sphinx
    with pytest.raises(ConfigError, match="unknown recognizer"):
        LocalTranslator(LocalOptions(asr="vosk"))
