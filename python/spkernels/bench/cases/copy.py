"""Built-in case ``copy``: a large array copy, the bandwidth ceiling measured per backend.

It doubles as the reference for the others: ``cpu`` and ``cuda`` use the C library's memcpy
(NumPy's copy on the host, ``cudaMemcpy`` device-to-device through ``spkernels._core``);
``numba-cpu`` and ``numba-cuda`` are plain Numba copy loops. Their ratio shows what a
straightforward Numba kernel gives up on pure streaming, and each row's fraction of the
``copy`` ceiling shows how close to it the backend gets.
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

# Bytes per buffer. "small" is still past a typical CPU L3 (32 MiB per EPYC CCD), so a CPU's
# fraction of the (DRAM) copy ceiling stays meaningful; "full" is far past any GPU's L2.
_SIZES = {"small": 64 * 2**20, "full": 1024 * 2**20}


def _source(nbytes: int, precision: str) -> np.ndarray:
    dtype = np.dtype(precision)
    return (np.arange(nbytes // dtype.itemsize) % 1021 + 0.5).astype(dtype)  # non-zero, distinct


@functools.lru_cache(maxsize=None)
def _numba_cpu_copy():
    import numba

    @numba.njit(parallel=True)
    def copy(dst, src):
        for i in numba.prange(src.shape[0]):
            dst[i] = src[i]

    return copy


@functools.lru_cache(maxsize=None)
def _numba_cuda_copy():
    @cuda.jit
    def copy(dst, src):
        start = cuda.grid(1)
        stride = cuda.gridsize(1)
        for i in range(start, src.shape[0], stride):
            dst[i] = src[i]

    return copy


def prepare(backend: str, size: str, precision: str) -> Prepared:
    """Inputs and a one-call closure for `backend` (see :mod:`spkernels.bench.registry`)."""
    if size not in _SIZES:
        raise ValueError(f"`size` must be one of {', '.join(_SIZES)}; got {size!r}")
    backends.resolve(backend, supported=("cuda", "numba-cuda", "cpu", "numba-cpu"))
    host = _source(_SIZES[size], precision)
    nbytes = 2.0 * host.nbytes  # read + write, as the ceiling counts
    if backend == "cpu":
        dst = np.full_like(host, np.nan)
        run = functools.partial(np.copyto, dst, host)
        check = lambda: np.array_equal(dst, host)  # noqa: E731
    elif backend == "numba-cpu":
        dst = np.full_like(host, np.nan)
        fn = _numba_cpu_copy()
        run = functools.partial(fn, dst, host)
        check = lambda: np.array_equal(dst, host)  # noqa: E731
    elif backend == "cuda":
        core = backends.core()
        src = core.DeviceBuffer(host.nbytes)
        src.copy_from_host(host)
        dst = core.DeviceBuffer(host.nbytes)
        run = functools.partial(core.cuda_memcpy_d2d, dst.ptr, src.ptr, host.nbytes)

        def check():
            core.cuda_synchronize()
            back = np.full_like(host, np.nan)
            dst.copy_to_host(back)
            return np.array_equal(back, host)
    else:  # numba-cuda
        if backends.cuda_simulator():
            raise NotImplementedError("the CUDA simulator is for tests; timing it means nothing")
        src = cuda.to_device(host)
        dst = cuda.to_device(np.full_like(host, np.nan))
        fn = _numba_cuda_copy()
        sms = cuda.get_current_device().MULTIPROCESSOR_COUNT
        launch = fn[sms * 8, 256]
        run = functools.partial(launch, dst, src)

        def check():
            cuda.synchronize()
            return np.array_equal(dst.copy_to_host(), host)

    run()  # warm-up: JIT compilation, first-touch page faults
    if not check():
        raise RuntimeError(f"copy case: backend {backend!r} did not copy correctly")
    return Prepared(run=run, bytes=nbytes, items=host.size, item_unit="elements",
                    note="cpu/cuda rows are library memcpy, numba rows are Numba loops")


register(
    "copy", prepare, sizes=tuple(_SIZES), precisions=("float32", "float64"), ceiling="copy",
    description="array copy: library memcpy (cpu, cuda) vs a Numba loop (numba-cpu, numba-cuda)",
    size_help={"small": "64 MiB buffers", "full": "1 GiB buffers"},
)
