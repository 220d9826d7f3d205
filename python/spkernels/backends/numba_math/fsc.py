"""Fourier shell correlation per-voxel math (the Numba twin of ``cpp/include/spk/fsc.h``).

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
def freq_index(i, n):
    return i if i <= (n - 1) // 2 else i - n


@njit(cache=False)
def shell_index(iz, iy, ix, nz, ny, az, ay, ax, n_shells):
    """Shell of half-spectrum voxel (iz, iy, ix), or -1 past the last shell."""
    tz = float(freq_index(iz, nz)) * az
    ty = float(freq_index(iy, ny)) * ay
    tx = float(ix) * ax
    r2 = (tz * tz + ty * ty) + tx * tx
    shell = math.floor(math.sqrt(r2) + 0.5)
    return int(shell) if shell < n_shells else -1


@njit(cache=False)
def multiplicity(ix, nx):
    """Voxels of the full spectrum that half-spectrum column `ix` stands for (1 or 2)."""
    return 1.0 if (ix == 0 or 2 * ix == nx) else 2.0
