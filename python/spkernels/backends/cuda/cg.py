"""Conjugate gradient on the ``cuda`` backend: the CUDA C++ vector kernels of ``spkernels._core``.

Contract of the ``cg`` family (see :mod:`spkernels.backends.numpy.cg` for the full list): a
class ``Engine(shape, dtype, maxiter)`` with ``empty``, ``zeros``, ``adopt``, ``user_view``,
``to_user``, ``copy``, ``residual``, ``dot``, ``update_xr``, ``update_p``, ``set_state``,
``read_state``, ``read_hist`` and the attribute ``gpu``.

Vectors are CuPy arrays; state, history and the reduction scratch live in device memory, and the
launchers (``cg_dot_cuda``, ``cg_update_xr_cuda``, ``cg_update_p_cuda``, ``cg_residual_cuda``)
take their device pointers (:func:`spkernels._arrays.device_pointer`), the length in reals and the
real element type's core tag, on CuPy's current stream.
"""

from __future__ import annotations

import numpy as np

from ..._arrays import device_pointer
from ..._errors import BackendUnavailableError
from .._shared import core_function, core_tag, real_dtype
from ..numba_math import cg as _m


class Engine:
    """Hand-written CUDA kernels through ``_core``; vectors are CuPy arrays."""

    gpu = True

    def __init__(self, shape, dtype, maxiter):
        try:
            import cupy
        except ImportError:
            raise BackendUnavailableError(
                "cg on the `cuda` backend needs CuPy (the operator works on CuPy arrays); "
                "install spkernels[cuda12|cuda13]") from None
        self.cp, self.ptr = cupy, device_pointer
        self.shape, self.dtype = shape, np.dtype(dtype)
        self.cplx = self.dtype.kind == "c"
        self.tag = core_tag(real_dtype(self.dtype))
        self.n = int(np.prod(shape)) * (2 if self.cplx else 1)  # the launchers count reals
        self._dot = core_function("cg_dot_cuda")
        self._update_xr = core_function("cg_update_xr_cuda")
        self._update_p = core_function("cg_update_p_cuda")
        self._residual = core_function("cg_residual_cuda")
        self.state = cupy.zeros(_m.STATE_SIZE)
        self.hist = cupy.full(maxiter + 1, np.nan)
        self.work = cupy.empty(core_function("CG_WORK_SIZE"))
        self.stream = cupy.cuda.get_current_stream().ptr

    def empty(self):
        return self.cp.empty(self.shape, self.dtype)

    def zeros(self):
        return self.cp.zeros(self.shape, self.dtype)

    def adopt(self, a):
        return self.cp.ascontiguousarray(self.cp.asarray(a, dtype=self.dtype)).reshape(self.shape)

    def user_view(self, a):
        return a

    def to_user(self, x, on_device):
        return x if on_device else x.get()

    def copy(self, dst, src):
        self.cp.copyto(dst, src)

    def residual(self, r, b, q):
        self._residual(self.ptr(r), self.ptr(b), self.ptr(q), self.n, self.tag, self.stream)

    def dot(self, a, b, which):
        self._dot(self.ptr(a), self.ptr(b), self.n, self.cplx, self.tag, self.ptr(self.state), self.ptr(self.hist),
                  which, self.ptr(self.work), self.stream)

    def update_xr(self, x, r, p, q):
        self._update_xr(self.ptr(x), self.ptr(r), self.ptr(p), self.ptr(q), self.n, self.tag, self.ptr(self.state),
                        self.ptr(self.hist), self.ptr(self.work), self.stream)

    def update_p(self, p, z):
        self._update_p(self.ptr(p), self.ptr(z), self.n, self.tag, self.ptr(self.state), self.stream)

    def set_state(self, st):
        self.state.set(np.asarray(st, dtype=np.float64))

    def read_state(self):
        return self.state.get()

    def read_hist(self):
        return self.hist.get()
