"""The dub (:func:`dub`): speakers cast, clips fitted as they arrive, mixed over the
original, encoded and muxed with the video copied.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import itertools
import logging
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import overload

import numpy as np

from dubkit import media, mux
from dubkit.languages import Language, resolve
from dubkit.media.scratch import FileAudio
from dubkit.mix import NO_MODEL, MixOptions, PlacedClip, mix, prepared, separation_available
from dubkit.mix.loudness import running_gain
from dubkit.mix.prepared import Prepared
from dubkit.pipeline.given import Given
from dubkit.pipeline.growing import Growing
from dubkit.pipeline.heard import AsHeard
from dubkit.pipeline.options import Options, Outputs, Progress, Result
from dubkit.pipeline.outputs import checked_outputs, shares_media
from dubkit.pipeline.prepare import analyze, prepare, raw_path, start_translations
from dubkit.pipeline.subtitling import LiveCues, cues_of, write_subtitles
from dubkit.pipeline.timeline import Entry, Fitted, place_in_order
from dubkit.review.envelope import EnvelopeBuilder
from dubkit.speakers import SpeakerInfo, Speakers, find_speakers
from dubkit.speakers.process import SpeakerProcess
from dubkit.speakers.voices import Casting, LiveCasting, VoiceChoice, cast, check_choice
from dubkit.translate import Stream
from dubkit.translate.clips import ClipStore
from dubkit.translate.protocol import Job, Translator
from dubkit.types import VAD_RATE, Cue, MediaInfo, StreamInfo, Utterance

log = logging.getLogger(__name__)


@overload
def dub(
    input: str | Path,
    options: Options,
    translator: Translator,
    *,
    targets: None = None,
    progress: Progress | None = None,
    given: Given | None = None,
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
    given: Given | None = None,
) -> tuple[Result, ...]: ...
def dub(
    input: str | Path,
    options: Options,
    translator: Translator,
    *,
    targets: Sequence[str] | None = None,
    subtitle_only: Sequence[str] = (),
    progress: Progress | None = None,
    given: Given | None = None,
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
    options = _usable_mix(path, options)
    info, track, planned = prepare(
        path, options, translator, targets, dubbing=True, subtitle_only=subtitle_only
    )
    lanes, into = _lanes(path, info, track, planned, len(subtitle_only), options, translator.name)
    src = media.AudioSource(path, track.index, media.audio_format(info, track))
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dubkit-")))
        speakers = _start_speakers(stack)  # starts while we segment
        ahead = _start_separation(stack, options, src, work)  # so does this
        wave = EnvelopeBuilder(info.duration_ms, VAD_RATE)
        store = stack.enter_context(contextlib.closing(ClipStore(work / "clips.s16")))
        reach = _separate_ahead(ahead, src, info, options)
        if speakers is not None and given is None and options.speakers == "heard":
            heard = AsHeard(
                stack, path, options, work, speakers, progress=progress,
                duration_ms=info.duration_ms, envelope=wave, stream=track.index, reach=reach,
            )  # fmt: skip
            castings = [lane.live_casting(options) for lane in lanes]
            audio = FileAudio(raw_path(work))
            stream, results = start_translations(
                path, translator, audio, [], [[lane.job] for lane in lanes], options, progress,
                store, items=heard.items([lane.job for lane in lanes], castings),
            )  # fmt: skip
            stack.enter_context(contextlib.closing(stream))
            run = _Shared(
                info, src, audio, heard.utterances, heard.who, store, options, work, ahead,
                as_heard=True,
            )  # fmt: skip
            timelines, cues = _render(run, lanes, into, results, progress)
            speakers.finish(source=path)  # the child's own failure, if it had one
            lanes = [
                dataclasses.replace(lane, casting=c.casting()) if c is not None else lane
                for lane, c in zip(lanes, castings, strict=True)
            ]
        else:
            if speakers is not None:
                speakers.begin(raw_path(work))
            audio, utterances = analyze(
                path, options.segment, work, progress, info.duration_ms, wave, track.index,
                given.utterances if given is not None else None,
                speakers.feed if speakers is not None else None,
            )  # fmt: skip
            if reach is not None:  # the dialogue separated while the requests run
                reach.heard(sorted(u.start_ms for u in utterances))
                reach.end()
            measured = functools.partial(progress, "speakers") if progress else None
            found = (
                speakers.finish(measured, path)
                if speakers is not None
                else find_speakers(audio, utterances, measured)
            )
            lanes, jobs = _cast(lanes, found, options, given)
            stream, results = start_translations(
                path, translator, audio, utterances, jobs, options, progress, store
            )
            stack.enter_context(contextlib.closing(stream))
            if given is not None:
                results = [given.edit(r, k) for k, r in enumerate(results)]
            run = _Shared(
                info, src, audio, Growing.of(utterances), Growing.of(found.utterances), store,
                options, work, ahead,
            )  # fmt: skip
            timelines, cues = _render(run, lanes, into, results, progress)
    out = [
        lane.result(path, translator.name, timeline, lane_cues, info, options)
        for lane, timeline, lane_cues in zip(lanes, timelines, cues, strict=True)
    ]
    skipped = [given.skipped_in(k) for k in range(len(out))] if given is not None else []
    if skipped:
        out = [
            dataclasses.replace(r, skipped=tuple(g.utterance for g in mine))
            for r, mine in zip(out, skipped, strict=True)
        ]
    datas = write_manifests(
        out, info, options, [lane.job for lane in lanes], envelope=wave.finish(),
        skipped=skipped,
    )  # fmt: skip
    for r, data in zip(out, datas, strict=True):
        if r.outputs.review is not None:
            write_review(r.outputs.review, data)
    return tuple(out) if targets is not None or subtitle_only else out[0]


def _cast(
    lanes: Sequence[Lane], found: Speakers, options: Options, given: Given | None
) -> tuple[list[Lane], list[list[Job | None]]]:
    """Each lane cast (the given speaker labels kept; a redo's voices per language, where
    it gives them) and its request per utterance (in the given voices, where there are
    some; none where that language skips it)."""
    if given is not None:
        found = given.relabel(found)

    def choice(k: int) -> VoiceChoice:
        mine = given.voices_of(k) if given is not None else None
        return VoiceChoice(options.voice, options.voices if mine is None else mine)

    cast = [lane.cast(found, choice(k)) for k, lane in enumerate(lanes)]
    plain = [lane.jobs(found.utterances) for lane in cast]
    if given is None:
        return cast, [list(j) for j in plain]
    pairs = enumerate(zip(plain, cast, strict=True))
    return cast, [given.jobs(j, lane.dubbed, k) for k, (j, lane) in pairs]


def _start_speakers(stack: contextlib.ExitStack) -> SpeakerProcess | None:
    """The speaker analysis's child process, started now so that its imports overlap the
    segmentation; None where no interpreter can be started (an embedded Python): the
    speakers are then measured in this process."""
    try:
        return stack.enter_context(SpeakerProcess())
    except OSError:
        return None


def _start_separation(
    stack: contextlib.ExitStack, options: Options, src: media.AudioSource, work: Path
) -> Prepared | None:
    """The child that separates the dialogue ahead of the mix (``--mix separate`` on mono or
    stereo; a surround layout drops its centre channel), started now so that its weights
    load while we segment; None otherwise, or where no interpreter can be started (the mix
    then separates in step)."""
    if options.mix.mode != "separate" or not np.all(src.layout.speech_gains() == 1.0):
        return None
    try:
        return stack.enter_context(Prepared(work))
    except OSError:
        return None


def _separate_ahead(
    ahead: Prepared | None, src: media.AudioSource, info: MediaInfo, options: Options
) -> prepared.ClipReach | None:
    """Start ``ahead`` on the original; the :class:`ClipReach` to give it the utterances as
    they are found."""
    if ahead is None:
        return None
    rate = src.fmt.rate
    total = round(info.duration_ms * rate / 1000)
    ahead.start(prepared.media_source(src, total))
    ramp = options.mix.ramp_ms * rate // 1000
    return prepared.ClipReach(ahead, prepared.Reach(total, rate, ramp, options.fit.borrow_ms))


@dataclasses.dataclass(frozen=True, slots=True)
class Lane:
    """One language of a dub, carried through it: what it asks for, where it goes, and
    (once the speakers are known) who speaks in which voice. A lane that is not
    ``dubbed`` is translated as text only (subtitles)."""

    target: Language
    job: Job
    outputs: Outputs
    plan: mux.MuxPlan
    dubbed: bool
    casting: Casting | None = None

    def cast(self, speakers: Speakers, choice: VoiceChoice) -> Lane:
        """This lane with a voice for each of ``speakers`` (when it is dubbed)."""
        if not self.dubbed:
            return self
        casting = cast(speakers, self.target, check_choice(choice, self.target))
        return dataclasses.replace(self, casting=casting)

    def live_casting(self, options: Options) -> LiveCasting | None:
        """The casting of speakers met one at a time, when this lane is dubbed."""
        if not self.dubbed:
            return None
        choice = check_choice(VoiceChoice(options.voice, options.voices), self.target)
        return LiveCasting(self.target, choice)

    def jobs(self, who: Sequence[SpeakerInfo]) -> list[Job]:
        """One request per utterance of ``who``: in its speaker's voice, when dubbed."""
        if self.casting is None:
            return [self.job] * len(who)
        casting = self.casting
        return [dataclasses.replace(self.job, voice=casting.voice_of(w.speaker)) for w in who]

    def result(
        self,
        path: Path,
        engine: str,
        timeline: Sequence[Entry],
        cues: Sequence[Cue],
        info: MediaInfo,
        options: Options,
    ) -> Result:
        """The lane's :class:`Result`, its sidecars written; the casting as heard (the
        voices the engine used where it had to use another)."""
        write_subtitles(
            cues, self.outputs.subtitles, self.target.code, info.duration_ms, options.subtitles
        )
        casting = self.casting
        if casting is not None:
            heard = [e.translation.voice if e.translation else None for e in timeline]
            casting = casting.as_heard([e.speaker.speaker for e in timeline if e.speaker], heard)
        return Result(
            path, self.target, engine, self.outputs, tuple(timeline), tuple(cues), casting
        )


