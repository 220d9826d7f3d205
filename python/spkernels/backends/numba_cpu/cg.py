"""Conjugate gradient on the ``numba-cpu`` backend: ``@njit(parallel=True)`` twins of ``cpp/cpu/cg.cpp``.

Contract of the ``cg`` family (see :mod:`spkernels.backends.numpy.cg` for the full list): a
class ``Engine(shape, dtype, maxiter)`` with ``empty``, ``zeros``, ``adopt``, ``user_view``,
``to_user``, ``copy``, ``residual``, ``dot``, ``update_xr``, ``update_p``, ``set_state``,
``read_state``, ``read_hist`` and the attribute ``gpu``.

Vectors, state and history are host NumPy arrays (:class:`~spkernels.backends.numpy.cg.HostEngine`).
The kernels take real 1-D views (a complex vector is its interleaved real and imaginary parts);
``_dot_cpu``, ``_update_xr_cpu`` and ``_update_p_cpu`` are the twins of the ``_core`` functions
``cg_dot_cpu``, ``cg_update_xr_cpu`` and ``cg_update_p_cpu`` (same arguments), running the state
machine of :mod:`spkernels.backends.numba_math.cg`. Sums run over fixed chunks added in chunk
order, so they do not depend on the thread count.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..numba_math.cg import ALPHA, cg_beta, cg_finish_dot, cg_finish_rr, cg_running
from ..numpy.cg import HostEngine

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
def _dot_cpu(a, b, cplx, state, hist, which):
    """<a, b> fed into the CG state as reduction `which`."""
    if not cg_running(state):
        return
    s, t = _dot(a, b, cplx)
    cg_finish_dot(state, hist, which, s, t)


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
def _update_xr_cpu(x, r, p, q, state, hist):
    """Fused x += alpha p, r -= alpha q, ||r||^2 and the state update."""
    if not cg_running(state):
        return
    rr = _update_xr(x, r, p, q, state[ALPHA])
    cg_finish_rr(state, hist, rr)


@njit(parallel=True, cache=False)
def _update_p(p, z, b):
    for i in prange(p.shape[0]):
        p[i] = z[i] + b * p[i]


@njit(cache=False)
def _update_p_cpu(p, z, state):
    """p = z + beta p with beta from the state."""
    if not cg_running(state):
        return
    _update_p(p, z, cg_beta(state))


class Engine(HostEngine):
    def dot(self, a, b, which):
        _dot_cpu(self.real(a), self.real(b), self.cplx, self.state, self.hist, which)

    def update_xr(self, x, r, p, q):
        _update_xr_cpu(self.real(x), self.real(r), self.real(p), self.real(q), self.state, self.hist)

    def update_p(self, p, z):
        _update_p_cpu(self.real(p), self.real(z), self.state)
