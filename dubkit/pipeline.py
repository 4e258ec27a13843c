"""The whole job: segment, translate, subtitle, fit, mix, mux — for one input file.

:func:`dub` and :func:`subtitle` are the library's main entry points; they
never print, prompt or exit. Progress goes to an optional callback
``progress(stage, done, total)``: stage "segment" and "mix" count milliseconds of media,
"speakers" and "translate" count utterances.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import logging
import tempfile
from collections.abc import Generator, Iterator, Sequence
from pathlib import Path

import numpy as np

from dubkit import media, mux
from dubkit.envelope import EnvelopeBuilder
from dubkit.errors import ConfigError
from dubkit.files import check_writable_dir
from dubkit.languages import Language, resolve, resolve_dub_target, resolve_voice
from dubkit.loudness import dub_gain, loudness_head
from dubkit.mix import MixOptions, PlacedClip, mix
from dubkit.options import Options, Outputs, Progress, Result
from dubkit.segment import Segmenter, SegmentOptions
from dubkit.subtitles import SubtitleOptions, SubtitleSource, layout, write_srt, write_vtt
from dubkit.timeline import Entry, Fitted, place_in_order
from dubkit.translate import UtteranceResult, translate_in_order
from dubkit.translator import Job, Translator
from dubkit.types import VAD_RATE, Cue, MediaInfo, StreamInfo, Utterance
from dubkit.voices import VoiceChoice, cast_voices, check_choice
from dubkit.workspace import ClipStore, FileAudio

log = logging.getLogger(__name__)

def output_paths(path: Path, lang: str, options: Options, *, with_media: bool) -> Outputs:
    """``<stem>.<lang>.<ext>`` beside the input (or in ``out_dir``)."""
    folder = options.out_dir if options.out_dir is not None else path.parent
    base = folder / f"{path.stem}.{lang}"
    ext = mux.output_suffix(path.suffix, options.container)[0]
    subs = tuple(Path(f"{base}.{fmt}") for fmt in options.formats)
    return Outputs(
        subs,
        Path(f"{base}.dubkit.json"),
        Path(f"{base}{ext}") if with_media else None,
        Path(f"{base}.review.html") if with_media and options.review else None,
    )


def checked_outputs(path: Path, lang: str, options: Options, *, with_media: bool) -> Outputs:
    """The output paths, each refused now if it cannot be written; ``out_dir`` is created."""
    outputs = output_paths(path, lang, options, with_media=with_media)
    if options.out_dir is not None and not options.out_dir.is_dir():
        check_writable_dir(options.out_dir, "output folder (--out-dir)")
        options.out_dir.mkdir(parents=True, exist_ok=True)
    if outputs.media is not None:
        mux.output_kind(outputs.media)
        if note := mux.output_suffix(path.suffix, options.container)[1]:
            log.info("%s: %s", path, note)
    extra = [p for p in (outputs.media, outputs.review) if p is not None]
    for p in (*outputs.subtitles, outputs.manifest, *extra):
        media.check_output(path, p)
    return outputs


def analyze(
    path: Path,
    options: SegmentOptions,
    workdir: Path,
    progress: Progress | None = None,
    duration_ms: int = 0,
    envelope: EnvelopeBuilder | None = None,
    stream: int | None = None,
) -> tuple[FileAudio, list[Utterance]]:
    """Decode once at 16 kHz: segment as the audio streams in, keep it on disk for requests.

    ``envelope``, when given, is fed the same audio (the review page's waveform).
    """
    raw = workdir / "source.s16"
    segmenter = Segmenter(options)
    utterances: list[Utterance] = []
    done = 0
    with raw.open("wb") as f:
        for chunk in media.prefetch(media.iter_pcm16(path, VAD_RATE, stream)):
            f.write(chunk.astype("<i2").tobytes())
            utterances += segmenter.feed(chunk)
            if envelope is not None:
                envelope.feed(chunk)
            done += len(chunk)
            if progress:
                progress("segment", done * 1000 // VAD_RATE, duration_ms)
    utterances += segmenter.finish()
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


def _prepare(
    path: Path, opts: Options, translator: Translator, *, dubbing: bool
) -> tuple[MediaInfo, StreamInfo, Language, Job]:
    """Probe, pick the audio track; its language tag is the source language unless given."""
    target, job = plan_job(opts, dubbing=dubbing)
    check = getattr(translator, "check", None)  # engines that can refuse a job up front
    if check is not None:
        check(job)
    if opts.cache_dir is not None:  # refused now, not after the first answer is paid for
        check_writable_dir(opts.cache_dir, "cache folder")
    info = media.probe(path)
    track = media.select_audio(info, opts.track)
    if job.source is None and track.language:
        with contextlib.suppress(ConfigError):
            job = dataclasses.replace(job, source=resolve(track.language).code)
    return info, track, target, job


def _translate(
    source: Path,
    translator: Translator,
    audio: FileAudio,
    utterances: list[Utterance],
    job: Job,
    opts: Options,
    progress: Progress | None,
    store: ClipStore | None = None,
    voices: Sequence[str] | None = None,
) -> Generator[list[UtteranceResult], None, None]:
    """Each utterance's results, in timeline order, as they arrive (``voices``: one per
    utterance)."""
    from dubkit.cache import TranslationCache

    cache = TranslationCache(opts.cache_dir) if opts.cache_dir is not None else None

    def on_progress(done: int, total: int) -> None:
        if progress:
            progress("translate", done, total)

    video = None
    if opts.visual:

        def video(u: Utterance) -> bytes:
            return media.extract_clip(source, u.start_ms, u.end_ms)

    return translate_in_order(
        translator, audio, utterances, job,
        concurrency=opts.concurrency, cache=cache, on_progress=on_progress, video=video,
        store=store, voices=voices,
    )  # fmt: skip


def _sources(
    results: Sequence[UtteranceResult], speech: Sequence[tuple[tuple[int, int], ...]]
) -> list[SubtitleSource]:
    out = []
    for r, spans in zip(results, speech, strict=True):
        if r.translation is not None and r.translation.text.strip():
            out.append(SubtitleSource(r.utterance, r.translation.text, spans))
    return out


def _write_subtitles(
    cues: Sequence[Cue], paths: Sequence[Path], lang: str, duration_ms: int, opts: SubtitleOptions
) -> None:
    """Write each sidecar; the writers refuse cues that break a hard rule."""
    for p in paths:
        writer = write_vtt if p.suffix == ".vtt" else write_srt
        writer(cues, p, lang=lang, duration_ms=duration_ms, options=opts)


def subtitle(
    input: str | Path,
    options: Options,
    translator: Translator,
    *,
    progress: Progress | None = None,
) -> Result:
    """Subtitles only (text modality): segment, translate, write ``<stem>.<lang>.srt``.

    >>> Options(target="es").formats
    ('srt',)
    """
    from dubkit.manifest import write_manifest

    path = Path(input)
    info, track, target, job = _prepare(path, options, translator, dubbing=False)
    outputs = checked_outputs(path, target.code, options, with_media=False)
    with tempfile.TemporaryDirectory(prefix="dubkit-") as work:
        audio, utterances = analyze(
            path, options.segment, Path(work), progress, info.duration_ms, None, track.index
        )
        stream = _translate(path, translator, audio, utterances, job, options, progress)
        with contextlib.closing(stream):  # an error here cancels the requests in flight
            results = [r for rs in stream for r in rs]
    cues = layout(
        _sources(results, [()] * len(results)), target.code, info.duration_ms, options.subtitles
    )
    _write_subtitles(cues, outputs.subtitles, target.code, info.duration_ms, options.subtitles)
    result = Result(
        path, target, translator.name, outputs, tuple(Entry(r) for r in results), tuple(cues)
    )
    write_manifest(result, info, options, job)
    return result


def dub(
    input: str | Path,
    options: Options,
    translator: Translator,
    *,
    progress: Progress | None = None,
) -> Result:
    """Dub ``input`` into ``options.target``: dubbed media, subtitles, manifest, review page.

    The outputs go beside the input (or in ``options.out_dir``); the input is never
    modified. Utterances that still fail after every retry are left in the original
    language and listed in ``Result.failed``; rerunning with the same cache fills them in.

    >>> import tempfile, dubkit
    >>> from dubkit.emulator import Emulator, EmulatorConfig
    >>> from dubkit.cloud import CloudConfig, CloudTranslator
    >>> talk = Path(dubkit.__file__).parent.parent / "fixtures" / "speech.wav"
    >>> with Emulator(EmulatorConfig()) as emu, tempfile.TemporaryDirectory() as out:
    ...     engine = CloudTranslator(CloudConfig(api_key="sk-any", base_url=emu.base_url))
    ...     result = dubkit.dub(talk, Options(target="es", out_dir=Path(out)), engine)
    ...     print(result.outputs.media.name, result.outputs.subtitles[0].name, len(result.failed))
    speech.es.wav speech.es.srt 0
    """
    from dubkit.manifest import write_manifest
    from dubkit.review import write_review

    path = Path(input)
    info, track, target, job = _prepare(path, options, translator, dubbing=True)
    outputs = checked_outputs(path, target.code, options, with_media=True)
    assert outputs.media is not None
    src = media.AudioSource(path, track.index, media.audio_format(info, track))
    fmt = src.fmt
    plan_ = mux.MuxPlan(
        fmt.rate, fmt.channels, target.iso639_2, f"{target.name} dub (dubkit {translator.name})",
        original_language=resolve(job.source).iso639_2 if job.source else "und",
        subtitle_language=target.iso639_2, keep_original=options.keep_original,
        track=track.index, layout=fmt.layout,
    )  # fmt: skip
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dubkit-")))
        wave = EnvelopeBuilder(info.duration_ms, VAD_RATE)
        audio, utterances = analyze(
            path, options.segment, work, progress, info.duration_ms, wave, track.index
        )
        choice = VoiceChoice(options.voice, options.voices)
        measured = functools.partial(progress, "speakers") if progress else None
        who, casting = cast_voices(audio, utterances, target, choice, measured)
        voices = [casting.voice_of(w.speaker) for w in who]
        store = stack.enter_context(contextlib.closing(ClipStore(work / "clips.s16")))
        stream = stack.enter_context(contextlib.closing(_translate(
            path, translator, audio, utterances, job, options, progress, store, voices
        )))  # fmt: skip
        budget = options.mix.loudness_ms
        fitted = place_in_order(
            stream, utterances, who, store, info.duration_ms, fmt.rate, options.fit, budget
        )
        head, sample = loudness_head(fitted, budget)
        gain = (
            dub_gain(audio, utterances, sample, src, budget) if options.mix.match_loudness else 0.0
        )
        entries = itertools.chain(head, fitted)
        timeline, encoded = _mix_and_encode(
            entries, src, gain, options.mix, info, plan_, outputs.media, work, progress
        )
        results = [e.result for e in timeline]
        cues = layout(
            _sources(results, [e.heard for e in timeline]), target.code, info.duration_ms,
            options.subtitles,
        )  # fmt: skip
        srt = work / "subs.srt"
        _write_subtitles(cues, [srt], target.code, info.duration_ms, options.subtitles)
        if encoded is not None:  # a video: mux the copied streams, the dub and the cues
            subs = dataclasses.replace(plan_, subtitles=srt if cues else None)
            mux.mux_file(path, info, subs, encoded, outputs.media)
    _write_subtitles(cues, outputs.subtitles, target.code, info.duration_ms, options.subtitles)
    heard = [r.translation.voice if r.translation else None for r in results]
    casting = casting.as_heard([e.speaker.speaker for e in timeline if e.speaker], heard)
    result = Result(path, target, translator.name, outputs, tuple(timeline), tuple(cues), casting)
    data = write_manifest(result, info, options, job, envelope=wave.finish())
    if outputs.review is not None:
        write_review(outputs.review, data)
    return result


def _mix_and_encode(
    entries: Iterator[Fitted],
    src: media.AudioSource,
    gain: float,
    options: MixOptions,
    info: MediaInfo,
    plan: mux.MuxPlan,
    output: Path,
    work: Path,
    progress: Progress | None,
) -> tuple[list[Entry], Path | None]:
    """Mix the clips over the original as they arrive and encode the mix as it comes.

    An audio-only output is written whole; a video's dub is encoded alone into ``work`` (its
    path is returned), since the subtitles are known only once every translation is in.
    Returns every entry, in timeline order, with the encoded dub or None.
    """
    timeline: list[Entry] = []

    def clips() -> Iterator[PlacedClip]:  # taken by the mix as it reaches them
        for f in entries:
            timeline.append(f.entry)
            if f.placed is not None:
                yield f.placed

    fmt, total = src.fmt, round(info.duration_ms * src.fmt.rate / 1000)
    blocks = mix(src.blocks(), fmt.rate, fmt.channels, clips(), total, options, gain, src.layout)
    encoded = None
    if info.has_video and mux.output_kind(output) == "video":
        encoded = work / mux.encoded_name(output.suffix)
        writer = mux.Muxer(info.path, info, plan, encoded, encode_for=output.suffix)
    else:
        writer = mux.Muxer(info.path, info, plan, output)
    with writer as muxer:
        for block in _counted(blocks, fmt.rate, info.duration_ms, progress):
            muxer.write(block)
    timeline.extend(f.entry for f in entries)  # after the last clip: failed or empty ones
    return timeline, encoded


def _counted(
    blocks: Iterator[np.ndarray], rate: int, duration_ms: int, progress: Progress | None
) -> Iterator[np.ndarray]:
    """Pass the mix through, reporting progress in milliseconds of media."""
    done = 0
    for b in blocks:
        done += b.shape[-1]
        if progress:
            progress("mix", min(done * 1000 // rate, duration_ms), duration_ms)
        yield b
