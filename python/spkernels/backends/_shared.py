"""Helpers every backend module shares: the compiled core's functions and the dtype vocabulary.

One dtype vocabulary for the whole package: NumPy's names (``float32``, ``float64``,
``complex64``, ``complex128``); where a compiled launcher takes a short tag for the element
type, :func:`core_tag` makes it from the dtype, in one place.
"""

from __future__ import annotations

import numpy as np

REAL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
COMPLEX_DTYPES = (np.dtype(np.complex64), np.dtype(np.complex128))


def real_dtype(dtype) -> np.dtype:
    """The real dtype of the same precision (``complex64`` → ``float32``)."""
    return np.empty(0, dtype=dtype).real.dtype


def complex_dtype(dtype) -> np.dtype:
    """The complex dtype of the same precision (``float64`` → ``complex128``)."""
    return np.result_type(np.dtype(dtype), np.complex64)


def is_single(dtype) -> bool:
    """True for float32 / complex64."""
    return real_dtype(dtype) == np.float32


_TAGS = {"float32": "f32", "float64": "f64", "complex64": "c64", "complex128": "c128"}


def core_tag(dtype) -> str:
    """The compiled core's tag for an element type: ``f32``, ``f64``, ``c64`` or ``c128``."""
    name = np.dtype(dtype).name
    if name not in _TAGS:
        raise TypeError(f"no compiled kernel takes dtype {name}")
    return _TAGS[name]


def core_function(name: str):
    """The compiled ``spkernels._core`` function `name`.

    Raises :class:`spkernels.BackendUnavailableError` (a RuntimeError) saying why when the
    extension cannot be imported or was built without `name`.
    """
    from .._errors import BackendUnavailableError
    from . import core

    mod = core()
    if mod is None:
        raise BackendUnavailableError(f"spkernels._core is not importable, so {name} cannot run")
    fn = getattr(mod, name, None)
    if fn is None:
        raise BackendUnavailableError(f"spkernels._core has no {name}: the extension is out of date, rebuild it")
    return fn


def host_arrays():
    """``array_module()`` of a backend whose arrays are NumPy's."""
    return np


CUPY_HINT = "install spkernels[cuda12] or spkernels[cuda13] (CuPy provides the GPU FFT)"


def always_available():
    """``why_unavailable()`` of a backend family that needs nothing beyond the backend itself."""
    return None


def cupy_missing():
    """None when CuPy imports, else the reason a GPU family that needs it cannot run."""
    try:
        import cupy  # noqa: F401
    except ImportError:
        return f"CuPy is not installed; {CUPY_HINT}"
    return None


def core_missing(symbol: str, what: str):
    """None when ``_core`` has `symbol`, else why the family cannot run (built without `what`)."""
    from . import core

    return None if hasattr(core(), symbol) else f"spkernels._core was built without {what}"


def no_point_limit(w):
    """``max_points(w)`` of a backend that takes any number of points per call."""
    return None
