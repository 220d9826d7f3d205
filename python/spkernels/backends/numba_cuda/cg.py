"""Conjugate gradient vector kernels with ``@cuda.jit`` (twin of ``cpp/cuda/cg.cu``).

The state array (``numba_math.cg``) lives on the device: a fixed-grid first stage writes one
partial sum per block (shared-memory tree), a one-block second stage adds them in a fixed tree
and runs the scalar update in thread 0. No atomics, no host synchronisation per iteration.
"""

from __future__ import annotations

import numpy as np
from numba import cuda, float64

from ... import backends as _backends
from ..numba_math import cg as _m

ALPHA = _m.ALPHA
if _backends.cuda_simulator():
    # The simulator runs kernels as Python and cannot pass its fake arrays into compiled
    # @njit functions: use their Python sources, the same math.
    running, finish_dot, finish_rr, _beta = (_m.running.py_func, _m.finish_dot.py_func, _m.finish_rr.py_func,
                                             _m.beta.py_func)
else:
    running, finish_dot, finish_rr, _beta = _m.running, _m.finish_dot, _m.finish_rr, _m.beta

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
    if not running(state):
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
    if not running(state):
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
            finish_dot(state, hist, which, s, t)
        else:
            finish_rr(state, hist, s)


@cuda.jit(cache=False)
def _update_xr_partial(x, r, p, q, state, work):
    if not running(state):
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
def _update_p(p, z, state):
    if not running(state):
        return
    b = _beta(state)
    stride = cuda.gridDim.x * cuda.blockDim.x
    i = cuda.grid(1)
    while i < p.shape[0]:
        p[i] = z[i] + b * p[i]
        i += stride


@cuda.jit(cache=False)
def _residual(r, b, q):
    stride = cuda.gridDim.x * cuda.blockDim.x
    i = cuda.grid(1)
    while i < r.shape[0]:
        r[i] = b[i] - q[i]
        i += stride


def dot(a, b, cplx, state, hist, which, work):
    """<a, b> of two real device views, fed into the device state as reduction `which`."""
    g = grid_for(a.shape[0] // 2 if cplx else a.shape[0])
    _dot_partial[g, THREADS](a, b, bool(cplx), state, work)
    _reduce_final[1, THREADS](work, g, state, hist, 0, int(which))


def update_xr(x, r, p, q, state, hist, work):
    g = grid_for(x.shape[0])
    _update_xr_partial[g, THREADS](x, r, p, q, state, work)
    _reduce_final[1, THREADS](work, g, state, hist, 1, 0)


def _elementwise_grid(n):
    return int(min(max(1, -(-int(n) // THREADS)), 8 * MAX_BLOCKS))


def update_p(p, z, state):
    _update_p[_elementwise_grid(p.shape[0]), THREADS](p, z, state)


def residual(r, b, q):
    _residual[_elementwise_grid(r.shape[0]), THREADS](r, b, q)


def work_array():
    return cuda.device_array(WORK_SIZE, dtype=np.float64)
