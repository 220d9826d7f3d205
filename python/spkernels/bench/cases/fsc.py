"""Case ``fsc_accumulate``: the Fourier shell correlation's one pass over two half spectra.

The two real-to-complex FFTs of ``spkernels.fsc`` are library calls shared by every backend of
a device (scipy.fft on the CPU, cupy.fft on the GPU), so they are done once in ``prepare``; the
timed call is the backend's own kernel: per-shell Re F1·F2*, |F1|², |F2|² and the voxel count
in float64. It reads each half spectrum once and writes a few shells of sums, so the ceiling
is copy bandwidth. Checked before timing against the float64 NumPy reference (full complex
FFT, ``bincount``): voxel counts exactly, sums within 1e-4 (float32) / 1e-10 (float64).

``SANITIZE_CASES`` runs ``fsc_accumulate_cuda`` at a tiny odd shape in both precisions.
"""

from __future__ import annotations

import importlib

import numpy as np

# by module path: the package re-exports a function of the same name
_fsc = importlib.import_module("...kernels.fsc", __package__)
from ...backends._shared import complex_dtype, core_tag
from ...backends.numpy.fsc import reference_sums
from ..registry import Prepared, register
from . import _common

_SIZES = {"small": 128, "full": 512}
_TOL = {"float32": 1e-4, "float64": 1e-10}


def _volumes(shape, precision, seed=3):
    rng = np.random.default_rng(seed)
    v1 = rng.standard_normal(shape, dtype=np.float32).astype(precision)
    v2 = (v1 + rng.standard_normal(shape, dtype=np.float32)).astype(precision)  # correlated, like half maps
    return v1, v2


def _spectra(backend, v1, v2):
    """Half spectra where `backend` computes (device arrays for GPU backends)."""
    if backend in _common.GPU:
        try:
            import cupy as cp
        except ImportError:
            cp = None
        if cp is not None:
            return cp.fft.rfftn(cp.asarray(v1)), cp.fft.rfftn(cp.asarray(v2))
    import scipy.fft

    f1, f2 = scipy.fft.rfftn(v1, workers=-1), scipy.fft.rfftn(v2, workers=-1)
    return _common.on_device(backend, f1), _common.on_device(backend, f2)


def _check(sums, ref, precision, what):
    sums = np.asarray(sums, dtype=np.float64).reshape(ref.shape)
    if not np.array_equal(np.rint(sums[:, 3]), ref[:, 3]):
        raise RuntimeError(f"{what}: shell voxel counts differ from the numpy reference")
    err = max(_common.rel_err(sums[:, j], ref[:, j]) for j in range(3))
    if not err <= _TOL[precision]:
        raise RuntimeError(f"{what}: shell sums differ from the numpy reference by {err:.2e}")


def prepare(backend: str, size: str, precision: str) -> Prepared:
    """Inputs and a one-call closure for `backend` (see :mod:`spkernels.bench.registry`)."""
    if size not in _SIZES:
        raise ValueError(f"`size` must be one of {', '.join(_SIZES)}; got {size!r}")
    if precision not in _TOL:
        raise ValueError(f"`precision` must be float32 or float64; got {precision!r}")
    _common.require(backend)
    n = _SIZES[size]
    shape = (n, n, n)
    v1, v2 = _volumes(shape, precision)
    _, n_shells, scale = _fsc._shells(shape, 1.0, None)
    f1, f2 = _spectra(backend, v1, v2)
    out = {}
    if backend == "cpu":
        from ... import backends

        core = backends.core()

        def run():
            out["sums"] = core.fsc_accumulate_cpu(f1, f2, n, *scale, n_shells)
    elif backend == "numba-cpu":
        from ...backends.numba_cpu.fsc import accumulate

        def run():
            out["sums"] = accumulate(f1, f2, n, *scale, n_shells)
    elif backend == "cuda":
        from ... import _arrays, backends

        core = backends.core()
        tag = core_tag(complex_dtype(precision))
        sums = _arrays.DeviceArray.from_host(np.full(n_shells * 4, np.nan))
        p1, p2 = _arrays.device_pointer(f1), _arrays.device_pointer(f2)

        def run():
            core.fsc_accumulate_cuda(p1, p2, tag, n, n, n, *scale, n_shells, sums.ptr, 0)
            out["sums"] = sums
    else:  # numba-cuda
        from ...backends.numba_cuda.fsc import accumulate

        def run():
            out["sums"] = accumulate(f1, f2, n, *scale, n_shells)

    run()  # warm-up: JIT, first touch
    _common.finish(backend)
    ref = reference_sums(v1, v2, n_shells, scale)
    _check(_common.to_host(out["sums"]), ref, precision, f"fsc_accumulate case, backend {backend!r}")
    half = n * n * (n // 2 + 1) * 2 * np.dtype(precision).itemsize
    return Prepared(run=run, bytes=float(2 * half + n_shells * 4 * 8), items=float(n) ** 3, item_unit="voxels",
                    note="shell sums on precomputed half spectra (the FFTs are library calls, not timed)")


register(
    "fsc_accumulate", prepare, sizes=tuple(_SIZES), precisions=tuple(_TOL), ceiling="copy",
    description="FSC per-shell sums over two rfftn half spectra (the FFTs are set-up)",
    size_help={s: f"{n}^3 volumes" for s, n in _SIZES.items()},
)


# --------------------------------------------------------------------------- sanitizer case
def _sanitize_accumulate(core, rng):
    shape = (9, 12, 11)  # odd and even axes: Nyquist column present on some, absent on others
    for precision in ("float32", "float64"):
        tag = core_tag(complex_dtype(precision))
        v1, v2 = _volumes(shape, precision, seed=int(rng.integers(1 << 30)))
        _, n_shells, scale = _fsc._shells(shape, 1.0, None)
        f1 = np.fft.rfftn(v1).astype(complex_dtype(precision))
        f2 = np.fft.rfftn(v2).astype(f1.dtype)
        (_d1, _d2, ds), (p1, p2, ps) = _common.sanitize_buffers(f1, f2, np.full(n_shells * 4, np.nan))
        core.fsc_accumulate_cuda(p1, p2, tag, *shape, *scale, n_shells, ps, 0)
        core.cuda_synchronize()
        _check(ds.get().reshape(n_shells, 4), reference_sums(v1, v2, n_shells, scale), precision,
               f"fsc_accumulate_cuda ({tag})")


SANITIZE_CASES = {"fsc_accumulate_cuda": _sanitize_accumulate}
