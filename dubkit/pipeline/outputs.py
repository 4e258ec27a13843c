"""Where a run's files go: ``<stem>.<lang>.*`` for one language, ``<stem>.dub.*`` for several.

Pure but for :func:`checked_outputs`, which refuses, before any work, an output that cannot
be written (or is the input) and creates ``out_dir``, and :func:`check_run`, which checks a
run's inputs together: no output is one of the run's inputs or written twice.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path

from dubkit import media, mux
from dubkit.errors import OutputError
from dubkit.files import check_writable_dir, name_max
from dubkit.pipeline.options import Options, Outputs
from dubkit.types import MediaInfo

log = logging.getLogger(__name__)


#: What names the files of a dub in several languages: ``<stem>.dub.<ext>`` and its
#: manifest ``<stem>.dub.dubkit.json`` (``.subs.`` for subtitles only).
SEVERAL_DUBBED = "dub"


def output_paths(path: Path, lang: str, options: Options, *, with_media: bool) -> Outputs:
    """``<stem>.<lang>.<ext>`` beside the input (or in ``out_dir``)."""
    folder = options.out_dir if options.out_dir is not None else path.parent
    base = folder / f"{path.stem}.{lang}"
    ext = mux.output_suffix(path.suffix, options.container)[0]
    subs = tuple(Path(f"{base}.{fmt}") for fmt in options.formats)
    return Outputs(
        subs,
        Path(f"{base}.dubkit.json"),
        Path(f"{base}{ext}") if with_media else None,
        Path(f"{base}.review.html") if with_media and options.review else None,
    )


def run_outputs(
    path: Path,
    langs: Sequence[str],
    options: Options,
    *,
    with_media: bool,
    shared: bool,
    text_only: int = 0,
) -> list[Outputs]:
    """Each language's outputs. One language: :func:`output_paths`. Several: one manifest
    ``<stem>.dub.dubkit.json`` (``<stem>.subs.dubkit.json`` for subtitles only) and, when
    ``shared``, one media file ``<stem>.dub.<ext>`` holding every dubbed track; each
    language keeps its own sidecars and review page (and media file, when not shared). The
    last ``text_only`` languages are subtitled only: no media file or review page of their
    own."""
    outs = [output_paths(path, lang, options, with_media=with_media) for lang in langs]
    if len(outs) == 1:
        return outs
    folder = options.out_dir if options.out_dir is not None else path.parent
    base = folder / f"{path.stem}.{SEVERAL_DUBBED if with_media else 'subs'}"
    manifest = Path(f"{base}.dubkit.json")
    ext = mux.output_suffix(path.suffix, options.container)[0]
    media_ = Path(f"{base}{ext}") if shared else None
    outs = [dataclasses.replace(o, manifest=manifest, media=media_ or o.media) for o in outs]
    for k in range(len(outs) - text_only, len(outs)):
        outs[k] = dataclasses.replace(outs[k], media=media_, review=None)
    return outs


def checked_outputs(
    path: Path,
    langs: Sequence[str],
    options: Options,
    *,
    with_media: bool,
    shared: bool = False,
    text_only: int = 0,
) -> list[Outputs]:
    """The output paths, each refused now if it cannot be written; ``out_dir`` is created."""
    outs = run_outputs(
        path, langs, options, with_media=with_media, shared=shared, text_only=text_only
    )
    if options.out_dir is not None and not options.out_dir.is_dir():
        check_writable_dir(options.out_dir, "output folder (--out-dir)")
        options.out_dir.mkdir(parents=True, exist_ok=True)
    if with_media and (note := mux.output_suffix(path.suffix, options.container)[1]):
        log.info("%s: %s", path, note)
    paths: dict[Path, None] = {}
    for o in outs:
        if o.media is not None:
            mux.output_kind(o.media)
        for p in (*o.subtitles, o.manifest, o.media, o.review):
            if p is not None:
                paths[p] = None
    for p in paths:
        media.check_output(path, p)
        check_replaceable(p)
    return outs


def check_replaceable(path: Path) -> None:
    """Refuse an output whose name is too long for its folder, or that exists read-only
    (a file the user protected is not replaced behind their back)."""
    folder = path.parent
    while not folder.is_dir() and folder != folder.parent:
        folder = folder.parent
    size, most = len(os.fsencode(path.name)), name_max(folder)
    if size > most:
        raise OutputError(
            f"file name too long ({size} bytes; the folder takes at most {most}): "
            "rename the input shorter or use --out-dir", path=path,
        )  # fmt: skip
    try:
        mode = path.lstat().st_mode
    except OSError:
        return  # not there yet (or unreachable: refused when it is written)
    if stat.S_ISREG(mode) and not mode & 0o222:
        raise OutputError("exists and is read-only; refusing to replace it", path=path)


def _candidates(
    path: Path, langs: Sequence[str], options: Options, *, with_media: bool, text_only: int
) -> Iterator[Path]:
    """Every file a run on ``path`` may write (shared media file or not: known after probing)."""
    for shared in (False, True) if with_media and len(langs) > 1 else (False,):
        outs = run_outputs(path, langs, options, with_media=with_media, shared=shared,
                           text_only=text_only)  # fmt: skip
        for o in outs:
            yield from (p for p in (*o.subtitles, o.manifest, o.media, o.review) if p is not None)


def _identity(path: Path) -> Path | tuple[int, int]:
    """What makes two names the same file: its device and inode if it exists, else its
    absolute path with symbolic links resolved."""
    try:
        st = path.stat()
    except OSError:
        return path.resolve()
    return (st.st_dev, st.st_ino)


def check_run(
    inputs: Sequence[Path],
    langs: Sequence[str],
    options: Options,
    *,
    with_media: bool,
    text_only: int = 0,
) -> None:
    """Refuse, before any work, a run that would write over one of its own inputs, write one
    file twice (two inputs of the same stem going to one folder: ``talk.mp4 talk.mkv``), or
    name an output longer than its folder takes. One line naming the files, exit status 2."""
    ins: dict[Path | tuple[int, int], Path] = {}
    for path in inputs:
        if (first := ins.setdefault(_identity(path), path)) is not path:
            raise OutputError(f"given twice in one run (also as {first})", path=path)
    owners: dict[Path, Path] = {}
    for path in inputs:
        for out in dict.fromkeys(
            _candidates(path, langs, options, with_media=with_media, text_only=text_only)
        ):
            victim = ins.get(_identity(out))
            if victim is not None:
                whose = "" if victim == path else f" {victim} (the output of {path} is named so)"
                raise OutputError(
                    f"output path is the input file{whose}; refusing to overwrite it "
                    "(rename it or use --out-dir)", path=out,
                )  # fmt: skip
            other = owners.setdefault(out.resolve(), path)
            if other != path:
                raise OutputError(
                    f"would be written for both {other} and {path} (inputs of the same stem); "
                    "dub them in separate runs with different --out-dir", path=out,
                )  # fmt: skip
            check_replaceable(out)


def shares_media(path: Path, info: MediaInfo, options: Options, langs: Sequence[str]) -> bool:
    """Whether several languages' dubs go into one output (a video), not one file each."""
    ext = mux.output_suffix(path.suffix, options.container)[0]
    return len(langs) > 1 and info.has_video and mux.output_kind(Path(f"out{ext}")) == "video"
