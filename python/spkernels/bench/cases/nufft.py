"""Cases ``nufft_type1`` and ``nufft_type2``: 3-D NUFFT execute at 81³ modes.

A :class:`spkernels.kernels.nufft.Plan` is built and its points set in ``prepare`` (binning
and sorting are a one-off per point set, as in MTIP's iterations), so the timed call is
``Plan.execute``: spreading (type 1) or interpolation (type 2), the FFT of the fine grid and
the mode correction. Minimal traffic is the points (3 coordinates), the M values and the 81³
modes, each read or written once; the ceiling is copy bandwidth (the fine grid and the FFT
are the implementation's cost and show up as a low fraction). Tolerance eps = 1e-5 for
complex64 and 1e-6 for complex128 (the usual benchmark settings).

Checked before timing against exact float64 sums: type 1 at 16 random modes (4 at the full
size, where each mode is a sum over 1.6e8 points), type 2 at 64 random points, relative l2
error within 10 eps.

``SANITIZE_CASES`` drives ``nufft_setpts_cuda``, ``nufft_spread_cuda`` (gather and scatter)
and ``nufft_interp_cuda`` at a tiny size, both precisions, and compares binning, spread grid
and interpolated values with the Numba CPU engine (spread and interp get the Numba engine's
sorted order, so each case tests its own launcher only).
"""

from __future__ import annotations

import importlib

import numpy as np

from ..registry import Prepared, register
from . import _common

_nufft = importlib.import_module("...kernels.nufft", __package__)
_ref = importlib.import_module("...backends.numpy.nufft", __package__)
_shared = importlib.import_module("...backends._shared", __package__)

MODES = (81, 81, 81)
_SIZES = {"small": 160_000, "full": 160_000_000}
_EPS = {"complex64": 1e-5, "complex128": 1e-6}
_REAL = {"complex64": np.float32, "complex128": np.float64}


def _points(m: int, precision: str, rng):
    real = _REAL[precision]
    return tuple(rng.uniform(-np.pi, np.pi, m).astype(real) for _ in range(3))


def _random_complex(shape, precision, rng):
    return (rng.standard_normal(shape, dtype=np.float32) + 1j * rng.standard_normal(shape, dtype=np.float32)).astype(
        precision)


def _direct_modes(x, y, z, c, modes, isign):
    """Exact float64 type-1 sums at the listed (k1, k2, k3) modes, chunked over points."""
    out = np.zeros(len(modes), np.complex128)
    k = np.asarray(modes, np.float64)
    for lo in range(0, x.shape[0], 1 << 21):
        sl = slice(lo, lo + (1 << 21))
        phase = (np.outer(k[:, 0], x[sl].astype(np.float64)) + np.outer(k[:, 1], y[sl].astype(np.float64))
                 + np.outer(k[:, 2], z[sl].astype(np.float64)))
        out += np.exp(1j * isign * phase) @ c[sl].astype(np.complex128)
    return out


