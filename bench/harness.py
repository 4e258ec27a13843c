"""Shared machinery: the emulator in its own process, timed child processes, rows of figures."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python")
API_KEY = "sk-bench"


# -- figures -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Row:
    """One line of the results table. ``ok`` None means "for information, no target"."""

    case: str
    figure: str
    value: str
    target: str = ""
    ok: bool | None = None
    note: str = ""

    @property
    def verdict(self) -> str:
        return "" if self.ok is None else ("PASS" if self.ok else "MISS")


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def spread(values: Sequence[float], unit: str = "s", digits: int = 1) -> str:
    """``"12.3 s (11.9-13.0, n=3)"``: the median, the range and the count."""
    if len(values) == 1:
        return f"{values[0]:.{digits}f} {unit} (n=1)"
    return (
        f"{median(values):.{digits}f} {unit} "
        f"({min(values):.{digits}f}-{max(values):.{digits}f}, n={len(values)})"
    )


# -- the emulator, in a process of its own ------------------------------------------------
def _emulator_main(conn: Connection, kwargs: dict[str, Any]) -> None:
    from dubkit.emulator import Emulator, EmulatorConfig

    with Emulator(EmulatorConfig(**kwargs)) as emu:
        conn.send(emu.base_url)
        while True:
            cmd = conn.recv()
            if cmd == "records":
                conn.send([(r.time, r.status, r.ok, r.fault) for r in emu.records])
            elif cmd == "reset":
                emu.reset_records()
                conn.send(True)
            else:
                break


class EmulatorProcess:
    """``dubkit.emulator.Emulator`` served from a child process, so it never shares a GIL
    with the client being measured. ``records()`` gives ``(time, status, ok, fault)``."""

    def __init__(self, **config: Any) -> None:
        config.setdefault("api_key", API_KEY)
        self._config = config
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_emulator_main, args=(child, config), daemon=True)
        self.base_url = ""

    def __enter__(self) -> EmulatorProcess:
        self._proc.start()
        if not self._conn.poll(60):
            self._proc.kill()
            raise RuntimeError("the emulator process did not start within 60 s")
        self.base_url = self._conn.recv()
        return self

    def records(self) -> list[tuple[float, int, bool, str | None]]:
        self._conn.send("records")
        return list(self._conn.recv())

    def reset(self) -> None:
        self._conn.send("reset")
        self._conn.recv()

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):
            self._conn.send("stop")
        self._proc.join(timeout=10)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join()


# -- timed child processes ------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Timed:
    """A finished child: wall seconds, exit status, ``wait4``'s ``ru_maxrss`` (the largest
    peak of the child and of any descendant it reaped), the peak of the summed RSS of it and
    its descendants (polled), and the peaks of the child's own process and of its largest
    descendant apart (``VmHWM``, polled: growth in the last poll interval can be missed)."""

    wall_s: float
    returncode: int
    maxrss_mb: float
    tree_peak_mb: float
    stderr_tail: str
    cpu_s: float = 0.0  # user + system, its own and its reaped children's (ffmpeg)
    own_peak_mb: float = 0.0  # the child's own VmHWM, without its descendants
    child_peak_mb: float = 0.0  # the largest VmHWM of any one descendant
    child_peak_name: str = ""  # that descendant's command name


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out.extend(int(c) for c in f.read().split())
    except OSError:
        pass
    return out


def _name(pid: int) -> str:
    """What ``pid`` runs: the module of ``python -m MODULE``, else the program's name."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().decode(errors="replace").split("\0")
    except OSError:
        return ""
    if "-m" in argv[:-1]:
        return argv[argv.index("-m") + 1]
    return Path(argv[0]).name


def _status(pid: int) -> tuple[str, int, int]:
    """What ``pid`` runs, its VmRSS and VmHWM (kB); zeros once it is gone."""
    name, rss, hwm = _name(pid), 0, 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
    except (OSError, IndexError):
        pass
    return name, rss, hwm


def _tree(pid: int) -> list[tuple[int, str, int, int]]:
    """``(pid, name, VmRSS, VmHWM)`` of ``pid`` and all its descendants, now."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append((p, *_status(p)))
        todo.extend(_children(p))
    return out


def run_timed(
    cmd: list[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    poll_s: float = 0.1,
) -> Timed:
    """Run ``cmd`` to completion; wall time from just before spawn to reaping."""
    peak = [0]
    hwm: dict[int, tuple[str, int]] = {}  # pid -> (name, VmHWM kB), the latest seen
    stop = threading.Event()
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )

    def poll() -> None:
        while not stop.is_set():
            tree = _tree(proc.pid)
            peak[0] = max(peak[0], sum(rss for _, _, rss, _ in tree))
            for p, name, _, kb in tree:
                if kb >= hwm.get(p, ("", 0))[1]:
                    hwm[p] = (name, kb)
            stop.wait(poll_s)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    assert proc.stderr is not None
    err = proc.stderr.read()  # until the child (and anything holding its stderr) closes it
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    stop.set()
    poller.join()
    proc.stderr.close()
    tail = " | ".join(err.decode(errors="replace").strip().splitlines()[-3:])
    cpu = usage.ru_utime + usage.ru_stime
    own = hwm.pop(proc.pid, ("", 0))[1]
    name, child = max(hwm.values(), key=lambda v: v[1], default=("", 0))
    return Timed(
        wall, proc.returncode, usage.ru_maxrss / 1024, peak[0] / 1024, tail, cpu,
        own / 1024, child / 1024, name,
    )  # fmt: skip


def repeat(n: int, fn: Callable[[int], Timed], label: str) -> list[Timed]:
    """``fn(i)`` ``n`` times; a failing run raises with its stderr tail."""
    out = []
    for i in range(n):
        t = fn(i)
        log.info(
            "%s run %d/%d: %.2f s, status %d, peak RSS %.0f MB (own %.0f, largest child %.0f"
            " %s, tree %.0f MB)",
            label,
            i + 1,
            n,
            t.wall_s,
            t.returncode,
            t.maxrss_mb,
            t.own_peak_mb,
            t.child_peak_mb,
            t.child_peak_name or "-",
            t.tree_peak_mb,
        )
        if t.returncode != 0:
            raise RuntimeError(f"{label} exited with status {t.returncode}: {t.stderr_tail}")
        out.append(t)
    return out
