"""NUFFT spreading / interpolation as Numba CUDA kernels (``@cuda.jit``).

It implements the nufft contract stated in :mod:`spkernels.backends.numpy.nufft`.

Arrays come in as CuPy arrays on a real GPU (the FFT needs CuPy anyway) or as NumPy arrays
under Numba's CUDA simulator (where "device" memory is host memory and the FFT is scipy's);
results go back in the same kind. Kernels:

- ``setpts``: one thread per point computes its bin id (shared math); the stable sort by bin is
  done by CuPy on the device (``argsort`` of the unique key ``bin * M + index``, so stability
  does not depend on the sort algorithm), by NumPy on the host under the simulator.
- ``interp``: one thread per sorted point reads its w^3 neighbourhood (point-driven gather).
- ``spread`` ``method="gather"``: one block per bin-sized tile of the fine grid, one thread per
  (a1, a2) column of the tile holding the column's len3 accumulators. The block stages batches
  of points from the neighbouring bins into shared memory (their tile offsets and 3 x w kernel
  weights, computed once per point and block); each thread then adds the staged points that
  reach its column, in bin order then sorted order. No atomics: bitwise deterministic.
- ``spread`` ``method="scatter"``: one thread per sorted point, ``cuda.atomic.add`` on the real
  and imaginary parts (the non-deterministic baseline).

Weights: the ES kernel (``beta > 0``) is evaluated directly; the PSWF (``beta < 0``) from the
Numba CPU twin's :func:`~spkernels.backends.numba_math.nufft.kernel_poly` table (Horner), as the
CUDA C++ kernels do with theirs: a direct PSWF costs an eigenvalue solve and w + 1 Legendre
series per axis and point.
"""

from __future__ import annotations

import functools
import os

import numpy as np

from .._shared import cupy_missing, no_point_limit
from numba import cuda  # a module global: the simulator swaps it while kernels run

from ..numba_math.nufft import (
    MAX_NEIGHBOURS,
    MAX_WIDTH,
    axis_weights,
    first_index,
    kernel_poly,
    weights_horner,
    grid_coord,
    bin_id,
    n_bins,
    neighbour_bins,
    offset_in_tile,
    support_meets_tile,
    support_offset,
    wrap,
)
from . import blocks_for, to_device

#: points staged in shared memory per batch of the gather (3 x 64 x 16 float64 = 24 KiB)
STAGE = 64
#: the gather keeps one tile column per thread in local memory: bin sizes must not exceed this
MAX_BIN = 16
#: threads per block of the point-parallel kernels (the simulator runs each thread as a Python
#: thread: fewer per block keeps its tiny test sizes fast)
THREADS = 32 if os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0") else 128
BIN_TARGET, BIN_MAX = 8, MAX_BIN
EXACT = False


def array_module():
    """CuPy on a real GPU (its FFT is the one used); NumPy under Numba's CUDA simulator."""
    from .. import cuda_simulator

    if cuda_simulator():
        return np
    import cupy

    return cupy

max_points = no_point_limit


def why_unavailable():
    """The simulator computes in NumPy; a real GPU needs CuPy (FFT, sort)."""
    from .. import cuda_simulator

    return None if cuda_simulator() else cupy_missing()


def _xp(a):
    if isinstance(a, np.ndarray):
        return np
    import cupy

    return cupy


_dev = to_device  # a Numba view of device arrays (no copy); host arrays are copied in


def _back(d, like, owner):
    """The output `d` of a kernel in the kind of `like`: `owner`, the device array `d` views,
    for device input; a host copy under the simulator's NumPy path."""
    if isinstance(like, np.ndarray):
        return d.copy_to_host()
    return owner


def _weight_table(w, beta):
    """(table, use it): the PSWF's Horner table on the device, or a 1 x 1 placeholder for ES."""
    if beta < 0:
        return _dev(np.ascontiguousarray(kernel_poly(w, beta))), True
    return _dev(np.zeros((1, 1))), False


