"""The float64 NumPy reference of the distance family (backend ``numpy``).

The distance family's contract (the same functions in every ``backends/<pkg>/distance.py``);
arrays arrive validated, C-contiguous and in the backend's working dtype (float64 here):

- ``topk(X, Y, w, metric_id, k, precision) -> (index (N, k) int64, score (N, k))``: the k best
  models per data row in ascending (score, index) order (fused score + top-k);
- ``score_matrix(X, Y, w, metric_id, precision) -> (R, N) scores``;
- ``segmented_argmin(values, offsets) -> (index (S,) int64, value (S,))``: per segment the local
  position of the first minimum (-1 when empty) and the minimum (+inf when empty).

``metric_id`` is 0 (euclidean) or 1 (poisson); ``precision`` is a compute-precision name
(``fp64`` ... ``fp16``, not a dtype) that the dispatch layer has already checked; ``w`` may be
None (all ones). This module also holds the exact host merge :func:`merge_topk` and the float64
row terms :func:`row_terms`, which :mod:`spkernels.kernels.distance` reuses for batching, the
accumulator and :func:`~spkernels.kernels.distance.error_bound`.
"""

from __future__ import annotations

import math

import numpy as np

from ..numba_math.distance import EUCLIDEAN, POISSON

# Upper bound on the elements of one reference score block (tests shrink it to force blocking).
_REF_BLOCK = 1 << 22


def _fx_weighted(X, w, metric_id):
    fx = np.log(X) if metric_id == POISSON else X
    return fx * w if w is not None else fx


def row_terms(X, Y, w, metric_id):
    wv = np.ones(X.shape[1]) if w is None else w
    if metric_id == EUCLIDEAN:
        return (X * X) @ wv, (Y * Y) @ wv, -2.0
    return X @ wv, np.zeros(Y.shape[0]), -1.0


def _score_block_ref(FX, a, b, c, Y):
    """(Nb, Rb) float64 scores of a model block against a data block."""
    return (b[:, None] + a[None, :]) + c * (Y @ FX.T)


