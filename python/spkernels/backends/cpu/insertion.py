"""The insertion family on the CPU: thin adapters over the C++ OpenMP ``insertion_insert_cpu``
and ``insertion_extract_cpu`` of ``spkernels._core``.

It implements the insertion contract stated in :mod:`spkernels.backends.numpy.insertion`.
"""

from __future__ import annotations

import numpy as np

from .._shared import core_function
from .._shared import host_arrays as array_module  # noqa: F401

METHODS = ("gather", "scatter")


def insert(images, ctf, rotations, table, scale, radius, max_freq2, volume, weights, method="gather",
           params=None):
    """Insert in place with the compiled loops (gather: plane-owning, deterministic)."""
    fn = core_function("insertion_insert_cpu")
    volume = np.ascontiguousarray(volume)
    weights = np.ascontiguousarray(weights)
    fn(np.ascontiguousarray(images), None if ctf is None else np.ascontiguousarray(ctf),
       np.ascontiguousarray(rotations), np.ascontiguousarray(table), float(scale), float(radius), float(max_freq2),
       volume, weights, method)
    return volume, weights


def extract(volume, ctf, rotations, table, scale, radius, max_freq2, params=None):
    """Extract with the compiled loop (the adjoint of the insertion's volume part)."""
    fn = core_function("insertion_extract_cpu")
    return fn(np.ascontiguousarray(volume), None if ctf is None else np.ascontiguousarray(ctf),
              np.ascontiguousarray(rotations), np.ascontiguousarray(table), float(scale), float(radius),
              float(max_freq2))
