"""A counting stand-in for CuPy, for testing device-resident pipelines without a GPU.

Its arrays wrap NumPy arrays (so Numba's CUDA simulator, where device memory is host memory,
can run kernels on them through ``__cuda_array_interface__``) but behave like CuPy's where it
matters for a pipeline's correctness:

- an implicit conversion to NumPy (``np.asarray(a)``, ``float(a)`` of a vector) raises
  ``TypeError``, as CuPy does, so host code cannot silently consume device data;
- a NumPy array (ndim >= 1) inside a device operation raises ``TypeError``, as CuPy does;
- every explicit crossing is counted in :data:`LOG`: ``asarray``/``array`` of host data and
  host arrays assigned into device arrays (uploads), ``.get()``/``asnumpy`` (downloads), and
  ``.item()``/``float()``/``int()``/``bool()`` of device scalars (syncs).

``install(monkeypatch)`` puts it in ``sys.modules["cupy"]``.
"""

from __future__ import annotations

import sys
import types

import numpy as np
from numpy.lib.mixins import NDArrayOperatorsMixin


class TransferLog:
    """Every host↔device crossing, as (kind, nbytes, where) tuples."""

    def __init__(self):
        self.events = []

    def add(self, kind, nbytes):
        import traceback

        where = [f for f in traceback.extract_stack()[:-1] if not f.filename.endswith("_fakecupy.py")]
        frame = where[-1]
        self.events.append((kind, int(nbytes), f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno}"))

    def clear(self):
        self.events.clear()

    def count(self, kind=None, min_bytes=0):
        return sum(1 for k, n, _ in self.events if (kind is None or k == kind) and n >= min_bytes)

    def bytes(self, kind=None):
        return sum(n for k, n, _ in self.events if kind is None or k == kind)


LOG = TransferLog()


def _is_host_array(x):
    return isinstance(x, np.ndarray) and x.ndim > 0


def _unwrap(x, what="argument"):
    if isinstance(x, ndarray):
        return x._a
    if _is_host_array(x):
        raise TypeError(f"fake cupy: a NumPy array ({x.shape}) passed as {what} of a device operation")
    if isinstance(x, (list, tuple)):
        return type(x)(_unwrap(v, what) for v in x)
    return x


def _wrap(r):
    if isinstance(r, np.ndarray):
        return ndarray(r)
    if isinstance(r, np.generic):  # CuPy reductions give 0-d device arrays, not host scalars
        return ndarray(np.asarray(r))
    if isinstance(r, tuple):
        return tuple(_wrap(v) for v in r)
    if isinstance(r, list):
        return [_wrap(v) for v in r]
    return r


class ndarray(NDArrayOperatorsMixin):
    """Device array stand-in (wraps a NumPy array; see the module docstring)."""

    __slots__ = ("_a",)

    def __init__(self, a):
        self._a = a

    # -- NumPy protocols: device-only operands, no implicit conversion -----------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        ins = tuple(_unwrap(v, f"an operand of {ufunc.__name__}") for v in inputs)
        if "out" in kwargs:
            kwargs["out"] = tuple(_unwrap(v, "out") for v in kwargs["out"])
        return _wrap(getattr(ufunc, method)(*ins, **kwargs))

    def __array_function__(self, func, types_, args, kwargs):
        return _wrap(func(*_unwrap(args, f"an argument of {func.__name__}"),
                          **{k: _unwrap(v, k) for k, v in kwargs.items()}))

    def __array__(self, dtype=None, copy=None):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. Please use `.get()` to construct "
                        "a NumPy array explicitly.")

    @property
    def __cuda_array_interface__(self):
        ai = self._a.__array_interface__
        return {"shape": ai["shape"], "typestr": ai["typestr"], "data": ai["data"], "strides": ai["strides"],
                "version": 3}

    # -- crossings ---------------------------------------------------------------------------
    def get(self):
        LOG.add("to_host", self._a.nbytes)
        return self._a.copy()

    def item(self):
        LOG.add("sync", self._a.itemsize)
        return self._a.item()

    def __float__(self):
        if self._a.size != 1:
            raise TypeError("only size-1 arrays can be converted to Python scalars")
        return float(self.item())

    def __int__(self):
        if self._a.size != 1:
            raise TypeError("only size-1 arrays can be converted to Python scalars")
        return int(self.item())

    def __bool__(self):
        if self._a.size != 1:
            raise ValueError("The truth value of an array with more than one element is ambiguous")
        return bool(self.item())

    def __index__(self):
        return int(self)

    # -- array basics --------------------------------------------------------------------------
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    nbytes = property(lambda self: self._a.nbytes)
    itemsize = property(lambda self: self._a.itemsize)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: self._a.flags)
    T = property(lambda self: ndarray(self._a.T))
    real = property(lambda self: ndarray(self._a.real))
    imag = property(lambda self: ndarray(self._a.imag))

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        raise TypeError("fake cupy: iterating over a device array is a host loop; index it instead")

    def _index(self, key):
        if isinstance(key, tuple):
            return tuple(self._index(k) for k in key)
        if isinstance(key, ndarray):
            return key._a
        if _is_host_array(key):  # CuPy uploads host index arrays
            LOG.add("to_device", key.nbytes)
        return key

    def __getitem__(self, key):
        return _wrap(self._a[self._index(key)])

    def __setitem__(self, key, value):
        if isinstance(value, ndarray):
            value = value._a
        elif _is_host_array(value):
            LOG.add("to_device", value.nbytes)
        self._a[self._index(key)] = value

    def __getattr__(self, name):  # methods: reshape, astype, sum, copy, ...
        attr = getattr(self._a, name)
        if not callable(attr):
            return _wrap(attr)

        def method(*args, **kwargs):
            return _wrap(attr(*_unwrap(args, f"an argument of .{name}()"),
                              **{k: _unwrap(v, k) for k, v in kwargs.items()}))
        return method

    def __repr__(self):
        return f"fakecupy.ndarray({self._a!r})"