def _lanes(
    path: Path,
    info: MediaInfo,
    track: StreamInfo,
    planned: Sequence[tuple[Language, Job]],
    text_only: int,
    options: Options,
    engine: str,
) -> tuple[list[Lane], list[Path]]:
    """Every language's lane, its outputs checked before any work (the first
    ``len(planned) - text_only`` are dubbed), and the media files the dubs go into: one
    per dubbed language, or one for them all (see :func:`shares_media`)."""
    langs = [lang.code for lang, _ in planned]
    dubbed = len(planned) - text_only
    shared = shares_media(path, info, options, langs)
    outputs = checked_outputs(
        path, langs, options, with_media=True, shared=shared, text_only=text_only
    )
    fmt = media.audio_format(info, track)
    source = planned[0][1].source
    original = resolve(source).iso639_2 if source else "und"
    lanes = [
        Lane(target, job, outs, mux.MuxPlan(
            fmt.rate, fmt.channels, target.iso639_2,
            f"{target.name} {'dub' if k < dubbed else 'subtitles'} (dubkit {engine})",
            original_language=original, subtitle_language=target.iso639_2,
            keep_original=options.keep_original, track=track.index, layout=fmt.layout,
            bitrate_kbps=options.audio_bitrate, source_bit_rate=track.bit_rate,
            faststart=options.faststart,
        ), k < dubbed)
        for k, ((target, job), outs) in enumerate(zip(planned, outputs, strict=True))
    ]  # fmt: skip
    into = [o.media for o in outputs[: 1 if shared else dubbed] if o.media is not None]
    return lanes, into


