"""Numba CUDA kernels (``@cuda.jit``), one module per kernel family.

Helpers here move arrays the same way for every family: NumPy input is copied to the device
and results come back as NumPy; device input (any ``__cuda_array_interface__``) stays on the
device and results are returned as CuPy arrays when CuPy is installed, else as Numba device
arrays. Under ``NUMBA_ENABLE_CUDASIM=1`` the same code runs in Numba's simulator.
"""

from __future__ import annotations

import numpy as np

from ..._arrays import is_device_array

THREADS = 256


def to_device(x):
    """A Numba device view of `x` (no copy for device arrays; a copy for host arrays)."""
    from numba import cuda

    if is_device_array(x):
        return cuda.as_cuda_array(x)
    return cuda.to_device(np.ascontiguousarray(x))


def device_empty(shape, dtype):
    from numba import cuda

    return cuda.device_array(shape, dtype=dtype)


def finish(out, on_device: bool):
    """Return a kernel output the way the caller's inputs came in (see module docstring)."""
    if not on_device:
        return out.copy_to_host()
    try:
        import cupy
    except ImportError:
        return out
    return cupy.asarray(out)


def blocks_for(n: int, threads: int = THREADS) -> int:
    """Number of blocks covering `n` threads, at least one."""
    return max(1, (int(n) + threads - 1) // threads)
