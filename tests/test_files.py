"""Atomic outputs: whole or absent under the final name, usual modes, stale temporaries swept."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dubkit.errors import OutputError
from dubkit.files import atomic_output, check_writable_dir, sweep_stale, write_text_atomic


def test_write_replaces_whole_file_with_usual_permissions(tmp_path: Path) -> None:
    final = tmp_path / "a.es.srt"
    final.write_text("old")
    write_text_atomic(final, "new\n")
    assert final.read_text() == "new\n"
    umask = os.umask(0o022)
    os.umask(umask)
    assert final.stat().st_mode & 0o777 == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["a.es.srt"]


def test_failure_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    final = tmp_path / "a.es.mp4"
    final.write_bytes(b"complete")
    with pytest.raises(RuntimeError), atomic_output(final) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("killed")
    assert final.read_bytes() == b"complete"
    assert [p.name for p in tmp_path.iterdir()] == ["a.es.mp4"]


def test_stale_temporaries_of_a_dead_writer_are_swept(tmp_path: Path) -> None:
    final = tmp_path / "a.es.mp4"
    stale = tmp_path / ".a.es.mp4.abc123.part.mp4"
    stale.write_bytes(b"left by a SIGKILL")
    # a live writer in another process holds its lock: its file must survive a sweep
    live = tmp_path / ".a.es.mp4.live99.part.mp4"
    live.write_bytes(b"being written")
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDONLY); "
         "fcntl.flock(fd, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(30)", str(live)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        assert sweep_stale(final) == 1
        assert not stale.exists() and live.exists()
    finally:
        holder.kill()
        holder.wait()
    with atomic_output(final) as tmp:  # a new write sweeps what the dead holder left
        fd = os.open(tmp, os.O_RDONLY)
        with pytest.raises(BlockingIOError):  # and holds its own lock while writing
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.close(fd)
        tmp.write_bytes(b"done")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.es.mp4"]


def test_check_writable_dir(tmp_path: Path) -> None:
    check_writable_dir(tmp_path / "new" / "deeper", "cache folder")  # creatable: fine
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(OutputError, match="is a file"):
        check_writable_dir(f, "cache folder")
    with pytest.raises(OutputError, match="is a file"):
        check_writable_dir(f / "sub", "cache folder")


def test_clip_store_is_safe_across_threads(tmp_path: Path) -> None:
    """A streamed dub puts clips from the translate thread while the mix reads older ones."""
    import threading

    import numpy as np
    from dubkit.translate.clips import ClipStore

    store = ClipStore(tmp_path / "clips.s16")
    refs: list[object] = []
    clips = [np.full(5000 + i, i, dtype=np.int16) for i in range(300)]

    def writer() -> None:
        for c in clips:
            refs.append(store.put(c.tobytes(), 24_000))

    t = threading.Thread(target=writer)
    t.start()
    seen = 0
    while t.is_alive() or seen < len(clips):
        if seen < len(refs):
            assert np.array_equal(store.read(refs[seen]), clips[seen])  # type: ignore[arg-type]
            seen += 1
    t.join()
    store.close()