@functools.lru_cache(maxsize=None)
def _kernels():
    # the simulator hands its device arrays only to device functions, not to @njit ones
    horner = cuda.jit(device=True)(weights_horner.py_func)

    @cuda.jit(device=True)
    def weights(t, w, beta, coef, poly, out):
        # axis_weights (ES, direct) or numba_math's axis_weights_poly (the PSWF's table)
        if not poly:
            return axis_weights(t, w, beta, out)
        l0 = first_index(t, w)
        horner(l0 - t, w, coef.shape[0] - 1, coef, out)
        return l0

    @cuda.jit
    def bin_ids(x, y, z, n1, n2, n3, bs1, bs2, bs3, out):
        j = cuda.grid(1)
        if j < x.shape[0]:
            out[j] = bin_id(x[j], y[j], z[j], n1, n2, n3, bs1, bs2, bs3)

    @cuda.jit
    def interp(x, y, z, fine, perm, w, beta, coef, poly, out):
        p = cuda.grid(1)
        if p >= perm.shape[0]:
            return
        n1 = fine.shape[1]
        n2 = fine.shape[2]
        n3 = fine.shape[3]
        w1 = cuda.local.array(MAX_WIDTH, np.float64)
        w2 = cuda.local.array(MAX_WIDTH, np.float64)
        w3 = cuda.local.array(MAX_WIDTH, np.float64)
        i1 = cuda.local.array(MAX_WIDTH, np.int64)
        i2 = cuda.local.array(MAX_WIDTH, np.int64)
        i3 = cuda.local.array(MAX_WIDTH, np.int64)
        idx = perm[p]
        l1 = weights(grid_coord(x[idx], n1), w, beta, coef, poly, w1)
        l2 = weights(grid_coord(y[idx], n2), w, beta, coef, poly, w2)
        l3 = weights(grid_coord(z[idx], n3), w, beta, coef, poly, w3)
        for i in range(w):
            i1[i] = wrap(l1 + i, n1)
            i2[i] = wrap(l2 + i, n2)
            i3[i] = wrap(l3 + i, n3)
        for v in range(fine.shape[0]):
            sr = 0.0
            si = 0.0
            for a in range(w):
                ar = 0.0
                ai = 0.0
                for b in range(w):
                    br = 0.0
                    bi = 0.0
                    for c in range(w):
                        val = fine[v, i1[a], i2[b], i3[c]]
                        br += val.real * w3[c]
                        bi += val.imag * w3[c]
                    ar += br * w2[b]
                    ai += bi * w2[b]
                sr += ar * w1[a]
                si += ai * w1[a]
            out[v, idx] = complex(sr, si)

    @cuda.jit
    def scatter(x, y, z, c, perm, w, beta, coef, poly, fine_ri):
        p = cuda.grid(1)
        if p >= perm.shape[0]:
            return
        n1 = fine_ri.shape[1]
        n2 = fine_ri.shape[2]
        n3 = fine_ri.shape[3] // 2
        w1 = cuda.local.array(MAX_WIDTH, np.float64)
        w2 = cuda.local.array(MAX_WIDTH, np.float64)
        w3 = cuda.local.array(MAX_WIDTH, np.float64)
        idx = perm[p]
        l1 = weights(grid_coord(x[idx], n1), w, beta, coef, poly, w1)
        l2 = weights(grid_coord(y[idx], n2), w, beta, coef, poly, w2)
        l3 = weights(grid_coord(z[idx], n3), w, beta, coef, poly, w3)
        for v in range(fine_ri.shape[0]):
            cv = c[v, idx]
            for a in range(w):
                ia = wrap(l1 + a, n1)
                for b in range(w):
                    ib = wrap(l2 + b, n2)
                    wab = w1[a] * w2[b]
                    for k in range(w):
                        ik = wrap(l3 + k, n3)
                        wt = wab * w3[k]
                        cuda.atomic.add(fine_ri, (v, ia, ib, 2 * ik), cv.real * wt)
                        cuda.atomic.add(fine_ri, (v, ia, ib, 2 * ik + 1), cv.imag * wt)

    @cuda.jit
    def gather(x, y, z, c, perm, offsets, n1, n2, n3, bs1, bs2, bs3, w, beta, coef, poly, fine):
        tile = cuda.blockIdx.x
        tid = cuda.threadIdx.x
        nb2 = (n2 + bs2 - 1) // bs2
        nb3 = (n3 + bs3 - 1) // bs3
        b3 = tile % nb3
        b2 = (tile // nb3) % nb2
        b1 = tile // (nb3 * nb2)
        s1 = b1 * bs1
        s2 = b2 * bs2
        s3 = b3 * bs3
        len1 = min(s1 + bs1, n1) - s1
        len2 = min(s2 + bs2, n2) - s2
        len3 = min(s3 + bs3, n3) - s3
        # one shared array per source line (the simulator needs it)
        sw1 = cuda.shared.array((STAGE, MAX_WIDTH), np.float64)
        sw2 = cuda.shared.array((STAGE, MAX_WIDTH), np.float64)
        sw3 = cuda.shared.array((STAGE, MAX_WIDTH), np.float64)
        so1 = cuda.shared.array(STAGE, np.int32)
        so2 = cuda.shared.array(STAGE, np.int32)
        so3 = cuda.shared.array(STAGE, np.int32)
        scr = cuda.shared.array(STAGE, np.float64)
        sci = cuda.shared.array(STAGE, np.float64)
        nbr1 = cuda.local.array(MAX_NEIGHBOURS, np.int64)
        nbr2 = cuda.local.array(MAX_NEIGHBOURS, np.int64)
        nbr3 = cuda.local.array(MAX_NEIGHBOURS, np.int64)
        wl = cuda.local.array(MAX_WIDTH, np.float64)
        acc_r = cuda.local.array(MAX_BIN, np.float64)
        acc_i = cuda.local.array(MAX_BIN, np.float64)
        k1 = neighbour_bins(b1, bs1, n1, w, nbr1)
        k2 = neighbour_bins(b2, bs2, n2, w, nbr2)
        k3 = neighbour_bins(b3, bs3, n3, w, nbr3)
        a1 = tid // len2
        a2 = tid % len2
        mine = tid < len1 * len2
        for v in range(c.shape[0]):
            for q in range(MAX_BIN):
                acc_r[q] = 0.0
                acc_i[q] = 0.0
            for i in range(k1):
                for j in range(k2):
                    for k in range(k3):
                        b = (nbr1[i] * nb2 + nbr2[j]) * nb3 + nbr3[k]
                        start = offsets[b]
                        stop = offsets[b + 1]
                        for base in range(start, stop, STAGE):
                            p = base + tid
                            if tid < STAGE and p < stop:
                                idx = perm[p]
                                t1 = grid_coord(x[idx], n1)
                                t2 = grid_coord(y[idx], n2)
                                t3 = grid_coord(z[idx], n3)
                                o1 = offset_in_tile(first_index(t1, w), s1, n1)
                                o2 = offset_in_tile(first_index(t2, w), s2, n2)
                                o3 = offset_in_tile(first_index(t3, w), s3, n3)
                                # only ~1/5 of the neighbouring bins' points reach the tile: test
                                # that with integers before paying for 3 w exponentials
                                reach = (support_meets_tile(o1, len1, n1, w) and support_meets_tile(o2, len2, n2, w)
                                         and support_meets_tile(o3, len3, n3, w))
                                so1[tid] = o1 if reach else -1
                                so2[tid] = o2
                                so3[tid] = o3
                                if reach:
                                    weights(t1, w, beta, coef, poly, wl)
                                    for q in range(w):
                                        sw1[tid, q] = wl[q]
                                    weights(t2, w, beta, coef, poly, wl)
                                    for q in range(w):
                                        sw2[tid, q] = wl[q]
                                    weights(t3, w, beta, coef, poly, wl)
                                    for q in range(w):
                                        sw3[tid, q] = wl[q]
                                    cv = c[v, idx]
                                    scr[tid] = cv.real
                                    sci[tid] = cv.imag
                            cuda.syncthreads()
                            cnt = min(STAGE, stop - base)
                            if mine:
                                for pp in range(cnt):
                                    o1 = so1[pp]
                                    if o1 < 0:
                                        continue
                                    i1 = support_offset(a1, o1, n1)
                                    if i1 >= w:
                                        continue
                                    i2 = support_offset(a2, so2[pp], n2)
                                    if i2 >= w:
                                        continue
                                    w12 = sw1[pp, i1] * sw2[pp, i2]
                                    cr = scr[pp] * w12
                                    ci = sci[pp] * w12
                                    o3 = so3[pp]
                                    for q in range(w):
                                        a3 = o3 + q
                                        if a3 >= n3:
                                            a3 -= n3
                                        if a3 < len3:
                                            acc_r[a3] += cr * sw3[pp, q]
                                            acc_i[a3] += ci * sw3[pp, q]
                            cuda.syncthreads()
            if mine:
                for q in range(len3):
                    fine[v, s1 + a1, s2 + a2, s3 + q] = complex(acc_r[q], acc_i[q])

    return bin_ids, interp, scatter, gather


def setpts(x, y, z, n_fine, bin_size):
    """Bin ids on the device, then a stable sort by bin: ``(perm, bin_offsets)`` int64."""
    bin_ids, _, _, _ = _kernels()
    n1, n2, n3 = (int(v) for v in n_fine)
    bs1, bs2, bs3 = (int(v) for v in bin_size)
    nb1, nb2, nb3 = n_bins(n_fine, bin_size)
    nbins = nb1 * nb2 * nb3
    m = int(x.shape[0])
    xp = _xp(x)
    bins = xp.empty(m, np.int64)
    dbins = _dev(bins)
    bin_ids[blocks_for(m, THREADS), THREADS](_dev(x), _dev(y), _dev(z), n1, n2, n3, bs1, bs2, bs3, dbins)
    bins = _back(dbins, x, bins)
    # unique keys: any (stable or not) sort gives the same, stable order
    keys = bins * m + xp.arange(m, dtype=np.int64)
    perm = xp.argsort(keys).astype(np.int64)
    counts = xp.bincount(bins, minlength=nbins)
    offsets = xp.zeros(nbins + 1, np.int64)
    offsets[1:] = xp.cumsum(counts)
    return perm, offsets


def spread(x, y, z, c, perm, bin_offsets, n_fine, bin_size, w, beta, method, max_bytes=None):
    """Spread ``c`` (V, M) onto a new fine grid (V, n1, n2, n3) of the same array kind."""
    _, _, scatter, gather = _kernels()
    n1, n2, n3 = (int(v) for v in n_fine)
    nv = int(c.shape[0])
    m = int(perm.shape[0])
    xp = _xp(c)
    if method == "gather":
        bs1, bs2, bs3 = (int(v) for v in bin_size)
        if max(bs1, bs2, bs3) > MAX_BIN or bs1 * bs2 > 1024:
            raise ValueError(f"numba-cuda gather needs bin sizes <= {MAX_BIN}, got {tuple(bin_size)}")
        nbins = int(bin_offsets.shape[0]) - 1
        fine = xp.empty((nv, n1, n2, n3), c.dtype)  # every cell written by its tile's block
        dfine = _dev(fine)
        threads = max(STAGE, bs1 * bs2)
        coef, poly = _weight_table(int(w), float(beta))
        gather[nbins, threads](_dev(x), _dev(y), _dev(z), _dev(c), _dev(perm), _dev(bin_offsets),
                               n1, n2, n3, bs1, bs2, bs3, int(w), float(beta), coef, poly, dfine)
        return _back(dfine, c, fine)
    if method != "scatter":
        raise ValueError(f"`method` must be 'gather' or 'scatter', got {method!r}")
    real = np.float32 if c.dtype == np.complex64 else np.float64
    fine_ri = xp.zeros((nv, n1, n2, 2 * n3), real)
    dfine = _dev(fine_ri)
    coef, poly = _weight_table(int(w), float(beta))
    scatter[blocks_for(m, THREADS), THREADS](_dev(x), _dev(y), _dev(z), _dev(c), _dev(perm), int(w),
                                             float(beta), coef, poly, dfine)
    return _back(dfine, c, fine_ri).view(c.dtype)


def interp(x, y, z, fine, perm, w, beta):
    """Values (V, M) at the points, interpolated from ``fine`` (V, n1, n2, n3)."""
    _, interp_k, _, _ = _kernels()
    nv = int(fine.shape[0])
    m = int(perm.shape[0])
    xp = _xp(fine)
    out = xp.empty((nv, m), fine.dtype)
    dout = _dev(out)
    coef, poly = _weight_table(int(w), float(beta))
    interp_k[blocks_for(m, THREADS), THREADS](_dev(x), _dev(y), _dev(z), _dev(fine), _dev(perm), int(w),
                                              float(beta), coef, poly, dout)
    return _back(dout, fine, out)
