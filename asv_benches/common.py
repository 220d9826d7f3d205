"""Helpers shared by the ``bench_<family>.py`` modules (asv imports this file too; it defines no
benchmarks: nothing here is named ``time_*``, ``track_*``, ``mem_*`` or ``peakmem_*``).

Conventions every family benchmark follows::

    from .common import require_backend, sync, rate, fraction_of_ceiling, CPU_AND_GPU

    class DistanceArgmin:
        params = (CPU_AND_GPU, ["small", "full"], ["float32"])
        param_names = ["backend", "size", "precision"]

        def setup(self, backend, size, precision):
            require_backend(backend)                 # NotImplementedError = asv skip
            skip_unless(size_fits(backend, size))    # "full" only on GPUs
            ...build inputs on the backend's device, run once to warm up...

        def time_argmin(self, backend, size, precision):
            self.run(); sync(backend)                # the timing includes the device's work

        def track_fraction_of_gemm(self, backend, size, precision):
            return fraction_of_ceiling(rate(self.run, self.flops, backend), "gemm_float32", backend)
        track_fraction_of_gemm.unit = "fraction of GEMM ceiling"

Ceilings come from :mod:`spkernels.bench.ceilings`: measured at most once per process and
shared through a JSON file written by ``bench_ceilings.py`` earlier in the same run.
"""

from __future__ import annotations

import os
import time

from spkernels import backends as _backends
from spkernels._errors import BackendUnavailableError
from spkernels.bench import ceilings as _ceilings
from spkernels.bench.machine import machine_name  # noqa: F401  (re-exported for families)
from spkernels.bench.timing import is_gpu_backend, median_time
from spkernels.bench.timing import synchronize as _synchronize

CPU_BACKENDS = ["cpu", "numba-cpu"]
GPU_BACKENDS = ["cuda", "numba-cuda"]
CPU_AND_GPU = GPU_BACKENDS + CPU_BACKENDS

# Named sizes: "small" keeps one quick run of a family file on a 2-core CPU under a minute;
# "full" fills a datacentre GPU and is skipped on CPU backends (see size_allowed).
SIZES = ["small", "full"]


# Smoke runs (the test suite's quick asv run): every family shrinks its CPU sizes so the whole
# suite proves it still runs in about a minute; such runs save nothing.
SMALL = os.environ.get("SPK_BENCH_SMALL", "0") not in ("", "0")


def skip(reason: str):
    """Skip the current benchmark (asv records it as skipped, not failed)."""
    try:
        from asv_runner.benchmarks.mark import SkipNotImplemented
    except ImportError:  # outside asv
        raise NotImplementedError(reason) from None
    raise SkipNotImplemented(reason)


def skip_unless(condition: bool, reason: str = "not run for this combination") -> None:
    """:func:`skip` when `condition` is false."""
    if not condition:
        skip(reason)


def require_backend(backend: str, supported=None) -> str:
    """Resolve `backend` or skip: unavailable here, not implemented, or the CUDA simulator.

    Call first in ``setup``. The simulator is refused because timing it measures Python.
    """
    try:
        name = _backends.resolve(backend, supported=supported or _backends.BACKENDS)
    except (BackendUnavailableError, ValueError) as exc:
        skip(str(exc))
    if name == "numba-cuda" and _backends.cuda_simulator():
        skip("numba-cuda under the CUDA simulator is not timed")
    return name


def size_allowed(backend: str, size: str) -> bool:
    """Whether `size` runs on `backend`: every size on GPUs, only "small" on CPUs."""
    return is_gpu_backend(backend) or size == "small"


def best_time(fn, sync=None, repeat: int = 3) -> float:
    """Shortest wall time of `repeat` calls of ``fn()``, each followed by ``sync()`` when given
    (so queued device work is inside the timing)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        if sync is not None:
            sync()
        best = min(best, time.perf_counter() - t0)
    return best


def sync(backend: str) -> None:
    """Block until `backend`'s queued device work is done (no-op for CPU backends)."""
    _synchronize(backend)


def device_of(backend: str) -> str:
    """``"gpu"`` or ``"cpu"``: which ceilings apply to `backend`."""
    return "gpu" if is_gpu_backend(backend) else "cpu"


def rate(fn, work: float, backend: str, *, repeat: int = 5, min_time: float = 0.02) -> float:
    """`work` (FLOPs, bytes, points...) per second of `fn`, timed with device synchronisation.

    For ``track_*`` methods: asv does not pass its own timing to them, so they time here with
    the median of `repeat` batched samples (:func:`spkernels.bench.timing.median_time`).
    """
    sync_fn = (lambda: _synchronize(backend)) if is_gpu_backend(backend) else None
    return float(work) / median_time(fn, sync=sync_fn, repeat=repeat, min_time=min_time, warmup=0)


def ceiling(kind: str, backend_or_device: str) -> float:
    """This machine's `kind` ceiling (``gemm_float32``, ``gemm_float64`` in FLOP/s, ``copy`` in
    read+written bytes/s) for a backend's device; skips when it cannot be measured here."""
    dev = backend_or_device if backend_or_device in _ceilings.DEVICES else device_of(backend_or_device)
    try:
        value = _ceilings.get(dev, kinds=(kind,)).get(kind)
    except NotImplementedError as exc:
        skip(str(exc))
    if not value:
        skip(f"no {kind} ceiling for the {dev} here")
    return float(value)


def fraction_of_ceiling(achieved: float, kind: str, backend: str) -> float:
    """`achieved` (same unit as the ceiling: FLOP/s or bytes/s) over the ceiling for `backend`."""
    return float(achieved) / ceiling(kind, backend)


def prepared(kernel: str, backend: str, size: str, precision: str):
    """Prepare a case registered in :mod:`spkernels.bench.registry` for asv, or skip.

    Lets a family share its input builder between ``spkernels bench compare`` and asv.
    """
    from spkernels.bench.registry import get

    require_backend(backend)
    case = get(kernel)
    skip_unless(size in case.sizes and precision in case.precisions and backend in case.backends,
                f"{kernel} has no {backend}/{size}/{precision} case")
    try:
        return case.prepare(backend, size, precision)
    except BackendUnavailableError as exc:
        skip(str(exc))
