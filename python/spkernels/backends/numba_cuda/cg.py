"""Conjugate gradient on the ``numba-cuda`` backend: ``@cuda.jit`` twins of ``cpp/cuda/cg.cu``.

Contract of the ``cg`` family (see :mod:`spkernels.backends.numpy.cg` for the full list): a
class ``Engine(shape, dtype, maxiter)`` with ``empty``, ``zeros``, ``adopt``, ``user_view``,
``to_user``, ``copy``, ``residual``, ``dot``, ``update_xr``, ``update_p``, ``set_state``,
``read_state``, ``read_hist`` and the attribute ``gpu``.

Vectors are Numba device arrays (the operator and callback see CuPy views of them when CuPy is
installed). The state array (``numba_math.cg``) lives on the device: a fixed-grid first stage
writes one partial sum per block (shared-memory tree), a one-block second stage adds them in a
fixed tree and runs the scalar update in thread 0. No atomics, no host synchronisation per
iteration. ``_cg_dot``, ``_cg_update_xr``, ``_cg_update_p`` and ``_cg_residual`` are the twins of
the C++ launchers ``spk::cuda::cg_dot`` ... (``cpp/cuda/cg.h``), the kernels those of its kernels.
"""

from __future__ import annotations

import numpy as np
from numba import cuda, float64

from ... import backends as _backends
from ... import _arrays
from ..._arrays import is_device_array
from . import to_device
from .._shared import real_dtype
from ..numba_math import cg as _m

ALPHA = _m.ALPHA
if _backends.cuda_simulator():
    # The simulator runs kernels as Python and cannot pass its fake arrays into compiled
    # @njit functions: use their Python sources, the same math.
    cg_running, cg_finish_dot, cg_finish_rr, cg_beta = (_m.cg_running.py_func, _m.cg_finish_dot.py_func,
                                                        _m.cg_finish_rr.py_func, _m.cg_beta.py_func)
else:
    cg_running, cg_finish_dot, cg_finish_rr, cg_beta = _m.cg_running, _m.cg_finish_dot, _m.cg_finish_rr, _m.cg_beta

# Each simulated thread is a Python thread: small blocks keep simulator tests fast.
THREADS = 32 if _backends.cuda_simulator() else 256
MAX_BLOCKS = 1024
WORK_SIZE = 2 * MAX_BLOCKS


