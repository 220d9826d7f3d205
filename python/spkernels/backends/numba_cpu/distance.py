"""Numba CPU twins of the distance family: fused score + top-k, the score matrix, and the
segmented argmin. ``prange`` runs over blocks of data rows, so every top-k list has exactly one
writer and results do not depend on the thread count.

Precision: the product sum runs in the input dtype (float32 or float64) with a fixed
reassociation (the vectorised loop's), the row terms in float64 rounded to the input dtype, and
the score is ``(a_r + b_n) + c * dot`` in the input dtype. Every (r, n) pair goes through the
same compiled dot, so a pair's score does not depend on where its rows sit in a batch: batched
and exact-duplicate results are bitwise reproducible.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..numba_math.distance import (
    EMPTY_INDEX,
    SEG_NONE,
    coefficient,
    data_term,
    model_term,
    seg_better,
    topk_insert,
    transform,
)

# Data rows per parallel task and models per cache block: (NB + RB) rows of P values stay in L2
# while the NB * RB dots reuse them.
NB = 8
RB = 16


@njit(fastmath={"reassoc", "contract", "nsz", "arcp"}, cache=True)
def _dot(FX, r, Y, n, zero):
    acc = zero
    for p in range(FX.shape[1]):
        acc += FX[r, p] * Y[n, p]
    return acc


@njit(parallel=True, cache=True)
def _transform_rows(X, w, has_w, metric, out):
    for r in prange(X.shape[0]):
        for p in range(X.shape[1]):
            v = transform(X[r, p], metric)
            if has_w:
                v = v * w[p]
            out[r, p] = v


@njit(parallel=True, cache=True)
def _row_terms(X, Y, w, has_w, metric, a, b):
    for r in prange(X.shape[0]):
        a[r] = model_term(X, r, w, has_w, metric)
    for n in prange(Y.shape[0]):
        b[n] = data_term(Y, n, w, has_w, metric)


@njit(parallel=True, cache=True)
def _topk_kernel(FX, Y, a, b, c, k, zero, out_idx, out_sc):
    R = FX.shape[0]
    N = Y.shape[0]
    nblocks = (N + NB - 1) // NB
    for bi in prange(nblocks):
        n0 = bi * NB
        n1 = min(N, n0 + NB)
        for r0 in range(0, R, RB):
            r1 = min(R, r0 + RB)
            for n in range(n0, n1):
                for r in range(r0, r1):
                    s = (a[r] + b[n]) + c * _dot(FX, r, Y, n, zero)
                    topk_insert(out_idx, out_sc, n, k, s, r)


@njit(parallel=True, cache=True)
def _matrix_kernel(FX, Y, a, b, c, zero, out):
    R = FX.shape[0]
    N = Y.shape[0]
    nblocks = (N + NB - 1) // NB
    for bi in prange(nblocks):
        n0 = bi * NB
        n1 = min(N, n0 + NB)
        for r0 in range(0, R, RB):
            r1 = min(R, r0 + RB)
            for n in range(n0, n1):
                for r in range(r0, r1):
                    out[r, n] = (a[r] + b[n]) + c * _dot(FX, r, Y, n, zero)


@njit(parallel=True, cache=True)
def _segmented_kernel(values, offsets, out_idx, out_val):
    S = offsets.shape[0] - 1
    for s in prange(S):
        best_v = np.inf
        best_i = SEG_NONE
        for j in range(offsets[s], offsets[s + 1]):
            li = j - offsets[s]
            if seg_better(values[j], li, best_v, best_i):
                best_v = values[j]
                best_i = li
        out_idx[s] = -1 if best_i == SEG_NONE else best_i
        out_val[s] = best_v


def _prepare(X, Y, w, metric):
    dtype = X.dtype
    has_w = w is not None
    wv = w if has_w else np.ones(1, dtype)
    if metric == 0 and not has_w:
        FX = X  # the identity transform needs no copy
    else:
        FX = np.empty_like(X)
        _transform_rows(X, wv, has_w, metric, FX)
    a = np.empty(X.shape[0], dtype)
    b = np.empty(Y.shape[0], dtype)
    _row_terms(X, Y, wv, has_w, metric, a, b)
    return FX, a, b, dtype.type(coefficient(metric)), dtype.type(0)


def topk(X, Y, w, metric: int, k: int):
    """k best models per data row, ascending (score, index). Host float32/float64 arrays of one
    dtype, already validated and C-contiguous. Returns ``(index int64 (N,k), score (N,k))``."""
    FX, a, b, c, zero = _prepare(X, Y, w, metric)
    N = Y.shape[0]
    out_idx = np.full((N, k), EMPTY_INDEX, np.int64)
    out_sc = np.full((N, k), np.inf, X.dtype)
    _topk_kernel(FX, Y, a, b, c, int(k), zero, out_idx, out_sc)
    return out_idx, out_sc


def score_matrix(X, Y, w, metric: int):
    """The (R, N) score matrix (for ``pairwise_sqdist`` and tests)."""
    FX, a, b, c, zero = _prepare(X, Y, w, metric)
    out = np.full((X.shape[0], Y.shape[0]), np.nan, X.dtype)
    _matrix_kernel(FX, Y, a, b, c, zero, out)
    return out


def segmented_argmin(values, offsets):
    """Per-segment (local index, value); -1 / +inf for empty segments."""
    S = offsets.shape[0] - 1
    out_idx = np.full(S, -2, np.int64)
    out_val = np.full(S, np.nan, values.dtype)
    _segmented_kernel(values, offsets, out_idx, out_val)
    return out_idx, out_val
