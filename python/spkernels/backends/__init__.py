"""Backend registry: which implementations exist here and which one a call should use.

Five backends share one signature per kernel family:

``cuda``        hand-written CUDA C++ in ``spkernels._core`` (needs a CUDA build and a GPU)
``numba-cuda``  ``@cuda.jit`` kernels (needs a GPU, or ``NUMBA_ENABLE_CUDASIM=1`` for testing)
``cpu``         C++ with OpenMP in ``spkernels._core``
``numba-cpu``   ``@njit(parallel=True)`` twins
``numpy``       float64 reference; slow, always present, the oracle for tests

``backend="auto"`` picks ``cuda`` → ``numba-cuda`` → ``cpu`` (→ ``numba-cpu`` → ``numpy`` when
the core is missing). The CUDA simulator is never picked automatically: it is for tests.
"""

from __future__ import annotations

import functools
import importlib
import os

from .._errors import BackendUnavailableError

BACKENDS = ("cuda", "numba-cuda", "cpu", "numba-cpu", "numpy")
GPU_BACKENDS = frozenset({"cuda", "numba-cuda"})
_AUTO_ORDER = ("cuda", "numba-cuda", "cpu", "numba-cpu", "numpy")
#: the sub-package that holds each backend's ``<family>.py`` modules
PACKAGES = {"cuda": "cuda", "numba-cuda": "numba_cuda", "cpu": "cpu", "numba-cpu": "numba_cpu", "numpy": "numpy"}


def load(name: str, family: str):
    """The module ``spkernels.backends.<package>.<family>`` of backend `name` (imported once).

    Every backend's module of a family exposes the same functions (the family's contract, listed
    in ARCHITECTURE.md), so ``kernels/<family>.py`` validates, resolves a name, then calls
    ``load(name, family).<function>(...)`` without knowing which backend runs.
    """
    if name not in PACKAGES:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    return importlib.import_module(f"{__name__}.{PACKAGES[name]}.{family}")


def core():
    """Return the compiled ``spkernels._core`` module, or None when it was not built/importable."""
    return _core_module()


@functools.lru_cache(maxsize=None)
def _core_module():
    try:
        from .. import _core
    except ImportError:
        return None
    return _core


def cuda_simulator() -> bool:
    """True when Numba's CUDA simulator is enabled (``NUMBA_ENABLE_CUDASIM=1``)."""
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")


@functools.lru_cache(maxsize=None)
def _why_unavailable(name: str) -> str | None:
    """None when `name` is usable here, else a short reason."""
    if name == "numpy":
        return None
    if name in ("cpu", "cuda"):
        mod = _core_module()
        if mod is None:
            return "the compiled extension spkernels._core could not be imported"
        if name == "cpu":
            return None
        if not mod.build_info()["cuda"]:
            return "spkernels._core was built without CUDA (no nvcc, or SPK_CUDA=OFF)"
        if mod.cuda_device_count() == 0:
            return "no CUDA GPU (or driver) is visible"
        return None
    if name == "numba-cpu":
        return None  # numba is a required dependency
    if name == "numba-cuda":
        try:
            from numba import cuda
        except ImportError:
            return "numba-cuda is not installed"
        if cuda_simulator():
            return None
        try:
            ok = cuda.is_available()
        except Exception as exc:  # broken driver installs raise here
            return f"numba.cuda failed to initialise: {exc}"
        return None if ok else "no CUDA GPU (or driver) is visible to numba.cuda"
    return f"unknown backend {name!r}"


def array_module(name: str):
    """The array module a pipeline on backend `name` keeps its arrays in.

    NumPy for the CPU backends and under the CUDA simulator (whose device memory is host
    memory); CuPy for the GPU backends on a GPU, so images, slices, models and merges stay on
    the device. A GPU backend without CuPy gets NumPy: the kernels then copy each call's
    inputs in and results out, which is correct but pays a round trip per call.
    """
    if name not in GPU_BACKENDS:
        import numpy

        return numpy
    try:
        return load(name, "nufft").array_module()
    except ImportError:
        import numpy

        return numpy


def is_available(name: str) -> bool:
    """Whether backend `name` can run here."""
    return _why_unavailable(name) is None


def available_backends() -> list[str]:
    """Names of the usable backends, in ``auto`` preference order."""
    return [b for b in BACKENDS if is_available(b)]


def resolve(backend: str, *, on_device: bool = False, supported=BACKENDS) -> str:
    """Turn a user's ``backend=`` argument into a concrete usable backend name.

    Parameters
    ----------
    backend : str
        One of :data:`BACKENDS` or ``"auto"``.
    on_device : bool
        The inputs live on a GPU (``__cuda_array_interface__``): ``auto`` then only picks GPU
        backends, and a CPU backend is refused rather than silently copying to the host.
    supported : iterable of str
        Backends the calling kernel implements.
    """
    if not isinstance(backend, str):
        raise TypeError(f"`backend` must be a string, got {type(backend).__name__}")
    supported = tuple(supported)
    if backend == "auto":
        for name in _AUTO_ORDER:
            if name not in supported or not is_available(name):
                continue
            if name == "numba-cuda" and cuda_simulator():
                continue  # the simulator is a test device, never an automatic choice
            if on_device and name not in GPU_BACKENDS:
                continue
            return name
        usable = ", ".join(available_backends()) or "none"
        raise BackendUnavailableError(
            "no usable backend for "
            + ("GPU-resident input" if on_device else "this call")
            + f"; usable backends here: {usable}"
        )
    if backend not in BACKENDS:
        raise ValueError(f"`backend` must be 'auto' or one of {', '.join(BACKENDS)}; got {backend!r}")
    if backend not in supported:
        raise ValueError(
            f"`backend`={backend!r} is not implemented for this kernel; choose one of {', '.join(supported)}"
        )
    why = _why_unavailable(backend)
    if why is not None:
        raise BackendUnavailableError(
            f"backend {backend!r} is unavailable: {why}. Usable backends here: {', '.join(available_backends())}"
        )
    if on_device and backend not in GPU_BACKENDS:
        raise ValueError(
            f"inputs are GPU arrays but `backend`={backend!r} runs on the CPU; "
            "copy them to the host first (e.g. cupy.asnumpy) or pick a GPU backend"
        )
    return backend