@dataclasses.dataclass(frozen=True, slots=True)
class _Shared:
    """What every lane of one dub shares: the input as analysed (its speech at 16 kHz in
    ``audio``, its utterances and who says each), where the clips and the work go."""

    info: MediaInfo
    src: media.AudioSource
    audio: FileAudio
    utterances: Growing[Utterance]  # complete, or still growing (speakers as heard)
    who: Growing[SpeakerInfo]
    store: ClipStore
    options: Options
    work: Path
    ahead: Prepared | None = None  # the dialogue separated ahead of the mix
    as_heard: bool = False  # the utterances still growing while the dub runs


def _render(
    run: _Shared,
    lanes: Sequence[Lane],
    into: Sequence[Path],
    results: Sequence[Stream],
    progress: Progress | None,
) -> tuple[list[list[Entry]], list[list[Cue]]]:
    """Each lane's timeline and cues: the dubbed ones fitted, mixed and encoded as their
    translations arrive (into a video, in one pass with every lane's subtitles), the
    text-only ones as they come."""
    dubbed = [k for k, lane in enumerate(lanes) if lane.dubbed]
    info, options, work = run.info, run.options, run.work
    fitted = [_fitted(run, results[k]) for k in dubbed]
    video = info.has_video and mux.output_kind(into[0]) == "video"
    live = video and len(dubbed) == len(lanes)  # text-only lanes' cues come after the mix
    feeds = [
        _Feed(f, LiveCues(lanes[k].target.code, info.duration_ms, options.subtitles) if live
              else None)
        for f, k in zip(fitted, dubbed, strict=True)
    ]  # fmt: skip
    plans = [_joint_plan(lanes, None)] if live else [lanes[k].plan for k in dubbed]
    encoded = _mix_and_encode(
        feeds, run.src, options.mix, info, plans, into, work, progress, run.ahead
    )
    timelines = [f.timeline for f in feeds]
    timelines += [
        [Entry(r) for rs in results[k] for r in rs]
        for k, lane in enumerate(lanes)
        if not lane.dubbed
    ]
    cues = [
        cues_of(t, lane.target.code, info.duration_ms, options.subtitles)
        for lane, t in zip(lanes, timelines, strict=True)
    ]
    if encoded:  # a video with text-only lanes: mux the copied streams, the dubs and cues
        plan = _joint_plan(lanes, _subtitle_files(lanes, cues, info.duration_ms, options, work))
        mux.mux_file(info.path, info, plan, encoded, into[0])
    elif live and any(f.sent != c or not c for f, c in zip(feeds, cues, strict=True)):
        log.info("%s: the subtitle tracks are written again with the final cues", into[0])
        plan = _joint_plan(lanes, _subtitle_files(lanes, cues, info.duration_ms, options, work))
        mux.resubtitle(into[0], info, plan)
    return timelines, cues


