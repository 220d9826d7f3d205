"""Per-element NUFFT math shared by the Numba CPU loops and the Numba CUDA kernels.

The Numba mirror of ``cpp/include/spk/nufft.h``: folding a coordinate into [-pi, pi), the
point -> fine-grid coordinate, the exponential-of-semicircle kernel and the ``w`` weights of one
axis, periodic index wrap, and the bin bookkeeping used by ``setpts`` and the gather.

Conventions (see ``CONTRACT-nufft.md`` / :mod:`spkernels.kernels.nufft`): a point ``x`` in
[-pi, pi) sits at fine-grid coordinate ``t = x * n / (2 pi)``; its support is the ``w`` cells
``l0 = ceil(t - w/2) ... l0 + w - 1`` (each taken modulo ``n``) with weights
``phi((l - t) / (w/2))``, ``phi(z) = exp(beta * (sqrt(1 - z^2) - 1))``.

Every function takes scalars or caller-provided small arrays only, so the same code compiles
for the CPU (``@njit``) and as a CUDA device function (numba-cuda compiles ``@njit`` callees).
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numba import njit

PI = math.pi
TWO_PI = 2.0 * math.pi
INV_TWO_PI = 1.0 / (2.0 * math.pi)
#: widest kernel any eps can ask for (eps = 1e-15 in double precision)
MAX_WIDTH = 16
#: bins a tile's gather may have to visit along one axis (3 when bs >= w//2 + 1, 4 with a
#: partial last bin; room to spare)
MAX_NEIGHBOURS = 8


@njit(cache=True)
def fold(x):
    """Fold a coordinate from [-3 pi, 3 pi) into [-pi, pi) (one period shift at most).

    Anything else finite comes back unchanged; :func:`wrap` keeps indices valid regardless.
    """
    if x < -PI:
        return x + TWO_PI
    if x >= PI:
        return x - TWO_PI
    return x + 0.0


@njit(cache=True)
def grid_coord(x, n):
    """Fine-grid coordinate of a point: ``x`` in [-pi, pi) -> [-n/2, n/2), index 0 at x = 0.

    Computed in float64 whatever the input precision: the rounding of ``t`` shifts the phase of
    every mode, and float32 would cost ~n * 1e-7 cells.
    """
    return float(x) * (n * INV_TWO_PI)


@njit(cache=True)
def wrap(l, n):
    """Periodic index ``l mod n`` in [0, n) for any integer ``l`` (negative included)."""
    # one period off is the only case folded points produce: skip the integer division
    if l >= 0:
        if l < n:
            return l
        if l < 2 * n:
            return l - n
    elif l >= -n:
        return l + n
    r = l % n
    if r < 0:
        r += n
    return r


@njit(cache=True)
def first_index(t, w):
    """First (unwrapped) fine-grid index of the support of a point at coordinate ``t``."""
    return int(math.ceil(t - 0.5 * w))


@njit(cache=True)
def es_kernel(z, beta):
    """Exponential of semicircle ``exp(beta (sqrt(1 - z^2) - 1))`` on [-1, 1], 0 outside."""
    s = 1.0 - z * z
    if s < 0.0:
        return 0.0
    return math.exp(beta * (math.sqrt(s) - 1.0))


@njit(cache=True)
def axis_weights(t, w, beta, wts):
    """Fill ``wts[0:w]`` with the kernel weights of one axis; return the first (unwrapped) index.

    ``wts`` is caller-owned (a NumPy array on the CPU, ``cuda.local.array`` on the GPU) so the
    function allocates nothing.
    """
    l0 = first_index(t, w)
    inv_half = 2.0 / w
    for i in range(w):
        wts[i] = es_kernel((l0 + i - t) * inv_half, beta)
    return l0


def kernel_poly(w, beta):
    """Piecewise-polynomial table of the kernel weights (what the CPU uses: exp is its cost).

    Returns ``coef`` (deg + 1, w), deg = w + 2, such that for ``xi = 2 (l0 - t + w/2) - 1`` in
    [-1, 1) the weight of support cell ``i`` is ``sum_k coef[k, i] xi^(deg - k)``. Fitted by
    least squares at Chebyshev points; the square-root kink of the kernel at the support edge
    caps the fit error near ``exp(-beta)`` (4e-8 for w = 7, 3e-11 for w = 10: far below eps).
    """
    return _kernel_poly(int(w), float(beta))


@functools.lru_cache(maxsize=64)
def _kernel_poly(w, beta):
    deg = w + 2
    k = 4 * (deg + 1)
    xi = np.cos(np.pi * (np.arange(k) + 0.5) / k)
    u = 0.5 * (xi + 1.0) - 0.5 * w
    coef = np.empty((deg + 1, w))
    for i in range(w):
        z = (u + i) * (2.0 / w)
        vals = np.exp(beta * (np.sqrt(np.clip(1.0 - z * z, 0.0, None)) - 1.0))
        coef[:, i] = np.polyfit(xi, vals, deg)
    coef.setflags(write=False)
    return coef


@njit(cache=True)
def axis_weights_poly(t, w, coef, wts):
    """:func:`axis_weights` from the :func:`kernel_poly` table (Horner; no exp, no sqrt)."""
    l0 = first_index(t, w)
    xi = 2.0 * (l0 - t + 0.5 * w) - 1.0
    for i in range(w):
        wts[i] = coef[0, i]
    for k in range(1, coef.shape[0]):
        for i in range(w):
            wts[i] = wts[i] * xi + coef[k, i]
    return l0


@njit(cache=True)
def home_cell(t, n):
    """Fine-grid cell a point is binned by: ``floor(t)`` wrapped into [0, n)."""
    return wrap(int(math.floor(t)), n)


@njit(cache=True)
def point_bin(x, y, z, n1, n2, n3, bs1, bs2, bs3, nb2, nb3):
    """Bin id ``(b1 * nb2 + b2) * nb3 + b3`` of a point (coordinates already folded)."""
    b1 = home_cell(grid_coord(x, n1), n1) // bs1
    b2 = home_cell(grid_coord(y, n2), n2) // bs2
    b3 = home_cell(grid_coord(z, n3), n3) // bs3
    return (b1 * nb2 + b2) * nb3 + b3


@njit(cache=True)
def range_bins(start, stop, bs, n, w, out):
    """Bins along one axis whose points can reach cells ``[start, stop)``; return their count.

    A point reaches cell ``l`` only if its home cell lies within ``w//2 + 1`` of ``l``, so the
    bins covering ``[start - m, stop - 1 + m]`` (periodically, each listed once, in a fixed
    order) are exactly the ones to visit. Works for any bin size, partial last bins and grids
    smaller than three bins; ``out`` needs ``(stop - start + 2 m) / bs + 2`` entries.
    """
    m = w // 2 + 1
    lo = start - m
    hi = stop - 1 + m
    nb = (n + bs - 1) // bs
    count = 0
    if hi - lo + 1 >= n:
        for k in range(nb):
            out[k] = k
        return nb
    q = lo
    while q <= hi:
        qq = wrap(q, n)
        bb = qq // bs
        seen = False
        for k in range(count):
            if out[k] == bb:
                seen = True
        if not seen:
            out[count] = bb
            count += 1
        q += min(bb * bs + bs, n) - qq
    return count


@njit(cache=True)
def neighbour_bins(b, bs, n, w, out):
    """:func:`range_bins` for the cells of bin ``b`` (a tile of one bin)."""
    start = b * bs
    return range_bins(start, min(start + bs, n), bs, n, w, out)


@njit(cache=True)
def offset_in_tile(l0, tile_start, n):
    """``(l0 - tile_start) mod n``: where a point's support starts relative to a tile."""
    return wrap(l0 - tile_start, n)


@njit(cache=True)
def support_index(cell_local, offset, n):
    """Index into a point's ``w`` weights for a tile-local cell (>= w means not covered).

    ``offset`` comes from :func:`offset_in_tile`; the result is ``(cell_local - offset) mod n``
    computed with two branches instead of a division.
    """
    i = cell_local - offset
    if i < 0:
        i += n
    if i >= n:
        i -= n
    return i
