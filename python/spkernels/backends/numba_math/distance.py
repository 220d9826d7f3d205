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

EUCLIDEAN = 0  # spk::distance::kEuclidean
POISSON = 1  # spk::distance::kPoisson

# An empty top-k slot. Any real candidate beats it, including a +inf or NaN score, so a list
# with k <= R is always completely filled and non-finite scores surface to the caller's check.
# (The C++ lists fill empty slots with kNoIndex instead and map them to -1 on the way out.)
EMPTY_INDEX = -1
# spk::distance::kNoIndex: the segmented argmin's "no element yet" index, larger than any real
# index so that a segment holding only +inf values still reports its first element.
NO_INDEX = (1 << 63) - 1


@njit(cache=True)
def valid_metric(metric):
    """Whether `metric` is one of the metric ids."""
    return metric == EUCLIDEAN or metric == POISSON


@njit(cache=True)
def transform(x, metric):
    """f(x): the identity for euclidean, the natural log for poisson."""
    if metric == POISSON:
        return math.log(x)
    return x


@njit(cache=True)
def model_factor(x, w, metric):
    """The weighted, transformed model value w * f(x) that enters the inner product."""
    if metric == POISSON:
        return w * math.log(x)
    return w * x


@njit(cache=True)
def model_row_term(x, w, metric):
    """One model pixel's contribution to a_r, in float64 whatever the input precision (an
    O(R*P) pass, cheap next to the O(R*N*P) product, and it keeps the row term's rounding out
    of the error budget)."""
    xa = float(x)
    wa = float(w)
    if metric == POISSON:
        return wa * xa
    return wa * xa * xa


@njit(cache=True)
def data_row_term(y, w, metric):
    """One data pixel's contribution to b_n in float64 (zero for poisson, whose per-image
    constant does not change the ranking)."""
    if metric == POISSON:
        return 0.0
    ya = float(y)
    return float(w) * ya * ya


@njit(cache=True)
def dot_coefficient(metric):
    """The constant c of the general form."""
    return -1.0 if metric == POISSON else -2.0


@njit(cache=True)
def combine(a, b, dot, c):
    """The general-form score a + b + c * dot, in the order every backend adds it. ``c`` is
    ``dot_coefficient(metric)`` already cast to the working dtype (the C++ twin takes the metric
    and casts inside; a Numba leaf cannot type a literal to its caller's dtype)."""
    return (a + b) + c * dot


@njit(cache=True)
def better(s1, i1, s2, i2):
    """Strict (score, index) order: lower score first, equal scores broken by lower index."""
    return s1 < s2 or (s1 == s2 and i1 < i2)


@njit(cache=True)
def topk_insert(score, index, n, k, s, i):
    """Insert candidate (s, i) into row n's ascending (score, index) list of length k.

    Rows start as ``EMPTY_INDEX`` / +inf; an empty slot loses to every candidate. The result is
    the k best of everything inserted, independent of insertion order, so blocks of models and
    batches can be merged in any order and give bitwise the same answer.
    """
    # The (score, index) comparison is written out rather than calling better(): leaf
    # functions can be re-wrapped as CUDA device functions (see numba_cuda.distance).
    last = k - 1
    if index[n, last] != EMPTY_INDEX and not (
        s < score[n, last] or (s == score[n, last] and i < index[n, last])
    ):
        return
    j = last
    while j > 0 and (
        index[n, j - 1] == EMPTY_INDEX
        or s < score[n, j - 1]
        or (s == score[n, j - 1] and i < index[n, j - 1])
    ):
        score[n, j] = score[n, j - 1]
        index[n, j] = index[n, j - 1]
        j -= 1
    score[n, j] = s
    index[n, j] = i
