"""NUFFT spreading / interpolation on the CPU with ``@njit(parallel=True)``.

It implements the nufft contract stated in :mod:`spkernels.backends.numpy.nufft`.

Here:

- :func:`setpts` bins points by fine-grid cell and stable-sorts them by bin (counting sort:
  ties keep their original order), which makes every later pass deterministic.
- :func:`spread` ``method="gather"`` is output-driven: one task per tile of 3 x 3 x 3 bins of
  the fine grid sums, in a fixed order, the points of the neighbouring bins that reach it, then writes
  the tile it alone owns. No atomics, bitwise reproducible.
  ``method="scatter"`` is point-driven: each thread scatters a contiguous slice of the sorted
  points into its own full private grid, and the private grids are summed at the end (the
  baseline; it needs one grid per thread, so the thread count is capped by memory).
  The kernel weights of every point are computed once before the gather (a cache of
  ``M * 3 * (8 + w * itemsize)`` bytes: :func:`max_points` bounds M per call).
- :func:`interp` is a point-driven gather over the sorted points.

Points arrive already folded into [-pi, pi); the per-element math is in
:mod:`spkernels.backends.numba_math.nufft`, shared with the CUDA twins. The kernel weights come
from its piecewise-polynomial table (Horner, as the C++ CPU path does): exp and sqrt were half
the CPU time; the GPU twins evaluate the kernel directly.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from .._shared import always_available, host_arrays

from ..numba_math.nufft import (
    MAX_NEIGHBOURS,
    MAX_WIDTH,
    axis_point,
    bin_id,
    kernel_poly,
    n_bins,
    range_bins,
    support_meets_tile,
    weights_horner,
    wrap,
)


#: gather tiles are TILE_BINS^3 bins (the Python layer asks for bins of about BIN_TARGET cells)
TILE_BINS = 3
BIN_TARGET, BIN_MAX = 8, 32
EXACT = False
#: bytes the gather's per-point weight cache may take; the Python layer batches points above it
WEIGHT_CACHE_BYTES = 1 << 30

array_module = host_arrays


why_unavailable = always_available


def max_points(w):
    """Points per spreading call so the gather's weight cache stays under WEIGHT_CACHE_BYTES."""
    return max(1 << 20, WEIGHT_CACHE_BYTES // (3 * 8 * (int(w) + 1)))


@njit(parallel=True, cache=True)
def _bin_ids(x, y, z, n1, n2, n3, bs1, bs2, bs3, out):
    for j in prange(x.shape[0]):
        out[j] = bin_id(x[j], y[j], z[j], n1, n2, n3, bs1, bs2, bs3)


@njit(cache=True)
def _counting_sort(bins, nbins, perm, offsets):
    # stable: equal bins keep increasing original index, so the order is reproducible
    for k in range(nbins + 1):
        offsets[k] = 0
    for j in range(bins.shape[0]):
        offsets[bins[j] + 1] += 1
    for k in range(nbins):
        offsets[k + 1] += offsets[k]
    pos = offsets[:-1].copy()
    for j in range(bins.shape[0]):
        b = bins[j]
        perm[pos[b]] = j
        pos[b] += 1


def setpts(x, y, z, n_fine, bin_size):
    """Stable sort of the points by fine-grid bin: ``(perm int64 (M,), bin_offsets int64 (nbins+1,))``."""
    n1, n2, n3 = (int(v) for v in n_fine)
    bs1, bs2, bs3 = (int(v) for v in bin_size)
    nb1, nb2, nb3 = n_bins(n_fine, bin_size)
    m = x.shape[0]
    bins = np.empty(m, np.int64)
    _bin_ids(x, y, z, n1, n2, n3, bs1, bs2, bs3, bins)
    perm = np.empty(m, np.int64)
    offsets = np.empty(nb1 * nb2 * nb3 + 1, np.int64)
    _counting_sort(bins, nb1 * nb2 * nb3, perm, offsets)
    return perm, offsets


@njit(parallel=True, cache=True)
def _weight_cache(x, y, z, perm, n1, n2, n3, w, coef, l0s, wts):
    # every point's first support index and 3 x w weights, once, in sorted order: the gather
    # visits a point from every tile it reaches and would otherwise redo the exps. Chunks with a
    # private scratch row: a view like wts[p, 0] per point would cost reference-count atomics
    # that the threads fight over.
    m = perm.shape[0]
    deg = coef.shape[0] - 1
    nchunk = min(m, 256)
    for ch in prange(nchunk):
        row = np.empty(MAX_WIDTH, np.float64)
        for p in range(ch * m // nchunk, (ch + 1) * m // nchunk):
            idx = perm[p]
            # stored wrapped into [0, n): the tile offset is then one compare away (no modulo)
            l0, u = axis_point(x[idx], n1, w)
            weights_horner(u, w, deg, coef, row)
            l0s[p, 0] = l0
            for i in range(w):
                wts[p, 0, i] = row[i]
            l0, u = axis_point(y[idx], n2, w)
            weights_horner(u, w, deg, coef, row)
            l0s[p, 1] = l0
            for i in range(w):
                wts[p, 1, i] = row[i]
            l0, u = axis_point(z[idx], n3, w)
            weights_horner(u, w, deg, coef, row)
            l0s[p, 2] = l0
            for i in range(w):
                wts[p, 2, i] = row[i]


@njit(cache=True)
def _offset(l0w, start, n):
    """``offset_in_tile`` for a first index already wrapped into [0, n)."""
    d = l0w - start
    if d < 0:
        d += n
    return d


@njit(cache=True)
def _tile_axis(l0, wts, p, axis, w, start, length, n, cells, vals):
    """The part of one axis' support inside a tile: fills (cell, weight) pairs, returns the count."""
    off = _offset(l0, start, n)
    count = 0
    for i in range(w):
        a = off + i
        if a >= n:
            a -= n
        if a < length:
            cells[count] = a
            vals[count] = wts[p, axis, i]
            count += 1
    return count


@njit(cache=True)
def _reaches(l0, w, start, length, n):
    """Whether a support along one axis meets the tile."""
    return support_meets_tile(_offset(l0, start, n), length, n, w)


@njit(parallel=True, cache=True)
def _gather(l0s, wts, perm, c, offsets, n1, n2, n3, bs1, bs2, bs3, w, k, fine):
    # one task per tile of k x k x k bins: every point is tested by (k + 2)^3 / k^3 tiles
    # (27 for k = 1, 8 for k = 2, 4.6 for k = 3) but used by only ((tile + w) / tile)^3 of them
    nv = c.shape[0]
    nb2 = (n2 + bs2 - 1) // bs2
    nb3 = (n3 + bs3 - 1) // bs3
    ts1 = k * bs1
    ts2 = k * bs2
    ts3 = k * bs3
    nt1 = (n1 + ts1 - 1) // ts1
    nt2 = (n2 + ts2 - 1) // ts2
    nt3 = (n3 + ts3 - 1) // ts3
    for tile in prange(nt1 * nt2 * nt3):
        t3 = tile % nt3
        t2 = (tile // nt3) % nt2
        t1 = tile // (nt3 * nt2)
        s1 = t1 * ts1
        s2 = t2 * ts2
        s3 = t3 * ts3
        len1 = min(s1 + ts1, n1) - s1
        len2 = min(s2 + ts2, n2) - s2
        len3 = min(s3 + ts3, n3) - s3
        # flat accumulator: the w^3 loop below is then index additions only
        tsize = len1 * len2 * len3
        acc = np.zeros(nv * tsize, fine.dtype)
        nbr1 = np.empty(MAX_NEIGHBOURS, np.int64)
        nbr2 = np.empty(MAX_NEIGHBOURS, np.int64)
        nbr3 = np.empty(MAX_NEIGHBOURS, np.int64)
        k1 = range_bins(s1, s1 + len1, bs1, n1, w, nbr1)
        k2 = range_bins(s2, s2 + len2, bs2, n2, w, nbr2)
        k3 = range_bins(s3, s3 + len3, bs3, n3, w, nbr3)
        c1 = np.empty(MAX_WIDTH, np.int64)
        c2 = np.empty(MAX_WIDTH, np.int64)
        c3 = np.empty(MAX_WIDTH, np.int64)
        v1 = np.empty(MAX_WIDTH, wts.dtype)
        v2 = np.empty(MAX_WIDTH, wts.dtype)
        v3 = np.empty(MAX_WIDTH, wts.dtype)
        for i in range(k1):
            for j in range(k2):
                for kk in range(k3):
                    b = (nbr1[i] * nb2 + nbr2[j]) * nb3 + nbr3[kk]
                    for p in range(offsets[b], offsets[b + 1]):
                        if not (_reaches(l0s[p, 0], w, s1, len1, n1) and _reaches(l0s[p, 1], w, s2, len2, n2)
                                and _reaches(l0s[p, 2], w, s3, len3, n3)):
                            continue
                        m1 = _tile_axis(l0s[p, 0], wts, p, 0, w, s1, len1, n1, c1, v1)
                        m2 = _tile_axis(l0s[p, 1], wts, p, 1, w, s2, len2, n2, c2, v2)
                        m3 = _tile_axis(l0s[p, 2], wts, p, 2, w, s3, len3, n3, c3, v3)
                        idx = perm[p]
                        # the tile part of the axis-3 support is contiguous unless it wraps
                        run = c3[m3 - 1] - c3[0] == m3 - 1
                        for v in range(nv):
                            cv = c[v, idx]
                            vbase = v * tsize
                            for a in range(m1):
                                ca = cv * v1[a]
                                for bb in range(m2):
                                    cab = ca * v2[bb]
                                    row = vbase + (c1[a] * len2 + c2[bb]) * len3
                                    if run:
                                        r0 = row + c3[0]
                                        for cc in range(m3):
                                            acc[r0 + cc] += cab * v3[cc]
                                    else:
                                        for cc in range(m3):
                                            acc[row + c3[cc]] += cab * v3[cc]
        fine[:, s1:s1 + len1, s2:s2 + len2, s3:s3 + len3] = acc.reshape((nv, len1, len2, len3))


@njit(parallel=True, cache=True)
def _scatter(x, y, z, c, perm, w, coef, parts):
    nchunk = parts.shape[0]
    nv = parts.shape[1]
    n1 = parts.shape[2]
    n2 = parts.shape[3]
    n3 = parts.shape[4]
    m = perm.shape[0]
    deg = coef.shape[0] - 1
    for ch in prange(nchunk):
        lo = ch * m // nchunk
        hi = (ch + 1) * m // nchunk
        w1 = np.empty(MAX_WIDTH, np.float64)
        w2 = np.empty(MAX_WIDTH, np.float64)
        w3 = np.empty(MAX_WIDTH, np.float64)
        i1 = np.empty(MAX_WIDTH, np.int64)
        i2 = np.empty(MAX_WIDTH, np.int64)
        i3 = np.empty(MAX_WIDTH, np.int64)
        for p in range(lo, hi):
            idx = perm[p]
            l1, u1 = axis_point(x[idx], n1, w)
            l2, u2 = axis_point(y[idx], n2, w)
            l3, u3 = axis_point(z[idx], n3, w)
            weights_horner(u1, w, deg, coef, w1)
            weights_horner(u2, w, deg, coef, w2)
            weights_horner(u3, w, deg, coef, w3)
            for i in range(w):
                i1[i] = wrap(l1 + i, n1)
                i2[i] = wrap(l2 + i, n2)
                i3[i] = wrap(l3 + i, n3)
            for v in range(nv):
                cv = c[v, idx]
                for a in range(w):
                    ca = cv * w1[a]
                    for b in range(w):
                        cab = ca * w2[b]
                        for cc in range(w):
                            parts[ch, v, i1[a], i2[b], i3[cc]] += cab * w3[cc]


def spread(x, y, z, c, perm, bin_offsets, n_fine, bin_size, w, beta, method, max_bytes=None):
    """Spread ``c`` (V, M) onto a zeroed fine grid (V, n1, n2, n3); see the module docstring.

    ``max_bytes`` caps the memory of the scatter's private grids (one per thread).
    """
    n1, n2, n3 = (int(v) for v in n_fine)
    nv = c.shape[0]
    if method == "gather":
        fine = np.empty((nv, n1, n2, n3), c.dtype)  # every cell is written by exactly one tile
        bs1, bs2, bs3 = (int(v) for v in bin_size)
        m = perm.shape[0]
        l0s = np.empty((m, 3), np.int64)
        # weights in the data's precision: half the cache for complex64
        wts = np.empty((m, 3, int(w)), np.float32 if c.dtype == np.complex64 else np.float64)
        _weight_cache(x, y, z, perm, n1, n2, n3, int(w), kernel_poly(w, beta), l0s, wts)
        _gather(l0s, wts, perm, c, bin_offsets, n1, n2, n3, bs1, bs2, bs3, int(w), TILE_BINS, fine)
        return fine
    if method != "scatter":
        raise ValueError(f"`method` must be 'gather' or 'scatter', got {method!r}")
    grid_bytes = nv * n1 * n2 * n3 * c.dtype.itemsize
    nchunk = numba.get_num_threads()
    if max_bytes is not None:
        nchunk = max(1, min(nchunk, int(max_bytes // max(grid_bytes, 1))))
    nchunk = max(1, min(nchunk, perm.shape[0]))
    parts = np.zeros((nchunk, nv, n1, n2, n3), c.dtype)
    _scatter(x, y, z, c, perm, int(w), kernel_poly(w, beta), parts)
    if nchunk == 1:
        return parts[0]
    fine = parts[0]
    for k in range(1, nchunk):  # fixed order: the baseline is reproducible too
        fine += parts[k]
    return fine


@njit(parallel=True, cache=True)
def _interp(x, y, z, fine, perm, w, coef, nchunk, out):
    nv = fine.shape[0]
    n1 = fine.shape[1]
    n2 = fine.shape[2]
    n3 = fine.shape[3]
    flat = fine.reshape(nv, n1 * n2 * n3)
    m = perm.shape[0]
    deg = coef.shape[0] - 1
    for ch in prange(nchunk):
        lo = ch * m // nchunk
        hi = (ch + 1) * m // nchunk
        w1 = np.empty(MAX_WIDTH, np.float64)
        w2 = np.empty(MAX_WIDTH, np.float64)
        w3 = np.empty(MAX_WIDTH, np.float64)
        o1 = np.empty(MAX_WIDTH, np.int64)
        o2 = np.empty(MAX_WIDTH, np.int64)
        i3 = np.empty(MAX_WIDTH, np.int64)
        for p in range(lo, hi):
            idx = perm[p]
            l1, u1 = axis_point(x[idx], n1, w)
            l2, u2 = axis_point(y[idx], n2, w)
            l3, u3 = axis_point(z[idx], n3, w)
            weights_horner(u1, w, deg, coef, w1)
            weights_horner(u2, w, deg, coef, w2)
            weights_horner(u3, w, deg, coef, w3)
            # flat offsets per axis: the w^3 loop is then additions only
            for i in range(w):
                o1[i] = wrap(l1 + i, n1) * (n2 * n3)
                o2[i] = wrap(l2 + i, n2) * n3
                i3[i] = wrap(l3 + i, n3)
            run = i3[w - 1] - i3[0] == w - 1  # axis-3 support contiguous (no wrap)
            for v in range(nv):
                s = 0j
                for a in range(w):
                    sa = 0j
                    for b in range(w):
                        base = o1[a] + o2[b]
                        sb = 0j
                        if run:
                            r0 = base + i3[0]
                            for cc in range(w):
                                sb += flat[v, r0 + cc] * w3[cc]
                        else:
                            for cc in range(w):
                                sb += flat[v, base + i3[cc]] * w3[cc]
                        sa += sb * w2[b]
                    s += sa * w1[a]
                out[v, idx] = s


def interp(x, y, z, fine, perm, w, beta):
    """Values (V, M) at the points interpolated from the fine grid (V, n1, n2, n3)."""
    nv = fine.shape[0]
    m = perm.shape[0]
    out = np.empty((nv, m), fine.dtype)
    # many more chunks than threads: sorted points make neighbouring chunks similar in cost,
    # but bins can be very uneven
    nchunk = max(1, min(m, 64 * numba.get_num_threads()))
    _interp(x, y, z, fine, perm, int(w), kernel_poly(w, beta), nchunk, out)
    return out
