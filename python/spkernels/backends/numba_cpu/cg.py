"""Conjugate gradient vector kernels with ``@njit(parallel=True)`` (twin of ``cpp/cpu/cg.cpp``).

Vectors are real 1-D views (a complex vector is its interleaved real and imaginary parts). Sums
run over fixed chunks added in chunk order, so they do not depend on the thread count.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..numba_math.cg import ALPHA, beta as _beta, finish_dot, finish_rr, running

CHUNK = 4096


@njit(parallel=True, cache=False)
def _dot(a, b, cplx):
    n = a.shape[0]
    nc = (n + CHUNK - 1) // CHUNK
    re = np.empty(nc)
    im = np.zeros(nc)
    for c in prange(nc):
        lo = c * CHUNK
        hi = min(n, lo + CHUNK)
        s = 0.0
        t = 0.0
        if cplx:
            for i in range(lo, hi, 2):
                ar = np.float64(a[i])
                ai = np.float64(a[i + 1])
                br = np.float64(b[i])
                bi = np.float64(b[i + 1])
                s += ar * br + ai * bi
                t += ar * bi - ai * br
        else:
            for i in range(lo, hi):
                s += np.float64(a[i]) * np.float64(b[i])
        re[c] = s
        im[c] = t
    s = 0.0
    t = 0.0
    for c in range(nc):
        s += re[c]
    for c in range(nc):
        t += im[c]
    return s, t


@njit(cache=False)
def dot(a, b, cplx, state, hist, which):
    """<a, b> fed into the CG state as reduction `which`."""
    if not running(state):
        return
    s, t = _dot(a, b, cplx)
    finish_dot(state, hist, which, s, t)


@njit(parallel=True, cache=False)
def _update_xr(x, r, p, q, alpha):
    n = x.shape[0]
    nc = (n + CHUNK - 1) // CHUNK
    part = np.empty(nc)
    for c in prange(nc):
        lo = c * CHUNK
        hi = min(n, lo + CHUNK)
        s = 0.0
        for i in range(lo, hi):
            x[i] = x[i] + alpha * p[i]
            ri = r[i] - alpha * q[i]
            r[i] = ri
            s += np.float64(r[i]) * np.float64(r[i])
        part[c] = s
    s = 0.0
    for c in range(nc):
        s += part[c]
    return s


@njit(cache=False)
def update_xr(x, r, p, q, state, hist):
    """Fused x += alpha p, r -= alpha q, ||r||^2 and the state update."""
    if not running(state):
        return
    rr = _update_xr(x, r, p, q, state[ALPHA])
    finish_rr(state, hist, rr)


@njit(parallel=True, cache=False)
def _update_p(p, z, b):
    for i in prange(p.shape[0]):
        p[i] = z[i] + b * p[i]


@njit(cache=False)
def update_p(p, z, state):
    """p = z + beta p with beta from the state."""
    if not running(state):
        return
    _update_p(p, z, _beta(state))
