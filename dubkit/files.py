"""Writing outputs safely: a temporary name beside the final one, renamed when complete.

A file under a final name is therefore always whole. While it is written, the
temporary file is locked (``flock``); a later run removes temporary files that
no live writer holds, so a killed run leaves nothing behind for long.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import logging
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from dubkit.errors import OutputError

log = logging.getLogger(__name__)


def _umask() -> int:
    """The process's umask (read by setting it, then restoring it at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: Characters ``mkstemp`` puts between a temporary name's prefix and suffix.
_RANDOM = 8


def name_max(folder: Path) -> int:
    """The longest file name (in bytes) ``folder`` takes: its file system's, else 255."""
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError):
        return 255


def _pattern(final: Path) -> tuple[str, str]:
    """A temporary name's prefix and suffix: ``.<name>.`` and ``.part<ext>``, the name cut
    short (at a character boundary) where the whole would not fit where ``final`` fits."""
    suffix = f".part{final.suffix}"
    folder = final.parent if final.parent.is_dir() else Path(".")
    room = name_max(folder) - len(os.fsencode(suffix)) - _RANDOM - 2
    name = os.fsencode(final.name)
    if len(name) > room > 0:
        name = name[:room]
        while name:  # drop a cut multi-byte character
            try:
                return f".{name.decode('utf-8')}.", suffix
            except UnicodeDecodeError:
                name = name[:-1]
    return f".{final.name}.", suffix


def sweep_stale(final: Path) -> int:
    """Remove temporary files of ``final`` left by killed runs (those no writer locks)."""
    prefix, suffix = _pattern(final)
    removed = 0
    with contextlib.suppress(OSError):
        for p in final.parent.glob(f"{glob.escape(prefix)}*{glob.escape(suffix)}"):
            try:
                fd = os.open(p, os.O_RDONLY)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # a live writer holds it
            else:
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
                    removed += 1
                    log.info("removed %s, left by an interrupted run", p)
            finally:
                os.close(fd)
    return removed


@contextlib.contextmanager
def atomic_output(final: Path) -> Iterator[Path]:
    """Yield a locked temporary path beside ``final`` (same extension, so tools that go by
    extension work); on success it replaces ``final``, on any failure it is removed."""
    sweep_stale(final)
    prefix, suffix = _pattern(final)
    try:
        fd, name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=final.parent)
    except OSError as exc:
        raise OutputError(f"cannot write here ({exc.strerror or exc})", path=final) from exc
    tmp = Path(name)
    try:
        # the permissions of a newly created file, not mkstemp's private 0o600
        os.fchmod(fd, 0o666 & ~_umask())
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield tmp
        try:
            os.replace(tmp, final)
        except OSError as exc:
            raise OutputError(
                f"cannot write the output ({exc.strerror or exc})", path=final
            ) from exc
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    finally:
        os.close(fd)


def write_bytes_atomic(final: Path, data: bytes) -> Path:
    """Write ``data`` to ``final`` atomically (flushed to disk before the rename)."""
    with atomic_output(final) as tmp:
        try:
            with tmp.open("wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            raise OutputError(f"cannot write ({exc.strerror or exc})", path=final) from exc
    return final


def write_text_atomic(final: Path, text: str) -> Path:
    """Write ``text`` as UTF-8 (newlines as given) to ``final`` atomically."""
    return write_bytes_atomic(final, text.encode("utf-8"))


def check_writable_dir(path: Path, what: str) -> None:
    """Refuse a folder that cannot be created or written, before any work is paid for."""
    if path.exists() and not path.is_dir():
        raise OutputError(f"{what} is a file, not a folder", path=path)
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"cannot create the {what}: {existing} is a file", path=path)
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"{what} is not writable", path=path)


def default_cache_dir(env: Mapping[str, str]) -> Path:
    """Where dubkit keeps what it can make again (translations, built model graphs, Whisper's
    converted files): ``$DUBKIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/dubkit``, else
    ``~/.cache/dubkit``."""
    if env.get("DUBKIT_CACHE_DIR"):
        return Path(env["DUBKIT_CACHE_DIR"]).expanduser()
    if env.get("XDG_CACHE_HOME"):
        return Path(env["XDG_CACHE_HOME"]).expanduser() / "dubkit"
    home = Path(env["HOME"]) if env.get("HOME") else Path.home()
    return home / ".cache" / "dubkit"
