"""Fourier shell correlation per-voxel math (the Numba twin of ``cpp/include/spk/fsc.h``).

The functions carry the header's names and argument order (``fsc_freq_index``,
``fsc_shell_index``, ``fsc_multiplicity``, ``fsc_voxel_terms``; the last returns its three
products instead of writing through pointers), and ``FSC_NUM`` ... ``FSC_SUMS`` are the
header's ``kFscNum`` ... ``kFscSums``, defined here once for both Numba kernels.

Called by the ``prange`` loop in :mod:`..numba_cpu.fsc` and by the ``@cuda.jit`` kernel in
:mod:`..numba_cuda.fsc`. See the C++ header for the conventions (half spectrum, shells centred
on multiples of the shell width, multiplicity of the Hermitian twins).
"""

from __future__ import annotations

import math

from numba import njit

FSC_NUM, FSC_POW1, FSC_POW2, FSC_COUNT = 0, 1, 2, 3
FSC_SUMS = 4


@njit(cache=False)
def fsc_freq_index(i, n):
    return i if i <= (n - 1) // 2 else i - n


@njit(cache=False)
def fsc_shell_index(iz, iy, ix, nz, ny, az, ay, ax, n_shells):
    """Shell of half-spectrum voxel (iz, iy, ix), or -1 past the last shell."""
    tz = float(fsc_freq_index(iz, nz)) * az
    ty = float(fsc_freq_index(iy, ny)) * ay
    tx = float(ix) * ax
    r2 = (tz * tz + ty * ty) + tx * tx
    shell = math.floor(math.sqrt(r2) + 0.5)
    return int(shell) if shell < n_shells else -1


@njit(cache=False)
def fsc_multiplicity(ix, nx):
    """Voxels of the full spectrum that half-spectrum column `ix` stands for (1 or 2)."""
    return 1.0 if (ix == 0 or 2 * ix == nx) else 2.0


@njit(cache=False)
def fsc_voxel_terms(re1, im1, re2, im2, mult):
    """The three products of one voxel, weighted by its multiplicity: (num, p1, p2)."""
    num = mult * (re1 * re2 + im1 * im2)
    p1 = mult * (re1 * re1 + im1 * im1)
    p2 = mult * (re2 * re2 + im2 * im2)
    return num, p1, p2
