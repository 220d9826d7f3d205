"""Autotuning of kernel launch parameters, per machine.

- :mod:`~spkernels.tuning.cache`: the per-machine JSON store of tuned configurations (and of
  measured FFT sizes);
- :mod:`~spkernels.tuning.space`: declared tuning spaces (parameters, constraints);
- :mod:`~spkernels.tuning.search`: exhaustive and seeded random search, each candidate checked
  against the default configuration's output before its time counts;
- :mod:`~spkernels.tuning.families`: the space and a runner of every kernel family per backend;
- :mod:`~spkernels.tuning.active` / :mod:`~spkernels.tuning.sizes`: what the kernels look up
  at call time, and the problem-size classes;
- :mod:`~spkernels.tuning.online`: dynamic tuning inside a long run (``tuning="online"``);
- :mod:`~spkernels.tuning.cli`: ``spkernels tune``.

``SPK_TUNING=off`` makes every kernel run its defaults; ``SPK_TUNING_CACHE`` moves the file.
"""

from . import cache  # noqa: F401