class _Feed:
    """One dubbed language's fitted timeline, read as the mix reaches its clips; for a
    one-pass video mux (``cues``), read further ahead where needed, so that every cue that
    starts before the mix's position is settled and written before the audio there."""

    def __init__(self, fitted: Iterator[Fitted], cues: LiveCues | None) -> None:
        self._fitted, self._cues = fitted, cues
        self.timeline: list[Entry] = []
        self._clips: collections.deque[PlacedClip] = collections.deque()
        self._done = False

    def _pull(self) -> bool:
        f = next(self._fitted, None)
        if f is None:
            self._done = True
            return False
        self.timeline.append(f.entry)
        if f.placed is not None:
            self._clips.append(f.placed)
        return True

    def clips(self) -> Iterator[PlacedClip]:
        """The clips in timeline order, taken by the mix as it reaches them."""
        while self._clips or (not self._done and self._pull()):
            if self._clips:
                yield self._clips.popleft()

    def finish(self) -> None:
        """Read the rest (the failed or empty entries after the last clip)."""
        while not self._done:
            self._pull()

    def cues_before(self, ms: int) -> list[Cue]:
        """The cues to write before the mix passes ``ms``: settled, not written yet."""
        assert self._cues is not None
        while not self._done:
            start = self._cues.unsettled_from(self.timeline)
            if start is not None and start >= ms:
                break
            self._pull()
        return self._cues.settled(self.timeline, self._done)

    @property
    def live(self) -> bool:
        """Whether the cues go into a one-pass video mux."""
        return self._cues is not None

    @property
    def sent(self) -> list[Cue]:
        return self._cues.sent if self._cues is not None else []


def _joint_plan(lanes: Sequence[Lane], subtitles: Sequence[Path | None] | None) -> mux.MuxPlan:
    """One plan for every lane's track (with audio where it is dubbed), each with its
    ``subtitles`` file (None: a one-pass mux writes the cues itself)."""
    tracks = []
    for k, lane in enumerate(lanes):
        srt = subtitles[k] if subtitles is not None else None
        track = dataclasses.replace(lane.plan.dubs[0], subtitles=srt)
        tracks.append(dataclasses.replace(track, audio=lane.dubbed))
    first = tracks[0]
    return dataclasses.replace(lanes[0].plan, subtitles=first.subtitles, more=tuple(tracks[1:]))


def _subtitle_files(
    lanes: Sequence[Lane],
    cues: Sequence[Sequence[Cue]],
    duration_ms: int,
    options: Options,
    work: Path,
) -> list[Path | None]:
    """Each lane's cues as an SRT file in ``work`` (None: it has none)."""
    paths: list[Path | None] = []
    for lane, lane_cues in zip(lanes, cues, strict=True):
        lang = lane.target.code
        srt = work / f"subs.{lang}.srt"
        write_subtitles(lane_cues, [srt], lang, duration_ms, options.subtitles)
        paths.append(srt if lane_cues else None)
    return paths


