"""Per-element NUFFT math shared by the Numba CPU loops and the Numba CUDA kernels.

The Numba mirror of ``cpp/include/spk/nufft.h``: folding a coordinate into [-pi, pi), the
point -> fine-grid coordinate, the exponential-of-semicircle kernel and the ``w`` weights of one
axis, periodic index wrap, and the bin bookkeeping used by ``setpts`` and the gather. Where the
header has a function, the twin here has its name and argument order (``fold``, ``grid_coord``,
``wrap``, ``axis_point``, ``axis_bin``, ``bin_id``, ``es_kernel``, ``weights_horner``,
``support_offset``, ``support_meets_tile``); the others are Numba-side helpers.

Conventions (those of ``cpp/include/spk/nufft.h``, the module docstring of
:mod:`spkernels.kernels.nufft`, and the nufft backend contract described in
:mod:`spkernels.backends.numpy.nufft`): a point ``x`` in [-pi, pi) sits at fine-grid
coordinate ``t = x * n / (2 pi)``; its support is the ``w`` cells
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


def n_bins(n_fine, bin_size):
    """Bins per axis ``(nb1, nb2, nb3)`` of a fine grid (the last bin of an axis may be partial)."""
    return tuple((int(a) + int(b) - 1) // int(b) for a, b in zip(n_fine, bin_size))


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
def axis_point(x, n, w):
    """``(l0, u)`` of a (folded) coordinate on one axis, as the header's ``axis_point``:

    ``l0`` the first support cell wrapped into [0, n), ``u = l0_unwrapped - t`` in
    [-w/2, -w/2 + 1) (the weight of cell ``l0 + j`` is ``phi((u + j) / (w/2))``).
    """
    t = grid_coord(x, n)
    l0 = first_index(t, w)
    return wrap(l0, n), l0 - t


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
def weights_horner(u, w, deg, coef, out):
    """The ``w`` weights of one axis from the :func:`kernel_poly` table (Horner; no exp, no sqrt).

    ``u`` as from :func:`axis_point`; ``xi = 2 (u + w/2) - 1`` and weight ``j`` is
    ``sum_k coef[k, j] xi^(deg - k)`` (``coef`` is (deg + 1, w) here, not the header's padded
    flat table).
    """
    xi = 2.0 * (u + 0.5 * w) - 1.0
    for i in range(w):
        out[i] = coef[0, i]
    for k in range(1, deg + 1):
        for i in range(w):
            out[i] = out[i] * xi + coef[k, i]


@njit(cache=True)
def axis_weights_poly(t, w, coef, wts):
    """:func:`axis_weights` from the :func:`kernel_poly` table: :func:`weights_horner` at ``t``."""
    l0 = first_index(t, w)
    weights_horner(l0 - t, w, coef.shape[0] - 1, coef, wts)
    return l0


@njit(cache=True)
def axis_bin(x, n, bs):
    """Bin of a (folded) point along one axis: cell ``floor(t)`` wrapped into [0, n), over ``bs``."""
    return wrap(int(math.floor(grid_coord(x, n))), n) // bs


@njit(cache=True)
def bin_id(x, y, z, n1, n2, n3, bs1, bs2, bs3):
    """Bin id ``(b1 * nb2 + b2) * nb3 + b3`` of a point (coordinates already folded)."""
    nb2 = (n2 + bs2 - 1) // bs2
    nb3 = (n3 + bs3 - 1) // bs3
    return (axis_bin(x, n1, bs1) * nb2 + axis_bin(y, n2, bs2)) * nb3 + axis_bin(z, n3, bs3)


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
def support_offset(i, o, n):
    """Index into a point's ``w`` weights of tile cell ``i`` (>= w means not covered).

    ``o`` comes from :func:`offset_in_tile`; with ``0 <= i, o < n`` the result is
    ``(i - o) mod n`` with one branch instead of a division.
    """
    j = i - o
    if j < 0:
        j += n
    return j


@njit(cache=True)
def support_meets_tile(o, length, n, w):
    """Whether a support of ``w`` cells starting at tile offset ``o`` meets a tile of ``length`` cells."""
    return o < length or o + w > n
