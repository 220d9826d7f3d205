"""The environment of a test's subprocesses: they import the very spkernels this test process
imported (the installed package in CI, ``python/`` of the checkout in the dev loop), never a
source tree without its compiled core."""

from __future__ import annotations

import os
from pathlib import Path

import spkernels

#: the folder holding the imported ``spkernels`` package
PACKAGE_PARENT = str(Path(spkernels.__file__).resolve().parents[1])


def env(base=None, **extra) -> dict:
    """`base` (default ``os.environ``) with :data:`PACKAGE_PARENT` first on ``PYTHONPATH``, plus `extra`."""
    e = dict(os.environ if base is None else base)
    e["PYTHONPATH"] = os.pathsep.join(p for p in (PACKAGE_PARENT, e.get("PYTHONPATH", "")) if p)
    e.update(extra)
    return e
