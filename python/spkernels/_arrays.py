"""Validation and host/device array helpers shared by every kernel family.

Validation raises ``TypeError`` for a wrong type or dtype and ``ValueError`` for a wrong shape
or value, always naming the argument in backticks. Device arrays are anything exposing
``__cuda_array_interface__`` (CuPy, Numba, PyTorch, our own :class:`DeviceArray`); the core
reads raw pointers from that interface and never imports CuPy.
"""

from __future__ import annotations

import math
import numbers
import operator
import os

import numpy as np

from .backends import core

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
COMPLEX_DTYPES = (np.dtype(np.complex64), np.dtype(np.complex128))


def is_device_array(x) -> bool:
    """True for arrays living on a CUDA device (they expose ``__cuda_array_interface__``)."""
    return hasattr(x, "__cuda_array_interface__")


def _dtype_names(dtypes) -> str:
    return " or ".join(np.dtype(d).name for d in dtypes)


def fmt_int(n: int) -> str:
    """An integer for a message: exact up to 30 digits, else its power of two (Python refuses to
    print integers of more than 4300 digits, and nobody reads 30)."""
    n = int(n)
    return str(n) if abs(n) < 10**30 else f"{'-' if n < 0 else ''}~2**{abs(n).bit_length() - 1}"


def fmt_sizes(sizes) -> str:
    """A tuple of sizes for a message, each through :func:`fmt_int`."""
    return "(" + ", ".join(fmt_int(n) for n in sizes) + ")"


def _describe(x) -> str:
    """A short description of a received value for error messages (type, and value if small)."""
    if isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_)):
        return f"{type(x).__name__} {fmt_int(x)}"
    if isinstance(x, (bool, int, float, complex, np.generic)):
        text = repr(x)
        return f"{type(x).__name__} {text if len(text) <= 40 else text[:37] + '...'}"
    if isinstance(x, str):
        return f"str {x[:37]!r}"
    return type(x).__name__


def native(x):
    """`x` with native byte order and NumPy's own dtype object for its type.

    A byte-swapped array is converted (a copy); an array whose dtype is an equal but distinct
    object (arrays that went through pickle, e.g. multiprocessing, carry such dtypes) is
    viewed with the canonical one, because the compiled core compares dtypes by identity.
    """
    dt = x.dtype
    if dt.byteorder not in ("=", "|") and not dt.isnative:
        return x.astype(dt.newbyteorder("="))
    if dt.fields is None and dt.subdtype is None and dt.kind in "biufc":
        canon = np.dtype(dt.str)
        if canon is not dt:
            return x.view(canon)
    return x


def ensure_array(name: str, x, *, dtypes=None, ndim=None, allow_device: bool = True):
    """Check `x` is an array of an allowed dtype and dimensionality; return it.

    Host array-likes are converted with ``np.asarray`` (no copy when already a native-order
    ndarray); byte-swapped (e.g. big-endian ``>f8``) arrays are converted to native order, so
    ``dtypes`` compares the type, never the byte order. Object, string, bytes, void and
    datetime arrays are refused. Device arrays are returned as they are. Raises ``TypeError``
    (not an array, wrong dtype) / ``ValueError`` (wrong ndim), naming `name`.
    """
    if is_device_array(x):
        if not allow_device:
            raise TypeError(f"`{name}` must be a host (NumPy) array here, got a device array")
    else:
        if x is None or isinstance(x, (str, bytes, dict, set, frozenset)) or callable(x):
            raise TypeError(f"`{name}` must be an array, got {_describe(x)}")
        try:
            x = np.asarray(x)
        except Exception as exc:  # ragged lists and other non-arrays
            raise TypeError(f"`{name}` could not be converted to an array: {exc}") from None
        if x.dtype.kind in "OUSVMm":
            raise TypeError(f"`{name}` must be a numeric array, got dtype {x.dtype.name}")
        x = native(x)
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
    if math.prod(int(s) for s in x.shape) == 0:
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