def _prepare(nufft_type: int, backend: str, size: str, precision: str) -> Prepared:
    if size not in _SIZES:
        raise ValueError(f"`size` must be one of {', '.join(_SIZES)}; got {size!r}")
    if precision not in _EPS:
        raise ValueError(f"`precision` must be complex64 or complex128; got {precision!r}")
    _common.require(backend)
    m = _SIZES[size]
    eps = _EPS[precision]
    rng = np.random.default_rng(17 + nufft_type)
    x, y, z = _points(m, precision, rng)
    plan = _nufft.Plan(nufft_type, MODES, eps=eps, dtype=precision, backend=backend)  # unavailable -> raises
    dev = [_common.on_device(backend, a) for a in (x, y, z)]
    plan.setpts(*dev)
    data_host = _random_complex((m,) if nufft_type == 1 else MODES, precision, rng)
    data = _common.on_device(backend, data_host)
    out = {}

    def run():
        out["res"] = plan.execute(data)

    run()  # warm-up: JIT, FFT plans, first touch
    _common.finish(backend)
    got = _common.to_host(out["res"])
    if nufft_type == 1:
        sample = [tuple(int(rng.integers(-(n // 2), (n - 1) // 2 + 1)) for n in MODES)
                  for _ in range(16 if size == "small" else 4)]
        ref = _direct_modes(x, y, z, data_host, sample, plan.isign)
        got_s = np.array([got[k1 + MODES[0] // 2, k2 + MODES[1] // 2, k3 + MODES[2] // 2] for k1, k2, k3 in sample])
    else:
        j = rng.choice(m, 64, replace=False)
        ref = _ref.direct_type2(x[j], y[j], z[j], data_host[None], plan.isign)[0]
        got_s = got[j]
    err = _common.rel_err(got_s, ref)
    if not err <= 10 * eps:
        raise RuntimeError(f"nufft type {nufft_type} case: backend {backend!r} error {err:.2e} against the exact "
                           f"sum (eps {eps:g})")
    real = np.dtype(_REAL[precision]).itemsize
    cplx = 2 * real
    nbytes = 3 * m * real + m * cplx + int(np.prod(MODES)) * cplx
    return Prepared(run=run, bytes=float(nbytes), items=float(m), item_unit="points",
                    note=f"Plan.execute only (setpts not timed), eps={eps:g}, measured error {err:.1e}, fine grid {plan.n_fine}")


def prepare_type1(backend: str, size: str, precision: str) -> Prepared:
    """Type 1 (points -> modes): see the module docstring."""
    return _prepare(1, backend, size, precision)


def prepare_type2(backend: str, size: str, precision: str) -> Prepared:
    """Type 2 (modes -> points): see the module docstring."""
    return _prepare(2, backend, size, precision)


_HELP = {s: f"{MODES[0]}^3 modes, {m:.1e} points" for s, m in _SIZES.items()}
register("nufft_type1", prepare_type1, sizes=tuple(_SIZES), precisions=tuple(_EPS), ceiling="copy",
         description="3-D type-1 NUFFT execute (spread + FFT + correction), points set beforehand", size_help=_HELP)
register("nufft_type2", prepare_type2, sizes=tuple(_SIZES), precisions=tuple(_EPS), ceiling="copy",
         description="3-D type-2 NUFFT execute (correction + FFT + interpolation), points set beforehand",
         size_help=_HELP)


# --------------------------------------------------------------------------- sanitizer cases
_SAN_M, _SAN_NV = 1001, 2
_SAN_FINE = (32, 30, 28)
_SAN_BIN = (8, 10, 14)


def _san_points(rng, precision):
    """Tiny folded points, the sorted order from the Numba CPU engine, kernel parameters."""
    from ...backends.numba_cpu import nufft as ref_engine

    real = np.dtype(_REAL[precision])
    tag = _shared.core_tag(real)
    w, beta = _nufft.kernel_params(1e-6 if tag == "f64" else 1e-4, real.name)
    x, y, z = (np.ascontiguousarray(_nufft._fold(a, np)) for a in _points(_SAN_M, precision, rng))
    perm, offs = ref_engine.setpts(x, y, z, _SAN_FINE, _SAN_BIN)
    return (x, y, z, perm, offs), tag, w, beta, ref_engine


def _sanitize_setpts(core, rng):
    for precision in _EPS:
        (x, y, z, ref_perm, ref_offs), tag, _, _, _ = _san_points(rng, precision)
        nbins = ref_offs.shape[0] - 1
        (_dx, _dy, _dz, dperm, doffs), (px, py, pz, pperm, poffs) = _common.sanitize_buffers(
            x, y, z, np.full(_SAN_M, -7, np.int64), np.full(nbins + 1, -7, np.int64))
        core.nufft_setpts_cuda(px, py, pz, _SAN_M, *_SAN_FINE, *_SAN_BIN, tag, pperm, poffs, 0)
        core.cuda_synchronize()
        perm, offs = dperm.get(), doffs.get()
        # the order inside a bin may differ from the CPU's stable sort; the bins may not
        same_bins = all(np.array_equal(np.sort(perm[a:b]), np.sort(ref_perm[a:b])) for a, b in zip(offs, offs[1:])) \
            if np.array_equal(offs, ref_offs) else False
        if not same_bins:
            raise RuntimeError(f"nufft_setpts_cuda ({tag}): binning differs from the numba-cpu engine")


def _sanitize_spread(core, rng):
    for precision in _EPS:
        (x, y, z, perm, offs), tag, w, beta, ref = _san_points(rng, precision)
        _keep, (px, py, pz, pperm, poffs) = _common.sanitize_buffers(x, y, z, perm, offs)
        c = _random_complex((_SAN_NV, _SAN_M), precision, rng)
        expect = ref.spread(x, y, z, c, perm, offs, _SAN_FINE, _SAN_BIN, w, beta, "gather")
        for method in ("gather", "scatter"):
            poison = np.full((_SAN_NV, *_SAN_FINE), np.nan, precision)
            (_dc, dfine), (pc, pfine) = _common.sanitize_buffers(c, poison)
            core.nufft_spread_cuda(px, py, pz, pc, _SAN_NV, _SAN_M, pperm, poffs, *_SAN_FINE, *_SAN_BIN, int(w),
                                   float(beta), tag, method, pfine, 0)
            core.cuda_synchronize()
            err = _common.rel_err(dfine.get(), expect)
            if not err <= (1e-5 if tag == "f32" else 1e-12):
                raise RuntimeError(f"nufft_spread_cuda ({tag}, {method}) differs from numba-cpu by {err:.2e}")


def _sanitize_interp(core, rng):
    for precision in _EPS:
        (x, y, z, perm, offs), tag, w, beta, ref = _san_points(rng, precision)
        _keep, (px, py, pz, pperm, poffs) = _common.sanitize_buffers(x, y, z, perm, offs)
        fine = _random_complex((_SAN_NV, *_SAN_FINE), precision, rng)
        expect = ref.interp(x, y, z, fine, perm, w, beta)
        (_dfine, dout), (pfine, pout) = _common.sanitize_buffers(fine, np.full((_SAN_NV, _SAN_M), np.nan, precision))
        core.nufft_interp_cuda(px, py, pz, pfine, _SAN_NV, _SAN_M, pperm, *_SAN_FINE, int(w), float(beta), tag, pout, 0)
        core.cuda_synchronize()
        err = _common.rel_err(dout.get(), expect)
        if not err <= (1e-5 if tag == "f32" else 1e-12):
            raise RuntimeError(f"nufft_interp_cuda ({tag}) differs from numba-cpu by {err:.2e}")


SANITIZE_CASES = {
    "nufft_setpts_cuda": _sanitize_setpts,
    "nufft_spread_cuda": _sanitize_spread,
    "nufft_interp_cuda": _sanitize_interp,
}
