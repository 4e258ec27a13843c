"""The child of :class:`dubkit.speakers.process.SpeakerProcess`."""

import parselmouth  # noqa: F401  (loaded now, while the parent still segments)
import scipy.cluster.hierarchy
import scipy.fft  # noqa: F401

from dubkit.speakers.embed import SpeakerEncoder  # noqa: F401
from dubkit.speakers.process import child

child()
