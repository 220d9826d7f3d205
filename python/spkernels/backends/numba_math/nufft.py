"""Per-element NUFFT math shared by the Numba CPU loops and the Numba CUDA kernels.

The Numba mirror of ``cpp/include/spk/nufft.h``: folding a coordinate into [-pi, pi), the
point -> fine-grid coordinate, the spreading kernel and the ``w`` weights of one axis, periodic
index wrap, and the bin bookkeeping used by ``setpts`` and the gather. Where the header has a
function, the twin here has its name and argument order (``fold``, ``grid_coord``, ``wrap``,
``axis_point``, ``axis_bin``, ``bin_id``, ``es_kernel``, ``pswf_chi0``, ``pswf_sum``,
``kernel_value``, ``weights_horner``, ``support_offset``, ``support_meets_tile``); the others
are Numba-side helpers.

Conventions (those of ``cpp/include/spk/nufft.h``, the module docstring of
:mod:`spkernels.kernels.nufft`, and the nufft backend contract described in
:mod:`spkernels.backends.numpy.nufft`): a point ``x`` in [-pi, pi) sits at fine-grid
coordinate ``t = x * n / (2 pi)``; its support is the ``w`` cells
``l0 = ceil(t - w/2) ... l0 + w - 1`` (each taken modulo ``n``) with weights
``phi((l - t) / (w/2))``.

The kernel ``phi`` is named by its one shape number ``beta`` (what every backend passes on):

- ``beta > 0``: the exponential of semicircle (ES), ``phi(z) = exp(beta (sqrt(1 - z^2) - 1))``,
  the kernel of finufft up to 2.4 (``kernel="es"``);
- ``beta < 0``: the prolate spheroidal wave function of order 0 (PSWF) with bandwidth
  ``c = -beta``, ``psi_0^c(z) / psi_0^c(0)`` (``kernel="pswf"``, the default, the kernel
  finufft 2.5 adopted). It is evaluated from its Legendre series ``sum_k d_2k P_2k(z)``: the
  eigenvalue ``chi_0`` of the prolate operator by Newton's method on the determinant of the
  (symmetrised) tridiagonal matrix of that series, then the coefficients by the backward
  (Miller) three-term recurrence fused with Clenshaw's sum, so nothing needs more than a few
  scalars (the CUDA twins run it per point) and the normalisation cancels in the ratio.

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
def pswf_terms(c):
    """Even Legendre terms kept in the PSWF series of bandwidth ``c`` (the last ones < 1e-17 of
    the first: measured 9, 17, 21, 30 terms needed at c = 2, 10, 23.5, 37.65)."""
    return 13 + int(0.5 * c)


@njit(cache=True)
def _pswf_diag(k, c2):
    # diagonal of the prolate operator in the Legendre basis: k (k + 1) + c^2 <z^2 P_k, P_k>
    return k * (k + 1.0) + c2 * (2.0 * k * k + 2.0 * k - 1.0) / ((2.0 * k - 1.0) * (2.0 * k + 3.0))


@njit(cache=True)
def _pswf_up(k):
    # z^2 P_k = up(k) P_{k+2} + ... : (k + 1)(k + 2) / ((2k + 1)(2k + 3))
    return (k + 1.0) * (k + 2.0) / ((2.0 * k + 1.0) * (2.0 * k + 3.0))


@njit(cache=True)
def _pswf_down(k):
    # z^2 P_k = ... + down(k) P_{k-2}: k (k - 1) / ((2k - 1)(2k + 1))
    return k * (k - 1.0) / ((2.0 * k - 1.0) * (2.0 * k + 1.0))


@njit(cache=True)
def _pswf_chi0_newton(c):
    # Newton on det(T - chi I) from chi = max(0, c - 1) <= chi_0 (measured: 0 < c - chi_0 < 0.88
    # for 0 < c <= 40): left of a real-rooted polynomial's smallest root Newton rises
    # monotonically to it. The pivots q_i of T - chi I give d/dchi log|det| = sum q_i' / q_i.
    # Returns -1 when the start is not below chi_0 (a pivot <= 0): the caller bisects instead.
    K = pswf_terms(c)
    c2 = c * c
    x = max(0.0, c - 1.0)
    for it in range(60):
        q = _pswf_diag(0.0, c2) - x
        if q <= 0.0:
            return x if it > 0 else -1.0
        dq = -1.0
        s = dq / q
        for i in range(1, K):
            k = 2.0 * i
            r = c2 * c2 * _pswf_up(k - 2.0) * _pswf_down(k) / q
            qn = _pswf_diag(k, c2) - x - r
            if qn <= 0.0:  # rounding put x at or past chi_0: x is chi_0 to rounding
                return x if it > 0 else -1.0
            dq = -1.0 + r * dq / q
            q = qn
            s += dq / q
        step = -1.0 / s
        x += step
        if step <= 1e-16 * max(1.0, x):
            return x
    return x


@njit(cache=True)
def _pswf_chi0_bisect(c):
    # bisection on [0, c^2/3] (the operator is positive; c^2/3 is P_0's Rayleigh quotient) with
    # the Sturm count: a negative pivot of T - chi I means an eigenvalue below chi
    K = pswf_terms(c)
    c2 = c * c
    lo = 0.0
    hi = c2 / 3.0
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi:
            break
        q = _pswf_diag(0.0, c2) - mid
        below = q < 0.0
        for i in range(1, K):
            if below:
                break
            k = 2.0 * i
            if q == 0.0:
                q = 1e-300
            q = _pswf_diag(k, c2) - mid - c2 * c2 * _pswf_up(k - 2.0) * _pswf_down(k) / q
            below = q < 0.0
        if below:
            hi = mid
        else:
            lo = mid
    return 0.5 * (lo + hi)


@njit(cache=True)
def pswf_chi0(c):
    """Smallest eigenvalue ``chi_0`` of the prolate operator of bandwidth ``c`` (to rounding),
    from the tridiagonal matrix ``T`` of its even Legendre series: Newton from below (a few
    passes), bisection on the Sturm count where Newton's start is not below ``chi_0``."""
    x = _pswf_chi0_newton(c)
    return x if x >= 0.0 else _pswf_chi0_bisect(c)


