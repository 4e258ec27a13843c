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
from collections.abc import Callable, Generator, Iterator, Sequence
from pathlib import Path
from typing import overload

import numpy as np

from dubkit import media, mux
from dubkit.errors import ConfigError
from dubkit.files import check_writable_dir
from dubkit.languages import Language, resolve, resolve_dub_target, resolve_voice
from dubkit.media.scratch import FileAudio
from dubkit.mix import MixOptions, PlacedClip, mix
from dubkit.mix.loudness import dub_gain, loudness_head
from dubkit.pipeline.options import Options, Progress, Result
from dubkit.pipeline.outputs import checked_outputs, shares_media
from dubkit.pipeline.timeline import Entry, Fitted, place_in_order
from dubkit.review.envelope import EnvelopeBuilder
from dubkit.segment import Segmenter, SegmentOptions
from dubkit.speakers import SpeakerInfo, find_speakers
from dubkit.speakers.process import SpeakerProcess
from dubkit.speakers.voices import VoiceChoice, cast, check_choice
from dubkit.subtitles import SubtitleOptions, SubtitleSource, layout, write_srt, write_vtt
from dubkit.translate import Stream, UtteranceResult, translate_languages
from dubkit.translate.clips import ClipStore
from dubkit.translate.protocol import Job, Translator
from dubkit.types import VAD_RATE, Cue, MediaInfo, StreamInfo, Utterance

log = logging.getLogger(__name__)

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


def _prepare(
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


def _translate(
    source: Path,
    translator: Translator,
    audio: FileAudio,
    utterances: list[Utterance],
    jobs: Sequence[Sequence[Job]],
    opts: Options,
    progress: Progress | None,
    store: ClipStore | None = None,
) -> tuple[Generator[list[UtteranceResult], None, None], list[Stream]]:
    """Each language's results (``jobs[k][i]``: utterance ``i`` into language ``k``), in
    timeline order, as they arrive; close the first stream returned to cancel them all."""
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
        store=store,
    )  # fmt: skip


def _sources(
    results: Sequence[UtteranceResult], speech: Sequence[tuple[tuple[int, int], ...]]
) -> list[SubtitleSource]:
    out = []
    for r, spans in zip(results, speech, strict=True):
        if r.translation is not None and r.translation.text.strip():
            out.append(SubtitleSource(r.utterance, r.translation.text, spans))
    return out


def _cues(
    timeline: Sequence[Entry], lang: str, duration_ms: int, opts: SubtitleOptions
) -> list[Cue]:
    """The subtitle cues of one language's timeline (timed to where each dub is heard, if
    it was dubbed)."""
    return layout(
        _sources([e.result for e in timeline], [e.heard for e in timeline]), lang, duration_ms,
        opts,
    )  # fmt: skip


def _write_subtitles(
    cues: Sequence[Cue], paths: Sequence[Path], lang: str, duration_ms: int, opts: SubtitleOptions
) -> None:
    """Write each sidecar; the writers refuse cues that break a hard rule."""
    for p in paths:
        writer = write_vtt if p.suffix == ".vtt" else write_srt
        writer(cues, p, lang=lang, duration_ms=duration_ms, options=opts)


