"""Built-in case ``gemm``: a square matrix product, the arithmetic ceiling measured per backend.

``cpu`` is NumPy's BLAS and ``cuda`` is cuBLAS through CuPy (the libraries the GEMM ceiling is
measured with), ``numba-cpu`` a ``prange`` loop and ``numba-cuda`` a shared-memory tiled
``@cuda.jit`` kernel: what a straightforward Numba kernel reaches against a vendor library.
"""

from __future__ import annotations

import functools

import numpy as np

from ... import backends
from ..registry import Prepared, register

try:  # a module global, not a closure variable: the CUDA simulator swaps globals named `cuda`
    from numba import cuda
except ImportError:  # numba-cuda missing: the numba-cuda rows report it through backends.resolve
    cuda = None

_SIZES = {"small": 384, "full": 4096}
_TILE = 16


@functools.lru_cache(maxsize=None)
def _numba_cpu_gemm():
    import numba

    @numba.njit(parallel=True, fastmath=False)
    def gemm(a, b, c):
        n, k = a.shape
        m = b.shape[1]
        for i in numba.prange(n):
            for j in range(m):
                c[i, j] = 0.0
            for p in range(k):  # i-p-j order: the inner loop streams rows of b and c
                aip = a[i, p]
                for j in range(m):
                    c[i, j] += aip * b[p, j]

    return gemm


@functools.lru_cache(maxsize=None)
def _numba_cuda_gemm(dtype_name: str):
    from numba import float32, float64

    nb_type = {"float32": float32, "float64": float64}[dtype_name]

    @cuda.jit
    def gemm(a, b, c):
        sa = cuda.shared.array((_TILE, _TILE), nb_type)
        sb = cuda.shared.array((_TILE, _TILE), nb_type)
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        row = cuda.blockIdx.y * _TILE + ty
        col = cuda.blockIdx.x * _TILE + tx
        n, k = a.shape
        m = b.shape[1]
        acc = nb_type(0)
        for t in range((k + _TILE - 1) // _TILE):
            kk = t * _TILE
            sa[ty, tx] = a[row, kk + tx] if row < n and kk + tx < k else nb_type(0)
            sb[ty, tx] = b[kk + ty, col] if kk + ty < k and col < m else nb_type(0)
            cuda.syncthreads()
            for p in range(_TILE):
                acc += sa[ty, p] * sb[p, tx]
            cuda.syncthreads()
        if row < n and col < m:
            c[row, col] = acc

    return gemm


def prepare(backend: str, size: str, precision: str) -> Prepared:
    """Inputs and a one-call closure for `backend` (see :mod:`spkernels.bench.registry`)."""
    if size not in _SIZES:
        raise ValueError(f"`size` must be one of {', '.join(_SIZES)}; got {size!r}")
    if precision not in ("float32", "float64"):
        raise ValueError(f"`precision` must be float32 or float64; got {precision!r}")
    backends.resolve(backend, supported=("cuda", "numba-cuda", "cpu", "numba-cpu"))
    n = _SIZES[size]
    rng = np.random.default_rng(7)
    a = rng.standard_normal((n, n)).astype(precision)
    b = rng.standard_normal((n, n)).astype(precision)
    if backend == "cpu":
        c = np.full((n, n), np.nan, dtype=precision)
        run = functools.partial(np.matmul, a, b, out=c)
        result = lambda: c  # noqa: E731
    elif backend == "numba-cpu":
        c = np.full((n, n), np.nan, dtype=precision)
        run = functools.partial(_numba_cpu_gemm(), a, b, c)
        result = lambda: c  # noqa: E731
    elif backend == "cuda":
        try:
            import cupy as cp
        except ImportError:
            raise NotImplementedError("the cuda row of the gemm case is cuBLAS through CuPy; CuPy is missing") from None
        da, db = cp.asarray(a), cp.asarray(b)
        dc = cp.full((n, n), cp.nan, dtype=precision)
        run = functools.partial(cp.matmul, da, db, out=dc)
        result = lambda: cp.asnumpy(dc)  # noqa: E731
    else:  # numba-cuda
        if backends.cuda_simulator():
            raise NotImplementedError("the CUDA simulator is for tests; timing it means nothing")
        da, db = cuda.to_device(a), cuda.to_device(b)
        dc = cuda.to_device(np.full((n, n), np.nan, dtype=precision))
        blocks = ((n + _TILE - 1) // _TILE, (n + _TILE - 1) // _TILE)
        launch = _numba_cuda_gemm(precision)[blocks, (_TILE, _TILE)]
        run = functools.partial(launch, da, db, dc)
        result = dc.copy_to_host
    run()  # warm-up: JIT compilation, cuBLAS handle, first touch
    backends_sync = getattr(backends.core(), "cuda_synchronize", None) if backend in backends.GPU_BACKENDS else None
    if backends_sync:
        backends_sync()
    # Guard the measurement: a wrong product would make its speed meaningless.
    ref = a.astype(np.float64) @ b.astype(np.float64)
    got = np.asarray(result(), dtype=np.float64)
    rel = np.linalg.norm(got - ref) / np.linalg.norm(ref)
    if not np.isfinite(rel) or rel > (1e-4 if precision == "float32" else 1e-10):
        raise RuntimeError(f"gemm case: backend {backend!r} is wrong (relative error {rel:.2e})")
    return Prepared(run=run, flops=2.0 * n**3, bytes=3.0 * n * n * np.dtype(precision).itemsize,
                    items=float(n * n), item_unit="outputs",
                    note="cpu/cuda rows are BLAS/cuBLAS, numba rows are plain Numba loops")


register(
    "gemm", prepare, sizes=tuple(_SIZES), precisions=("float32", "float64"), ceiling="gemm",
    description="square matrix product: BLAS/cuBLAS (cpu, cuda) vs plain Numba kernels (numba-cpu, numba-cuda)",
    size_help={"small": f"n={_SIZES['small']}", "full": f"n={_SIZES['full']}"},
)
