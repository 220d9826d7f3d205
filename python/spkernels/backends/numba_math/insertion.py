"""Per-voxel Fourier insertion math (the Numba twin of ``cpp/include/spk/insertion.h``).

The functions carry the header's names and argument order (``insertion_blob_index``,
``insertion_widened_range``, ``insertion_axis_window``, ``insertion_row_interval``,
``insertion_gather_voxel``, ``insertion_pair``); tuples are returned where the header writes
through pointers. The header's ``insertion_pixel_walk`` takes its per-voxel action as an
argument; Numba's CUDA target cannot pass functions, so here
``insertion_pixel_walk_with(visit)`` builds the walk around a given ``visit`` (an ``@njit``
function for the CPU loops, a device function for the CUDA kernels, which compile the walk's
``py_func``).

Conventions (those of :mod:`spkernels.backends.numpy.insertion`, which states the family's
contract): images are centred 2-D spectra ``(n, N, N)`` with pixel ``[r, c]`` at frequency
``(u, v) = (c - h, r - h)``, ``h = N // 2``; the volume is the half volume ``(N, N, h + 1)``
with voxel ``[iz, iy, ix]`` at ``k = (ix, iy - h, iz - h)`` (x, y, z); rotation ``R`` maps a
voxel into the frame of a projection, ``p = R k``; the pair (voxel, pixel) carries the blob
weight ``table[round(d2 * scale)]`` when ``d2 = du² + (dv² + pz²) < radius²`` with
``du = u - px``, ``dv = v - py``.

Geometry and sums run in float64 here whatever the array precision (Numba promotes mixed
float32/float64 arithmetic anyway); the volume is updated once per (voxel, projection).
"""

from __future__ import annotations

import math

from numba import njit


@njit(cache=False)
def insertion_blob_index(d2, scale):
    """Table entry of squared distance `d2` (nearest sample of the r²-sampled table)."""
    return int(d2 * scale + 0.5)


@njit(cache=False)
def insertion_widened_range(x1, x2, lo, hi):
    """Integer range ``[floor(x1) - 1, floor(x2) + 1]`` clipped to [lo, hi] (widened by one on
    each side so that rounding never drops a pair)."""
    a = int(math.floor(x1)) - 1
    b = int(math.floor(x2)) + 1
    if a < lo:
        a = lo
    if b > hi:
        b = hi
    return a, b


@njit(cache=False)
def insertion_axis_window(p, radius, lo, hi):
    """Integer range ``[a, b]`` around coordinate `p` that holds every index within `radius`
    (widened by one on each side so that rounding never drops a pair), clipped to [lo, hi]."""
    return insertion_widened_range(p - radius, p + radius, lo, hi)


@njit(cache=False)
def insertion_row_interval(a, b, radius, lo, hi):
    """Integer range of x in [lo, hi] where ``|a x + b| < radius`` can hold (widened by one);
    an empty range has its first value past its last."""
    if abs(a) < 1e-12:
        if abs(b) < radius + 1e-9:
            return lo, hi
        return lo, lo - 1
    x1 = (-radius - b) / a
    x2 = (radius - b) / a
    if x1 > x2:
        x1, x2 = x2, x1
    return insertion_widened_range(x1, x2, lo, hi)


@njit(cache=False)
def insertion_dominant_axis(n0, n1, n2):
    """The axis (0: x, 1: y, 2: z of k) of the plane normal's largest component (the first of
    equal ones): a column of voxels along it crosses the plane's slab in few voxels."""
    a0, a1, a2 = abs(n0), abs(n1), abs(n2)
    if a0 >= a1 and a0 >= a2:
        return 0
    return 1 if a1 >= a2 else 2


@njit(cache=False)
def insertion_pair(px, py, pz, u, v, radius2):
    """Squared distance of pixel (u, v) from the voxel's image point (px, py, pz), or -1 when
    the pair is outside the blob."""
    du = u - px
    dv = v - py
    d2 = du * du + (dv * dv + pz * pz)
    return d2 if d2 < radius2 else -1.0


