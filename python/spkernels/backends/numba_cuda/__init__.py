"""Numba CUDA kernels (``@cuda.jit``), one module per kernel family.

Helpers here move arrays the same way for every family: NumPy input is copied to the device
and results come back as NumPy; device input (any ``__cuda_array_interface__``) stays on the
device and results are returned as CuPy arrays when CuPy is installed, else as Numba device
arrays. Under ``NUMBA_ENABLE_CUDASIM=1`` the same code runs in Numba's simulator, where
device memory is host memory: an object exposing ``__cuda_array_interface__`` is then viewed
in place (CuPy arrays, whose memory is on a real GPU, are refused with a clear error).
"""

from __future__ import annotations

import types

import numpy as np

from ..._arrays import is_device_array
from .. import cuda_simulator

THREADS = 256


def to_device(x):
    """A Numba device view of `x` (no copy for device arrays; a copy for host arrays)."""
    from numba import cuda

    if is_device_array(x):
        if cuda_simulator():
            return _simulated_view(x)
        return cuda.as_cuda_array(x)
    if hasattr(x, "copy_to_host"):  # already a Numba (or simulator) device array
        return x
    return cuda.to_device(np.ascontiguousarray(x))


def _simulated_view(x):
    """Under the simulator, the host memory behind a ``__cuda_array_interface__`` object."""
    if type(x).__module__.split(".")[0] == "cupy":
        raise TypeError("Numba's CUDA simulator cannot run kernels on CuPy arrays (their memory is on a real "
                        "GPU); unset NUMBA_ENABLE_CUDASIM or pass NumPy arrays")
    cai = x.__cuda_array_interface__
    holder = types.SimpleNamespace(owner=x)
    holder.__array_interface__ = {"shape": tuple(cai["shape"]), "typestr": cai["typestr"], "data": cai["data"],
                                  "strides": cai.get("strides"), "version": 3}
    return np.asarray(holder)


def device_empty(shape, dtype):
    from numba import cuda

    return cuda.device_array(shape, dtype=dtype)


def finish(out, on_device: bool):
    """Return a kernel output the way the caller's inputs came in (see module docstring)."""
    if not on_device:
        return out.copy_to_host() if hasattr(out, "copy_to_host") else out
    try:
        import cupy
    except ImportError:
        return out
    return cupy.asarray(out)


def blocks_for(n: int, threads: int = THREADS) -> int:
    """Number of blocks covering `n` threads, at least one."""
    return max(1, (int(n) + threads - 1) // threads)
