"""This machine's ceilings: dense GEMM rate and copy bandwidth, measured, not quoted.

A kernel's speed means something only against what the hardware can do. The two ceilings are
measured here with the best library at hand, in the same run as the kernels:

``gemm_float32`` / ``gemm_float64``
    FLOP/s of a large square matrix product (2 n³ operations): NumPy's BLAS on the CPU, cuBLAS
    through CuPy on the GPU (CuPy's default math mode: no TF32 for float32).
``copy``
    Bytes/s of a large copy, counting bytes read plus bytes written (so a kernel's fraction is
    its minimal bytes read + written over time, divided by this): the faster of NumPy's
    memcpy and a multi-threaded Numba loop on the CPU; ``cudaMemcpy`` device-to-device on the
    GPU (through CuPy, else through ``spkernels._core``).

Each process measures at most once (:func:`get` caches in memory); the result is also written
to a JSON file that later processes read, because asv runs every benchmark in its own process:
the first benchmark of a run that needs a ceiling measures it, the others (and
``asv_benches/bench_ceilings.py``, which reports them) read that value. ``ci/asv-run.sh`` and
``ci/gpu.sh`` start each run with a fresh file, so the fractions use ceilings of that run. The file is
``$SPK_CEILINGS_FILE`` or ``~/.cache/spkernels/ceilings-<machine>.json``; entries older than
``$SPK_CEILINGS_MAX_AGE`` seconds (default 6 hours) or from another machine are measured again.
``SPK_CEILINGS_QUICK=1`` measures smaller problems (rough values) for smoke tests of the harness.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from .machine import machine_name
from .timing import device_synchronizer, median_time

log = logging.getLogger("spkernels.bench.ceilings")

__all__ = ["KINDS", "DEVICES", "measure", "get", "store", "fraction", "cache_path", "CeilingUnavailable"]

KINDS = ("gemm_float32", "gemm_float64", "copy")
DEVICES = ("cpu", "gpu")
UNITS = {"gemm_float32": "FLOP/s", "gemm_float64": "FLOP/s", "copy": "B/s"}

# Sizes: large enough to leave the caches (copy) and reach the BLAS plateau (GEMM), small enough
# that measuring everything takes a few seconds. GPU copy buffers dwarf a 50-60 MB L2.
_SIZES = {
    "cpu": {"gemm_n": 1536, "copy_bytes": 256 * 2**20},
    "gpu": {"gemm_n": 8192, "copy_bytes": 2 * 2**30},
}
_QUICK_SIZES = {
    "cpu": {"gemm_n": 768, "copy_bytes": 64 * 2**20},
    "gpu": {"gemm_n": 4096, "copy_bytes": 512 * 2**20},
}

_MEMORY: dict[str, dict] = {}


class CeilingUnavailable(NotImplementedError):
    """A ceiling cannot be measured here (no GPU, no CuPy for cuBLAS). A NotImplementedError,
    so raising it from an asv ``setup`` skips the benchmark."""


def cache_path() -> Path:
    """Where measured ceilings are shared between processes."""
    env = os.environ.get("SPK_CEILINGS_FILE", "").strip()
    if env:
        return Path(env)
    return Path.home() / ".cache" / "spkernels" / f"ceilings-{machine_name()}.json"


def _quick_default() -> bool:
    # Smaller problems for smoke runs of the harness (tests): the values are then rough.
    return os.environ.get("SPK_CEILINGS_QUICK", "0") not in ("", "0")


def _max_age() -> float:
    try:
        return float(os.environ.get("SPK_CEILINGS_MAX_AGE", 6 * 3600))
    except ValueError:
        return 6 * 3600.0


# --------------------------------------------------------------------------- CPU measurements

def _cpu_gemm(dtype, n: int) -> float:
    rng = np.random.default_rng(1)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    c = np.empty((n, n), dtype=dtype)
    t = median_time(lambda: np.matmul(a, b, out=c), repeat=5, min_time=0.1)
    return 2.0 * n**3 / t


def _numba_parallel_copy():
    """A prange copy loop, or None without Numba: one thread rarely saturates a socket's memory."""
    try:
        import numba
    except ImportError:
        return None

    @numba.njit(parallel=True, cache=False)
    def copy(dst, src):
        for i in numba.prange(src.shape[0]):
            dst[i] = src[i]

    return copy