@njit(cache=False)
def insertion_gather_voxel(img, ctf, has_ctf, r, kx, ky, kz, table, scale, radius, h):
    """One voxel's sums over one projection: ``(Σ w·c·X re, im, Σ w·c²)`` with ``c`` the CTF
    (1 without). `r` is the projection's rotation, row-major flat (9,) as in the header;
    `img`/`ctf` its (N, N) arrays."""
    pz = r[6] * kx + r[7] * ky + r[8] * kz
    if abs(pz) >= radius:
        return 0.0, 0.0, 0.0
    px = r[0] * kx + r[1] * ky + r[2] * kz
    py = r[3] * kx + r[4] * ky + r[5] * kz
    radius2 = radius * radius
    pz2 = pz * pz
    # rows within the blob's disc at this depth, then per row the pixels within its chord (both
    # widened by one: the exact test is insertion_pair's)
    v0, v1 = insertion_axis_window(py, math.sqrt(radius2 - pz2), -h, h - 1)
    sre = 0.0
    sim = 0.0
    sw = 0.0
    for v in range(v0, v1 + 1):
        dv = float(v) - py
        rest = radius2 - (dv * dv + pz2)
        if rest <= 0.0:
            continue
        u0, u1 = insertion_axis_window(px, math.sqrt(rest), -h, h - 1)
        for u in range(u0, u1 + 1):
            d2 = insertion_pair(px, py, pz, float(u), float(v), radius2)
            if d2 < 0.0:
                continue
            w = table[insertion_blob_index(d2, scale)]
            x = img[v + h, u + h]
            if has_ctf:
                c = ctf[v + h, u + h]
                wc = w * c
                sre += wc * x.real
                sim += wc * x.imag
                sw += wc * c
            else:
                sre += w * x.real
                sim += w * x.imag
                sw += w
    return sre, sim, sw


def insertion_pixel_walk_with(visit):
    """The walk over one pixel's blob window, calling ``visit`` for every (voxel, pixel) pair.

    The returned ``walk(r, u, v, table, scale, radius, max_freq2, h, vol, wts, x, c)`` visits
    the voxels of the half volume around the pixel's 3-D point ``R^T (u, v, 0)`` (z, then y,
    then x ascending) that lie inside the sphere ``|k|^2 <= max_freq2`` and the blob, and calls
    ``visit(vol, wts, iz, iy, ix, w, x, c)`` with the voxel's array indices and the blob weight
    ``w = table[...]``. It returns the sums of the pairs ``visit`` returns (the extraction's
    ``(Σ w·V re, Σ w·V im)``; the scatter's visit adds into the volume and returns zeros).
    """

    def walk(r, u, v, table, scale, radius, max_freq2, h, vol, wts, x, c):
        qx = r[0] * u + r[3] * v
        qy = r[1] * u + r[4] * v
        qz = r[2] * u + r[5] * v
        radius2 = radius * radius
        z0, z1 = insertion_axis_window(qz, radius, -h, h - 1)
        y0, y1 = insertion_axis_window(qy, radius, -h, h - 1)
        x0, x1 = insertion_axis_window(qx, radius, 0, h)
        sre = 0.0
        sim = 0.0
        for kz in range(z0, z1 + 1):
            for ky in range(y0, y1 + 1):
                for kx in range(x0, x1 + 1):
                    if float(kx * kx + ky * ky + kz * kz) > max_freq2:
                        continue
                    fx, fy, fz = float(kx), float(ky), float(kz)
                    pz = r[6] * fx + r[7] * fy + r[8] * fz
                    if abs(pz) >= radius:
                        continue
                    px = r[0] * fx + r[1] * fy + r[2] * fz
                    py = r[3] * fx + r[4] * fy + r[5] * fz
                    d2 = insertion_pair(px, py, pz, u, v, radius2)
                    if d2 < 0.0:
                        continue
                    a, b = visit(vol, wts, kz + h, ky + h, kx, table[insertion_blob_index(d2, scale)], x, c)
                    sre += a
                    sim += b
        return sre, sim

    return njit(cache=False)(walk)


@njit(cache=False)
def insertion_extract_visit(vol, wts, iz, iy, ix, w, x, c):
    """The extraction's pair: ``w·V[k]`` as (re, im) (`wts`, `x`, `c` unused)."""
    y = vol[iz, iy, ix]
    return w * y.real, w * y.imag


insertion_extract_pixel = insertion_pixel_walk_with(insertion_extract_visit)
