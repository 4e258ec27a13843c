"""A voice's pitch as dubkit reads it everywhere: Praat's autocorrelation method
(parselmouth), 60-400 Hz.

Used by the speaker analysis (:mod:`dubkit.speakers`: the gender, and an octave's distance
between two voices) and by the dialogue separation (:mod:`dubkit.mix.spleeter`: the harmonics
of the vocals the model finds). Calls are serialised by a lock: the separation's child runs two
chunks side by side in threads, and Praat's C code is not documented as safe to run twice at
once (its share of a chunk's work is a few percent).
"""

from __future__ import annotations

import threading

import numpy as np
import numpy.typing as npt

#: The range of speaking voices' F0: men from about 85 Hz (creak lower), women to about 255
#: Hz (raised voices higher).
FLOOR_HZ = 60.0
CEILING_HZ = 400.0

_PRAAT = threading.Lock()


def praat_pitch(
    x: npt.NDArray[np.float64], rate: float, time_step: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]] | None:
    """F0 in Hz (0 where unvoiced) every ``time_step`` seconds of ``x`` (mono at ``rate``),
    and the time of each of those frames in seconds; None where ``x`` is too short for
    Praat's window (three periods of the floor)."""
    import parselmouth

    if x.size * FLOOR_HZ < 3.5 * rate:
        return None
    with _PRAAT:
        pitch = parselmouth.Sound(x, sampling_frequency=rate).to_pitch_ac(
            time_step=time_step, pitch_floor=FLOOR_HZ, pitch_ceiling=CEILING_HZ
        )
    f0 = np.asarray(pitch.selected_array["frequency"], dtype=np.float64)
    return f0, np.asarray(pitch.xs(), dtype=np.float64)
