"""Case ``cg``: a fixed number of conjugate-gradient iterations, the solver's vector work.

``spkernels.cg`` runs ``ITERS`` iterations (tol = atol = 0, so it never stops early) on a
fixed diagonal SPD operator ``A v = d * v`` with d in [1, 100] written into a preallocated
buffer. A cheap operator on purpose: what differs between backends is the solver's own
kernels (the dot product with its device-resident state update, the fused x/r update with
||r||², the p update), so the operator must not drown them, as an FFT-based one would on a
CPU. Per iteration the minimal traffic is 14 vector passes (operator: read p and d, write q;
dot: read p, q; x/r update: read x, r, p, q, write x, r; p update: read p, r, write p) plus
about 7 passes of set-up per call (norm of b, r = b, ||r||², p = r, x = 0), so the ceiling
is copy bandwidth. The solver's own small state transfers (16 doubles in, state read once
per call because ``check_every`` = ``ITERS``) are part of the call.

Checked before timing against the float64-capable NumPy reference backend on the same
system: same iteration count, iterate within 1e-3 (float32) / 1e-9 (float64) relative.

``SANITIZE_CASES`` runs one hand-built CG iteration through the four CUDA launchers (real and
complex vectors, float32 and float64, odd lengths) and compares it with NumPy.
"""

from __future__ import annotations

import functools
import importlib

import numpy as np

from ... import _errors

# by module path: the package re-exports a function of the same name
_cg = importlib.import_module("...kernels.cg", __package__)
from ..registry import Prepared, register
from . import _common

try:  # a module global, not a closure variable: the CUDA simulator swaps globals named `cuda`
    from numba import cuda
except ImportError:
    cuda = None

ITERS = 10
_SIZES = {"small": 1 << 21, "full": 1 << 27}
_TOL = {"float32": 1e-3, "float64": 1e-9}


def _system(n: int, precision: str):
    rng = np.random.default_rng(5)
    d = rng.uniform(1.0, 100.0, n).astype(precision)
    b = rng.standard_normal(n).astype(precision)
    return d, b


@functools.lru_cache(maxsize=None)
def _numba_cuda_diag():
    @cuda.jit
    def diag(d, v, out):
        i = cuda.grid(1)
        if i < out.shape[0]:
            out[i] = d[i] * v[i]

    return diag


