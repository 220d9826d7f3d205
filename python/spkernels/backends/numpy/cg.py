"""Conjugate gradient on the ``numpy`` backend: the float64-accumulating reference.

The ``cg`` family contract, the same in every ``backends/<pkg>/cg.py``: a class
``Engine(shape, dtype, maxiter)`` that owns the solver's state (``STATE_SIZE`` float64 slots,
laid out once in :mod:`spkernels.backends.numba_math.cg`) and residual history
(``maxiter + 1`` float64, NaN until written), with these methods on solver vectors (arrays of
`shape` and `dtype` on the backend's device):

``empty()``, ``zeros()``          a new solver vector
``adopt(a)``                      a user/operator array as a contiguous solver vector
``user_view(v)``                  what the user's operator and callback receive for vector `v`
``to_user(x, on_device)``         the result array handed back (host unless `on_device`)
``copy(dst, src)``                ``dst[...] = src``
``residual(r, b, q)``             ``r = b - q``
``dot(a, b, which)``              ``<a, b>`` fed into the state as reduction `which` (``DOT_*``)
``update_xr(x, r, p, q)``         ``x += alpha p; r -= alpha q; ||r||²`` and the state update
``update_p(p, z)``                ``p = z + beta p``
``set_state(st)``, ``read_state()``, ``read_hist()``   the state/history to and from the host

plus the attribute ``gpu`` (vectors live on a GPU: the operator must return device arrays).
Every state-updating method is a no-op once the state has left ``RUNNING``.

Here the vector work is plain NumPy and the scalar state machine runs as Python (the
``.py_func`` of the Numba twin of ``cpp/include/spk/cg.h``). :class:`HostEngine` holds what
the three host backends (``numpy``, ``cpu``, ``numba-cpu``) share: NumPy vectors, host state.
"""

from __future__ import annotations

import numpy as np

from .._shared import real_dtype
from ..numba_math import cg as _m


class HostEngine:
    """Solver vectors, state and history in host memory (NumPy arrays)."""

    gpu = False

    def __init__(self, shape, dtype, maxiter):
        self.shape, self.dtype = shape, np.dtype(dtype)
        self.cplx = self.dtype.kind == "c"
        self.state = np.zeros(_m.STATE_SIZE)
        self.hist = np.full(maxiter + 1, np.nan)

    def empty(self):
        return np.empty(self.shape, self.dtype)

    def zeros(self):
        return np.zeros(self.shape, self.dtype)

    def adopt(self, a):
        return np.ascontiguousarray(a, dtype=self.dtype).reshape(self.shape)

    def real(self, a):
        """The flat real view the compiled kernels take (complex: interleaved re/im)."""
        a = a.reshape(-1)
        return a.view(real_dtype(self.dtype)) if self.cplx else a

    def user_view(self, a):
        return a

    def to_user(self, x, on_device):
        return x

    def copy(self, dst, src):
        np.copyto(dst, src)

    def residual(self, r, b, q):
        np.subtract(b, q, out=r)

    def set_state(self, st):
        self.state[:] = st

    def read_state(self):
        return self.state.copy()

    def read_hist(self):
        return self.hist.copy()


class Engine(HostEngine):
    """The reference: NumPy vector operations, the state machine run as plain Python."""

    def dot(self, a, b, which):
        if not _m.cg_running.py_func(self.state):
            return
        v = np.vdot(a.reshape(-1), b.reshape(-1))
        _m.cg_finish_dot.py_func(self.state, self.hist, which, float(v.real), float(v.imag))

    def update_xr(self, x, r, p, q):
        if not _m.cg_running.py_func(self.state):
            return
        alpha = self.state[_m.ALPHA]
        x += alpha * p
        r -= alpha * q
        rr = float(np.vdot(r.reshape(-1), r.reshape(-1)).real)
        _m.cg_finish_rr.py_func(self.state, self.hist, rr)

    def update_p(self, p, z):
        if not _m.cg_running.py_func(self.state):
            return
        beta = _m.cg_beta.py_func(self.state)
        p *= beta
        p += z
