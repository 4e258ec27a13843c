"""The one runner for the local engine's external programs (Apertium, eSpeak NG).

Commands are argument lists (never a shell), text goes in on stdin as UTF-8,
the return code is checked, and a failure raises :class:`LocalToolError` with
the command and the tail of its stderr.
"""

from __future__ import annotations

import logging
import subprocess
import time

from dubkit.errors import ServiceError

log = logging.getLogger(__name__)

#: How long one external program may run on one utterance.
DEFAULT_TIMEOUT_S = 120.0
_TAIL_CHARS = 400


class LocalToolError(ServiceError):
    """An external program of the local engine failed on one utterance.

    A :class:`~dubkit.errors.ServiceError` (``status`` 0, ``code``
    ``"local_tool_failed"``, not retryable) so that the runner treats it like
    any other failed translation: the utterance is recorded as failed in the
    manifest and the rest of the run goes on. ``command`` and ``stderr_tail``
    say what ran and what it said. Missing programs or language pairs are
    :class:`~dubkit.errors.ConfigError` instead, raised before any work.
    """

    def __init__(self, message: str, *, command: list[str], stderr_tail: str = "") -> None:
        super().__init__(message, code="local_tool_failed", retryable=False)
        self.command = command
        self.stderr_tail = stderr_tail


def tail(data: bytes | str, limit: int = _TAIL_CHARS) -> str:
    """The last ``limit`` characters of a program's output, on one line."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    return " | ".join(line.strip() for line in text.strip().splitlines()[-6:])[-limit:]


def run(command: list[str], stdin: bytes, *, timeout: float = DEFAULT_TIMEOUT_S) -> bytes:
    """Run ``command`` with ``stdin`` and return its stdout, or raise :class:`LocalToolError`."""
    started = time.monotonic()
    try:
        proc = subprocess.run(
            command, input=stdin, capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as e:
        raise LocalToolError(
            f"{command[0]} timed out after {timeout:g} s: {' '.join(command)}",
            command=command,
            stderr_tail=tail(e.stderr or b""),
        ) from e
    except OSError as e:
        raise LocalToolError(
            f"{command[0]} could not be started: {e.strerror or e}", command=command
        ) from e
    log.debug("%s: %.0f ms", " ".join(command), (time.monotonic() - started) * 1000)
    if proc.returncode != 0:
        err = tail(proc.stderr)
        raise LocalToolError(
            f"{command[0]} exited with status {proc.returncode}: {' '.join(command)}"
            + (f": {err}" if err else ""),
            command=command,
            stderr_tail=err,
        )
    return proc.stdout
