"""Before the first request: the languages and jobs checked, the input probed, decoded
and segmented; then the requests started.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Generator, Iterator, Sequence
from pathlib import Path

from dubkit import media
from dubkit.errors import ConfigError
from dubkit.files import check_writable_dir
from dubkit.languages import Language, resolve, resolve_dub_target, resolve_voice
from dubkit.media.scratch import FileAudio
from dubkit.pipeline.options import Options, Progress
from dubkit.review.envelope import EnvelopeBuilder
from dubkit.segment import Segmenter, SegmentOptions
from dubkit.speakers.voices import VoiceChoice, check_choice
from dubkit.translate import Stream, UtteranceResult, translate_languages
from dubkit.translate.clips import ClipStore
from dubkit.translate.protocol import Job, Translator
from dubkit.types import VAD_RATE, MediaInfo, StreamInfo, Utterance


def raw_path(workdir: Path) -> Path:
    """Where :func:`analyze` keeps the decoded 16 kHz samples of a job."""
    return workdir / "source.s16"


def analyze(
    path: Path,
    options: SegmentOptions,
    workdir: Path,
    progress: Progress | None = None,
    duration_ms: int = 0,
    envelope: EnvelopeBuilder | None = None,
    stream: int | None = None,
    given: Sequence[Utterance] | None = None,
    found: Callable[[Sequence[Utterance]], None] | None = None,
) -> tuple[FileAudio, list[Utterance]]:
    """Decode once at 16 kHz: segment as the audio streams in, keep it on disk for requests.

    ``envelope``, when given, is fed the same audio (the review page's waveform);
    ``given`` utterances (a subtitle file's, an edited manifest's) replace the segmentation.
    ``found``, when given, is called with each batch of utterances as soon as they are
    found and their samples are on disk (the given ones once the file is written), so
    that the speaker analysis can measure them while the segmentation goes on.
    """
    raw = raw_path(workdir)
    segmenter = Segmenter(options) if given is None else None
    utterances: list[Utterance] = []
    done = 0
    with raw.open("wb") as f:
        for chunk in media.prefetch(media.iter_pcm16(path, VAD_RATE, stream)):
            f.write(chunk.astype("<i2").tobytes())
            if segmenter is not None:
                new = segmenter.feed(chunk)
                if new and found is not None:
                    f.flush()
                    found(new)
                utterances += new
            if envelope is not None:
                envelope.feed(chunk)
            done += len(chunk)
            if progress:
                progress("segment", done * 1000 // VAD_RATE, duration_ms)
    last = segmenter.finish() if segmenter is not None else list(given or ())
    if found is not None and last:
        found(last)
    utterances += last
    if progress:
        progress("segment", duration_ms, duration_ms)
    return FileAudio(raw), utterances


def plan_job(options: Options, *, dubbing: bool) -> tuple[Language, Job]:
    """Check the languages and voices before anything is read or sent; the target and the job.

    The job's voice is the forced one, or (``auto``) the language's default voice: each
    utterance's request then uses its speaker's voice instead.
    """
    target = resolve_dub_target(options.target) if dubbing else resolve(options.target)
    source = resolve(options.source).code if options.source else None
    voice = None
    if dubbing:
        choice = check_choice(VoiceChoice(options.voice, options.voices), target)
        voice = resolve_voice(None if choice.is_auto else choice.voice, target)
    return target, Job(target.code, source, voice)


def plan_jobs(
    options: Options,
    targets: Sequence[str] | None = None,
    *,
    dubbing: bool,
    subtitle_only: Sequence[str] = (),
) -> list[tuple[Language, Job]]:
    """:func:`plan_job` for each of ``targets`` (default: ``options.target``), then for each
    language of ``subtitle_only`` as text only, all checked before anything is read or
    sent: a language that cannot be dubbed (text only), a voice it does not have or a
    language given twice refuses the whole run."""
    names = [options.target] if targets is None else list(targets)
    if not names:
        raise ConfigError("no target language given")
    planned = [plan_job(dataclasses.replace(options, target=t), dubbing=dubbing) for t in names]
    planned += [
        plan_job(dataclasses.replace(options, target=t), dubbing=False) for t in subtitle_only
    ]
    codes = [lang.code for lang, _ in planned]
    if twice := sorted({c for c in codes if codes.count(c) > 1}):
        raise ConfigError(f"target language {', '.join(twice)} given more than once")
    return planned


def parse_targets(text: str) -> tuple[str, ...]:
    """``"es,fr, ja"`` -> ``("es", "fr", "ja")`` (the CLI's ``--to``)."""
    names = tuple(t.strip() for t in text.split(",") if t.strip())
    if not names:
        raise ConfigError(f"no target language in {text!r}")
    return names


def prepare(
    path: Path,
    opts: Options,
    translator: Translator,
    targets: Sequence[str] | None,
    *,
    dubbing: bool,
    subtitle_only: Sequence[str] = (),
) -> tuple[MediaInfo, StreamInfo, list[tuple[Language, Job]]]:
    """Probe, pick the audio track; its language tag is the source language unless given."""
    planned = plan_jobs(opts, targets, dubbing=dubbing, subtitle_only=subtitle_only)
    check = getattr(translator, "check", None)  # engines that can refuse a job up front
    if check is not None:
        for _, job in planned:
            check(job)
    if opts.cache_dir is not None:  # refused now, not after the first answer is paid for
        check_writable_dir(opts.cache_dir, "cache folder")
    info = media.probe(path)
    track = media.select_audio(info, opts.track)
    if opts.source is None and track.language:
        with contextlib.suppress(ConfigError):
            source = resolve(track.language).code
            planned = [(lang, dataclasses.replace(j, source=source)) for lang, j in planned]
    return info, track, planned


def start_translations(
    source: Path,
    translator: Translator,
    audio: FileAudio,
    utterances: list[Utterance],
    jobs: Sequence[Sequence[Job | None]],
    opts: Options,
    progress: Progress | None,
    store: ClipStore | None = None,
    items: Iterator[tuple[Utterance, Sequence[Job]]] | None = None,
) -> tuple[Generator[list[UtteranceResult], None, None], list[Stream]]:
    """Each language's results (``jobs[k][i]``: utterance ``i`` into language ``k``), in
    timeline order, as they arrive; close the first stream returned to cancel them all.
    ``items``, when given, replaces ``utterances`` and ``jobs``: each utterance and its jobs
    as they become known (see :func:`~dubkit.translate.translate_languages`)."""
    from dubkit.translate.cache import TranslationCache

    cache = TranslationCache(opts.cache_dir) if opts.cache_dir is not None else None

    def on_progress(done: int, total: int) -> None:
        if progress:
            progress("translate", done, total)

    video = None
    if opts.visual:

        def video(u: Utterance) -> bytes:
            return media.extract_clip(source, u.start_ms, u.end_ms)

    return translate_languages(
        translator, audio, utterances, jobs,
        concurrency=opts.concurrency, cache=cache, on_progress=on_progress, video=video,
        store=store, items=items,
    )  # fmt: skip
