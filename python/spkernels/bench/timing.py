"""Timing that is honest about asynchronous devices.

GPU launches return before the work is done, so every timed region ends with a device-wide
synchronisation. One ``cudaDeviceSynchronize`` covers the streams of ``_core``, CuPy and Numba
alike, so :func:`synchronize` does not need to know which library launched the work.
"""

from __future__ import annotations

import functools
import statistics
import time
from typing import Callable

from ..backends import GPU_BACKENDS

__all__ = ["device_synchronizer", "synchronize", "median_time", "is_gpu_backend"]


def is_gpu_backend(backend: str) -> bool:
    """Whether `backend` runs on a GPU (its timings need a device synchronisation)."""
    return backend in GPU_BACKENDS or backend == "gpu"


@functools.lru_cache(maxsize=None)
def device_synchronizer() -> Callable[[], None]:
    """A function that blocks until all work queued on the current CUDA device has finished.

    Tries the compiled core, then CuPy, then Numba; raises ``NotImplementedError`` (asv's skip
    signal) when none of them can reach a GPU.
    """
    from ..backends import core

    mod = core()
    try:
        if mod is not None and mod.cuda_device_count() > 0:
            return mod.cuda_synchronize
    except Exception:
        pass
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() > 0:
            return cupy.cuda.runtime.deviceSynchronize
    except Exception:
        pass
    try:
        from numba import cuda

        if cuda.is_available():
            return cuda.synchronize
    except Exception:
        pass
    raise NotImplementedError("no library here can synchronise a CUDA device")


def synchronize(backend: str) -> None:
    """Wait for `backend`'s queued work: a device synchronisation for GPU backends, else nothing."""
    if is_gpu_backend(backend):
        device_synchronizer()()


def median_time(fn: Callable[[], object], *, sync: Callable[[], None] | None = None,
                repeat: int = 7, min_time: float = 0.05, warmup: int = 1) -> float:
    """Median wall time in seconds of one call of `fn`, synchronised by `sync` after each batch.

    Each of `repeat` samples times a batch of calls sized so that a batch lasts at least
    `min_time` seconds (fast kernels are not swamped by timer resolution and launch jitter);
    the sample is the batch time over its size. `warmup` calls run first and are not timed.
    """
    sync = sync or (lambda: None)
    for _ in range(warmup):
        fn()
    sync()
    # Size the batch from one timed call.
    t0 = time.perf_counter()
    fn()
    sync()
    one = max(time.perf_counter() - t0, 1e-7)
    number = max(1, min(10_000, int(min_time / one)))
    samples = []
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        sync()
        samples.append((time.perf_counter() - t0) / number)
    return statistics.median(samples)
