"""The exception tree: every failure dubkit reports is a :class:`DubkitError`.

Each error carries a one-line message that names the file (or setting) and the
cause, and an ``exit_status`` the CLI returns (see DESIGN.md):
2 bad usage or input, 3 configuration or authentication, 4 partial failure.
"""

from __future__ import annotations

from pathlib import Path


class DubkitError(Exception):
    """Base of every error dubkit raises on purpose."""

    exit_status = 2

    def __init__(self, message: str, *, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.reason = message
        super().__init__(f"{path}: {message}" if path is not None else message)


class InputError(DubkitError, ValueError):
    """The input file is missing, unreadable, not media, truncated or lacks audio."""


class OutputError(DubkitError):
    """An output cannot be written (directory not writable, path equal to the input, ...)."""


class MediaToolError(DubkitError):
    """An external media program (the bundled ffmpeg) failed."""

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        command: list[str] | None = None,
        stderr_tail: str = "",
    ) -> None:
        super().__init__(message, path=path)
        self.command = command or []
        self.stderr_tail = stderr_tail


class ConfigError(DubkitError, ValueError):
    """Bad configuration: unknown language or voice, missing key, bad option value."""

    exit_status = 3


class ServiceError(DubkitError):
    """The translation service answered with an error.

    ``retryable`` says whether trying again may succeed (429, 5xx, dropped or
    stalled streams); ``status`` is the HTTP status (0 for transport failures).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        code: str = "",
        request_id: str = "",
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.request_id = request_id
        self.retryable = retryable
        self.retry_after = retry_after


class AuthError(ServiceError):
    """401/403/404 from the service: a configuration problem, never retried."""

    exit_status = 3


class LocalToolError(ServiceError):
    """An external program of the offline engine failed on one utterance.

    A :class:`ServiceError` (``code`` ``"local_tool_failed"``, not retryable) so that the
    runner treats it like any other failed translation: the utterance is recorded as failed
    in the manifest and the rest of the run goes on. ``command`` and ``stderr_tail`` say
    what ran and what it said (the shape of :class:`MediaToolError`). Missing programs or
    language pairs are :class:`ConfigError` instead, raised before any work.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        command: list[str] | None = None,
        stderr_tail: str = "",
    ) -> None:
        super().__init__(f"{path}: {message}" if path is not None else message,
                         code="local_tool_failed")  # fmt: skip
        self.command = command or []
        self.stderr_tail = stderr_tail


class TruncatedError(ServiceError):
    """The service stopped at max_tokens (finish_reason "length")."""


class TooLargeError(ServiceError):
    """The utterance's data URL exceeds the service's per-item limit: split it."""


class PartialFailure(DubkitError):
    """Some utterances still failed after every retry; outputs were written with gaps."""

    exit_status = 4