@overload
def subtitle(
    input: str | Path,
    options: Options,
    translator: Translator,
    *,
    targets: None = None,
    progress: Progress | None = None,
) -> Result: ...
@overload
def subtitle(
    input: str | Path,
    options: Options,
    translator: Translator,
    *,
    targets: Sequence[str],
    progress: Progress | None = None,
) -> tuple[Result, ...]: ...
def subtitle(
    input: str | Path,
    options: Options,
    translator: Translator,
    *,
    targets: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> Result | tuple[Result, ...]:
    """Subtitles only (text modality): segment, translate, write ``<stem>.<lang>.srt``.

    ``targets`` (instead of ``options.target``): several languages from one segmentation,
    their requests sharing the translator's limits; one :class:`Result` per language.

    >>> Options(target="es").formats
    ('srt',)
    """
    from dubkit.pipeline.manifest import write_manifests

    path = Path(input)
    info, track, planned = _prepare(path, options, translator, targets, dubbing=False)
    langs = [lang.code for lang, _ in planned]
    outputs = checked_outputs(path, langs, options, with_media=False)
    with tempfile.TemporaryDirectory(prefix="dubkit-") as work:
        audio, utterances = analyze(
            path, options.segment, Path(work), progress, info.duration_ms, None, track.index
        )
        jobs = [[job] * len(utterances) for _, job in planned]
        shared, lanes = _translate(path, translator, audio, utterances, jobs, options, progress)
        with contextlib.closing(shared):  # an error here cancels the requests in flight
            per_lang = [[r for rs in lane for r in rs] for lane in lanes]
    out = []
    for (target, _), results, outs in zip(planned, per_lang, outputs, strict=True):
        timeline = tuple(Entry(r) for r in results)
        cues = _cues(timeline, target.code, info.duration_ms, options.subtitles)
        _write_subtitles(cues, outs.subtitles, target.code, info.duration_ms, options.subtitles)
        out.append(Result(path, target, translator.name, outs, timeline, tuple(cues)))
    write_manifests(out, info, options, [job for _, job in planned])
    return tuple(out) if targets is not None else out[0]


@overload
def dub(
    input: str | Path,
    options: Options,
    translator: Translator,
    *,
    targets: None = None,
    progress: Progress | None = None,
) -> Result: ...
@overload
def dub(
    input: str | Path,
    options: Options,
    translator: Translator,
    *,
    targets: Sequence[str],
    subtitle_only: Sequence[str] = (),
    progress: Progress | None = None,
) -> tuple[Result, ...]: ...
def dub(
    input: str | Path,
    options: Options,
    translator: Translator,
    *,
    targets: Sequence[str] | None = None,
    subtitle_only: Sequence[str] = (),
    progress: Progress | None = None,
) -> Result | tuple[Result, ...]:
    """Dub ``input`` into ``options.target``: dubbed media, subtitles, manifest, review page.

    The outputs go beside the input (or in ``options.out_dir``); the input is never
    modified. Utterances that still fail after every retry are left in the original
    language and listed in ``Result.failed``; rerunning with the same cache fills them in.

    ``targets`` (instead of ``options.target``) dubs into several languages in one run: one
    segmentation and speaker analysis, every language's requests through the translator's
    one rate limiter, and one output ``<stem>.dub.<ext>`` holding a dubbed track per
    language (the first the default, the original last) with a subtitle track each; an
    audio-only input gets one file per language. ``subtitle_only`` languages (text-only ones
    such as Thai included) are translated as text in the same run and get their subtitle
    track and sidecars, but no dubbed track. Returns one :class:`Result` per language, the
    dubbed ones first.

    >>> import tempfile, dubkit
    >>> from dubkit.emulator import Emulator, EmulatorConfig
    >>> from dubkit.translate.cloud import CloudConfig, CloudTranslator
    >>> talk = Path(dubkit.__file__).parent.parent / "fixtures" / "speech.wav"
    >>> with Emulator(EmulatorConfig()) as emu, tempfile.TemporaryDirectory() as out:
    ...     engine = CloudTranslator(CloudConfig(api_key="sk-any", base_url=emu.base_url))
    ...     result = dubkit.dub(talk, Options(target="es", out_dir=Path(out)), engine)
    ...     print(result.outputs.media.name, result.outputs.subtitles[0].name, len(result.failed))
    speech.es.wav speech.es.srt 0
    """
    from dubkit.pipeline.manifest import write_manifests
    from dubkit.review import write_review

    path = Path(input)
    info, track, planned = _prepare(
        path, options, translator, targets, dubbing=True, subtitle_only=subtitle_only
    )
    langs = [lang.code for lang, _ in planned]
    dubbed = len(planned) - len(subtitle_only)  # the first ``dubbed`` languages are dubbed
    shared = shares_media(path, info, options, langs)
    outputs = checked_outputs(
        path, langs, options, with_media=True, shared=shared, text_only=len(subtitle_only)
    )
    src = media.AudioSource(path, track.index, media.audio_format(info, track))
    fmt = src.fmt
    original = resolve(planned[0][1].source).iso639_2 if planned[0][1].source else "und"
    plans = [
        mux.MuxPlan(
            fmt.rate, fmt.channels, target.iso639_2,
            f"{target.name} {'dub' if k < dubbed else 'subtitles'} (dubkit {translator.name})",
            original_language=original, subtitle_language=target.iso639_2,
            keep_original=options.keep_original, track=track.index, layout=fmt.layout,
        )
        for k, (target, _) in enumerate(planned)
    ]
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dubkit-")))
        try:
            speakers = stack.enter_context(SpeakerProcess())  # starts while we segment
        except OSError:  # no interpreter to start (an embedded Python): measured here
            speakers = None
        wave = EnvelopeBuilder(info.duration_ms, VAD_RATE)
        audio, utterances = analyze(
            path, options.segment, work, progress, info.duration_ms, wave, track.index
        )
        choice = VoiceChoice(options.voice, options.voices)
        measured = functools.partial(progress, "speakers") if progress else None
        found = (
            speakers.find(audio.path, utterances, measured, path)
            if speakers is not None
            else find_speakers(audio, utterances, measured)
        )
        who = found.utterances
        castings = [
            cast(found, target, check_choice(choice, target)) for target, _ in planned[:dubbed]
        ]
        jobs = [
            [dataclasses.replace(job, voice=casting.voice_of(w.speaker)) for w in who]
            for (_, job), casting in zip(planned[:dubbed], castings, strict=True)
        ] + [[job] * len(utterances) for _, job in planned[dubbed:]]
        store = stack.enter_context(contextlib.closing(ClipStore(work / "clips.s16")))
        stream, lanes = _translate(
            path, translator, audio, utterances, jobs, options, progress, store
        )
        stack.enter_context(contextlib.closing(stream))
        fitted = [
            _fitted(lane, utterances, who, store, audio, src, info, options)
            for lane in lanes[:dubbed]
        ]
        into = [o.media for o in outputs[: 1 if shared else dubbed] if o.media is not None]
        timelines, encoded = _mix_and_encode(
            [f for f, _ in fitted], src, [g for _, g in fitted], options.mix, info,
            plans[:dubbed], into, work, progress,
        )  # fmt: skip
        timelines += [[Entry(r) for rs in lane for r in rs] for lane in lanes[dubbed:]]
        cues = [
            _cues(t, lang, info.duration_ms, options.subtitles)
            for lang, t in zip(langs, timelines, strict=True)
        ]
        if encoded:  # a video: mux the copied streams, the dubs and their cues
            plan = _with_subtitles(plans, cues, langs, dubbed, info.duration_ms, options, work)
            mux.mux_file(path, info, plan, encoded, into[0])
    out = []
    for k, (target, _) in enumerate(planned):
        _write_subtitles(
            cues[k], outputs[k].subtitles, target.code, info.duration_ms, options.subtitles
        )
        casting = None
        if k < dubbed:
            heard = [e.translation.voice if e.translation else None for e in timelines[k]]
            casting = castings[k].as_heard(
                [e.speaker.speaker for e in timelines[k] if e.speaker], heard
            )
        out.append(Result(
            path, target, translator.name, outputs[k], tuple(timelines[k]), tuple(cues[k]),
            casting,
        ))  # fmt: skip
    datas = write_manifests(
        out, info, options, [job for _, job in planned], envelope=wave.finish()
    )
    for r, data in zip(out, datas, strict=True):
        if r.outputs.review is not None:
            write_review(r.outputs.review, data)
    return tuple(out) if targets is not None or subtitle_only else out[0]


def _fitted(
    lane: Stream,
    utterances: Sequence[Utterance],
    who: Sequence[SpeakerInfo],
    store: ClipStore,
    audio: FileAudio,
    src: media.AudioSource,
    info: MediaInfo,
    options: Options,
) -> tuple[Iterator[Fitted], float]:
    """One language's timeline, fitted as its translations arrive, and the dub's gain, set
    from its first minutes of speech (see :func:`~dubkit.mix.loudness.loudness_head`)."""
    budget = options.mix.loudness_ms
    fitted = place_in_order(
        lane, utterances, who, store, info.duration_ms, src.fmt.rate, options.fit, budget
    )
    head, sample = loudness_head(fitted, budget)
    gain = dub_gain(audio, utterances, sample, src, budget) if options.mix.match_loudness else 0.0
    return itertools.chain(head, fitted), gain


def _with_subtitles(
    plans: Sequence[mux.MuxPlan],
    cues: Sequence[Sequence[Cue]],
    langs: Sequence[str],
    dubbed: int,
    duration_ms: int,
    options: Options,
    work: Path,
) -> mux.MuxPlan:
    """One plan for every language's track (the first ``dubbed`` with audio), each with its
    cues as an SRT file in ``work``."""
    tracks = []
    for k, (plan, lang_cues, lang) in enumerate(zip(plans, cues, langs, strict=True)):
        srt = work / f"subs.{lang}.srt"
        _write_subtitles(lang_cues, [srt], lang, duration_ms, options.subtitles)
        track = dataclasses.replace(plan.dubs[0], subtitles=srt if lang_cues else None)
        tracks.append(dataclasses.replace(track, audio=k < dubbed))
    first = tracks[0]
    return dataclasses.replace(
        plans[0], subtitles=first.subtitles, more=tuple(tracks[1:])
    )


def _mix_and_encode(
    entries: Sequence[Iterator[Fitted]],
    src: media.AudioSource,
    gains: Sequence[float],
    options: MixOptions,
    info: MediaInfo,
    plans: Sequence[mux.MuxPlan],
    outputs: Sequence[Path],
    work: Path,
    progress: Progress | None,
) -> tuple[list[list[Entry]], list[Path]]:
    """Mix each language's clips over the original as they arrive and encode each mix as it
    comes: the original is decoded once, and the languages' mixes advance in step over it.

    ``outputs``: one file per language, written whole (audio), or one video output: then
    each language's dub is encoded alone into ``work`` and the paths are returned, since the
    subtitles are known only once every translation is in. Returns each language's
    entries, in timeline order, and the encoded dubs (none for audio outputs).
    """
    timelines: list[list[Entry]] = [[] for _ in entries]

    def clips(k: int) -> Iterator[PlacedClip]:  # taken by the mix as it reaches them
        for f in entries[k]:
            timelines[k].append(f.entry)
            if f.placed is not None:
                yield f.placed

    fmt, total = src.fmt, round(info.duration_ms * src.fmt.rate / 1000)
    originals = itertools.tee(src.blocks(), len(entries)) if len(entries) > 1 else [src.blocks()]
    mixes = [
        mix(o, fmt.rate, fmt.channels, clips(k), total, options, gains[k], src.layout)
        for k, o in enumerate(originals)
    ]
    first = outputs[0]
    encoded: list[Path] = []
    if info.has_video and mux.output_kind(first) == "video":
        name = Path(mux.encoded_name(first.suffix))
        encoded = [work / f"{name.stem}.{k}{name.suffix}" for k in range(len(plans))]
        writers = [
            mux.Muxer(info.path, info, p, e, encode_for=first.suffix)
            for p, e in zip(plans, encoded, strict=True)
        ]
    else:
        writers = [
            mux.Muxer(info.path, info, p, o) for p, o in zip(plans, outputs, strict=True)
        ]
    with contextlib.ExitStack() as stack:
        muxers = [stack.enter_context(w) for w in writers]
        blocks = [_counted(mixes[0], fmt.rate, info.duration_ms, progress), *mixes[1:]]
        live = list(zip(blocks, muxers, strict=True))
        while live:  # in step: the original's decoded blocks are held only briefly
            for pair in list(live):
                block = next(pair[0], None)
                if block is None:
                    live.remove(pair)
                else:
                    pair[1].write(block)
    for k, f in enumerate(entries):  # after the last clip: failed or empty ones
        timelines[k].extend(x.entry for x in f)
    return timelines, encoded


def _counted(
    blocks: Iterator[np.ndarray], rate: int, duration_ms: int, progress: Progress | None
) -> Iterator[np.ndarray]:
    """Pass the mix through, reporting progress in milliseconds of media, and handing the
    heap's free pages back every minute of media (see :func:`_release_free_memory`)."""
    done = released = 0
    for b in blocks:
        done += b.shape[-1]
        if progress:
            progress("mix", min(done * 1000 // rate, duration_ms), duration_ms)
        if done - released >= 60 * rate:
            _release_free_memory()
            released = done
        yield b


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
    except OSError:
        return None
    return getattr(libc, "malloc_trim", None)  # glibc only


def _release_free_memory() -> None:
    """Give the memory already freed back to the system (glibc's ``malloc_trim``; nothing
    elsewhere). While the mix runs, the answers' parsing, the clips' stretching and the
    decoding free as much as they take, but in pieces that glibc's arenas keep: the resident
    size of a 2-hour dub crept up by some 60 MB over the mix without it. A call takes a few
    milliseconds, once a minute of media."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
