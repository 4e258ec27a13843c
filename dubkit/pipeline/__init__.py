"""The whole job: segment, translate, subtitle, fit, mix, mux — for one input file.

:func:`dub` and :func:`subtitle` are the library's main entry points; they
never print, prompt or exit. Progress goes to an optional callback
``progress(stage, done, total)``: stage "segment" and "mix" count milliseconds of media,
"speakers" and "translate" count utterances.

* :mod:`~dubkit.pipeline.prepare`: the languages and jobs checked, the input probed,
  decoded and segmented, the requests started;
* :mod:`~dubkit.pipeline.subtitling`: :func:`subtitle`, and the cues of any run;
* :mod:`~dubkit.pipeline.dubbing`: :func:`dub`, the mix and the mux;
* :mod:`~dubkit.pipeline.options` (what goes in and out), :mod:`~dubkit.pipeline.outputs`
  (where), :mod:`~dubkit.pipeline.timeline` (the record per utterance),
  :mod:`~dubkit.pipeline.manifest` (the manifest);
* :mod:`~dubkit.pipeline.redo`: :func:`redo`, a dub written again from its edited manifest,
  with :mod:`~dubkit.pipeline.given` (utterances given instead of found, also ``--segments``).
"""

from dubkit.pipeline.dubbing import dub
from dubkit.pipeline.options import Options, Outputs, Progress, Result
from dubkit.pipeline.prepare import analyze, parse_targets, plan_job, plan_jobs
from dubkit.pipeline.redo import redo
from dubkit.pipeline.subtitling import subtitle

__all__ = [
    "Options",
    "Outputs",
    "Progress",
    "Result",
    "analyze",
    "dub",
    "parse_targets",
    "plan_job",
    "plan_jobs",
    "redo",
    "subtitle",
]