def ensure_int(name: str, value, *, low: int | None = None, high: int | None = None, what: str = "") -> int:
    """`value` as a Python int: a real integer (``int``, NumPy integer, ``__index__``), not a bool.

    Floats (even 4.0), strings and bools are a ``TypeError``; a value outside [low, high] a
    ``ValueError`` naming `name` (``what`` explains `high`, e.g. "the number of models").
    Python integers have no overflow, so huge values are compared exactly.
    """
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"`{name}` must be an integer, got bool {value!r}")
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"`{name}` must be an integer, got {_describe(value)}") from None
    if (low is not None and v < low) or (high is not None and v > high):
        if low is not None and high is not None:
            rng = f"in [{fmt_int(low)}, {fmt_int(high)}]"
        elif low is not None:
            rng = f">= {fmt_int(low)}"
        else:
            rng = f"<= {fmt_int(high)}"
        raise ValueError(f"`{name}` must be {rng}{f' ({what})' if what else ''}, got {fmt_int(v)}")
    return int(v)


def ensure_real(name: str, value, *, low: float | None = None, high: float | None = None,
                low_open: bool = False, high_open: bool = False, finite: bool = True) -> float:
    """`value` as a Python float: a real number (not a bool, string or complex).

    A ``TypeError`` for the wrong type, a ``ValueError`` for NaN/Inf (when `finite`) or a value
    outside the interval (open ends with `low_open` / `high_open`), naming `name`.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        raise TypeError(f"`{name}` must be a real number, got {_describe(value)}")
    v = float(value)
    if math.isnan(v) or (finite and math.isinf(v)):
        raise ValueError(f"`{name}` must be finite, got {v}")
    bad = (low is not None and (v <= low if low_open else v < low)) or \
          (high is not None and (v >= high if high_open else v > high))
    if bad:
        lo = "" if low is None else f"{'>' if low_open else '>='} {low:g}"
        hi = "" if high is None else f"{'<' if high_open else '<='} {high:g}"
        raise ValueError(f"`{name}` must be {' and '.join(t for t in (lo, hi) if t)}, got {v:g}")
    return v


def ensure_sizes(name: str, value, length: int, *, low: int = 1, broadcast: bool = True) -> tuple:
    """A tuple of `length` integer sizes >= `low` (one integer is repeated when `broadcast`).

    Each entry must be a real integer (not a bool, float or string); the whole value must be an
    int or a tuple/list (a string such as ``"444"`` is refused). Python ints: no overflow.
    """
    if broadcast and not isinstance(value, (bool, np.bool_)) and isinstance(value, (numbers.Integral, np.integer)):
        value = (value,) * length
    if isinstance(value, np.ndarray) and value.ndim == 1 and value.dtype.kind in "iu":
        value = tuple(value.tolist())
    if not isinstance(value, (tuple, list)):
        form = "an integer or " if broadcast else ""
        raise TypeError(f"`{name}` must be {form}a tuple of {length} integers, got {_describe(value)}")
    if len(value) != length:
        raise ValueError(f"`{name}` must have {length} entries, got {len(value)}")
    out = []
    for v in value:
        if isinstance(v, (bool, np.bool_)):
            raise TypeError(f"`{name}` entries must be integers, got bool {v!r}")
        try:
            out.append(operator.index(v))
        except TypeError:
            raise TypeError(f"`{name}` entries must be integers, got {_describe(v)}") from None
    if min(out) < low:
        raise ValueError(f"`{name}` entries must be >= {low}, got {fmt_sizes(out)}")
    return tuple(int(v) for v in out)


def host_available_bytes() -> int:
    """Memory the host can still give this process (``MemAvailable``), in bytes."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def format_bytes(n: int) -> str:
    """``n`` bytes in the largest unit that keeps the number readable (exact for huge ints)."""
    n = int(n)
    if n >= 1 << 80:  # beyond any memory: the exponent is what matters
        return f"{float(n):.3e} bytes" if n < 1 << 1000 else f"more than 2**{n.bit_length() - 1} bytes"
    for unit, size in (("EiB", 1 << 60), ("PiB", 1 << 50), ("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} bytes"


def ensure_fits(name: str, nbytes: int, what: str, *, available: int | None = None, fraction: float = 1.0) -> None:
    """Raise ``ValueError`` naming `name` when `nbytes` (a Python int) exceeds `fraction` of memory.

    Call it with the size computed in Python integers *before* allocating or looping over it,
    so a huge request answers at once instead of overflowing, hanging or raising MemoryError.
    """
    avail = host_available_bytes() if available is None else int(available)
    if int(nbytes) > fraction * avail:
        share = "" if fraction == 1.0 else f"{fraction:g} of "
        raise ValueError(f"`{name}` needs {format_bytes(nbytes)} for {what}, more than {share}the "
                         f"{format_bytes(avail)} of memory available")


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
