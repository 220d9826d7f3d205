"""Fourier shell correlation accumulation with ``@cuda.jit`` (twin of ``cpp/cuda/fsc.cu``).

Deterministic without float atomics: every warp owns a shell histogram in shared memory and
its 32 lanes add their voxel into it one lane after another (lane order), so no two threads
write the same word at once; the block adds its warps' histograms in warp order into its own
partial row, and a second kernel adds the rows in block order. The C++ kernel groups lanes of
the same shell with ``__match_any_sync`` instead of serialising them.

It implements the fsc contract stated in :mod:`spkernels.backends.numpy.fsc`.

The FSC curve, its shells and the resolution reading stay in :mod:`spkernels.kernels.fsc`.

:func:`spectra` is the ``cuda`` backend's (cupy.fft, or a host FFT when CuPy is missing).
"""

from __future__ import annotations

import numpy as np
from numba import cuda, float64

from ... import backends as _backends
from ..cuda.fsc import spectra  # noqa: F401  (the contract's spectra: cupy.fft or the host FFT)
from . import to_device
from ..numba_math.fsc import (FSC_COUNT, FSC_NUM, FSC_POW1, FSC_POW2, FSC_SUMS, fsc_multiplicity,
                              fsc_shell_index, fsc_voxel_terms)

# The simulator has no syncwarp; the loop below is block-uniform, so a block barrier is a valid
# (slower) stand-in there.
_SIM = _backends.cuda_simulator()

WARPS = 4
THREADS = WARPS * 32
MAX_BLOCKS = 1024


@cuda.jit(cache=False)
def _partial_kernel(f1, f2, nx, az, ay, ax, n_shells, partial):
    hist = cuda.shared.array(0, dtype=float64)  # [WARPS][n_shells * FSC_SUMS]
    row = n_shells * FSC_SUMS
    tid = cuda.threadIdx.x
    for j in range(tid, WARPS * row, cuda.blockDim.x):
        hist[j] = 0.0
    cuda.syncthreads()
    nz, ny, nxh = f1.shape
    warp = tid // 32
    lane = tid % 32
    off = warp * row
    total = nz * ny * nxh
    stride = cuda.gridDim.x * cuda.blockDim.x
    # Block-uniform loop (every thread runs the same number of steps) so that either barrier
    # below is legal.
    block_base = cuda.blockIdx.x * cuda.blockDim.x
    while block_base < total:
        i = block_base + warp * 32 + lane
        s = -1
        num = 0.0
        p1 = 0.0
        p2 = 0.0
        m = 0.0
        if i < total:
            ix = i % nxh
            t = i // nxh
            iy = t % ny
            iz = t // ny
            s = fsc_shell_index(iz, iy, ix, nz, ny, az, ay, ax, n_shells)
            if s >= 0:
                a = f1[iz, iy, ix]
                b = f2[iz, iy, ix]
                m = fsc_multiplicity(ix, nx)
                num, p1, p2 = fsc_voxel_terms(a.real, a.imag, b.real, b.imag, m)
        for l in range(32):
            if lane == l and s >= 0:
                k = off + s * FSC_SUMS
                hist[k + FSC_NUM] += num
                hist[k + FSC_POW1] += p1
                hist[k + FSC_POW2] += p2
                hist[k + FSC_COUNT] += m
            if _SIM:
                cuda.syncthreads()
            else:
                cuda.syncwarp(0xFFFFFFFF)
        block_base += stride
    cuda.syncthreads()
    for j in range(tid, row, cuda.blockDim.x):
        v = 0.0
        for w in range(WARPS):
            v += hist[w * row + j]
        partial[cuda.blockIdx.x, j] = v


@cuda.jit(cache=False)
def _reduce_kernel(partial, sums):
    j = cuda.grid(1)
    if j >= partial.shape[1]:
        return
    v = 0.0
    for b in range(partial.shape[0]):
        v += partial[b, j]
    sums[j] = v


def accumulate(f1, f2, nx, az, ay, ax, n_shells):
    """Per-shell sums of two half spectra (device or host arrays); a Numba device array (n_shells, 4)."""
    d1, d2 = to_device(f1), to_device(f2)
    nz, ny, nxh = d1.shape
    total = nz * ny * nxh
    row = int(n_shells) * FSC_SUMS
    blocks = int(min(max(1, -(-total // (THREADS * 4))), MAX_BLOCKS))
    partial = cuda.device_array((blocks, row), dtype=np.float64)
    sums = cuda.device_array(row, dtype=np.float64)
    smem = WARPS * row * 8
    _partial_kernel[blocks, THREADS, 0, smem](d1, d2, int(nx), float(az), float(ay), float(ax), int(n_shells),
                                              partial)
    _reduce_kernel[max(1, -(-row // 256)), 256](partial, sums)
    return sums.reshape(int(n_shells), FSC_SUMS)