@njit(cache=True)
def pswf_sum(z, c, chi):
    """Unnormalised ``psi_0^c(z)`` (any z in [-1, 1]) from ``chi = pswf_chi0(c)``.

    The Legendre coefficients ``d_k`` (even k) come from the backward recurrence
    ``c^2 up(k-2) d_{k-2} + (diag(k) - chi) d_k + c^2 down(k+2) d_{k+2} = 0`` started at
    ``d = 1`` past the last kept term, and are summed as they appear by Clenshaw's recurrence
    for Legendre polynomials. The scale is arbitrary but the same for every z (ratios are the
    kernel), rescaled identically for every z when it grows large.
    """
    K = pswf_terms(c)
    c2 = c * c
    dk2 = 0.0
    dk = 1.0
    b1 = 0.0
    b2 = 0.0
    j = 2 * (K - 1) + 1
    while j >= 0:
        coef = dk if j % 2 == 0 else 0.0
        b0 = coef + ((2.0 * j + 1.0) * z / (j + 1.0)) * b1 - ((j + 1.0) / (j + 2.0)) * b2
        b2 = b1
        b1 = b0
        if j % 2 == 0 and j >= 2:
            k = float(j)
            dm = -((_pswf_diag(k, c2) - chi) * dk + c2 * _pswf_down(k + 2.0) * dk2) / (c2 * _pswf_up(k - 2.0))
            dk2 = dk
            dk = dm
            if abs(dk) > 1e150:
                dk *= 1e-150
                dk2 *= 1e-150
                b1 *= 1e-150
                b2 *= 1e-150
        j -= 1
    return b1


@njit(cache=True)
def kernel_value(z, beta):
    """The spreading kernel ``phi(z)`` named by ``beta``: ES for beta > 0, PSWF of bandwidth
    ``-beta`` (1 at z = 0) for beta < 0; 0 for |z| > 1. One value: the PSWF's eigenvalue is
    solved per call here, so loops use :func:`axis_weights` (one solve per point and axis)."""
    if beta > 0.0:
        return es_kernel(z, beta)
    if z > 1.0 or z < -1.0:
        return 0.0
    c = -beta
    chi = pswf_chi0(c)
    return pswf_sum(z, c, chi) / pswf_sum(0.0, c, chi)


@njit(cache=True)
def axis_weights(t, w, beta, wts):
    """Fill ``wts[0:w]`` with the kernel weights of one axis; return the first (unwrapped) index.

    ``wts`` is caller-owned (a NumPy array on the CPU, ``cuda.local.array`` on the GPU) so the
    function allocates nothing.
    """
    l0 = first_index(t, w)
    inv_half = 2.0 / w
    if beta > 0.0:
        for i in range(w):
            wts[i] = es_kernel((l0 + i - t) * inv_half, beta)
        return l0
    c = -beta
    chi = pswf_chi0(c)
    inv0 = 1.0 / pswf_sum(0.0, c, chi)
    for i in range(w):
        zz = (l0 + i - t) * inv_half
        if zz > 1.0 or zz < -1.0:
            wts[i] = 0.0
        else:
            wts[i] = pswf_sum(zz, c, chi) * inv0
    return l0


def kernel_values(z, beta):
    """:func:`kernel_value` over a NumPy array ``z`` (host-side: tables, phihat, the reference)."""
    z = np.asarray(z, dtype=np.float64)
    if beta > 0:
        s = 1.0 - z * z
        return np.where(s >= 0.0, np.exp(beta * (np.sqrt(np.clip(s, 0.0, None)) - 1.0)), 0.0)
    return _pswf_values(z.ravel(), float(-beta)).reshape(z.shape)


@njit(cache=True)
def _pswf_values(z, c):
    out = np.empty(z.shape[0])
    chi = pswf_chi0(c)
    inv0 = 1.0 / pswf_sum(0.0, c, chi)
    for i in range(z.shape[0]):
        zi = z[i]
        out[i] = 0.0 if (zi > 1.0 or zi < -1.0) else pswf_sum(zi, c, chi) * inv0
    return out


def kernel_poly(w, beta):
    """Piecewise-polynomial table of the kernel weights (what the CPU uses: exp is its cost).

    Returns ``coef`` (deg + 1, w), deg = w + 2, such that for ``xi = 2 (l0 - t + w/2) - 1`` in
    [-1, 1) the weight of support cell ``i`` is ``sum_k coef[k, i] xi^(deg - k)``. Fitted by
    least squares at Chebyshev points. For ES the square-root kink of the kernel at the support
    edge caps the fit error near ``exp(-beta)`` (4e-8 for w = 7, 3e-11 for w = 10: far below
    eps); the PSWF is entire, so the fit converges faster.
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
        coef[:, i] = np.polyfit(xi, kernel_values(z, beta), deg)
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
