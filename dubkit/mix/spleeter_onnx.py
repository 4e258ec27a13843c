"""Spleeter's two U-Nets and their ratio mask as one ONNX graph, run by onnxruntime.

The fast path of :func:`dubkit.mix.spleeter.vocal_mask`: the same weights (read by
:func:`dubkit.mix.spleeter_weights.load_checkpoint`, never by torch), the same layers as
:class:`dubkit.mix.spleeter.UNet` (convolutions 5x5 stride 2 padded 1 before and 2 after,
batchnorm folded to a scale and shift, the skips taken before it; transposed convolutions
cropped the same way), and the mask ``(v^p + eps/2) / (v^p + a^p + eps)`` inside the graph.
onnxruntime's convolution kernels do in one pass what the numpy path does with im2col copies
and GEMMs: about 1.7x less CPU per second of audio (BENCHMARKS.md).

The graph is built with ``onnx``'s helper API from the weights the first time it is needed
and kept in the cache folder (``$DUBKIT_CACHE_DIR``, ``$XDG_CACHE_HOME/dubkit`` or
``~/.cache/dubkit``) under a name keyed by the checkpoints' SHA-256 and :data:`GRAPH_VERSION`
(:func:`dubkit.onnxrt.cached_session`); where that folder cannot be written, it is built in
memory at each load.
Nothing is fetched: both packages and the weights are installed ones.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from dubkit import onnxrt
from dubkit.mix.spleeter_weights import EPS, batchnorm, load_checkpoint

F32 = npt.NDArray[np.float32]

#: Changes whenever the graph built here changes (it is part of the cache key).
GRAPH_VERSION = 1


def available() -> bool:
    """Whether onnxruntime and onnx are installed (neither is imported here)."""
    return onnxrt.available()


def _net(s: dict[str, F32], p: str, nodes: list[Any], weights: dict[str, F32]) -> str:
    """The nodes of one ``UNet`` (state dict ``s``, names prefixed ``p``) on input ``mag``;
    returns the name of its output, the masked magnitudes."""
    from onnx import helper

    def w(name: str, value: np.ndarray) -> str:
        weights[p + name] = np.ascontiguousarray(value, np.float32)
        return p + name

    def node(op: str, inputs: Sequence[str], out: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, list(inputs), [p + out], **attrs))
        return p + out

    conv = {"kernel_shape": [5, 5], "strides": [2, 2], "pads": [1, 1, 2, 2]}
    skips, h = [], "mag"
    for i in range(1, 7):
        scale, shift = batchnorm(s, f"down{i}_act.0")
        c = node("Conv", [h, w(f"d{i}w", s[f"down{i}_conv.1.weight"]),
                          w(f"d{i}b", s[f"down{i}_conv.1.bias"])], f"d{i}", **conv)  # fmt: skip
        skips.append(c)
        h = node("Mul", [c, w(f"d{i}s", scale[:, None, None])], f"d{i}m")
        h = node("Add", [h, w(f"d{i}t", shift[:, None, None])], f"d{i}a")
        h = node("LeakyRelu", [h], f"d{i}l", alpha=0.2)
    u = skips[5]
    for i in range(1, 7):
        if i > 1:
            u = node("Concat", [skips[6 - i], u], f"c{i}", axis=1)
        scale, shift = batchnorm(s, f"up{i}.3")
        u = node("ConvTranspose", [u, w(f"u{i}w", s[f"up{i}.0.weight"]),
                                   w(f"u{i}b", s[f"up{i}.0.bias"])], f"u{i}", **conv)  # fmt: skip
        u = node("Relu", [u], f"u{i}r")
        u = node("Mul", [u, w(f"u{i}s", scale[:, None, None])], f"u{i}m")
        u = node("Add", [u, w(f"u{i}t", shift[:, None, None])], f"u{i}a")
    out = node("Conv", [u, w("w7", s["up7.0.weight"]), w("b7", s["up7.0.bias"])], "o",
               kernel_shape=[4, 4], dilations=[2, 2], pads=[3, 3, 3, 3])  # fmt: skip
    return node("Mul", [node("Sigmoid", [out], "sig"), "mag"], "masked")


def build(checkpoints: tuple[Path, Path]) -> bytes:
    """The serialized graph: input ``mag`` (1, 2, T, F) float32 and ``power`` (scalar),
    output ``mask`` (1, 2, T, F), the vocals' ratio mask (T and F multiples of 64)."""
    from onnx import TensorProto, helper, numpy_helper

    nodes: list[Any] = []
    weights: dict[str, F32] = {"half_eps": np.array(EPS / 2, np.float32),
                               "eps": np.array(EPS, np.float32)}  # fmt: skip
    v = _net(load_checkpoint(checkpoints[0]), "v_", nodes, weights)
    a = _net(load_checkpoint(checkpoints[1]), "a_", nodes, weights)
    nodes += [
        helper.make_node("Pow", [v, "power"], ["vp"]),
        helper.make_node("Pow", [a, "power"], ["ap"]),
        helper.make_node("Add", ["vp", "half_eps"], ["num"]),
        helper.make_node("Add", ["vp", "ap"], ["sum"]),
        helper.make_node("Add", ["sum", "eps"], ["den"]),
        helper.make_node("Div", ["num", "den"], ["mask"]),
    ]
    shape: list[str | int] = [1, 2, "T", "F"]
    graph = helper.make_graph(
        nodes,
        "spleeter_2stems_mask",
        [helper.make_tensor_value_info("mag", TensorProto.FLOAT, shape),
         helper.make_tensor_value_info("power", TensorProto.FLOAT, [])],
        [helper.make_tensor_value_info("mask", TensorProto.FLOAT, shape)],
        [numpy_helper.from_array(x, name) for name, x in weights.items()],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", onnxrt.OPSET)])
    model.ir_version = onnxrt.IR_VERSION
    return bytes(model.SerializeToString())


def cache_key(checkpoints: tuple[Path, Path]) -> str:
    """SHA-256 of the graph's version and of both checkpoints' bytes (first 16 hex digits)."""
    digest = hashlib.sha256(f"dubkit-spleeter-onnx-{GRAPH_VERSION}".encode())
    for path in checkpoints:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def cached_path(checkpoints: tuple[Path, Path], cache: Path) -> Path:
    """Where the graph of ``checkpoints`` is kept in the folder ``cache``."""
    return cache / f"spleeter-2stems-{cache_key(checkpoints)}.onnx"


class OnnxMask:
    """The vocals' mask of ``(2, T, F)`` magnitudes, by one onnxruntime session."""

    def __init__(self, checkpoints: tuple[Path, Path], cache: Path | None, threads: int) -> None:
        kept = cached_path(checkpoints, cache) if cache is not None else None
        self._session = onnxrt.cached_session(lambda: build(checkpoints), kept, threads)

    def __call__(self, mag: F32, power: float = 2.0) -> F32:
        """``mag``: (2, T, F), T and F multiples of 64 -> the mask, the same shape."""
        feed = {"mag": np.ascontiguousarray(mag[None], np.float32),
                "power": np.array(power, np.float32)}  # fmt: skip
        out = self._session.run(["mask"], feed)[0]
        return np.asarray(out[0], np.float32)


def default_threads() -> int:
    """onnxruntime's threads for the separation: the cores this process may use, at most 2."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, min(2, cores))
