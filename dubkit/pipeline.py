"""The whole job: segment, translate, subtitle, fit, mix, mux — for one input file.

:func:`dub` and :func:`subtitle` are the library's main entry points; they
never print, prompt or exit. Progress goes to an optional callback
``progress(stage, done, total)``: stage "segment" and "mix" count milliseconds of media,
"speakers" and "translate" count utterances.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dubkit import media
from dubkit.engine import Job, Translator
from dubkit.errors import ConfigError
from dubkit.files import check_writable_dir
from dubkit.fit import (
    FitOptions,
    Placement,
    plan,
    render,
    sample_span,
    trim_silence,
    trimmed_ms,
)
from dubkit.languages import Language, resolve, resolve_dub_target, resolve_voice
from dubkit.mix import MixOptions, PlacedClip, loudness_gain_db, mix
from dubkit.runner import UtteranceResult, translate_all_sync
from dubkit.segment import Segmenter, SegmentOptions
from dubkit.speakers import SpeakerInfo
from dubkit.subtitles import SubtitleOptions, SubtitleSource, layout, write_srt, write_vtt
from dubkit.types import SERVICE_RATE, VAD_RATE, Cue, MediaInfo, Usage, Utterance
from dubkit.voices import AUTO, Casting, VoiceChoice, cast_voices, check_choice, pieces_of
from dubkit.workspace import ClipStore, FileAudio

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
SUBTITLE_FORMATS = ("srt", "vtt")
#: How much speech the loudness measures look at (spread evenly over the whole file):
#: two minutes of speech pin an integrated loudness well within 0.5 LU.
LOUDNESS_BUDGET_MS = 120_000


@dataclass(frozen=True, slots=True)
class Options:
    """Everything one run needs besides the input and the engine."""

    target: str
    source: str | None = None
    voice: str = AUTO  # "auto": each speaker a voice of their gender; or one voice for all
    voices: tuple[tuple[str, str], ...] = ()  # per-speaker voices: ("S1", "Ethan"), ...
    out_dir: Path | None = None
    formats: tuple[str, ...] = ("srt",)
    concurrency: int = 4
    cache_dir: Path | None = None  # None: no cache
    visual: bool = False
    keep_original: bool = True
    segment: SegmentOptions = field(default_factory=SegmentOptions)
    subtitles: SubtitleOptions = field(default_factory=SubtitleOptions)
    fit: FitOptions = field(default_factory=FitOptions)
    mix: MixOptions = field(default_factory=MixOptions)

    def __post_init__(self) -> None:
        bad = [f for f in self.formats if f not in SUBTITLE_FORMATS]
        if bad or not self.formats:
            raise ConfigError(f"unknown subtitle format {bad}; choose from srt, vtt")
        if self.concurrency < 1:
            raise ConfigError("concurrency must be at least 1")


@dataclass(frozen=True, slots=True)
class Outputs:
    """The files a run writes (``media`` is None for ``subtitle``)."""

    subtitles: tuple[Path, ...]
    manifest: Path
    media: Path | None = None


@dataclass(frozen=True, slots=True)
class Result:
    """What a run produced: files, utterances, translations, placements and usage.

    After :func:`dub`, each translation's speech lives in the dubbed file (and the
    cache), not here: ``results[i].translation.audio`` is empty, so a long video's
    result stays small.
    """

    input: Path
    target: Language
    engine: str
    outputs: Outputs
    results: tuple[UtteranceResult, ...]
    cues: tuple[Cue, ...]
    placements: tuple[Placement | None, ...] = ()
    usage: Usage = field(default_factory=Usage)
    #: Per result (after :func:`dub`): who speaks it; empty for subtitles.
    speakers: tuple[SpeakerInfo, ...] = ()
    #: Each speaker's voice (after :func:`dub`).
    casting: Casting | None = None

    @property
    def failed(self) -> tuple[UtteranceResult, ...]:
        return tuple(r for r in self.results if r.error is not None)


def output_paths(path: Path, lang: str, options: Options, *, with_media: bool) -> Outputs:
    """``<stem>.<lang>.<ext>`` beside the input (or in ``out_dir``)."""
    folder = options.out_dir if options.out_dir is not None else path.parent
    base = folder / f"{path.stem}.{lang}"
    subs = tuple(Path(f"{base}.{fmt}") for fmt in options.formats)
    return Outputs(
        subs, Path(f"{base}.dubkit.json"), Path(f"{base}{path.suffix}") if with_media else None
    )


def checked_outputs(path: Path, lang: str, options: Options, *, with_media: bool) -> Outputs:
    """The output paths, each refused now if it cannot be written; ``out_dir`` is created."""
    outputs = output_paths(path, lang, options, with_media=with_media)
    if options.out_dir is not None and not options.out_dir.is_dir():
        check_writable_dir(options.out_dir, "output folder (--out-dir)")
        options.out_dir.mkdir(parents=True, exist_ok=True)
    if outputs.media is not None:
        media.output_kind(outputs.media)
    for p in (*outputs.subtitles, outputs.manifest, *([outputs.media] if outputs.media else [])):
        media.check_output(path, p)
    return outputs


def analyze(
    path: Path,
    options: SegmentOptions,
    workdir: Path,
    progress: Progress | None = None,
    duration_ms: int = 0,
) -> tuple[FileAudio, list[Utterance]]:
    """Decode once at 16 kHz: segment as the audio streams in, keep it on disk for requests."""
    raw = workdir / "source.s16"
    segmenter = Segmenter(options)
    utterances: list[Utterance] = []
    done = 0
    with raw.open("wb") as f:
        for chunk in media.prefetch(media.iter_pcm16(path, VAD_RATE)):
            f.write(chunk.astype("<i2").tobytes())
            utterances += segmenter.feed(chunk)
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
) -> tuple[MediaInfo, Language, Job]:
    target, job = plan_job(opts, dubbing=dubbing)
    check = getattr(translator, "check", None)  # engines that can refuse a job up front
    if check is not None:
        check(job)
    if opts.cache_dir is not None:  # refused now, not after the first answer is paid for
        check_writable_dir(opts.cache_dir, "cache folder")
    return media.require_audio(media.probe(path)), target, job


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
) -> list[UtteranceResult]:
    from dubkit.cache import TranslationCache

    cache = TranslationCache(opts.cache_dir) if opts.cache_dir is not None else None

    def on_progress(done: int, total: int) -> None:
        if progress:
            progress("translate", done, total)

    video = None
    if opts.visual:

        def video(u: Utterance) -> bytes:
            return media.extract_clip(source, u.start_ms, u.end_ms)

    return translate_all_sync(
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


def _usage(results: Sequence[UtteranceResult]) -> Usage:
    total = Usage()
    for r in results:
        if r.translation is not None and not r.cached:
            total = total + r.translation.usage
    return total


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
    info, target, job = _prepare(path, options, translator, dubbing=False)
    outputs = checked_outputs(path, target.code, options, with_media=False)
    with tempfile.TemporaryDirectory(prefix="dubkit-") as work:
        audio, utterances = analyze(path, options.segment, Path(work), progress, info.duration_ms)
        results = _translate(path, translator, audio, utterances, job, options, progress)
    cues = layout(
        _sources(results, [()] * len(results)), target.code, info.duration_ms, options.subtitles
    )
    _write_subtitles(cues, outputs.subtitles, target.code, info.duration_ms, options.subtitles)
    result = Result(
        path, target, translator.name, outputs, tuple(results), tuple(cues), usage=_usage(results)
    )
    write_manifest(result, info, options, job)
    return result


@dataclass(frozen=True, slots=True)
class _Clip:
    """One dubbed clip, its audio left in the clip store until it is mixed."""

    load: Callable[[], np.ndarray]  # int16 at SERVICE_RATE
    trim: tuple[int, int]
    spans: tuple[tuple[int, int], ...]  # where it is audible, ms from the trimmed start


@dataclass(frozen=True, slots=True)
class _Clips:
    clips: list[_Clip | None]
    loudness_sample: np.ndarray  # float32 speech taken evenly across the clips


def _clips(results: Sequence[UtteranceResult], store: ClipStore, fit: FitOptions) -> _Clips:
    """Trim each clip and note its pauses, reading it once; keep a loudness sample."""
    sizes = [r.clip.size // 2 if r.clip else 0 for r in results]
    step = max(1, -(-sum(sizes) // (LOUDNESS_BUDGET_MS * SERVICE_RATE // 1000)))
    clips: list[_Clip | None] = []
    sample: list[np.ndarray] = []
    for r in results:
        if r.clip is None:
            clips.append(None)
            continue
        samples = store.read(r.clip)
        trim = trim_silence(samples, SERVICE_RATE, fit)
        if trim[1] <= trim[0]:
            clips.append(None)
            continue
        voiced = samples[trim[0] : trim[1]]
        if len(clips) % step == 0:
            sample.append(voiced.astype(np.float32) / 32768)
        spans = speech_spans(voiced, SERVICE_RATE, 0)
        clips.append(_Clip(functools.partial(store.read, r.clip), trim, spans))
    return _Clips(clips, np.concatenate(sample) if sample else np.zeros(0, np.float32))


def speech_spans(
    samples: np.ndarray, rate: int, start_ms: int, min_pause_ms: int = 250
) -> tuple[tuple[int, int], ...]:
    """Where a clip is audible, as ``[start, end)`` ms spans from ``start_ms``, split at pauses."""
    frame = rate // 50  # 20 ms
    n = len(samples) // frame
    if n == 0:
        return ()
    rms = np.sqrt(np.mean(samples[: n * frame].reshape(n, frame).astype(np.float64) ** 2, axis=1))
    loud = rms > max(rms.max() * 10 ** (-35 / 20), 1e-5)
    spans: list[tuple[int, int]] = []
    i = 0
    while i < n:
        if not loud[i]:
            i += 1
            continue
        j = i
        while j < n and loud[j]:
            j += 1
        s, e = start_ms + i * 20, start_ms + j * 20
        if spans and s - spans[-1][1] < min_pause_ms:
            spans[-1] = (spans[-1][0], e)
        else:
            spans.append((s, e))
        i = j
    return tuple(spans)


def _placed(
    clips: Sequence[_Clip | None],
    placements: Sequence[Placement | None],
    rate: int,
    fit: FitOptions,
) -> tuple[list[PlacedClip], list[tuple[tuple[int, int], ...]]]:
    placed: list[PlacedClip] = []
    spans: list[tuple[tuple[int, int], ...]] = []
    for clip, p in zip(clips, placements, strict=True):
        if clip is None or p is None:
            spans.append(())
            continue
        spans.append(
            tuple(
                (p.start_ms + round(s / p.ratio), min(p.end_ms, p.start_ms + round(e / p.ratio)))
                for s, e in clip.spans
                if p.start_ms + round(s / p.ratio) < p.end_ms
            )
        )
        start, length = sample_span(p, rate)

        def load(c: _Clip = clip, pl: Placement = p) -> np.ndarray:
            return render(c.load(), SERVICE_RATE, c.trim, pl, rate, fit)

        placed.append(PlacedClip(start, length, load))
    return placed, spans


def _dub_gain(audio: FileAudio, utterances: Sequence[Utterance], dub: np.ndarray) -> float:
    """The gain that brings the dubbed speech to the loudness of the original speech."""
    spans = [(u.start_ms, u.end_ms) for u in utterances]
    original = audio.read_spread(spans, LOUDNESS_BUDGET_MS).astype(np.float32) / 32768
    if dub.size == 0 or original.size == 0:
        return 0.0
    return loudness_gain_db(original, dub, VAD_RATE, SERVICE_RATE)


def dub(
    input: str | Path,
    options: Options,
    translator: Translator,
    *,
    progress: Progress | None = None,
) -> Result:
    """Dub ``input`` into ``options.target``: dubbed media, subtitles and manifest.

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

    path = Path(input)
    info, target, job = _prepare(path, options, translator, dubbing=True)
    outputs = checked_outputs(path, target.code, options, with_media=True)
    assert outputs.media is not None
    fmt = media.audio_format(info)
    total = round(info.duration_ms * fmt.rate / 1000)
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dubkit-")))
        audio, utterances = analyze(path, options.segment, work, progress, info.duration_ms)
        store = stack.enter_context(contextlib.closing(ClipStore(work / "clips.s16")))
        choice = VoiceChoice(options.voice, options.voices)
        measured = functools.partial(progress, "speakers") if progress else None
        who, casting = cast_voices(audio, utterances, target, choice, measured)
        voices = [casting.voice_of(w.speaker) for w in who]
        results = _translate(
            path, translator, audio, utterances, job, options, progress, store, voices
        )
        utts = [r.utterance for r in results]
        pieces = pieces_of(who, utterances, utts)
        found = _clips(results, store, options.fit)
        lengths = [None if c is None else trimmed_ms(c.trim, SERVICE_RATE) for c in found.clips]
        placements = plan(utts, lengths, info.duration_ms, options.fit)
        placed, spans = _placed(found.clips, placements, fmt.rate, options.fit)
        cues = layout(_sources(results, spans), target.code, info.duration_ms, options.subtitles)
        gain = _dub_gain(audio, utts, found.loudness_sample) if options.mix.match_loudness else 0.0
        srt = work / "subs.srt"
        _write_subtitles(cues, [srt], target.code, info.duration_ms, options.subtitles)
        plan_ = media.MuxPlan(
            fmt.rate, fmt.channels, target.iso639_2,
            f"{target.name} dub (dubkit {translator.name})",
            original_language=_original_language(info, job),
            subtitles=srt if cues else None, subtitle_language=target.iso639_2,
            keep_original=options.keep_original,
        )  # fmt: skip
        blocks = mix(
            media.iter_float(path, fmt), fmt.rate, fmt.channels, placed, total, options.mix, gain
        )
        with media.Muxer(path, info, plan_, outputs.media) as muxer:
            for block in _counted(blocks, fmt.rate, info.duration_ms, progress):
                muxer.write(block)
    _write_subtitles(cues, outputs.subtitles, target.code, info.duration_ms, options.subtitles)
    result = Result(
        path,
        target,
        translator.name,
        outputs,
        tuple(results),
        tuple(cues),
        tuple(placements),
        _usage(results),
        pieces,
        casting.as_heard(
            [w.speaker for w in pieces],
            [r.translation.voice if r.translation else None for r in results],
        ),
    )
    write_manifest(result, info, options, job)
    return result


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


def _original_language(info: MediaInfo, job: Job) -> str:
    a = info.audio
    if a is not None and a.language:
        return a.language
    if job.source:
        with contextlib.suppress(ConfigError):
            return resolve(job.source).iso639_2
    return "und"