def merge_topk(idx_a, sc_a, idx_b, sc_b, k: int):
    """k best of two host candidate lists per row in ascending (score, index) order.

    Two stable sorts (by index, then by score) give the lexicographic (score, index) order
    exactly, so merging is associative and batching cannot change a result.
    """
    idx = np.concatenate([idx_a, idx_b], axis=1)
    sc = np.concatenate([sc_a, sc_b], axis=1)
    o = np.argsort(idx, axis=1, kind="stable")
    idx = np.take_along_axis(idx, o, 1)
    sc = np.take_along_axis(sc, o, 1)
    o = np.argsort(sc, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(idx, o, 1), np.take_along_axis(sc, o, 1)


def _unique_models(X):
    """Distinct model rows ordered by first occurrence, and each model's row among them.

    BLAS may round a row's dot products differently depending on where the row sits in the
    matrix (edge micro-tiles), which would break exact ties between duplicate models. The
    reference therefore scores each distinct row once and shares the scores bitwise.
    """
    uniq, first, inv = np.unique(X, axis=0, return_index=True, return_inverse=True)
    perm = np.argsort(first)
    rank = np.empty_like(perm)
    rank[perm] = np.arange(perm.size)
    return uniq[perm], rank[np.reshape(inv, -1)]


def _exact_scores(X, Y, w, metric_id, rr, nn):
    """Scores of the pairs (rr[i], nn[i]) by the direct formula with an exactly rounded sum.

    Each value depends only on the two rows (and weights), never on where they sit in a
    batch, so duplicates tie bitwise and batching cannot change a ranking.
    """
    out = np.empty(rr.size, np.float64)
    chunk = max(1, (1 << 22) // max(1, X.shape[1]))
    for i0 in range(0, rr.size, chunk):
        xr, yn = X[rr[i0:i0 + chunk]], Y[nn[i0:i0 + chunk]]
        if metric_id == EUCLIDEAN:
            t = (xr - yn) ** 2
        else:
            t = xr - yn * np.log(xr)
        if w is not None:
            t = t * w
        out[i0:i0 + chunk] = [math.fsum(row) for row in t]
    return out


def topk(X, Y, w, metric_id, k, precision):
    """The float64 reference: exact (score, index) top-k in bounded blocks.

    A BLAS pass in the GEMM form finds each row's k-th best score; a second pass re-scores,
    with :func:`_exact_scores`, every model within a generous screening tolerance of it (1e-10
    of the bound's scale, far above float64 GEMM rounding) and keeps a running (score, index)
    top-k, so memory stays O(block) even when many models tie.
    """
    X = np.asarray(X, np.float64)
    Y = np.asarray(Y, np.float64)
    w = None if w is None else np.asarray(w, np.float64)
    a, b, c = row_terms(X, Y, w, metric_id)
    wv = np.ones(X.shape[1]) if w is None else w
    fxw = _fx_weighted(X, w, metric_id)
    fx = np.log(X) if metric_id == POISSON else X
    nx = np.sqrt((fx * fx) @ wv)
    ny = np.sqrt((Y * Y) @ wv)
    R, N = X.shape[0], Y.shape[0]
    rb = max(k, min(R, _REF_BLOCK // max(1, min(N, 1024))))
    nb = max(1, min(N, _REF_BLOCK // rb))
    out_idx = np.empty((N, k), np.int64)
    out_sc = np.empty((N, k), np.float64)
    for n0 in range(0, N, nb):
        n1 = min(N, n0 + nb)
        blocks = [(r0, min(R, r0 + rb)) for r0 in range(0, R, rb)]

        def block(r0, r1):
            return _score_block_ref(fxw[r0:r1], a[r0:r1], b[n0:n1], c, Y[n0:n1])

        kth = None
        for r0, r1 in blocks:
            s = block(r0, r1)
            part = np.sort(s, axis=1)[:, : min(k, r1 - r0)]
            kth = part if kth is None else np.sort(np.concatenate([kth, part], axis=1), axis=1)[:, :k]
        thr = kth[:, -1]
        idx = sc = None
        for r0, r1 in blocks:
            s = block(r0, r1)
            tol = 1e-10 * (np.abs(a[r0:r1])[None, :] + np.abs(b[n0:n1])[:, None]
                           + abs(c) * nx[r0:r1][None, :] * ny[n0:n1][:, None])
            ni, ri = np.nonzero(s <= thr[:, None] + 2 * tol)
            ex = np.full(s.shape, np.inf)
            ex[ni, ri] = _exact_scores(X, Y, w, metric_id, ri + r0, ni + n0)
            # Columns ascend in model index, so a stable sort is (score, index) order;
            # non-candidates (+inf, sentinel index) sort after every real candidate.
            o = np.argsort(ex, axis=1, kind="stable")[:, : min(k, r1 - r0)]
            bs = np.take_along_axis(ex, o, 1)
            bi = np.where(np.isinf(bs), np.iinfo(np.int64).max, o + r0)
            idx, sc = (bi, bs) if idx is None else merge_topk(idx, sc, bi, bs, k)
        out_idx[n0:n1] = idx
        out_sc[n0:n1] = sc
    return out_idx, out_sc


def score_matrix(X, Y, w, metric_id, precision):
    """The (R, N) float64 score matrix (each distinct model row scored once)."""
    X = np.asarray(X, np.float64)
    Y = np.asarray(Y, np.float64)
    w = None if w is None else np.asarray(w, np.float64)
    uniq, inv = _unique_models(X)
    a, b, c = row_terms(uniq, Y, w, metric_id)
    return _score_block_ref(_fx_weighted(uniq, w, metric_id), a, b, c, Y).T[inv]


def segmented_argmin(values, offsets):
    """Per-segment (local index, value) by one lexsort; -1 / +inf for empty segments."""
    values = np.asarray(values)
    offsets = np.asarray(offsets)
    S = offsets.shape[0] - 1
    lengths = np.diff(offsets)
    out_idx = np.full(S, -1, np.int64)
    out_val = np.full(S, np.inf, values.dtype)
    nonempty = lengths > 0
    if values.shape[0]:
        seg = np.repeat(np.arange(S), lengths)
        # Sorted by (segment, value, position): each non-empty segment's block starts with its
        # argmin, lowest position first among equal values.
        order = np.lexsort((np.arange(values.shape[0]), values, seg))
        first = order[offsets[:-1][nonempty]]
        out_idx[nonempty] = first - offsets[:-1][nonempty]
        out_val[nonempty] = values[first]
    return out_idx, out_val
