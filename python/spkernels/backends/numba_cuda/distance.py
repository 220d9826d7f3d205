"""Numba CUDA kernels of the distance family (FP32 only: Numba has no tensor-core API).

``_score_kernel`` is a shared-memory tiled product: a 16 x 16 thread block owns 64 data rows
and walks over 64-model tiles in 16-pixel slices; each thread keeps a 4 x 4 register tile of
FP32 dots, summing each slice into a partial before adding it to the running total (two-level
summation keeps the rounding error near sqrt(P) rather than P ulps). Every (model, data) pair
goes through the same sequence of operations wherever it sits in a tile, so duplicates tie
bitwise and batching never changes a result. The epilogue either writes the score matrix or,
fused, lets one thread per data row insert the tile's 64 scores into that row's top-k list (one
writer per list, models visited in ascending order: deterministic, no atomics).

``_segmented_kernel`` is one block per segment: a strided scan per thread, then a shared-memory
tree reduction (the simulator has no warp shuffles, and the shared path is fast enough).

Row terms are computed once per call in float64 and stored as FP32.

It implements the distance contract stated in :mod:`spkernels.backends.numpy.distance`.

Host inputs come back as NumPy, device inputs stay on the device (CuPy when installed).
Besides the contract, :func:`merge_topk_device` merges device-resident top-k lists for
:class:`spkernels.kernels.distance.ArgminAccumulator` (whatever backend scored them).
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda, float32, float64, int64

from ... import _arrays
from .. import cuda_simulator
from . import device_empty, finish, to_device
from ..numba_math import distance as _math
from ..numba_math.distance import EMPTY_INDEX, NO_INDEX, dot_coefficient

# The shared math, compiled for the device from the same Python source as the CPU twins.
transform = cuda.jit(device=True)(_math.transform.py_func)
model_factor = cuda.jit(device=True)(_math.model_factor.py_func)
model_row_term = cuda.jit(device=True)(_math.model_row_term.py_func)
data_row_term = cuda.jit(device=True)(_math.data_row_term.py_func)
better = cuda.jit(device=True)(_math.better.py_func)
topk_insert = cuda.jit(device=True)(_math.topk_insert.py_func)
combine = cuda.jit(device=True)(_math.combine.py_func)

# Block geometry. BT x BT threads; each thread owns an RM x RM register tile of scores, so a
# block covers TM = BT * RM models x TM data rows and walks P in TP-wide slices. The simulator
# runs every CUDA thread as a Python thread: there the geometry shrinks (and stays away from
# CPython 3.11 crashes seen with 256 threads per block) while still exercising multi-tile loops,
# partial tiles, the register tiles and every level of the tree reduction.
BT = 4 if cuda_simulator() else 16
RM = 2 if cuda_simulator() else 4
TM = BT * RM
TP = 4 if cuda_simulator() else 16
SEG_THREADS = 8 if cuda_simulator() else 128
# Shared and local array shapes must be compile-time constants (global tuples, not expressions
# in the kernel). The +1 columns pad rows so the strided reads are bank-conflict free.
_SLICE_SHAPE = (TM, TP + 1)
_SCORE_SHAPE = (TM, TM + 1)
_REG_SHAPE = (RM, RM)


@cuda.jit
def _row_terms_kernel(X, Y, w, has_w, metric, a, b):
    # Sums in float64 over the per-pixel terms (weight 1 when there are no weights).
    i = cuda.grid(1)
    if i < X.shape[0]:
        acc = 0.0
        for p in range(X.shape[1]):
            acc += model_row_term(X[i, p], w[p] if has_w else 1.0, metric)
        a[i] = acc
    if i < Y.shape[0]:
        acc = 0.0
        for p in range(Y.shape[1]):
            acc += data_row_term(Y[i, p], w[p] if has_w else 1.0, metric)
        b[i] = acc


@cuda.jit
def _score_kernel(X, Y, w, has_w, metric, a, b, c, k, fused, r_tiles_per_block, out_idx, out_sc, out_mat):
    sX = cuda.shared.array(_SLICE_SHAPE, float32)
    sY = cuda.shared.array(_SLICE_SHAPE, float32)
    sS = cuda.shared.array(_SCORE_SHAPE, float32)
    acc = cuda.local.array(_REG_SHAPE, float32)
    part = cuda.local.array(_REG_SHAPE, float32)
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    tid = ty * BT + tx
    R = X.shape[0]
    P = X.shape[1]
    N = Y.shape[0]
    n0 = cuda.blockIdx.x * TM
    t_begin = cuda.blockIdx.y * r_tiles_per_block
    t_end = min(t_begin + r_tiles_per_block, (R + TM - 1) // TM)
    for t in range(t_begin, t_end):
        r0 = t * TM
        for i in range(RM):
            for j in range(RM):
                acc[i, j] = float32(0.0)
        for p0 in range(0, P, TP):
            # Cooperative slice loads (consecutive threads read consecutive pixels); the model
            # side is transformed (log) and weighted on its way into shared memory.
            for e in range(tid, TM * TP, BT * BT):
                row = e // TP
                p = p0 + e % TP
                xv = float32(0.0)
                if r0 + row < R and p < P:
                    if has_w:
                        xv = model_factor(X[r0 + row, p], w[p], metric)
                    else:
                        xv = transform(X[r0 + row, p], metric)
                sX[row, e % TP] = xv
                yv = float32(0.0)
                if n0 + row < N and p < P:
                    yv = Y[n0 + row, p]
                sY[row, e % TP] = yv
            cuda.syncthreads()
            for i in range(RM):
                for j in range(RM):
                    part[i, j] = float32(0.0)
            for q in range(TP):
                for i in range(RM):
                    xq = sX[ty + i * BT, q]
                    for j in range(RM):
                        part[i, j] += xq * sY[tx + j * BT, q]
            # Two-level summation: each slice's partial joins the total once.
            for i in range(RM):
                for j in range(RM):
                    acc[i, j] += part[i, j]
            cuda.syncthreads()
        for i in range(RM):
            for j in range(RM):
                r = r0 + ty + i * BT
                n = n0 + tx + j * BT
                s = float32(0.0)
                if r < R and n < N:
                    s = combine(a[r], b[n], acc[i, j], c)
                if fused:
                    sS[ty + i * BT, tx + j * BT] = s
                elif r < R and n < N:
                    out_mat[r, n] = s
        if fused:
            # One thread per data row inserts the tile's TM scores in ascending model order.
            cuda.syncthreads()
            if tid < TM and n0 + tid < N:
                for i in range(TM):
                    if r0 + i < R:
                        topk_insert(out_sc, out_idx, n0 + tid, k, sS[i, tid], r0 + i)
            cuda.syncthreads()


@cuda.jit
def _init_topk_kernel(out_idx, out_sc):
    n = cuda.grid(1)
    if n < out_idx.shape[0]:
        for j in range(out_idx.shape[1]):
            out_idx[n, j] = EMPTY_INDEX
            out_sc[n, j] = math.inf


@cuda.jit
def _merge_kernel(idx_a, sc_a, idx_b, sc_b, offset):
    # Insert every candidate of list b (indices shifted by `offset`) into list a, one thread
    # per row.
    n = cuda.grid(1)
    if n < idx_a.shape[0]:
        for j in range(idx_b.shape[1]):
            if idx_b[n, j] != EMPTY_INDEX:
                topk_insert(sc_a, idx_a, n, idx_a.shape[1], sc_b[n, j], idx_b[n, j] + offset)


@cuda.jit
def _segmented_kernel(values, offsets, out_idx, out_val):
    sv = cuda.shared.array(SEG_THREADS, float64)
    si = cuda.shared.array(SEG_THREADS, int64)
    s = cuda.blockIdx.x
    t = cuda.threadIdx.x
    begin = offsets[s]
    end = offsets[s + 1]
    best_v = math.inf
    best_i = NO_INDEX
    j = begin + t
    while j < end:
        v = float64(values[j])
        if better(v, j - begin, best_v, best_i):
            best_v = v
            best_i = j - begin
        j += SEG_THREADS
    sv[t] = best_v
    si[t] = best_i
    cuda.syncthreads()
    half = SEG_THREADS // 2
    while half > 0:
        if t < half and better(sv[t + half], si[t + half], sv[t], si[t]):
            sv[t] = sv[t + half]
            si[t] = si[t + half]
        cuda.syncthreads()
        half //= 2
    if t == 0:
        out_idx[s] = -1 if si[0] == NO_INDEX else si[0]
        out_val[s] = sv[0]


def _inputs(X, Y, w, metric):
    on_device = hasattr(Y, "__cuda_array_interface__")
    dX = to_device(X)
    dY = to_device(Y)
    has_w = w is not None
    dw = to_device(w) if has_w else cuda.to_device(np.ones(1, np.float32))
    R, N = X.shape[0], Y.shape[0]
    a = device_empty(R, np.float32)
    b = device_empty(N, np.float32)
    # One launch covers both sets of rows.
    rows = max(R, N)
    _row_terms_kernel[(rows + 127) // 128, 128](dX, dY, dw, has_w, metric, a, b)
    return on_device, dX, dY, dw, has_w, a, b


def _launch(X, Y, w, metric, k, fused, out_idx, out_sc, out_mat):
    on_device, dX, dY, dw, has_w, a, b = _inputs(X, Y, w, metric)
    R, N = X.shape[0], Y.shape[0]
    c = np.float32(dot_coefficient(metric))
    r_tiles = (R + TM - 1) // TM
    grid = ((N + TM - 1) // TM, 1 if fused else r_tiles)
    _score_kernel[grid, (BT, BT)](dX, dY, dw, has_w, metric, a, b, c, k, fused,
                                      r_tiles if fused else 1, out_idx, out_sc, out_mat)
    return on_device


def topk(X, Y, w, metric_id, k, precision):
    """Fused FP32 score + top-k. Host arrays come back as NumPy, device arrays stay on the
    device (CuPy when installed). Returns ``(index int64 (N,k), score float32 (N,k))``."""
    N = Y.shape[0]
    out_idx = device_empty((N, k), np.int64)
    out_sc = device_empty((N, k), np.float32)
    _init_topk_kernel[(N + 127) // 128, 128](out_idx, out_sc)
    dummy = device_empty((1, 1), np.float32)
    on_device = _launch(X, Y, w, metric_id, int(k), True, out_idx, out_sc, dummy)
    return finish(out_idx, on_device), finish(out_sc, on_device)


def score_matrix(X, Y, w, metric_id, precision):
    """The (R, N) FP32 score matrix."""
    R, N = X.shape[0], Y.shape[0]
    out = device_empty((R, N), np.float32)
    d_idx = device_empty((1, 1), np.int64)
    d_sc = device_empty((1, 1), np.float32)
    on_device = _launch(X, Y, w, metric_id, 1, False, d_idx, d_sc, out)
    return finish(out, on_device)


def merge_topk_device(idx_a, sc_a, idx_b, sc_b, offset=0):
    """Merge device list b, its indices shifted by `offset`, into device list a in place."""
    da, sa, db, sb = (to_device(x) for x in (idx_a, sc_a, idx_b, sc_b))
    n = da.shape[0]
    _merge_kernel[(n + 127) // 128, 128](da, sa, db, sb, int(offset))


def segmented_argmin(values, offsets):
    """Per-segment (local index, value) over float32 or float64 values (compared in float64,
    which is exact for both); -1 / +inf when empty."""
    values, offsets = _arrays.contiguous(values), _arrays.contiguous(offsets)
    on_device = hasattr(values, "__cuda_array_interface__")
    dv = to_device(values)
    do = to_device(offsets)
    S = offsets.shape[0] - 1
    out_idx = device_empty(S, np.int64)
    out_val = device_empty(S, values.dtype)
    _segmented_kernel[S, SEG_THREADS](dv, do, out_idx, out_val)
    return finish(out_idx, on_device), finish(out_val, on_device)
