"""Distance + top-k math shared by the Numba CPU loops and the Numba CUDA kernels.

One general form covers both metrics (see :mod:`spkernels.kernels.distance`)::

    score(r, n) = a_r + b_n + c * sum_p w_p * f(X[r, p]) * Y[n, p]

metric 0 (euclidean): f(x) = x, a_r = sum w x^2, b_n = sum w y^2, c = -2.
metric 1 (poisson):   f(x) = log x, a_r = sum w x, b_n = 0, c = -1.

Every function here is a plain ``@njit`` leaf function (it calls no other jitted function):
``prange`` loops call it directly and the Numba CUDA module re-wraps its ``py_func`` with
``cuda.jit(device=True)``, so both targets compile the same source (and the CUDA simulator can
run it on its fake arrays). Arrays are passed whole with a row index (not as row views) because
that form compiles identically for both targets.
"""

from __future__ import annotations

import math

from numba import njit

EUCLIDEAN = 0
POISSON = 1

# An empty top-k slot. Any real candidate beats it, including a +inf or NaN score, so a list
# with k <= R is always completely filled and non-finite scores surface to the caller's check.
EMPTY_INDEX = -1
# The segmented argmin's "no element yet" index: larger than any real index so that a segment
# holding only +inf values still reports its first element.
SEG_NONE = 1 << 62


@njit(cache=True)
def coefficient(metric):
    """The constant c of the general form."""
    return -2.0 if metric == EUCLIDEAN else -1.0


@njit(cache=True)
def transform(x, metric):
    """f(x): the identity for euclidean, the natural log for poisson."""
    if metric == POISSON:
        return math.log(x)
    return x


@njit(cache=True)
def model_term(X, r, w, has_w, metric):
    """a_r, accumulated in float64 whatever the input precision (an O(R*P) pass, cheap next to
    the O(R*N*P) product, and it keeps the row term's rounding out of the error budget)."""
    acc = 0.0
    for p in range(X.shape[1]):
        v = float(X[r, p])
        wp = float(w[p]) if has_w else 1.0
        if metric == EUCLIDEAN:
            acc += wp * v * v
        else:
            acc += wp * v
    return acc


@njit(cache=True)
def data_term(Y, n, w, has_w, metric):
    """b_n in float64 (zero for poisson, whose per-image constant does not change the ranking)."""
    if metric != EUCLIDEAN:
        return 0.0
    acc = 0.0
    for p in range(Y.shape[1]):
        v = float(Y[n, p])
        wp = float(w[p]) if has_w else 1.0
        acc += wp * v * v
    return acc


@njit(cache=True)
def combine(a_r, b_n, c, dot):
    """The general-form score a_r + b_n + c * dot, in the order every backend adds it."""
    return (a_r + b_n) + c * dot


@njit(cache=True)
def precedes(s, i, s2, i2):
    """Strict (score, index) order: lower score first, equal scores broken by lower index."""
    return s < s2 or (s == s2 and i < i2)


@njit(cache=True)
def topk_insert(out_idx, out_sc, n, k, s, r):
    """Insert candidate (s, r) into row n's ascending (score, index) list of length k.

    Rows start as ``EMPTY_INDEX`` / +inf; an empty slot loses to every candidate. The result is
    the k best of everything inserted, independent of insertion order, so blocks of models and
    batches can be merged in any order and give bitwise the same answer.
    """
    # The (score, index) comparison is written out rather than calling precedes(): leaf
    # functions can be re-wrapped as CUDA device functions (see numba_cuda.distance).
    last = k - 1
    if out_idx[n, last] != EMPTY_INDEX and not (
        s < out_sc[n, last] or (s == out_sc[n, last] and r < out_idx[n, last])
    ):
        return
    j = last
    while j > 0 and (
        out_idx[n, j - 1] == EMPTY_INDEX
        or s < out_sc[n, j - 1]
        or (s == out_sc[n, j - 1] and r < out_idx[n, j - 1])
    ):
        out_sc[n, j] = out_sc[n, j - 1]
        out_idx[n, j] = out_idx[n, j - 1]
        j -= 1
    out_sc[n, j] = s
    out_idx[n, j] = r


@njit(cache=True)
def seg_better(v, i, v2, i2):
    """Segmented-argmin order: lower value first, ties to the lower index (``SEG_NONE`` loses)."""
    return v < v2 or (v == v2 and i < i2)