def _cpu_copy(nbytes: int) -> tuple[float, str]:
    n = nbytes // 8
    src = np.arange(n, dtype=np.float64) + 0.5  # distinct, non-zero values; cheaper than an RNG at this size
    dst = np.full(n, np.nan)
    best = (2.0 * src.nbytes / median_time(lambda: np.copyto(dst, src), repeat=5, min_time=0.1), "numpy memcpy")
    par = _numba_parallel_copy()
    if par is not None:
        par(dst[:16], src[:16])  # compile outside the timing
        rate = 2.0 * src.nbytes / median_time(lambda: par(dst, src), repeat=5, min_time=0.1)
        if rate > best[0]:
            best = (rate, "numba prange copy")
    if not np.array_equal(dst, src):
        raise RuntimeError("copy ceiling: the copy did not copy")  # guards the measurement itself
    return best


# --------------------------------------------------------------------------- GPU measurements

def _cupy():
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() > 0:
            return cupy
    except Exception:
        pass
    return None


def _gpu_gemm(dtype, n: int) -> float:
    cp = _cupy()
    if cp is None:
        raise CeilingUnavailable("the GPU GEMM ceiling needs CuPy (cuBLAS) and a GPU")
    rs = cp.random.RandomState(1)
    a = rs.standard_normal((n, n), dtype=np.float64).astype(dtype)
    b = rs.standard_normal((n, n), dtype=np.float64).astype(dtype)
    c = cp.empty((n, n), dtype=dtype)
    sync = cp.cuda.runtime.deviceSynchronize
    t = median_time(lambda: cp.matmul(a, b, out=c), sync=sync, repeat=7, min_time=0.1, warmup=3)
    return 2.0 * n**3 / t


