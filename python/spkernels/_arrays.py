"""Validation and host/device array helpers shared by every kernel family.

Validation raises ``TypeError`` for a wrong type or dtype and ``ValueError`` for a wrong shape
or value, always naming the argument in backticks. Device arrays are anything exposing
``__cuda_array_interface__`` (CuPy, Numba, PyTorch, our own :class:`DeviceArray`); the core
reads raw pointers from that interface and never imports CuPy.
"""

from __future__ import annotations

import numpy as np

from .backends import core

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
COMPLEX_DTYPES = (np.dtype(np.complex64), np.dtype(np.complex128))


def is_device_array(x) -> bool:
    """True for arrays living on a CUDA device (they expose ``__cuda_array_interface__``)."""
    return hasattr(x, "__cuda_array_interface__")


def _dtype_names(dtypes) -> str:
    return " or ".join(np.dtype(d).name for d in dtypes)


def ensure_array(name: str, x, *, dtypes=None, ndim=None, allow_device: bool = True):
    """Check `x` is an array of an allowed dtype and dimensionality; return it.

    Host array-likes are converted with ``np.asarray`` (no copy when already an ndarray);
    device arrays are returned as they are. Raises ``TypeError`` / ``ValueError``.
    """
    if is_device_array(x):
        if not allow_device:
            raise TypeError(f"`{name}` must be a host (NumPy) array here, got a device array")
    else:
        if x is None or isinstance(x, (str, bytes, dict)):
            raise TypeError(f"`{name}` must be an array, got {type(x).__name__}")
        try:
            x = np.asarray(x)
        except Exception as exc:  # ragged lists and other non-arrays
            raise TypeError(f"`{name}` could not be converted to an array: {exc}") from None
        if x.dtype == object:
            raise TypeError(f"`{name}` must be a numeric array, got dtype object")
    dtype = np.dtype(x.dtype)
    if dtypes is not None and dtype not in tuple(np.dtype(d) for d in dtypes):
        raise TypeError(f"`{name}` must have dtype {_dtype_names(dtypes)}, got {dtype.name}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.ndim not in allowed:
            want = " or ".join(f"{n}-D" for n in allowed)
            raise ValueError(f"`{name}` must be {want}, got shape {tuple(x.shape)}")
    return x


def ensure_nonempty(name: str, x) -> None:
    """Raise ``ValueError`` when `x` has no elements."""
    if int(np.prod(x.shape)) == 0:
        raise ValueError(f"`{name}` must not be empty, got shape {tuple(x.shape)}")


def ensure_finite(name: str, x) -> None:
    """Raise ``ValueError`` when `x` holds NaN or Inf (host or CuPy arrays)."""
    if is_device_array(x):
        xp = array_module(x)
        ok = bool(xp.isfinite(x).all()) if xp is not None else True
    else:
        ok = bool(np.isfinite(x).all())
    if not ok:
        raise ValueError(f"`{name}` contains NaN or Inf")


def array_module(x):
    """``cupy`` for CuPy arrays, ``numpy`` for host arrays, None for other device arrays."""
    if not is_device_array(x):
        return np
    try:
        import cupy
    except ImportError:
        return None
    return cupy if isinstance(x, cupy.ndarray) else None


class _HostFFT:
    """``scipy.fft`` with every core: ``numpy.fft`` runs on one thread."""

    _THREADED = frozenset({"fft", "ifft", "fftn", "ifftn", "rfft", "irfft", "rfftn", "irfftn"})

    def __getattr__(self, name):
        import functools

        import scipy.fft

        fn = getattr(scipy.fft, name)
        return functools.partial(fn, workers=-1) if name in self._THREADED else fn


_HOST_FFT = _HostFFT()


def fft_module(xp):
    """FFT functions for arrays of module `xp` (``cupy.fft`` on the GPU, threaded scipy.fft on the host)."""
    return _HOST_FFT if xp is np else xp.fft


def contiguous(x):
    """C-contiguous version of `x` (host or CuPy), copying only when needed."""
    if is_device_array(x):
        xp = array_module(x)
        if xp is None:
            cai = x.__cuda_array_interface__
            if cai.get("strides") is not None:
                raise ValueError("device arrays without CuPy must be C-contiguous")
            return x
        return xp.ascontiguousarray(x)
    return np.ascontiguousarray(x)


class DeviceArray:
    """A minimal owning CUDA array (used when CuPy is not installed).

    Exposes ``shape``, ``dtype``, ``ptr``, ``__cuda_array_interface__`` (so Numba and CuPy can
    consume it without a copy) and ``get()`` to copy back to a NumPy array.
    """

    def __init__(self, shape, dtype):
        mod = core()
        if mod is None or not hasattr(mod, "DeviceBuffer"):
            raise RuntimeError("DeviceArray needs spkernels._core built with CUDA")
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.size = int(np.prod(self.shape))
        self.nbytes = self.size * self.dtype.itemsize
        self._buf = mod.DeviceBuffer(self.nbytes)

    ndim = property(lambda self: len(self.shape))

    @property
    def ptr(self) -> int:
        return self._buf.ptr

    @property
    def __cuda_array_interface__(self):
        return {
            "shape": self.shape,
            "typestr": self.dtype.str,
            "data": (self.ptr, False),
            "strides": None,
            "version": 3,
        }

    @classmethod
    def from_host(cls, a: np.ndarray) -> "DeviceArray":
        a = np.ascontiguousarray(a)
        out = cls(a.shape, a.dtype)
        out._buf.copy_from_host(a.reshape(-1).view(np.uint8))
        return out

    def get(self) -> np.ndarray:
        out = np.empty(self.shape, self.dtype)
        self._buf.copy_to_host(out.reshape(-1).view(np.uint8))
        return out


def device_pointer(x) -> int:
    """Raw device pointer of a C-contiguous device array."""
    cai = x.__cuda_array_interface__
    strides = cai.get("strides")
    if strides is not None:
        itemsize = np.dtype(cai["typestr"]).itemsize
        expect = itemsize
        for n, s in zip(reversed(cai["shape"]), reversed(strides)):
            if n != 1 and s != expect:
                raise ValueError("device array must be C-contiguous")
            expect *= n
    return int(cai["data"][0])


def to_device(a):
    """Copy a host array to the GPU (CuPy when installed, else :class:`DeviceArray`)."""
    try:
        import cupy

        return cupy.asarray(a)
    except ImportError:
        return DeviceArray.from_host(np.asarray(a))


def device_empty(shape, dtype, like=None):
    """Uninitialised device array: CuPy when `like` is CuPy (or CuPy is installed), else DeviceArray."""
    try:
        import cupy

        return cupy.empty(shape, dtype)
    except ImportError:
        return DeviceArray(shape, dtype)


def to_host(x) -> np.ndarray:
    """NumPy copy of a device array (no-op for host arrays)."""
    if not is_device_array(x):
        return np.asarray(x)
    if hasattr(x, "get"):
        return x.get()
    if hasattr(x, "copy_to_host"):  # numba device arrays
        return x.copy_to_host()
    raise TypeError(f"cannot copy {type(x).__name__} to the host")
