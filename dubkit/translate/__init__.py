"""Translate every utterance of a run: cached, concurrent, split when too long.

:func:`translate_all` looks each utterance up in the :class:`TranslationCache` first (a
cached answer costs no request), runs at most ``concurrency`` requests at once, and
stores each success the moment it arrives, so an interrupted run loses nothing it
already paid for.

Splitting: when the service truncates a translation (:class:`TruncatedError`) or the
utterance is too large to send (:class:`TooLargeError`), the utterance is cut at the
quietest 20 ms frame of its middle half and both halves are translated (recursively, up
to ``max_split_depth`` times). **The result list then holds two (or more) results in
place of that utterance**, each carrying its own shorter ``utterance``; results stay in
timeline order. An utterance that still fails after all retries yields a result with
``error`` set and does not stop the others; :class:`AuthError` and :class:`ConfigError`
abort the whole run.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import queue
import threading
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypeVar

import numpy as np

from dubkit.errors import AuthError, ConfigError, ServiceError, TooLargeError, TruncatedError
from dubkit.translate.cache import TranslationCache
from dubkit.translate.clips import ClipRef, ClipStore
from dubkit.translate.pacing import attempt_scope
from dubkit.translate.protocol import Job, Translator
from dubkit.types import VAD_RATE, Translation, Utterance

log = logging.getLogger(__name__)

#: Called as ``on_progress(done, total)`` each time an input utterance is finished.
ProgressFn = Callable[[int, int], None]
ResultFn = Callable[[int, list["UtteranceResult"]], None]
#: Gives a short video clip of an utterance, sent instead of its audio (``--visual``).
VideoSource = Callable[[Utterance], bytes]

SPLIT_FRAME_MS = 20

T = TypeVar("T")

#: A streamed run (:func:`translate_in_order`) starts a request only while it is among the
#: next this-many-times ``concurrency`` results, counting from the one its consumer waits
#: for (that one included). Where the answers come faster than the consumer takes them (a
#: mix and an encoder that are CPU-bound), parsing answers nobody needs yet would take the
#: CPU, and the main process's interpreter, that the mix needs now; where the answers are
#: slower (latency, a quota), the window never closes: ``concurrency`` requests are in
#: flight as before.
AHEAD_PER_REQUEST = 2
#: Requests in flight at once unless the caller says otherwise.
DEFAULT_CONCURRENCY = 4


class AudioSource(Protocol):
    """Gives the int16 mono 16 kHz samples of ``[start_ms, end_ms)``."""

    def read(self, start_ms: int, end_ms: int) -> np.ndarray: ...


@dataclass(frozen=True, slots=True, eq=False)
class ArrayAudio:
    """An :class:`AudioSource` over an int16 mono array already in memory."""

    samples: np.ndarray
    rate: int = VAD_RATE

    def __post_init__(self) -> None:
        if self.samples.ndim != 1 or self.samples.dtype != np.int16:
            raise ValueError(
                f"ArrayAudio needs 1-D int16 samples, got {self.samples.dtype} "
                f"with shape {self.samples.shape}"
            )

    def read(self, start_ms: int, end_ms: int) -> np.ndarray:
        return self.samples[start_ms * self.rate // 1000 : end_ms * self.rate // 1000]


@dataclass(frozen=True, slots=True)
class UtteranceResult:
    """What became of one utterance (or of one piece of a split utterance)."""

    utterance: Utterance
    translation: Translation | None
    error: str | None = None
    cached: bool = False
    attempts: int = 0
    splits: int = field(default=0)  # how many times the original utterance was halved
    #: Where the speech went when the run spilled it to a clip store (then
    #: ``translation.audio`` is empty); None otherwise.
    clip: ClipRef | None = None
    #: The text is the user's (a redo's edit), not the engine's; the speech is the engine's.
    edited: bool = False
    #: The voice asked for instead of its speaker's (a redo's edit); None: its speaker's.
    voice: str | None = None

    @property
    def ok(self) -> bool:
        return self.translation is not None


def quietest_split(pcm: np.ndarray, *, rate: int = VAD_RATE, frame_ms: int = SPLIT_FRAME_MS) -> int:
    """Offset in ms (from the start of ``pcm``) of the quietest frame's centre in the middle half.

    The span is cut there; both sides are at least a quarter of it (less half a frame).
    Ties go to the frame nearest the middle.
    """
    frame = rate * frame_ms // 1000
    n_frames = len(pcm) // frame
    total_ms = len(pcm) * 1000 // rate
    if n_frames < 4:
        return total_ms // 2
    frames = pcm[: n_frames * frame].astype(np.float64).reshape(n_frames, frame)
    energy = (frames * frames).sum(axis=1)
    lo, hi = n_frames // 4, max(n_frames // 4 + 1, (3 * n_frames + 3) // 4)
    middle = (n_frames - 1) / 2
    best = min(range(lo, hi), key=lambda i: (energy[i], abs(i - middle)))
    return best * frame_ms + frame_ms // 2


class _Window:
    """Which requests may start: those numbered below :attr:`end`, which only grows. Made
    and used in the run's event loop (:meth:`open_to` from another thread goes through
    ``call_soon_threadsafe``)."""

    def __init__(self, end: int) -> None:
        self.end = end
        self._waiting: list[tuple[int, asyncio.Future[None]]] = []

    def open_to(self, end: int) -> None:
        if end <= self.end:
            return
        self.end = end
        still = []
        for i, fut in self._waiting:
            if i < end:
                if not fut.done():
                    fut.set_result(None)
            else:
                still.append((i, fut))
        self._waiting = still

    async def reached(self, i: int) -> None:
        if i < self.end:
            return
        fut = asyncio.get_running_loop().create_future()
        self._waiting.append((i, fut))
        await fut


class _Run:
    def __init__(
        self,
        translator: Translator,
        audio: AudioSource,
        job: Job,
        *,
        concurrency: int,
        cache: TranslationCache | None,
        max_split_depth: int,
        min_split_ms: int,
        video: VideoSource | None = None,
        store: ClipStore | None = None,
    ) -> None:
        self.translator = translator
        self.video = video
        self.store = store
        self.audio = audio
        self.job = job
        self.cache = cache
        self.identity = translator.identity()
        self.semaphore = asyncio.Semaphore(concurrency)
        self.max_split_depth = max_split_depth
        self.min_split_ms = min_split_ms
        self.fatal: AuthError | ConfigError | None = None  # set once: no new request after it

    async def one(
        self, utt: Utterance, depth: int = 0, job: Job | None = None
    ) -> list[UtteranceResult]:
        job = job or self.job
        attempts = [0]
        try:
            # The audio is read inside the semaphore, so at most ``concurrency``
            # utterances' samples are held at once, whatever the media's length.
            async with self.semaphore:
                pcm = self.audio.read(utt.start_ms, utt.end_ms)
                video = await asyncio.to_thread(self.video, utt) if self.video else None
                key = (
                    self.cache.key(pcm, job, self.identity, video=video)
                    if self.cache
                    else None
                )
                if self.cache is not None and key is not None:
                    hit = self.cache.get(key)
                    if hit is not None:
                        hit, clip = self._spill(hit)
                        return [UtteranceResult(utt, hit, cached=True, splits=depth, clip=clip)]
                if self.fatal is not None:
                    raise self.fatal
                with attempt_scope() as attempts:
                    translation = await self.translator.translate(pcm, job, video=video)
        except (AuthError, ConfigError) as e:
            self.fatal = self.fatal or e
            raise
        except (TruncatedError, TooLargeError) as e:
            if depth < self.max_split_depth and utt.duration_ms >= 2 * self.min_split_ms:
                log.info("[%d, %d) ms: %s; splitting it", utt.start_ms, utt.end_ms, e)
                return await self._split(utt, pcm, depth, job)
            return [self._failed(utt, e, attempts[0], depth)]
        except ServiceError as e:
            return [self._failed(utt, e, attempts[0], depth)]
        if self.cache is not None and key is not None:
            self.cache.put(key, translation)
        translation, clip = self._spill(translation)
        return [
            UtteranceResult(utt, translation, attempts=max(1, attempts[0]), splits=depth, clip=clip)
        ]

    def _spill(self, t: Translation) -> tuple[Translation, ClipRef | None]:
        """Move the speech to the clip store, if there is one, keeping the text in memory."""
        if self.store is None or not t.audio:
            return t, None
        return replace(t, audio=b""), self.store.put(t.audio, t.sample_rate)

    async def _split(
        self, utt: Utterance, pcm: np.ndarray, depth: int, job: Job
    ) -> list[UtteranceResult]:
        offset = quietest_split(pcm)
        cut = min(max(utt.start_ms + offset, utt.start_ms + 1), utt.end_ms - 1)
        halves = await asyncio.gather(
            self.one(Utterance(utt.start_ms, cut), depth + 1, job),
            self.one(Utterance(cut, utt.end_ms), depth + 1, job),
        )
        return [*halves[0], *halves[1]]

    @staticmethod
    def _failed(utt: Utterance, e: ServiceError, attempts: int, depth: int) -> UtteranceResult:
        log.warning("[%d, %d) ms failed: %s", utt.start_ms, utt.end_ms, e)
        return UtteranceResult(utt, None, error=str(e), attempts=attempts, splits=depth)


async def translate_all(
    translator: Translator,
    audio: AudioSource,
    utterances: Sequence[Utterance],
    job: Job,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    cache: TranslationCache | None = None,
    on_progress: ProgressFn | None = None,
    max_split_depth: int = 3,
    min_split_ms: int = 1000,
    video: VideoSource | None = None,
    store: ClipStore | None = None,
    jobs: Sequence[Job] | None = None,
    on_result: ResultFn | None = None,
    source: AsyncIterator[tuple[Utterance, Job]] | None = None,
    window: _Window | None = None,
) -> list[UtteranceResult]:
    """Translate ``utterances`` (see the module doc); results in timeline order.

    ``jobs``, when given, holds each utterance's whole job instead of ``job``: its voice
    (each request, its cache key and the halves of a split use it) and its language (one
    run's utterances into several languages: see :func:`translate_languages`).
    ``on_result(i, results)`` is called as soon as utterance ``i``'s results are known
    (in completion order, not timeline order). ``source``, when given, replaces
    ``utterances`` and ``jobs``: each utterance and its job as they become known (each
    request starts as soon as its item comes). ``window``, when given, holds back the
    request of item ``i`` until ``i`` is in it (see :data:`AHEAD_PER_REQUEST`).

    A split utterance contributes several results; an utterance shorter than
    ``2 * min_split_ms`` is never split. With ``video``, each request carries that
    utterance's clip (and the cache key its hash). With ``store``, each answer's speech
    is written there and the result keeps only a :class:`ClipRef` to it. Raises
    :class:`AuthError`/:class:`ConfigError` (after cancelling the requests in flight)
    when the run cannot succeed at all.
    """
    if concurrency < 1:
        raise ConfigError(f"concurrency must be at least 1, got {concurrency}")
    jobs = [job] * len(utterances) if jobs is None else jobs
    if source is None and len(jobs) != len(utterances):
        raise ValueError(f"{len(jobs)} jobs for {len(utterances)} utterances")
    run = _Run(
        translator, audio, job, concurrency=concurrency, cache=cache,
        max_split_depth=max_split_depth, min_split_ms=min_split_ms, video=video, store=store,
    )  # fmt: skip
    items = source if source is not None else _listed(list(zip(utterances, jobs, strict=True)))
    return [r for rs in await _as_fed(run, items, on_result, on_progress, window) for r in rs]


async def _listed(items: Sequence[tuple[Utterance, Job]]) -> AsyncIterator[tuple[Utterance, Job]]:
    for item in items:
        yield item


async def _pumped(items: Iterator[T]) -> AsyncIterator[T]:
    """``items`` (a blocking iterator, such as utterances labelled as the segmentation
    finds them) read on a thread of its own, as this loop's async iterator. The thread is
    not waited for: a cancelled run leaves it blocked until its producer ends."""
    loop = asyncio.get_running_loop()
    got: asyncio.Queue[tuple[T] | BaseException | None] = asyncio.Queue()

    def put(x: tuple[T] | BaseException | None) -> bool:
        try:
            loop.call_soon_threadsafe(got.put_nowait, x)
        except RuntimeError:  # the loop has ended: nobody reads any more
            return False
        return True

    def pump() -> None:
        try:
            for item in items:
                if not put((item,)):
                    return
        except BaseException as e:  # handed to the loop
            put(e)
        else:
            put(None)

    threading.Thread(target=pump, name="dubkit-pump", daemon=True).start()
    while (x := await got.get()) is not None:
        if isinstance(x, BaseException):
            raise x
        yield x[0]


async def _as_fed(
    run: _Run,
    items: AsyncIterator[tuple[Utterance, Job]],
    on_result: ResultFn | None,
    on_progress: ProgressFn | None,
    window: _Window | None = None,
) -> list[list[UtteranceResult]]:
    """Each item's results, in order: its request started as soon as it comes; the first
    error (the source's, or a request's fatal one) raised at once, everything else then
    cancelled and awaited."""
    tasks: list[asyncio.Future[list[UtteranceResult]]] = []
    failed: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()
    done = 0

    async def task(i: int, utt: Utterance, job: Job) -> list[UtteranceResult]:
        nonlocal done
        try:
            if window is not None:
                await window.reached(i)
            results = await run.one(utt, 0, job)
        except Exception as e:
            if not failed.done():
                failed.set_result(e)
            raise
        if on_result is not None:
            on_result(i, results)
        done += 1
        if on_progress is not None:
            on_progress(done, len(tasks))
        return results

    async def feed() -> None:
        async for utt, job in items:
            tasks.append(asyncio.ensure_future(task(len(tasks), utt, job)))

    feeder = asyncio.ensure_future(feed())
    first: list[asyncio.Future[Any]] = [feeder, failed]
    try:
        await asyncio.wait(first, return_when=asyncio.FIRST_COMPLETED)
        if failed.done():
            raise failed.result()
        feeder.result()  # the source's own error, if any
        return await _all_or_first_error(tasks)
    finally:
        for t in [*first[:1], *tasks]:
            t.cancel()
        await asyncio.gather(feeder, *tasks, return_exceptions=True)


async def _all_or_first_error(tasks: Sequence[asyncio.Future[T]]) -> list[T]:
    """Every task's result, in order; the first error raised as soon as it happens, the
    other tasks then cancelled (and awaited: nothing is left running)."""
    if not tasks:
        return []
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for t in tasks:
            exc = t.exception() if t.done() and not t.cancelled() else None
            if exc is not None:
                raise exc
        return [t.result() for t in tasks]
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def translate_in_order(
    translator: Translator,
    audio: AudioSource,
    utterances: Sequence[Utterance],
    job: Job,
    *,
    items: Iterator[tuple[Utterance, Job]] | None = None,
    **options: Any,
) -> Generator[list[UtteranceResult], None, None]:
    """:func:`translate_all` from synchronous code, streamed: each utterance's results in
    timeline order, as soon as they and every earlier utterance's are known, while later
    requests are still in flight.

    ``items``, when given, replaces ``utterances``: each utterance and its job, as a
    blocking iterator read on a thread of its own (the utterances of a segmentation still
    going on); each request starts as soon as its item comes.

    The requests run in an event loop on a worker thread; the translator is closed
    (``aclose``) when the loop ends. Closing the iterator early (an error or Ctrl-C in the
    consumer) cancels the requests in flight and waits for them. A fatal error
    (:class:`AuthError`, :class:`ConfigError`, or the ``items``' own) is raised here, in
    the consumer.
    """
    stream = _in_order(translator, audio, utterances, job, items, options)
    next(stream)  # the requests start now, not when the consumer first asks for a result
    return stream


def _in_order(
    translator: Translator,
    audio: AudioSource,
    utterances: Sequence[Utterance],
    job: Job,
    items: Iterator[tuple[Utterance, Job]] | None,
    options: dict[str, Any],
) -> Generator[list[UtteranceResult], None, None]:
    """:func:`translate_in_order`'s stream; its first item is an empty marker, given once
    the worker has started (so that closing the stream always cancels it)."""
    events: queue.Queue[tuple[int, list[UtteranceResult]] | BaseException | None] = queue.Queue()
    started = threading.Event()
    running: list[tuple[asyncio.AbstractEventLoop, asyncio.Task[Any], _Window]] = []
    ahead = AHEAD_PER_REQUEST * max(1, int(options.get("concurrency", DEFAULT_CONCURRENCY)))

    async def main() -> None:
        task = asyncio.current_task()
        assert task is not None
        window = _Window(ahead)
        running.append((asyncio.get_running_loop(), task, window))
        started.set()
        try:
            await translate_all(
                translator, audio, utterances, job,
                on_result=lambda i, rs: events.put((i, rs)),
                source=_pumped(items) if items is not None else None, window=window,
                **options,
            )  # fmt: skip
        finally:
            await translator.aclose()

    def work() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # handed to the consumer (CancelledError after a cancel)
            started.set()
            events.put(exc)
        else:
            events.put(None)

    worker = threading.Thread(target=work, name="dubkit-translate", daemon=True)
    worker.start()
    started.wait()
    ready: dict[int, list[UtteranceResult]] = {}
    try:
        yield []  # the marker: started
        i = 0
        while True:
            if i in ready:
                yield ready.pop(i)
                i += 1
                if running:  # the consumer now waits for result i
                    loop, _, window = running[0]
                    with contextlib.suppress(RuntimeError):  # the loop has ended
                        loop.call_soon_threadsafe(window.open_to, i + ahead)
                continue
            event = events.get()
            if isinstance(event, BaseException):
                raise event
            if event is None:  # every request done, the translator closed
                break
            ready[event[0]] = event[1]
        if ready:
            raise RuntimeError("translation ended before every utterance was done")
    finally:
        if worker.is_alive() and running:  # stopped early: cancel the requests in flight
            loop, task, _ = running[0]
            with contextlib.suppress(RuntimeError):  # the loop closed in the meantime
                loop.call_soon_threadsafe(task.cancel)
        worker.join()


def translate_all_sync(
    translator: Translator,
    audio: AudioSource,
    utterances: Sequence[Utterance],
    job: Job,
    **options: Any,
) -> list[UtteranceResult]:
    """:func:`translate_all`, with the same keyword options, from synchronous code.

    It runs in a fresh event loop, and the translator is closed (``aclose``) when the
    loop ends, so no connection outlives it; translators reopen what they need on
    their next use.
    """

    return [
        r for rs in translate_in_order(translator, audio, utterances, job, **options) for r in rs
    ]


Stream = Iterator[list[UtteranceResult]]


def translate_languages(
    translator: Translator,
    audio: AudioSource,
    utterances: Sequence[Utterance],
    jobs: Sequence[Sequence[Job | None]],
    *,
    items: Iterator[tuple[Utterance, Sequence[Job]]] | None = None,
    **options: Any,
) -> tuple[Generator[list[UtteranceResult], None, None], list[Stream]]:
    """One run's utterances into several languages: ``jobs[k][i]`` is utterance ``i``'s job
    in language ``k``; None: no request (a redo's utterance skipped in that language alone),
    and ``[]`` in its place in that language's stream. Returns the shared stream (close it
    to cancel every request in flight) and one stream per language, each like
    :func:`translate_in_order`'s.

    ``items``, when given, replaces ``utterances`` and ``jobs``: each utterance with its
    job in every language, as they become known (see :func:`translate_in_order`); ``jobs``
    then only says how many languages there are.

    Every language's requests go through one event loop, one ``concurrency`` limit, one
    cache and the translator's one rate limiter, in the order utterance 0 in every
    language, then utterance 1, ...: the languages advance together, so a consumer that
    takes them in step (one mix per language, all fed the same decoded original) waits
    for none of them long and buffers little.
    """
    k = len(jobs)
    if items is not None:  # read on a thread as they come
        if not jobs:
            raise ValueError("jobs must name at least one language")
        flat = ((u, j) for u, js in items for j in _exactly(js, k))
        shared = translate_in_order(translator, audio, (), Job(""), items=flat, **options)
        return shared, deal(shared, k)
    n = len(utterances)
    if not jobs or any(len(js) != n for js in jobs):
        raise ValueError(f"jobs must give {n} jobs per language, for at least one language")
    slots = [(utterances[i], jobs[lang][i]) for i in range(n) for lang in range(k)]
    sent = [(u, j) for u, j in slots if j is not None]
    shared = translate_in_order(
        translator, audio, [u for u, _ in sent], sent[0][1] if sent else Job(""),
        jobs=[j for _, j in sent], **options,
    )  # fmt: skip
    if len(sent) < len(slots):
        shared = _with_gaps(shared, [j is not None for _, j in slots])
    return shared, deal(shared, k)


def _with_gaps(
    stream: Generator[list[UtteranceResult], None, None], sent: Sequence[bool]
) -> Generator[list[UtteranceResult], None, None]:
    """``stream`` (the results of the slots ``sent`` marks) with ``[]`` for the others;
    closing it closes ``stream`` (started here, so that a close before the first result
    still cancels the requests)."""

    def gapped() -> Generator[list[UtteranceResult], None, None]:
        try:
            yield []  # the marker: started
            for was_sent in sent:
                if not was_sent:
                    yield []
                    continue
                results = next(stream, None)
                if results is None:
                    return
                yield results
        finally:
            stream.close()

    out = gapped()
    next(out)
    return out


def _exactly(jobs: Sequence[Job], k: int) -> Sequence[Job]:
    if len(jobs) != k:
        raise ValueError(f"{len(jobs)} jobs for an utterance of a run into {k} languages")
    return jobs


def deal(items: Iterator[T], k: int) -> list[Iterator[T]]:
    """Split ``items`` (rounds of ``k``: item ``i * k + j`` is lane ``j``'s ``i``-th) into
    ``k`` lanes, each in order. A lane pulls from ``items`` only when it has nothing ready;
    what it pulls for the other lanes waits in theirs (little, when the lanes are taken in
    step)."""
    ready: list[collections.deque[T]] = [collections.deque() for _ in range(k)]
    taken = 0

    def lane(j: int) -> Iterator[T]:
        nonlocal taken
        while True:
            while not ready[j]:
                item = next(items, None)
                if item is None:
                    return
                ready[taken % k].append(item)
                taken += 1
            yield ready[j].popleft()

    return [lane(j) for j in range(k)]
