"""Fourier shell correlation accumulation with ``@njit(parallel=True)`` (twin of ``cpp/cpu/fsc.cpp``)."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..numba_math.fsc import FSC_SUMS, multiplicity, shell_index


@njit(parallel=True, cache=False)
def _accumulate(f1, f2, nx, az, ay, ax, n_shells):
    nz, ny, nxh = f1.shape
    # One partial histogram per z-plane, added in plane order: reproducible for any thread count.
    partial = np.zeros((nz, n_shells, FSC_SUMS))
    for iz in prange(nz):
        h = partial[iz]
        for iy in range(ny):
            for ix in range(nxh):
                s = shell_index(iz, iy, ix, nz, ny, az, ay, ax, n_shells)
                if s < 0:
                    continue
                a = f1[iz, iy, ix]
                b = f2[iz, iy, ix]
                m = multiplicity(ix, nx)
                h[s, 0] += m * (a.real * b.real + a.imag * b.imag)
                h[s, 1] += m * (a.real * a.real + a.imag * a.imag)
                h[s, 2] += m * (b.real * b.real + b.imag * b.imag)
                h[s, 3] += m
    sums = np.zeros((n_shells, FSC_SUMS))
    for s in prange(n_shells):
        for c in range(FSC_SUMS):
            acc = 0.0
            for iz in range(nz):
                acc += partial[iz, s, c]
            sums[s, c] = acc
    return sums


def fsc_accumulate(f1, f2, nx, az, ay, ax, n_shells):
    """Per-shell sums (n_shells, 4) of two rfftn half spectra (see :mod:`spkernels.kernels.fsc`)."""
    return _accumulate(f1, f2, int(nx), float(az), float(ay), float(ax), int(n_shells))
