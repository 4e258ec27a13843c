"""Torch checkpoints read without torch, with a restricted unpickler.

:func:`read` returns the object ``torch.save`` wrote, every tensor a numpy array. It reads
torch's zip format (torch >= 1.6: ``<name>/data.pkl`` and one ``<name>/data/<key>`` member per
storage) and its legacy format (the magic number, the protocol version, the system's byte order
and sizes, the object, the storage keys, then each storage as its length and raw elements).
Unpickling never imports or calls anything but the names its caller allows:

* always: ``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2`` (and the older
  ``_rebuild_tensor``), and the typed storages ``torch.FloatStorage``, ``DoubleStorage``,
  ``HalfStorage``, ``LongStorage``, ``IntStorage``;
* with ``numpy_arrays=True``: numpy's array rebuild names (``_reconstruct``, ``ndarray``,
  ``dtype``, and ``_codecs.encode`` for their bytes), for checkpoints that hold numpy arrays.

Anything else is refused with :class:`pickle.UnpicklingError`; a file that is not a
little-endian checkpoint of these, or whose storages are short, with :class:`ValueError`.
"""

from __future__ import annotations

import codecs
import io
import pickle
import struct
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

try:
    from numpy._core.multiarray import _reconstruct  # numpy >= 2
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]

#: The first two pickles of a legacy-format file: its magic number and protocol version.
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

_DTYPES: dict[str, np.dtype[Any]] = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
}


@dataclass(frozen=True, slots=True)
class _Storage:
    key: str
    dtype: np.dtype[Any]
    numel: int


@dataclass(frozen=True, slots=True)
class _Tensor:
    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _ints(v: Any) -> bool:
    return isinstance(v, (tuple, list)) and all(isinstance(n, int) and n >= 0 for n in v)


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any, *_: Any) -> _Tensor:
    """``torch._utils._rebuild_tensor(_v2)``: a tensor whose elements are read later."""
    shape_ok = _ints(size) and _ints(stride) and len(size) == len(stride)
    if not (isinstance(storage, _Storage) and _ints((offset,)) and shape_ok):
        raise pickle.UnpicklingError("a tensor that is not a view of one storage")
    return _Tensor(storage, offset, tuple(size), tuple(stride))


_TENSORS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
} | {("torch", name): dtype for name, dtype in _DTYPES.items()}

_NUMPY_ARRAYS: dict[tuple[str, str], Any] = _TENSORS | {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,
}


class _Unpickler(pickle.Unpickler):
    """Accepts only the globals in ``allowed``; storages become :class:`_Storage` references."""

    def __init__(self, f: IO[bytes], path: Path, allowed: Mapping[tuple[str, str], Any]) -> None:
        super().__init__(f)
        self._path = path
        self._allowed = allowed

    def find_class(self, module: str, name: str) -> Any:
        found = self._allowed.get((module, name))
        if found is None:
            raise pickle.UnpicklingError(f"refused to unpickle {module}.{name} in {self._path}")
        return found

    def persistent_load(self, pid: Any) -> _Storage:
        # legacy: ('storage', type, key, location, numel, view); zip: without the view
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r:.60} in {self._path}")
        if len(pid) == 6 and pid[5] is not None:
            raise pickle.UnpicklingError(f"storage views are not supported ({self._path})")
        dtype, key, numel = pid[1], pid[2], pid[4]
        if not isinstance(dtype, np.dtype):
            raise pickle.UnpicklingError(f"unexpected storage type {dtype!r:.60} in {self._path}")
        if not (isinstance(key, (str, int)) and _ints((numel,))):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r:.60} in {self._path}")
        return _Storage(str(key), dtype, numel)