def _operator(backend: str, d_host: np.ndarray):
    """``v -> d * v`` on the backend's arrays, into one reused output buffer."""
    if backend in ("cpu", "numba-cpu"):
        buf = np.empty_like(d_host)
        return lambda v: np.multiply(d_host, v, out=buf)
    try:
        import cupy as cp
    except ImportError:
        cp = None
    if cp is not None:
        d = cp.asarray(d_host)
        buf = cp.empty_like(d)
        return lambda v: cp.multiply(d, cp.asarray(v), out=buf)
    if backend == "cuda":
        raise _errors.BackendUnavailableError("cg on the cuda backend needs CuPy for its vectors")
    d = cuda.to_device(d_host)
    buf = cuda.device_array_like(d)
    launch = _numba_cuda_diag()[(d_host.size + 255) // 256, 256]

    def op(v):
        launch(d, v, buf)
        return buf

    return op


def prepare(backend: str, size: str, precision: str) -> Prepared:
    """Inputs and a one-call closure for `backend` (see :mod:`spkernels.bench.registry`)."""
    if size not in _SIZES:
        raise ValueError(f"`size` must be one of {', '.join(_SIZES)}; got {size!r}")
    if precision not in _TOL:
        raise ValueError(f"`precision` must be float32 or float64; got {precision!r}")
    _common.require(backend)
    n = _SIZES[size]
    d, b_host = _system(n, precision)
    op = _operator(backend, d)
    b = _common.on_device(backend, b_host)
    out = {}

    def run():
        out["res"] = _cg.cg(op, b, tol=0.0, atol=0.0, maxiter=ITERS, check_every=ITERS, backend=backend)

    run()  # warm-up: JIT of the Numba kernels, first touch
    _common.finish(backend)
    res = out["res"]
    ref = _cg.cg(lambda v: d.astype(np.float64) * v, b_host, tol=0.0, atol=0.0, maxiter=ITERS, backend="numpy")
    err = _common.rel_err(_common.to_host(res.x), ref.x)
    if res.iterations != ITERS or res.status != "maxiter" or not err <= _TOL[precision]:
        raise RuntimeError(f"cg case: backend {backend!r} ran {res.iterations} iterations ({res.status}), "
                           f"iterate error {err:.2e} against the numpy reference")
    item = np.dtype(precision).itemsize
    return Prepared(run=run, bytes=float((14 * ITERS + 7) * n * item), items=float(n) * ITERS,
                    item_unit="element-iterations",
                    note=f"{ITERS} iterations, diagonal operator; bytes = 14 vector passes/iteration + 7 set-up")


register(
    "cg", prepare, sizes=tuple(_SIZES), precisions=tuple(_TOL), ceiling="copy",
    description=f"{ITERS} CG iterations (solver vector kernels) on a diagonal SPD operator",
    size_help={s: f"n={n} unknowns" for s, n in _SIZES.items()},
)


# --------------------------------------------------------------------------- sanitizer cases
def _sanitize_iteration(core, rng):
    """r = b - A x0; ||r||²; p = r; q = A p; p·q; x/r update; p update, on the device, vs NumPy."""
    from ...backends import _shared
    from ...backends.numba_math import cg as m

    for dtype in (np.float32, np.float64, np.complex64, np.complex128):
        dtype = np.dtype(dtype)
        cplx = dtype.kind == "c"
        real = _shared.real_dtype(dtype)
        tag = _shared.core_tag(real)
        count = 4099  # odd, not a multiple of any block size
        n = count * (2 if cplx else 1)  # the launchers count reals
        dvec = rng.uniform(1.0, 3.0, count)
        b = rng.standard_normal(count) + (1j * rng.standard_normal(count) if cplx else 0)
        x0 = 0.1 * (rng.standard_normal(count) + (1j * rng.standard_normal(count) if cplx else 0))
        b, x0 = b.astype(dtype), x0.astype(dtype)
        ax0 = (dvec * x0).astype(dtype)
        state = np.zeros(m.STATE_SIZE)
        state[m.HERM_TOL] = 1e-3
        hist = np.full(4, np.nan)
        (_db, _dax0, dx, dr, _dp, _dq, dst, dh, _dwork), (pb, pax0, px, pr, pp, pq, pst, ph, pw) = \
            _common.sanitize_buffers(b, ax0, x0, np.full(count, np.nan, dtype), np.full(count, np.nan, dtype),
                                     np.full(count, np.nan, dtype), state, hist,
                                     np.full(int(core.CG_WORK_SIZE), np.nan))
        core.cg_residual_cuda(pr, pb, pax0, n, tag, 0)
        core.cg_dot_cuda(pr, pr, n, cplx, tag, pst, ph, m.DOT_RR0, pw, 0)
        core.cuda_synchronize()
        r = dr.get()
        p = r.copy()
        q = (dvec * p).astype(dtype)
        (dp2, _dq2), (pp, pq) = _common.sanitize_buffers(p, q)
        core.cg_dot_cuda(pp, pq, n, cplx, tag, pst, ph, m.DOT_PQ, pw, 0)
        core.cg_update_xr_cuda(px, pr, pp, pq, n, tag, pst, ph, pw, 0)
        core.cg_update_p_cuda(pp, pr, n, tag, pst, 0)
        core.cuda_synchronize()
        # the same iteration in float64 NumPy
        r_ref = b.astype(np.complex128) - ax0
        rr0 = np.vdot(r_ref, r_ref).real
        alpha = rr0 / np.vdot(p.astype(np.complex128), q).real
        x_ref = x0 + alpha * p
        r1 = r - alpha * q.astype(np.complex128)
        rr1 = np.vdot(r1, r1).real
        p_ref = r1 + (rr1 / rr0) * p
        st, h = dst.get(), dh.get()
        tol = 1e-4 if real == np.float32 else 1e-10
        checks = {"r0": _common.rel_err(r, r_ref), "x": _common.rel_err(dx.get(), x_ref),
                  "r": _common.rel_err(dr.get(), r1), "p": _common.rel_err(dp2.get(), p_ref),
                  "hist": _common.rel_err(h[:2], [np.sqrt(rr0), np.sqrt(rr1)])}
        bad = {k: v for k, v in checks.items() if not v <= tol}
        if bad or st[m.ITER] != 1 or st[m.STATUS] != m.RUNNING:
            raise RuntimeError(f"cg launchers ({dtype.name}): errors {bad}, state iter={st[m.ITER]} "
                               f"status={st[m.STATUS]}")


# One hand-built iteration exercises all four launchers; each name maps to it so that
# ``--only <name>`` runs the launcher in its natural context.
SANITIZE_CASES = {name: _sanitize_iteration
                  for name in ("cg_residual_cuda", "cg_dot_cuda", "cg_update_xr_cuda", "cg_update_p_cuda")}
