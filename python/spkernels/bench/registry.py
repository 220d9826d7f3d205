"""Registry of benchmark cases: how ``spkernels bench compare`` (and asv benchmarks) run a kernel.

A kernel family plugs in by adding one module ``spkernels/bench/cases/<family>.py`` that calls
:func:`register` at import time. Every module in that package is imported on first use, so
adding a family edits no shared file. A case is a *prepare* function::

    def prepare(backend: str, size: str, precision: str) -> Prepared:
        # build inputs for `size`, already on the device `backend` runs on, check that the
        # backend is usable (spkernels.backends.resolve raises BackendUnavailableError), warm
        # up (JIT, plans), and return a closure that runs the kernel once plus the work it does.

:class:`Prepared` carries that closure and the work of one call (FLOPs, minimal bytes read +
written, and a natural item count such as points or voxels). The harness times ``run`` with a
device synchronisation after each batch (:mod:`spkernels.bench.timing`), turns work into
throughput, and divides by the ceiling the case names (``"gemm"`` → ``gemm_<precision>``,
``"copy"`` → copy bandwidth; :mod:`spkernels.bench.ceilings`).
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Callable

__all__ = ["Prepared", "BenchCase", "register", "cases", "get", "PEERS"]

# The pairs compared side by side: hand-written C++ against its Numba twin on each device.
PEERS = (("cuda", "numba-cuda"), ("cpu", "numba-cpu"))


@dataclass
class Prepared:
    """One backend's kernel, ready to time.

    Attributes
    ----------
    run : callable
        Runs the kernel once on inputs already in place (device arrays for GPU backends, so
        the timing holds no host transfers). Its return value is ignored by the timer.
    flops : float
        Floating-point operations of one call (0 when the kernel is not arithmetic-bound).
    bytes : float
        Fewest bytes one call must move: each input read once plus each output written once.
    items : float
        A count users think in (points, voxels, image-orientation pairs); 0 to omit.
    item_unit : str
        What `items` counts, e.g. ``"points"``.
    """

    run: Callable[[], object]
    flops: float = 0.0
    bytes: float = 0.0
    items: float = 0.0
    item_unit: str = "items"
    note: str = ""


@dataclass(frozen=True)
class BenchCase:
    """A registered kernel: see :func:`register` for the fields."""

    name: str
    prepare: Callable[[str, str, str], Prepared]
    sizes: tuple[str, ...]
    precisions: tuple[str, ...]
    ceiling: str
    backends: tuple[str, ...]
    description: str = ""
    size_help: dict = field(default_factory=dict)

    def ceiling_kind(self, precision: str) -> str:
        """Which measured ceiling this case's fraction refers to, at `precision`."""
        if self.ceiling == "copy":
            return "copy"
        real = {"complex64": "float32", "complex128": "float64"}.get(precision, precision)
        return f"gemm_{real}"


_CASES: dict[str, BenchCase] = {}
_LOADED = False


def register(name: str, prepare: Callable[[str, str, str], Prepared], *, sizes=("small", "full"),
             precisions=("float32",), ceiling: str = "copy",
             backends=("cuda", "numba-cuda", "cpu", "numba-cpu"), description: str = "",
             size_help: dict | None = None) -> None:
    """Add a kernel to the benchmark registry.

    Parameters
    ----------
    name : str
        Kernel name as users type it after ``--kernel`` (e.g. ``"distance_argmin"``).
    prepare : callable
        ``prepare(backend, size, precision) -> Prepared``. Raise
        ``spkernels.BackendUnavailableError`` (e.g. via ``backends.resolve``) when the backend
        cannot run here, ``NotImplementedError`` when the case does not exist for that
        combination.
    sizes : sequence of str
        Named sizes, smallest first. Convention: ``"small"`` runs in well under a second per
        call on a 2-core CPU; ``"full"`` fills a datacentre GPU.
    precisions : sequence of str
        NumPy dtype names the case supports, e.g. ``("float32", "float64")``.
    ceiling : {"gemm", "copy"}
        The roofline the kernel is judged against: arithmetic (FLOPs over the GEMM rate at
        that precision) or memory (bytes over the copy bandwidth).
    backends : sequence of str
        Backends the case implements.
    description : str
        One line for ``spkernels bench list``.
    size_help : dict, optional
        Size name → what it means (e.g. ``{"small": "N=32, 2k points"}``).
    """
    if ceiling not in ("gemm", "copy"):
        raise ValueError(f"`ceiling` must be 'gemm' or 'copy'; got {ceiling!r}")
    if not sizes or not precisions:
        raise ValueError("`sizes` and `precisions` must not be empty")
    if name in _CASES and _CASES[name].prepare is not prepare:
        raise ValueError(f"benchmark case {name!r} is registered twice")
    _CASES[name] = BenchCase(name, prepare, tuple(sizes), tuple(precisions), ceiling, tuple(backends),
                             description, dict(size_help or {}))


def _load_all() -> None:
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    from . import cases as pkg

    for mod in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{pkg.__name__}.{mod.name}")


def cases() -> dict[str, BenchCase]:
    """All registered cases by name (imports every module of ``spkernels.bench.cases`` once)."""
    _load_all()
    return dict(sorted(_CASES.items()))


def get(name: str) -> BenchCase:
    """The case called `name`; ValueError listing the known names otherwise."""
    known = cases()
    if name not in known:
        raise ValueError(f"`kernel` {name!r} is not registered; known: {', '.join(known) or 'none'}")
    return known[name]