def _gpu_copy(nbytes: int) -> tuple[float, str]:
    cp = _cupy()
    if cp is not None:
        src = cp.random.RandomState(2).standard_normal(nbytes // 8, dtype=np.float64)
        dst = cp.empty_like(src)
        kind = cp.cuda.runtime.memcpyDeviceToDevice

        def run():
            cp.cuda.runtime.memcpyAsync(dst.data.ptr, src.data.ptr, src.nbytes, kind,
                                        cp.cuda.get_current_stream().ptr)

        sync = cp.cuda.runtime.deviceSynchronize
        t = median_time(run, sync=sync, repeat=7, min_time=0.1, warmup=3)
        if not bool(cp.array_equal(dst, src)):
            raise RuntimeError("copy ceiling: the device copy did not copy")
        return 2.0 * src.nbytes / t, "cudaMemcpy D2D (cupy)"
    from ..backends import core

    mod = core()
    if mod is None or not mod.build_info()["cuda"] or mod.cuda_device_count() == 0:
        raise CeilingUnavailable("no GPU reachable through CuPy or spkernels._core")
    src = mod.DeviceBuffer(nbytes)
    dst = mod.DeviceBuffer(nbytes)
    host = np.random.default_rng(2).standard_normal(nbytes // 8)
    src.copy_from_host(host)
    t = median_time(lambda: mod.cuda_memcpy_d2d(dst.ptr, src.ptr, nbytes), sync=device_synchronizer(),
                    repeat=7, min_time=0.1, warmup=3)
    back = np.empty_like(host)
    dst.copy_to_host(back)
    if not np.array_equal(back, host):
        raise RuntimeError("copy ceiling: the device copy did not copy")
    return 2.0 * nbytes / t, "cudaMemcpy D2D (spkernels._core)"


# --------------------------------------------------------------------------- public API

def measure(device: str = "cpu", *, quick: bool | None = None, kinds=KINDS) -> dict:
    """Measure the ceilings of `device` (``"cpu"`` or ``"gpu"``) now.

    Returns a dict with one float per entry of `kinds` (FLOP/s or bytes/s; None when that
    ceiling cannot be measured here, e.g. GEMM without CuPy), plus ``"details"`` (sizes and
    methods) and ``"measured_at"`` (Unix time). Raises :class:`CeilingUnavailable` when the
    device itself is absent.
    """
    if device not in DEVICES:
        raise ValueError(f"`device` must be one of {', '.join(DEVICES)}; got {device!r}")
    if quick is None:
        quick = _quick_default()
    sizes = (_QUICK_SIZES if quick else _SIZES)[device]
    out: dict = {"details": {"sizes": dict(sizes), "quick": quick}}
    if device == "gpu":
        device_synchronizer()  # raises CeilingUnavailable-compatible NotImplementedError early
    for kind in kinds:
        try:
            if kind.startswith("gemm_"):
                dtype = np.dtype(kind[len("gemm_"):])
                fn = _cpu_gemm if device == "cpu" else _gpu_gemm
                out[kind] = float(fn(dtype, sizes["gemm_n"]))
                out["details"][kind] = f"{'numpy' if device == 'cpu' else 'cupy/cuBLAS'} matmul n={sizes['gemm_n']}"
            elif kind == "copy":
                rate, how = (_cpu_copy if device == "cpu" else _gpu_copy)(sizes["copy_bytes"])
                out[kind] = float(rate)
                out["details"][kind] = f"{how}, {sizes['copy_bytes'] // 2**20} MiB, read+write bytes"
            else:
                raise ValueError(f"unknown ceiling kind {kind!r}; known: {', '.join(KINDS)}")
        except CeilingUnavailable as exc:
            out[kind] = None
            out["details"][kind] = f"unavailable: {exc}"
    out["measured_at"] = time.time()
    return out


def _read_file() -> dict:
    path = cache_path()
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) and data.get("machine") == machine_name() else {}


def _fresh(entry) -> bool:
    return isinstance(entry, dict) and time.time() - float(entry.get("measured_at", 0)) < _max_age()


def store(device: str, values: dict) -> dict:
    """Record `values` (as from :func:`measure`) for `device`, in memory and in the shared file.

    Kinds already recorded for `device` and still fresh are kept (the GEMM and copy
    benchmarks measure separately); the entry's ``measured_at`` is then its oldest kind's.
    Returns the merged entry.
    """
    path = cache_path()
    data = _read_file()
    old = data.get(device)
    merged = dict(values)
    if _fresh(old):
        merged = {**old, **values, "details": {**old.get("details", {}), **values.get("details", {})}}
        merged["measured_at"] = min(float(old["measured_at"]), float(values["measured_at"]))
    _MEMORY[device] = merged
    data["machine"] = machine_name()
    data[device] = merged
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write-then-rename, so a concurrent reader never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except OSError as exc:  # a read-only home must not fail a benchmark
        log.warning("could not write ceilings cache %s: %s", path, exc)
    return merged


def get(device: str = "cpu", *, kinds=KINDS, quick: bool | None = None) -> dict:
    """This machine's ceilings for `device`, each kind measured at most once per process.

    Looks in memory, then in the shared file (fresh entries of this machine only), measures
    the kinds still missing, and stores them. See :func:`measure` for the returned dict.
    """
    entry = _MEMORY.get(device)
    if entry is None or not all(k in entry for k in kinds):
        disk = _read_file().get(device)
        if _fresh(disk):
            entry = disk
            _MEMORY[device] = disk
    missing = [k for k in kinds if entry is None or k not in entry]
    if missing:
        entry = store(device, measure(device, quick=quick, kinds=missing))
    return entry


def fraction(rate: float, kind: str, device: str = "cpu") -> float:
    """`rate` (FLOP/s for a ``gemm_*`` kind, read+written bytes/s for ``copy``) over the ceiling.

    Raises :class:`CeilingUnavailable` when that ceiling cannot be measured here.
    """
    if kind not in KINDS:
        raise ValueError(f"`kind` must be one of {', '.join(KINDS)}; got {kind!r}")
    ceiling = get(device, kinds=(kind,)).get(kind)
    if not ceiling:
        raise CeilingUnavailable(f"the {kind} ceiling of the {device} is not available here")
    return float(rate) / float(ceiling)
