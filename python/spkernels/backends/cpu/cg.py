"""Conjugate gradient on the ``cpu`` backend: the C++ OpenMP vector kernels of ``spkernels._core``.

Contract of the ``cg`` family (see :mod:`spkernels.backends.numpy.cg` for the full list): a
class ``Engine(shape, dtype, maxiter)`` with ``empty``, ``zeros``, ``adopt``, ``user_view``,
``to_user``, ``copy``, ``residual``, ``dot``, ``update_xr``, ``update_p``, ``set_state``,
``read_state``, ``read_hist`` and the attribute ``gpu``.

Vectors, state and history are host NumPy arrays (:class:`~spkernels.backends.numpy.cg.HostEngine`);
``dot``/``update_xr``/``update_p`` hand flat real views to ``cg_dot_cpu``, ``cg_update_xr_cpu``
and ``cg_update_p_cpu``, which run the state machine of ``cpp/include/spk/cg.h`` in C++.
"""

from __future__ import annotations

from .._shared import core_function
from ..numpy.cg import HostEngine


class Engine(HostEngine):
    def __init__(self, shape, dtype, maxiter):
        super().__init__(shape, dtype, maxiter)
        self._dot = core_function("cg_dot_cpu")
        self._update_xr = core_function("cg_update_xr_cpu")
        self._update_p = core_function("cg_update_p_cpu")

    def dot(self, a, b, which):
        self._dot(self.real(a), self.real(b), self.cplx, self.state, self.hist, which)

    def update_xr(self, x, r, p, q):
        self._update_xr(self.real(x), self.real(r), self.real(p), self.real(q), self.state, self.hist)

    def update_p(self, p, z):
        self._update_p(self.real(p), self.real(z), self.state)
