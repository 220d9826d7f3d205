"""Numba CPU twins of the distance family: fused score + top-k, the score matrix, and the
segmented argmin. Models are walked in cache-sized super-blocks; inside each, ``prange`` runs
over blocks of 8 data rows, so every top-k list has exactly one writer and results do not
depend on the thread count.

Precision: the product sum runs in the input dtype (float32 or float64) with a fixed
reassociation (the vectorised loop's), the row terms in float64 rounded to the input dtype, and
the score is ``(a_r + b_n) + c * dot`` in the input dtype. Every (r, n) pair goes through the
same compiled dot, so a pair's score does not depend on where its rows sit in a batch: batched
and exact-duplicate results are bitwise reproducible.

It implements the distance contract stated in :mod:`spkernels.backends.numpy.distance`.

``precision`` (fp32 / fp64, already checked) only names what the dtype already says.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..numba_math.distance import (
    EMPTY_INDEX,
    EUCLIDEAN,
    NO_INDEX,
    better,
    combine,
    data_row_term,
    dot_coefficient,
    model_factor,
    model_row_term,
    topk_insert,
    transform,
)

# Data rows per micro-kernel (and per parallel task) and models per cache super-block: each
# model row is loaded once for NB dots, and a super-block of RS model rows (RS * P values,
# ~4 MiB at P = 4096 fp32) stays in cache while every data block streams past it.
NB = 8
RS = 256


@njit(fastmath={"reassoc", "contract", "nsz", "arcp"}, cache=True)
def _dot_1x8(FX, r, Y, n0, n1, n2, n3, n4, n5, n6, n7, zero):
    # Eight dots sharing the model row. Every slot runs the same operation sequence, so a
    # pair's value does not depend on which slot (or batch offset) it lands in.
    a0 = zero
    a1 = zero
    a2 = zero
    a3 = zero
    a4 = zero
    a5 = zero
    a6 = zero
    a7 = zero
    for p in range(FX.shape[1]):
        x = FX[r, p]
        a0 += x * Y[n0, p]
        a1 += x * Y[n1, p]
        a2 += x * Y[n2, p]
        a3 += x * Y[n3, p]
        a4 += x * Y[n4, p]
        a5 += x * Y[n5, p]
        a6 += x * Y[n6, p]
        a7 += x * Y[n7, p]
    return a0, a1, a2, a3, a4, a5, a6, a7


@njit(cache=True)
def _block_dots(FX, r, Y, n0, zero):
    # Rows past the end repeat the last row (results discarded) so that every pair goes
    # through the same 8-wide kernel.
    m = Y.shape[0] - 1
    return _dot_1x8(FX, r, Y, n0, min(n0 + 1, m), min(n0 + 2, m), min(n0 + 3, m), min(n0 + 4, m),
                    min(n0 + 5, m), min(n0 + 6, m), min(n0 + 7, m), zero)


@njit(parallel=True, cache=True)
def _transform_rows(X, w, has_w, metric, out):
    for r in prange(X.shape[0]):
        for p in range(X.shape[1]):
            out[r, p] = model_factor(X[r, p], w[p], metric) if has_w else transform(X[r, p], metric)


@njit(parallel=True, cache=True)
def _row_terms(X, Y, w, has_w, metric, a, b):
    # Sums in float64 over the per-pixel terms (weight 1 when there are no weights).
    for r in prange(X.shape[0]):
        acc = 0.0
        for p in range(X.shape[1]):
            acc += model_row_term(X[r, p], w[p] if has_w else 1.0, metric)
        a[r] = acc
    for n in prange(Y.shape[0]):
        acc = 0.0
        for p in range(Y.shape[1]):
            acc += data_row_term(Y[n, p], w[p] if has_w else 1.0, metric)
        b[n] = acc


@njit(parallel=True, cache=True)
def _topk_kernel(FX, Y, a, b, c, k, zero, out_idx, out_sc):
    R = FX.shape[0]
    N = Y.shape[0]
    nblocks = (N + NB - 1) // NB
    for r0 in range(0, R, RS):
        r1 = min(R, r0 + RS)
        for bi in prange(nblocks):
            n0 = bi * NB
            for r in range(r0, r1):
                v = _block_dots(FX, r, Y, n0, zero)
                for j in range(NB):
                    if n0 + j < N:
                        topk_insert(out_sc, out_idx, n0 + j, k, combine(a[r], b[n0 + j], v[j], c), r)


@njit(parallel=True, cache=True)
def _matrix_kernel(FX, Y, a, b, c, zero, out):
    R = FX.shape[0]
    N = Y.shape[0]
    nblocks = (N + NB - 1) // NB
    for r0 in range(0, R, RS):
        r1 = min(R, r0 + RS)
        for bi in prange(nblocks):
            n0 = bi * NB
            for r in range(r0, r1):
                v = _block_dots(FX, r, Y, n0, zero)
                for j in range(NB):
                    if n0 + j < N:
                        out[r, n0 + j] = combine(a[r], b[n0 + j], v[j], c)


@njit(parallel=True, cache=True)
def _segmented_kernel(values, offsets, out_idx, out_val):
    S = offsets.shape[0] - 1
    for s in prange(S):
        best_v = np.inf
        best_i = NO_INDEX
        for j in range(offsets[s], offsets[s + 1]):
            li = j - offsets[s]
            if better(values[j], li, best_v, best_i):
                best_v = values[j]
                best_i = li
        out_idx[s] = -1 if best_i == NO_INDEX else best_i
        out_val[s] = best_v


def _prepare(X, Y, w, metric):
    dtype = X.dtype
    has_w = w is not None
    wv = w if has_w else np.ones(1, dtype)
    if metric == EUCLIDEAN and not has_w:
        FX = X  # the identity transform needs no copy
    else:
        FX = np.empty_like(X)
        _transform_rows(X, wv, has_w, metric, FX)
    a = np.empty(X.shape[0], dtype)
    b = np.empty(Y.shape[0], dtype)
    _row_terms(X, Y, wv, has_w, metric, a, b)
    return FX, a, b, dtype.type(dot_coefficient(metric)), dtype.type(0)


def topk(X, Y, w, metric_id, k, precision):
    """k best models per data row, ascending (score, index). Host float32/float64 arrays of one
    dtype, already validated and C-contiguous. Returns ``(index int64 (N,k), score (N,k))``."""
    FX, a, b, c, zero = _prepare(X, Y, w, metric_id)
    N = Y.shape[0]
    out_idx = np.full((N, k), EMPTY_INDEX, np.int64)
    out_sc = np.full((N, k), np.inf, X.dtype)
    _topk_kernel(FX, Y, a, b, c, int(k), zero, out_idx, out_sc)
    return out_idx, out_sc


def score_matrix(X, Y, w, metric_id, precision):
    """The (R, N) score matrix (for ``pairwise_sqdist`` and tests)."""
    FX, a, b, c, zero = _prepare(X, Y, w, metric_id)
    out = np.full((X.shape[0], Y.shape[0]), np.nan, X.dtype)
    _matrix_kernel(FX, Y, a, b, c, zero, out)
    return out


def segmented_argmin(values, offsets):
    """Per-segment (local index, value); -1 / +inf for empty segments."""
    values, offsets = np.ascontiguousarray(values), np.ascontiguousarray(offsets)
    S = offsets.shape[0] - 1
    out_idx = np.full(S, -2, np.int64)
    out_val = np.full(S, np.nan, values.dtype)
    _segmented_kernel(values, offsets, out_idx, out_val)
    return out_idx, out_val
