"""The one runner for external programs: ffmpeg, Apertium, eSpeak NG and the speaker child.

Commands are argument lists (never a shell), the exit status is always checked, and every
failure has one shape: what failed, the file it concerned, and the program's last line of
stderr, with the command and the tail of its stderr attached (``command``,
``stderr_tail``). The error's class says what a failure means to the caller:
:class:`~dubkit.errors.MediaToolError` (the default) ends the run,
:class:`~dubkit.errors.LocalToolError` fails one utterance.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Protocol, TypeVar

from dubkit.errors import LocalToolError, MediaToolError

log = logging.getLogger(__name__)

#: How much of a program's stderr an error keeps.
TAIL_CHARS = 2000
#: How long one program of the offline engine may run on one utterance.
UTTERANCE_TIMEOUT_S = 120.0


class _ToolErrorType(Protocol):
    def __call__(
        self,
        message: str,
        *,
        path: str | Path | None = ...,
        command: list[str] | None = ...,
        stderr_tail: str = ...,
    ) -> Exception: ...


E = TypeVar("E", bound=Exception)


def stderr_tail(data: bytes | str | None, limit: int = TAIL_CHARS) -> str:
    """The end of a program's stderr, as text."""
    if not data:
        return ""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    return text[-limit:].strip()


def failure(
    what: str,
    command: list[str],
    stderr: bytes | str | None,
    *,
    path: str | Path | None = None,
    error: type[E] = MediaToolError,  # type: ignore[assignment]
    silent: str = "no message",
) -> E:
    """The error for ``what`` failing: ``"<what> (<stderr's last line>)"``, or
    ``"<what> (<silent>)"`` where it wrote nothing."""
    tail = stderr_tail(stderr)
    last = tail.splitlines()[-1].strip() if tail else silent
    make: _ToolErrorType = error  # type: ignore[assignment]
    return make(f"{what} ({last})", path=path, command=command, stderr_tail=tail)  # type: ignore[return-value]


def run(
    command: list[str],
    what: str,
    *,
    stdin: bytes | None = None,
    timeout: float | None = None,
    path: str | Path | None = None,
    error: type[E] = MediaToolError,  # type: ignore[assignment]
) -> bytes:
    """Run ``command`` to the end (``stdin`` fed to it) and return its stdout; a non-zero
    status, a time-out or a program that cannot start raises ``error`` (see :func:`failure`).

    >>> run(["python3", "-c", "print('hi')"], "saying hi")
    b'hi\\n'
    >>> run(["python3", "-c", "import sys; sys.exit('no')"], "saying hi")
    Traceback (most recent call last):
    ...
    dubkit.errors.MediaToolError: saying hi (no)
    """
    started = time.monotonic()
    try:
        proc = subprocess.run(
            command, input=stdin, capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as e:
        raise failure(
            f"{what}: timed out after {timeout:g} s", command, e.stderr, path=path, error=error
        ) from e
    except OSError as e:
        raise failure(
            f"{what}: {command[0]} could not be started", command, e.strerror or str(e),
            path=path, error=error,
        ) from e  # fmt: skip
    log.debug("%s: %.0f ms", " ".join(command), (time.monotonic() - started) * 1000)
    if proc.returncode != 0:
        raise failure(what, command, proc.stderr, path=path, error=error)
    return proc.stdout


def run_for_utterance(command: list[str], stdin: bytes) -> bytes:
    """:func:`run` for a program of the offline engine: a failure fails one utterance
    (:class:`~dubkit.errors.LocalToolError`), and it may run :data:`UTTERANCE_TIMEOUT_S`."""
    return run(command, f"{Path(command[0]).name} failed", stdin=stdin,
               timeout=UTTERANCE_TIMEOUT_S, error=LocalToolError)  # fmt: skip


class Child:
    """A program that runs beside the caller, fed through its stdin: its stderr goes to a
    temporary file (so it can never fill a pipe and block), read back by :meth:`failure`.
    A context manager: leaving it kills the program if it still runs, and closes
    everything."""

    def __init__(
        self, command: list[str], *, stdout: bool = False, env: Mapping[str, str] | None = None
    ) -> None:
        """``env``: the child's whole environment (default: this process's)."""
        self.command = command
        self._stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
        log.debug("starting %s", command)
        try:
            self.proc = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE if stdout else subprocess.DEVNULL,
                stderr=self._stderr,
                env=env,
            )
        except BaseException:
            self._stderr.close()
            raise

    def failure(
        self,
        what: str,
        *,
        path: str | Path | None = None,
        error: type[E] = MediaToolError,  # type: ignore[assignment]
    ) -> E:
        """The error for this program having failed (see :func:`failure`); one killed by a
        signal without a word (the kernel's out-of-memory killer, say) is named so."""
        try:
            code = self.proc.wait(timeout=2)  # its pipes broke: it is ending, or has ended
        except subprocess.TimeoutExpired:
            code = None
        silent = "no message"
        if code is not None and code < 0:
            try:
                silent = f"killed by {signal.Signals(-code).name}"
            except ValueError:
                silent = f"killed by signal {-code}"
            if -code == getattr(signal, "SIGKILL", None):
                silent += ", perhaps for want of memory"
        self._stderr.seek(0)
        return failure(
            what, self.command, self._stderr.read(), path=path, error=error, silent=silent
        )

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout, self._stderr):
            if f is not None:
                with contextlib.suppress(OSError):  # a pipe to a child that died
                    f.close()

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
