"""Serial Numba loop that adds sampled 3-D Gaussians into a grid (deterministic order)."""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True)
def splat_gaussians(out, u, alpha, peak, d, half, rb):  # pragma: no cover - compiled
    """out[z, y, x] += peak_g exp(-alpha_g |r - c_g|^2) over the box of half-width rb voxels.

    u holds the centres in grid units (x, y, z) relative to the voxel at index `half`.
    """
    nz, ny, nx = out.shape
    m = 2 * rb + 1
    gx = np.empty(m)
    gy = np.empty(m)
    gz = np.empty(m)
    for g in range(u.shape[0]):
        bx = int(math.floor(u[g, 0] + 0.5))
        by = int(math.floor(u[g, 1] + 0.5))
        bz = int(math.floor(u[g, 2] + 0.5))
        a = alpha[g]
        for k in range(m):
            o = k - rb
            dx = (bx + o - u[g, 0]) * d
            dy = (by + o - u[g, 1]) * d
            dz = (bz + o - u[g, 2]) * d
            gx[k] = math.exp(-a * dx * dx)
            gy[k] = math.exp(-a * dy * dy)
            gz[k] = peak[g] * math.exp(-a * dz * dz)
        for kz in range(m):
            iz = bz + kz - rb + half[2]
            if iz < 0 or iz >= nz:
                continue
            for ky in range(m):
                iy = by + ky - rb + half[1]
                if iy < 0 or iy >= ny:
                    continue
                wzy = gz[kz] * gy[ky]
                for kx in range(m):
                    ix = bx + kx - rb + half[0]
                    if ix < 0 or ix >= nx:
                        continue
                    out[iz, iy, ix] += wzy * gx[kx]
