"""Fourier shell correlation accumulation with ``@njit(parallel=True)`` (twin of ``cpp/cpu/fsc.cpp``).

It implements the fsc contract stated in :mod:`spkernels.backends.numpy.fsc`.

The FSC curve, its shells and the resolution reading stay in :mod:`spkernels.kernels.fsc`.

The half spectra come from scipy.fft, as on the ``cpu`` backend (:func:`spectra` is its).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..cpu.fsc import spectra  # noqa: F401  (the contract's spectra: the host FFT)
from ..numba_math.fsc import (FSC_COUNT, FSC_NUM, FSC_POW1, FSC_POW2, FSC_SUMS, fsc_multiplicity,
                              fsc_shell_index, fsc_voxel_terms)


@njit(parallel=True, cache=False)
def _accumulate(f1, f2, nx, az, ay, ax, n_shells):
    nz, ny, nxh = f1.shape
    # One partial histogram per z-plane, added in plane order: reproducible for any thread count.
    partial = np.zeros((nz, n_shells, FSC_SUMS))
    for iz in prange(nz):
        h = partial[iz]
        for iy in range(ny):
            for ix in range(nxh):
                s = fsc_shell_index(iz, iy, ix, nz, ny, az, ay, ax, n_shells)
                if s < 0:
                    continue
                a = f1[iz, iy, ix]
                b = f2[iz, iy, ix]
                m = fsc_multiplicity(ix, nx)
                num, p1, p2 = fsc_voxel_terms(a.real, a.imag, b.real, b.imag, m)
                h[s, FSC_NUM] += num
                h[s, FSC_POW1] += p1
                h[s, FSC_POW2] += p2
                h[s, FSC_COUNT] += m
    sums = np.zeros((n_shells, FSC_SUMS))
    for s in prange(n_shells):
        for c in range(FSC_SUMS):
            acc = 0.0
            for iz in range(nz):
                acc += partial[iz, s, c]
            sums[s, c] = acc
    return sums


def accumulate(f1, f2, nx, az, ay, ax, n_shells):
    """Per-shell sums (n_shells, 4) of two host half spectra (see the module docstring)."""
    return _accumulate(f1, f2, int(nx), float(az), float(ay), float(ax), int(n_shells))
