"""Fourier insertion with ``@njit(parallel=True)`` (twin of ``cpp/cpu/insertion.cpp``).

It implements the insertion contract stated in :mod:`spkernels.backends.numpy.insertion`.

``gather``: each thread owns whole z-planes of the half volume and walks the projections in
their given order; per plane and projection only the rows' x-intervals that meet the slab
``|p_z| < radius`` are visited, and each voxel sums its blob window of pixels in registers before
one update of the volume. No two threads write a voxel, so the result is bitwise the same for
any thread count. ``scatter``: the pixel-driven baseline (each pixel adds into the voxels of its
blob window), serial because Numba has no floating-point atomics on the CPU.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .._shared import host_arrays as array_module  # noqa: F401
from ..numba_math.insertion import (insertion_extract_pixel, insertion_gather_voxel, insertion_pixel_walk_with,
                                    insertion_row_interval)

METHODS = ("gather", "scatter")


@njit(parallel=True, cache=False)
def _gather(images, ctf, has_ctf, rot, table, scale, radius, max_freq2, vol, wts):
    n, N, _ = images.shape
    h = N // 2
    for iz in prange(N):
        kz = iz - h
        for j in range(n):
            r = rot[j]  # flat (9,)
            img = images[j]
            c = ctf[j] if has_ctf else ctf[0]
            for iy in range(N):
                ky = iy - h
                rest = max_freq2 - float(ky * ky + kz * kz)
                if rest < 0.0:
                    continue
                xmax = min(h, int(math.floor(math.sqrt(rest))))
                x0, x1 = insertion_row_interval(r[6], r[7] * ky + r[8] * kz, radius, 0, xmax)
                for ix in range(x0, x1 + 1):
                    if float(ix * ix + ky * ky + kz * kz) > max_freq2:
                        continue
                    sre, sim, sw = insertion_gather_voxel(img, c, has_ctf, r, float(ix), float(ky), float(kz),
                                                          table, scale, radius, h)
                    if sw != 0.0 or sre != 0.0 or sim != 0.0:
                        vol[iz, iy, ix] += complex(sre, sim)
                        wts[iz, iy, ix] += sw


@njit(cache=False)
def _scatter_visit(vol, wts, iz, iy, ix, w, x, c):
    wc = w * c
    vol[iz, iy, ix] += wc * x
    wts[iz, iy, ix] += wc * c
    return 0.0, 0.0


_scatter_pixel = insertion_pixel_walk_with(_scatter_visit)


@njit(cache=False)
def _scatter(images, ctf, has_ctf, rot, table, scale, radius, max_freq2, vol, wts):
    n, N, _ = images.shape
    h = N // 2
    for j in range(n):
        r = rot[j]
        for row in range(N):
            for col in range(N):
                c = ctf[j, row, col] if has_ctf else 1.0
                _scatter_pixel(r, float(col - h), float(row - h), table, scale, radius, max_freq2, h, vol, wts,
                               images[j, row, col], c)


@njit(parallel=True, cache=False)
def _extract(vol, ctf, has_ctf, rot, table, scale, radius, max_freq2, out):
    n, N, _ = out.shape
    h = N // 2
    for t in prange(n * N):
        j = t // N
        row = t % N
        r = rot[j]
        for col in range(N):
            sre, sim = insertion_extract_pixel(r, float(col - h), float(row - h), table, scale, radius, max_freq2, h,
                                               vol, vol, 0.0, 0.0)
            c = ctf[j, row, col] if has_ctf else 1.0
            out[j, row, col] = complex(c * sre, c * sim)


def _ctf_arg(ctf, images_dtype):
    # the placeholder has the real type a CTF would have, so both calls share one compilation
    if ctf is None:
        return np.ones((1, 1, 1), dtype=np.empty(0, dtype=images_dtype).real.dtype), False
    return ctf, True


def insert(images, ctf, rotations, table, scale, radius, max_freq2, volume, weights, method="gather",
           params=None):
    """Insert on the host with the Numba loops (in place; see the module docstring)."""
    c, has = _ctf_arg(ctf, images.dtype)
    fn = _gather if method == "gather" else _scatter
    fn(images, c, has, rotations.reshape(-1, 9), table, float(scale), float(radius), float(max_freq2), volume, weights)
    return volume, weights


def extract(volume, ctf, rotations, table, scale, radius, max_freq2, params=None):
    """Extract on the host with the Numba loop (the adjoint of the gather's volume part)."""
    c, has = _ctf_arg(ctf, volume.dtype)
    N = volume.shape[0]
    out = np.empty((rotations.shape[0], N, N), dtype=volume.dtype)
    _extract(volume, c, has, rotations.reshape(-1, 9), table, float(scale), float(radius), float(max_freq2), out)
    return out
