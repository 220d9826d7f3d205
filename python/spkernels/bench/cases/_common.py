"""Helpers shared by the family cases (a leading underscore keeps the registry from treating
this module as a case)."""

from __future__ import annotations

import numpy as np

from ... import _arrays, backends
from ..timing import synchronize

__all__ = ["GPU", "finish", "on_device", "rel_err", "require", "sanitize_buffers", "to_host"]

GPU = ("cuda", "numba-cuda")


def require(backend: str, supported=("cuda", "numba-cuda", "cpu", "numba-cpu")) -> None:
    """BackendUnavailableError when `backend` cannot run here; NotImplementedError in the simulator."""
    backends.resolve(backend, supported=supported)
    if backend in GPU and backends.cuda_simulator():
        raise NotImplementedError("the CUDA simulator is for tests; timing it means nothing")


def on_device(backend: str, host: np.ndarray):
    """`host` where `backend` computes: a device copy (CuPy or DeviceArray) for GPU backends."""
    host = np.ascontiguousarray(host)
    return _arrays.to_device(host) if backend in GPU else host


def to_host(x) -> np.ndarray:
    return np.asarray(_arrays.to_host(x))


def finish(backend: str) -> None:
    """Wait for queued device work before a result is read back for the correctness check."""
    synchronize(backend)


def rel_err(got, ref) -> float:
    got, ref = np.asarray(got), np.asarray(ref)
    got = got.astype(np.result_type(got.dtype, np.float64))
    ref = ref.astype(np.result_type(ref.dtype, np.float64))
    den = np.linalg.norm(ref.ravel())
    err = np.linalg.norm((got - ref).ravel())
    return float(err / den) if den > 0 else float(err)


def sanitize_buffers(*arrays):
    """Device copies (spkernels DeviceArray, no CuPy needed) of host arrays, plus their pointers."""
    dev = [_arrays.DeviceArray.from_host(np.ascontiguousarray(a)) for a in arrays]
    return dev, [d.ptr for d in dev]
