"""For the review page's tests and benchmark: a synthetic manifest, and headless Chromium."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

#: Text that must show as text on the page, never become markup or script.
HOSTILE = "</script><img src=x onerror=\"document.title='pwned'\"> & <b>bold</b> \u2028 done"
RULES = ("fit", "fit", "fit", "fit", "sped_up", "sped_up", "borrowed", "over_cap", "cut")
WORDS = (
    "the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "while", "people",
    "talk", "about", "their", "plans", "for", "the", "week", "and", "what", "they", "will",
    "cook", "tonight", "with", "friends", "from", "the", "old", "neighbourhood",
)  # fmt: skip


def synthetic_manifest(
    n: int = 1500, duration_ms: int = 7_200_000, seed: int = 16
) -> dict[str, Any]:
    """A manifest shaped like a real dub's: ``n`` utterances over ``duration_ms``, every rule
    and status present, two speakers, cues, an envelope; utterance 1 carries :data:`HOSTILE`."""
    rng = random.Random(seed)
    step = duration_ms // n
    items = []
    for i in range(n):
        start = i * step + rng.randrange(0, step // 5)
        end = min(start + rng.randrange(step // 2, step - step // 10), duration_ms)
        status = "failed" if i % 97 == 13 else "empty" if i % 113 == 7 else "ok"
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(3, 14))).capitalize() + "."
        if i == 1:
            text = HOSTILE
        item: dict[str, Any] = {
            "index": i, "start_ms": start, "end_ms": end, "status": status,
            "text": text if status == "ok" else (None if status == "failed" else ""),
            "cached": i % 3 == 0, "attempts": 7 if status == "failed" else 1 + (i % 11 == 0),
            "error": "HTTP 503: The model is unavailable" if status == "failed" else None,
            "speaker": f"S{1 + (i // 7) % 2}", "gender": "female" if (i // 7) % 2 else "male",
            "f0_hz": 120.0 + 90 * ((i // 7) % 2),
            "cues": [],
        }  # fmt: skip
        if status == "ok":
            rule = RULES[i % len(RULES)]
            ratio = {"fit": 1.0, "sped_up": 1.05 + (i % 5) * 0.06, "borrowed": 1.3}.get(rule, 1.5)
            item["dub"] = {
                "start_ms": start, "end_ms": end, "slot_end_ms": end, "clip_ms": end - start,
                "ratio": round(ratio, 4), "rule": rule, "cut_ms": 400 if rule == "cut" else 0,
            }  # fmt: skip
            words = text.split(" ")
            half = max(1, len(words) // 2)
            parts = [" ".join(words[:half]), " ".join(words[half:])] if len(words) > 6 else [text]
            span = (end - start) // len(parts)
            fast = i % 10 == 3  # some cues shown too briefly to read
            for k, part in enumerate(parts):
                s = start + k * span
                e = s + len(part) * 1000 // (40 if fast else 15)
                item["cues"].append({"start_ms": s, "end_ms": max(e, s + 1), "text": part})
        items.append(item)
    rng2 = random.Random(seed + 1)
    peaks = [rng2.randrange(0, 200) for _ in range(2000)]
    return {
        "dubkit": "0.1.0", "schema": 1, "created": "2026-12-02T09:00:00+00:00",
        "input": "/videos/two-hour talk.mp4", "duration_ms": duration_ms, "has_video": True,
        "engine": "cloud", "target": "es", "source": "en", "voice": "Cherry",
        "voices": {"S1": "Ethan", "S2": "Cherry"},
        "outputs": {"media": "two-hour talk.es.mp4", "subtitles": [], "review": None},
        "files": {"input": "two-hour talk.mp4", "media": "two-hour talk.es.mp4"},
        "options": {"max_ratio": 1.3, "hard_max_ratio": 1.5, "mix": "duck",
                    "keep_original": True, "target_cps": 17.0},
        "cost": {"billed_tokens": 183_000, "estimated_tokens": 180_000},
        "envelope": {"bin_ms": -(-duration_ms // 2000), "peaks": peaks},
        "totals": {"utterances": n, "max_ratio": 1.5,
                   "usage": {"total_tokens": 183_000, "input_audio_tokens": 90_000,
                             "output_audio_tokens": 88_000, "output_text_tokens": 5_000}},
        "utterances": items,
    }  # fmt: skip


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        exe = shutil.which(name)
        if exe:
            return exe
    return None


def chromium_args(exe: str, profile: Path) -> list[str]:
    return [
        exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-extensions", "--mute-audio", f"--user-data-dir={profile}",
    ]  # fmt: skip


def dump_dom(
    exe: str, page: Path, profile: Path, query: str = "", budget_ms: int | None = 5000
) -> str:
    """The DOM after the page's scripts ran (``query`` such as ``?filter=cut``)."""
    args = chromium_args(exe, profile)
    if budget_ms is not None:
        args.append(f"--virtual-time-budget={budget_ms}")
    url = page.resolve().as_uri() + query
    env = {**os.environ, "HOME": str(profile)}  # chromium writes its own caches under HOME
    proc = subprocess.run(
        [*args, "--dump-dom", url], capture_output=True, text=True, timeout=120, env=env,
        check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"chromium failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return proc.stdout