def grid_for(units: int) -> int:
    return int(min(max(1, -(-int(units) // (THREADS * 4))), MAX_BLOCKS))


@cuda.jit(device=True)
def _block_sum2(s, t):
    ss = cuda.shared.array(THREADS, float64)
    tt = cuda.shared.array(THREADS, float64)
    tid = cuda.threadIdx.x
    ss[tid] = s
    tt[tid] = t
    cuda.syncthreads()
    h = THREADS // 2
    while h > 0:
        if tid < h:
            ss[tid] += ss[tid + h]
            tt[tid] += tt[tid + h]
        cuda.syncthreads()
        h //= 2
    return ss[0], tt[0]


@cuda.jit(cache=False)
def _dot_partial(a, b, cplx, state, work):
    if not cg_running(state):
        return
    s = 0.0
    t = 0.0
    stride = cuda.gridDim.x * cuda.blockDim.x
    start = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    n = a.shape[0]
    if cplx:
        j = start
        while j < n // 2:
            ar = float64(a[2 * j])
            ai = float64(a[2 * j + 1])
            br = float64(b[2 * j])
            bi = float64(b[2 * j + 1])
            s += ar * br + ai * bi
            t += ar * bi - ai * br
            j += stride
    else:
        i = start
        while i < n:
            s += float64(a[i]) * float64(b[i])
            i += stride
    s, t = _block_sum2(s, t)
    if cuda.threadIdx.x == 0:
        work[2 * cuda.blockIdx.x] = s
        work[2 * cuda.blockIdx.x + 1] = t


@cuda.jit(cache=False)
def _reduce_final(work, blocks, state, hist, mode, which):
    if not cg_running(state):
        return
    s = 0.0
    t = 0.0
    j = cuda.threadIdx.x
    while j < blocks:
        s += work[2 * j]
        t += work[2 * j + 1]
        j += cuda.blockDim.x
    s, t = _block_sum2(s, t)
    if cuda.threadIdx.x == 0:
        if mode == 0:
            cg_finish_dot(state, hist, which, s, t)
        else:
            cg_finish_rr(state, hist, s)


@cuda.jit(cache=False)
def _update_xr_partial(x, r, p, q, state, work):
    if not cg_running(state):
        return
    alpha = state[ALPHA]
    s = 0.0
    stride = cuda.gridDim.x * cuda.blockDim.x
    i = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    while i < x.shape[0]:
        x[i] = x[i] + alpha * p[i]
        r[i] = r[i] - alpha * q[i]
        ri = float64(r[i])
        s += ri * ri
        i += stride
    s, t = _block_sum2(s, 0.0)
    if cuda.threadIdx.x == 0:
        work[2 * cuda.blockIdx.x] = s
        work[2 * cuda.blockIdx.x + 1] = 0.0


@cuda.jit(cache=False)
def _update_p_kernel(p, z, state):
    if not cg_running(state):
        return
    b = cg_beta(state)
    stride = cuda.gridDim.x * cuda.blockDim.x
    i = cuda.grid(1)
    while i < p.shape[0]:
        p[i] = z[i] + b * p[i]
        i += stride


@cuda.jit(cache=False)
def _residual_kernel(r, b, q):
    stride = cuda.gridDim.x * cuda.blockDim.x
    i = cuda.grid(1)
    while i < r.shape[0]:
        r[i] = b[i] - q[i]
        i += stride


def _cg_dot(a, b, cplx, state, hist, which, work):
    """<a, b> of two real device views, fed into the device state as reduction `which`."""
    g = grid_for(a.shape[0] // 2 if cplx else a.shape[0])
    _dot_partial[g, THREADS](a, b, bool(cplx), state, work)
    _reduce_final[1, THREADS](work, g, state, hist, 0, int(which))


def _cg_update_xr(x, r, p, q, state, hist, work):
    g = grid_for(x.shape[0])
    _update_xr_partial[g, THREADS](x, r, p, q, state, work)
    _reduce_final[1, THREADS](work, g, state, hist, 1, 0)


def elementwise_grid(n):
    return int(min(max(1, -(-int(n) // THREADS)), 8 * MAX_BLOCKS))


def _cg_update_p(p, z, state):
    _update_p_kernel[elementwise_grid(p.shape[0]), THREADS](p, z, state)


def _cg_residual(r, b, q):
    _residual_kernel[elementwise_grid(r.shape[0]), THREADS](r, b, q)


def work_array():
    return cuda.device_array(WORK_SIZE, dtype=np.float64)


class Engine:
    """``@cuda.jit`` kernels; vectors are Numba device arrays (CuPy views are handed to the
    operator when CuPy is installed)."""

    gpu = True

    def __init__(self, shape, dtype, maxiter):
        self.shape, self.dtype = shape, np.dtype(dtype)
        self.cplx = self.dtype.kind == "c"
        self.state = cuda.to_device(np.zeros(_m.STATE_SIZE))
        self.hist = cuda.to_device(np.full(maxiter + 1, np.nan))
        self.work = work_array()
        xp = _backends.array_module("numba-cuda")
        self.cp = None if xp is np else xp  # the operator's arrays: CuPy views of the vectors

    def empty(self):
        return cuda.device_array(self.shape, self.dtype)

    def zeros(self):
        return cuda.to_device(np.zeros(self.shape, self.dtype))

    def adopt(self, a):
        if hasattr(a, "copy_to_host") and not is_device_array(a):  # simulator arrays have no CAI
            if np.dtype(a.dtype) != self.dtype:
                raise TypeError(f"operator returned dtype {np.dtype(a.dtype).name}, expected {self.dtype.name}")
            return a.reshape(self.shape)
        if is_device_array(a):
            if self.cp is not None and np.dtype(a.dtype) != self.dtype:
                a = self.cp.asarray(a, dtype=self.dtype)
            d = to_device(_arrays.contiguous(a))
            if np.dtype(d.dtype) != self.dtype:
                raise TypeError(f"operator returned dtype {np.dtype(d.dtype).name}, expected {self.dtype.name}")
            return d.reshape(self.shape)
        return cuda.to_device(np.ascontiguousarray(a, dtype=self.dtype).reshape(self.shape))

    def real(self, a):
        """The flat real view the kernels take (complex: interleaved re/im)."""
        a = a.reshape(-1)
        return a.view(real_dtype(self.dtype)) if self.cplx else a

    def user_view(self, a):
        return self.cp.asarray(a) if self.cp is not None else a

    def to_user(self, x, on_device):
        if not on_device:
            return x.copy_to_host()
        return self.cp.asarray(x) if self.cp is not None else x

    def copy(self, dst, src):
        dst.copy_to_device(src)

    def residual(self, r, b, q):
        _cg_residual(self.real(r), self.real(b), self.real(q))

    def dot(self, a, b, which):
        _cg_dot(self.real(a), self.real(b), self.cplx, self.state, self.hist, which, self.work)

    def update_xr(self, x, r, p, q):
        _cg_update_xr(self.real(x), self.real(r), self.real(p), self.real(q), self.state, self.hist, self.work)

    def update_p(self, p, z):
        _cg_update_p(self.real(p), self.real(z), self.state)

    def set_state(self, st):
        self.state.copy_to_device(np.asarray(st, dtype=np.float64))

    def read_state(self):
        return self.state.copy_to_host()

    def read_hist(self):
        return self.hist.copy_to_host()