def _map(obj: Any, f: Callable[[_Tensor], Any]) -> Any:
    """``obj`` with each tensor in its dicts, lists and tuples replaced by ``f(tensor)``."""
    if isinstance(obj, _Tensor):
        return f(obj)
    if isinstance(obj, dict):
        return type(obj)((k, _map(v, f)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_map(v, f) for v in obj)
    return obj


def _storages(obj: Any) -> dict[str, _Storage]:
    """The storages the tensors in ``obj`` are views of, by key."""
    found: dict[str, _Storage] = {}
    _map(obj, lambda t: found.setdefault(t.storage.key, t.storage))
    return found


def _array(t: _Tensor, raw: bytes) -> npt.NDArray[Any]:
    """A tensor's elements as a new array in native byte order."""
    s = t.storage
    flat = np.frombuffer(raw, dtype=s.dtype)
    if flat.size < s.numel:
        raise ValueError(f"storage {s.key} is truncated")
    last = t.offset + sum((n - 1) * step for n, step in zip(t.size, t.stride, strict=True))
    if all(t.size) and last >= s.numel:
        raise ValueError(f"a tensor reaches past the end of storage {s.key}")
    view = np.lib.stride_tricks.as_strided(
        flat[t.offset :], shape=t.size, strides=tuple(step * s.dtype.itemsize for step in t.stride)
    )
    return np.array(view, dtype=s.dtype.newbyteorder("="))


def _read_zip(z: zipfile.ZipFile, path: Path, allowed: Mapping[tuple[str, str], Any]) -> Any:
    pkl = next((n for n in z.namelist() if n.endswith("/data.pkl")), None)
    if pkl is None:
        raise ValueError(f"{path} is not a torch checkpoint")
    root = pkl[: -len("data.pkl")]
    obj = _Unpickler(io.BytesIO(z.read(pkl)), path, allowed).load()
    raw: dict[str, bytes] = {}
    for key in _storages(obj):
        try:
            raw[key] = z.read(f"{root}data/{key}")
        except KeyError:
            raise ValueError(f"{path}: storage {key} is missing") from None
    return _map(obj, lambda t: _array(t, raw[t.storage.key]))


def _read_legacy(f: IO[bytes], path: Path, allowed: Mapping[tuple[str, str], Any]) -> Any:
    def unpickle() -> Any:
        return _Unpickler(f, path, allowed).load()

    if unpickle() != LEGACY_MAGIC:
        raise ValueError(f"{path} is not a torch checkpoint")
    if unpickle() != LEGACY_PROTOCOL:
        raise ValueError(f"{path}: unknown legacy protocol version")
    system = unpickle()
    if not (isinstance(system, dict) and system.get("little_endian", False)):
        raise ValueError(f"{path} was written on a big-endian machine")
    obj = unpickle()
    storages = _storages(obj)
    raw: dict[str, bytes] = {}
    keys = unpickle()
    if not isinstance(keys, list):
        raise ValueError(f"{path} is not a torch checkpoint")
    for key in keys:  # the storages follow in this order
        if key not in storages:
            raise ValueError(f"{path}: storage {key!r:.60} belongs to none of its tensors")
        head = f.read(8)
        numel = struct.unpack("<q", head)[0] if len(head) == 8 else -1
        raw[key] = f.read(max(numel, 0) * storages[key].dtype.itemsize)
        if numel < 0 or len(raw[key]) < numel * storages[key].dtype.itemsize:
            raise ValueError(f"{path} is truncated")
    if storages.keys() - raw.keys():
        raise ValueError(f"{path}: a storage of its tensors is missing")
    return _map(obj, lambda t: _array(t, raw[t.storage.key]))


def read(path: Path, *, numpy_arrays: bool = False) -> Any:
    """The object ``torch.save`` wrote to ``path`` (zip or legacy format), each tensor in it a
    numpy array in native byte order. Only the storages its tensors use are read. Numpy's array
    names are unpickled only with ``numpy_arrays``; see the module's docstring for the rest."""
    allowed = _NUMPY_ARRAYS if numpy_arrays else _TENSORS
    with path.open("rb") as f:
        if zipfile.is_zipfile(f):
            f.seek(0)
            with zipfile.ZipFile(f) as z:
                return _read_zip(z, path, allowed)
        f.seek(0)
        return _read_legacy(f, path, allowed)