def _from_host(x, dtype=None):
    if isinstance(x, ndarray):
        return x if dtype is None or np.dtype(dtype) == x.dtype else ndarray(x._a.astype(dtype))
    if hasattr(x, "__cuda_ndarray__") or (hasattr(x, "__cuda_array_interface__") and not isinstance(x, np.ndarray)):
        # Numba (simulator) device arrays: already device memory, wrapped without a copy.
        a = np.asarray(x._ary if hasattr(x, "_ary") else x)
        return ndarray(a if dtype is None else a.astype(dtype, copy=False))
    a = np.array(x, dtype=dtype)
    LOG.add("to_device", a.nbytes)
    return ndarray(a)


class _Namespace(types.ModuleType):
    """Module functions: NumPy's, on device operands only (see :func:`_unwrap`)."""

    def __init__(self, name, source):
        super().__init__(name)
        self._source = source

    def __getattr__(self, name):
        fn = getattr(self._source, name)
        if not callable(fn) or isinstance(fn, type):
            return fn

        def device_fn(*args, **kwargs):
            return _wrap(fn(*_unwrap(args, f"an argument of {name}"),
                            **{k: _unwrap(v, k) for k, v in kwargs.items()}))
        device_fn.__name__ = name
        return device_fn


class _Cupy(_Namespace):
    ndarray = ndarray

    def asarray(self, x, dtype=None, order=None):
        return _from_host(x, dtype)

    array = asarray

    def ascontiguousarray(self, x, dtype=None):
        a = _from_host(x, dtype)
        return a if a._a.flags.c_contiguous else ndarray(np.ascontiguousarray(a._a))

    def asnumpy(self, x):
        return x.get() if isinstance(x, ndarray) else np.asarray(x)

    def get_array_module(self, *args):
        return self if any(isinstance(a, ndarray) for a in args) else np


def make():
    """A fresh fake ``cupy`` module (with ``fft`` and ``linalg``)."""
    import scipy.fft

    mod = _Cupy("cupy", np)
    mod.fft = _Namespace("cupy.fft", scipy.fft)
    mod.linalg = _Namespace("cupy.linalg", np.linalg)
    mod.cuda = types.SimpleNamespace()  # no device queries: callers must cope (as without a GPU)
    mod.LOG = LOG
    return mod


def install(monkeypatch):
    """Make ``import cupy`` give the fake for the test's duration; returns it."""
    mod = make()
    monkeypatch.setitem(sys.modules, "cupy", mod)
    monkeypatch.setitem(sys.modules, "cupy.fft", mod.fft)
    return mod
