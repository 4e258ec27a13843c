"""Test your own dubkit script without a key or network, against ``dubkit.emulator``.

    python examples/test_my_script_with_emulator.py [INPUT] [--out-dir out]
    pytest examples/test_my_script_with_emulator.py

The emulator serves the qwen3-livetranslate-flash protocol on 127.0.0.1 (real HTTP,
the real openai SDK on the client side): same validation, same streamed chunks,
deterministic answers, and knobs for latency, quotas and injected faults. Point a
:class:`dubkit.CloudTranslator` at ``emu.base_url`` and assert on what your code
produced and on ``emu.records`` (what the "service" saw). ``make_subtitles`` below
stands for your own script; the two ``test_*`` functions are ordinary pytest tests
(``tmp_path`` is pytest's fixture) that this file also runs by itself.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import pysrt

import dubkit
from dubkit.emulator import Emulator, EmulatorConfig
from dubkit.translate.cloud import CloudConfig, CloudTranslator

TALK = Path(__file__).resolve().parent / "talk.mp4"
KEY = "sk-test"  # the emulator accepts exactly this key; no real key is involved


# ---- your script ------------------------------------------------------------------------


def make_subtitles(video: Path, out_dir: Path, translator: dubkit.Translator) -> Path:
    """Spanish subtitles for ``video`` in ``out_dir``; the SRT's path."""
    result = dubkit.subtitle(video, dubkit.Options(target="es", out_dir=out_dir), translator)
    if result.failed:
        raise RuntimeError(f"{len(result.failed)} utterances failed")
    return result.outputs.subtitles[0]


# ---- its tests --------------------------------------------------------------------------


def test_make_subtitles(tmp_path: Path, video: Path = TALK) -> None:
    with Emulator(EmulatorConfig(api_key=KEY)) as emu:
        translator = CloudTranslator(CloudConfig(api_key=KEY, base_url=emu.base_url))
        srt = make_subtitles(video, tmp_path, translator)
        records = list(emu.records)
    subs = pysrt.open(str(srt))
    assert len(subs) > 0 and all(s.text.strip() for s in subs)
    assert all(a.end <= b.start for a, b in itertools.pairwise(subs))
    # one text-only Spanish request per utterance, every one answered in full
    assert records and all(r.ok for r in records)
    assert {r.target_lang for r in records} == {"es"}
    assert {r.modalities for r in records} == {("text",)}


def test_make_subtitles_survives_a_flaky_service(tmp_path: Path, video: Path = TALK) -> None:
    # one request in five gets a 429, a 500 or a connection dropped mid-stream
    flaky = EmulatorConfig(api_key=KEY, fault_rate=0.2, faults=("429", "500", "drop"), seed=7)
    with Emulator(flaky) as emu:
        config = CloudConfig(api_key=KEY, base_url=emu.base_url, backoff_base_s=0.05)
        srt = make_subtitles(video, tmp_path, CloudTranslator(config))
        records = list(emu.records)
    faults = [r.fault for r in records if r.fault is not None]
    assert faults, "the seed gives at least one fault"
    assert sum(r.ok for r in records) == len(records) - len(faults)  # each retried to success
    assert len(pysrt.open(str(srt))) > 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", nargs="?", type=Path, default=TALK, help="video or audio file")
    parser.add_argument("--out-dir", type=Path, default=Path("out"), help="default: ./out")
    args = parser.parse_args(argv)
    for test in (test_make_subtitles, test_make_subtitles_survives_a_flaky_service):
        folder = args.out_dir / test.__name__
        folder.mkdir(parents=True, exist_ok=True)
        test(folder, args.input)
        print(f"ok   {test.__name__}: wrote {folder / args.input.stem}.es.srt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
