"""Where a run's files go: ``<stem>.<lang>.*`` for one language, ``<stem>.dub.*`` for several.

Pure but for :func:`checked_outputs`, which refuses, before any work, an output that cannot
be written (or is the input) and creates ``out_dir``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path

from dubkit import media, mux
from dubkit.files import check_writable_dir
from dubkit.pipeline.options import Options, Outputs
from dubkit.types import MediaInfo

log = logging.getLogger(__name__)


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
    base = folder / f"{path.stem}.{'dub' if with_media else 'subs'}"
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
    return outs


def shares_media(path: Path, info: MediaInfo, options: Options, langs: Sequence[str]) -> bool:
    """Whether several languages' dubs go into one output (a video), not one file each."""
    ext = mux.output_suffix(path.suffix, options.container)[0]
    return len(langs) > 1 and info.has_video and mux.output_kind(Path(f"out{ext}")) == "video"