def _fitted(run: _Shared, lane: Stream) -> Iterator[Fitted]:
    """One language's timeline, fitted as its translations arrive, each clip at the gain
    the dub's speech so far calls for (see :class:`~dubkit.mix.loudness.RunningGain`)."""
    mix, utterances = run.options.mix, run.utterances
    gain = (
        running_gain(run.audio, _speech_for_loudness(run), run.src, mix.loudness_ms)
        if mix.match_loudness
        else None
    )
    return place_in_order(
        lane, utterances, run.who, run.store, run.info.duration_ms, run.src.fmt.rate,
        run.options.fit, gain,
    )  # fmt: skip


def _speech_for_loudness(run: _Shared) -> list[Utterance]:
    """The utterances the original's speech level is measured over: with the whole file
    segmented first, all of them (a ``loudness_ms`` sample spread over the file); as heard,
    the longest run of first utterances within ``loudness_ms`` of speech (at least one),
    waiting only until the segmentation has found more than that, so the mix never waits for
    the whole file, and the level is the same whenever the segmentation gets there."""
    if not run.as_heard:
        return run.utterances.all()
    budget = run.options.mix.loudness_ms
    found = run.utterances.until(lambda us: sum(u.duration_ms for u in us) > budget)
    fit = sum(1 for ms in itertools.accumulate(u.duration_ms for u in found) if ms <= budget)
    return found[: max(fit, 1)]


def _usable_mix(path: Path, options: Options) -> Options:
    """``options``, with ``separate`` mode falling back to ``duck`` where its model is missing."""
    if options.mix.mode != "separate" or separation_available():
        return options
    log.warning("%s: %s; ducking the original instead", path, NO_MODEL)
    return dataclasses.replace(options, mix=dataclasses.replace(options.mix, mode="duck"))


def _mix_and_encode(
    feeds: Sequence[_Feed],
    src: media.AudioSource,
    options: MixOptions,
    info: MediaInfo,
    plans: Sequence[mux.MuxPlan],
    outputs: Sequence[Path],
    work: Path,
    progress: Progress | None,
    ahead: Prepared | None = None,
) -> list[Path]:
    """Mix each language's clips over the original as they arrive and encode each mix as it
    comes: the original is decoded once, and the languages' mixes advance in step over it.

    ``outputs``: one file per language, written whole (audio); or one video output, written
    whole in one pass, the cues included, when ``plans`` is one plan for every language
    (see :class:`_Feed`); else each language's dub is encoded alone into ``work`` and the
    paths are returned, to be muxed once the text-only languages' subtitles are known.
    """
    fmt, total = src.fmt, round(info.duration_ms * src.fmt.rate / 1000)
    originals = itertools.tee(src.blocks(), len(feeds)) if len(feeds) > 1 else [src.blocks()]
    mixes = [
        mix(o, fmt.rate, fmt.channels, f.clips(), total, options, 0.0, src.layout, ahead)
        for f, o in zip(feeds, originals, strict=True)
    ]
    first = outputs[0]
    encoded: list[Path] = []
    video = info.has_video and mux.output_kind(first) == "video"
    live = video and feeds[0].live
    if live:
        writers = [mux.Muxer(info.path, info, plans[0], first, live=True)]
    elif video:
        name = Path(mux.encoded_name(first.suffix))
        encoded = [work / f"{name.stem}.{k}{name.suffix}" for k in range(len(plans))]
        writers = [
            mux.Muxer(info.path, info, p, e, encode_for=first.suffix)
            for p, e in zip(plans, encoded, strict=True)
        ]
    else:
        writers = [mux.Muxer(info.path, info, p, o) for p, o in zip(plans, outputs, strict=True)]
    with contextlib.ExitStack() as stack:
        muxers = [stack.enter_context(w) for w in writers]
        blocks = [_counted(mixes[0], fmt.rate, info.duration_ms, progress), *mixes[1:]]
        lanes = list(enumerate(blocks))
        written = [0] * len(blocks)
        subtitled = live and mux.live_subtitles(plans[0], first.suffix) > 0
        while lanes:  # in step: the original's decoded blocks are held only briefly
            for k, lane_blocks in list(lanes):
                block = next(lane_blocks, None)
                if block is None:
                    lanes.remove((k, lane_blocks))
                    continue
                written[k] += block.shape[-1]
                muxer = muxers[0] if live else muxers[k]
                if subtitled:
                    for cue in feeds[k].cues_before(written[k] * 1000 // fmt.rate):
                        muxer.cue(k, cue)
                muxer.write(block, k if live else 0)
        for k, f in enumerate(feeds):
            f.finish()
            if subtitled:
                for cue in f.cues_before(info.duration_ms + 1):
                    muxers[0].cue(k, cue)
    return encoded


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
