"""Conjugate gradient for Hermitian positive definite systems, on five backends.

The operator ``A`` (and the preconditioner ``M``) is user code: a callable, an object with a
``matvec`` method (``scipy.sparse.linalg.LinearOperator``, ``cupyx`` ones, our
:class:`~spkernels.kernels.toeplitz.ToeplitzNormalOperator`) or a matrix supporting ``@``. The
solver owns the vector updates, which are the kernels::

    dot(p, q)                           -> alpha = rho / p^H A p   (+ breakdown checks)
    x += alpha p; r -= alpha q; ||r||²  -> one fused pass, residual history, convergence
    p = z + beta p                      -> one pass

Reductions are deterministic (fixed chunks or fixed grids, added in a fixed order). The scalar
state machine is shared (``cpp/include/spk/cg.h`` and its Numba twin
:mod:`spkernels.backends.numba_math.cg`): on GPU backends the scalars stay in device memory and
the host looks at them only every ``check_every`` iterations; once converged (or broken down)
every kernel becomes a no-op, so iterations launched before the host noticed change nothing
and the iterates equal those of a solver that checks every step.

The algorithm and stopping rule are those of ``scipy.sparse.linalg.cg``: stop before an
iteration when ``||r|| < max(atol, tol·||b||)``.
"""

from __future__ import annotations

import dataclasses
import logging
import math

import numpy as np

from .. import backends as _backends
from .._arrays import (ensure_array, ensure_finite, ensure_fits, ensure_int, ensure_nonempty, ensure_real,
                       is_device_array, to_host)
from ..backends import _shared
from ..backends.numba_math import cg as _m

__all__ = ["cg", "CGResult"]

log = logging.getLogger("spkernels.kernels.cg")

_DTYPES = _shared.REAL_DTYPES + _shared.COMPLEX_DTYPES
_CPU_BACKENDS = ("cpu", "numba-cpu", "numpy")

_STATUS = {
    _m.RUNNING: "maxiter",
    _m.CONVERGED: "converged",
    _m.INDEFINITE: "indefinite",
    _m.NONFINITE: "nonfinite",
    _m.NONHERMITIAN: "non-hermitian",
    _m.PRECOND_BAD: "preconditioner",
}


@dataclasses.dataclass(frozen=True)
class CGResult:
    """Outcome of :func:`cg`.

    Attributes
    ----------
    x : array
        The last iterate (same shape, dtype and device as `b`). After a breakdown, the last
        iterate computed before it, never NaN from the failed step.
    iterations : int
        Completed iterations (updates of `x`).
    residuals : ndarray, float64 (iterations + 1,)
        ``||r_k||`` for k = 0..iterations (recursively updated residuals, as SciPy's).
    converged : bool
        ``||r|| < atol`` was reached.
    status : str
        ``"converged"``, ``"maxiter"``, or a breakdown: ``"indefinite"`` (p^H A p <= 0),
        ``"non-hermitian"`` (p^H A p has a large imaginary part), ``"preconditioner"``
        (<r, M r> <= 0), ``"nonfinite"`` (NaN/Inf from the operator).
    breakdown : str or None
        A sentence explaining the breakdown, None otherwise.
    atol : float
        The absolute residual tolerance used, ``max(atol, tol·||b||)``.
    backend : str
    """

    x: object
    iterations: int
    residuals: np.ndarray
    converged: bool
    status: str
    breakdown: str | None
    atol: float
    backend: str

    @property
    def info(self) -> int:
        """SciPy-style code: 0 converged, ``iterations`` when maxiter was hit, -1 on breakdown."""
        if self.converged:
            return 0
        return self.iterations if self.status == "maxiter" else -1


def _as_operator(name, op):
    if op is None:
        return None
    if hasattr(op, "matvec"):
        return op.matvec
    if callable(op):
        return op
    if hasattr(op, "__matmul__"):
        return lambda v: op @ v
    raise TypeError(f"`{name}` must be callable, have a `matvec` method, or support `@`; got {type(op).__name__}")


def _apply(name, op, v, eng, out_dtype, host_op):
    """Apply a user operator to solver vector `v`; return a contiguous solver vector.

    `host_op`: a GPU solver for a host `b`, whose operator is host code: it gets a host copy
    of `v` and its (host) product is copied back, a round trip per application."""
    arg = eng.user_view(v)
    out = op(to_host(arg) if host_op else arg)
    if out is None:
        raise TypeError(f"`{name}` returned None; it must return the product as an array")
    if not (is_device_array(out) or hasattr(out, "copy_to_host")):  # Numba (and simulator) arrays
        if eng.gpu and not host_op:
            raise TypeError(f"`{name}` returned a host array to a GPU solver; return a device array (e.g. CuPy)")
        out = np.asarray(out)
    size = int(np.prod(out.shape))
    if size != int(np.prod(eng.shape)):
        raise ValueError(f"`{name}` returned shape {tuple(out.shape)} for an input of shape {tuple(eng.shape)}")
    odt = np.dtype(out.dtype)
    if odt.kind == "c" and out_dtype.kind != "c":
        raise TypeError(f"`{name}` returned complex values ({odt.name}) for a real system; pass a complex `b`")
    if odt.kind not in "fciub":
        raise TypeError(f"`{name}` returned dtype {odt.name}; expected {out_dtype.name}")
    return eng.adopt(out)


def _breakdown_message(status, st):
    it = int(st[_m.ITER])
    if status == "indefinite":
        return (f"p^H A p = {st[_m.PQ]:.3e} <= 0 at iteration {it + 1}: the operator is not positive definite "
                "(indefinite or singular); returning the last iterate")
    if status == "non-hermitian":
        return (f"p^H A p = {st[_m.PQ]:.3e} {st[_m.PQ_IM]:+.3e}j at iteration {it + 1}: its imaginary part shows "
                "the operator is not Hermitian; returning the last iterate")
    if status == "preconditioner":
        return f"<r, M r> <= 0 after iteration {it}: the preconditioner is not positive definite"
    if status == "nonfinite":
        return f"NaN or Inf appeared after iteration {it} (from the operator or preconditioner)"
    return None


def cg(A, b, *, x0=None, tol: float = 1e-5, atol: float = 0.0, maxiter: int = 100, M=None, callback=None,
       check_every: int | None = None, backend: str = "auto") -> CGResult:
    """Solve ``A x = b`` for Hermitian positive definite ``A`` by (preconditioned) conjugate gradients.

    Parameters
    ----------
    A : callable, LinearOperator-like or matrix
        ``A(v)``, ``A.matvec(v)`` or ``A @ v``; it receives arrays of `b`'s shape where `b`
        lives (NumPy for host `b`; CuPy for device `b`, Numba device arrays on ``numba-cuda``
        without CuPy) and must return an array with as many elements of the same kind. A GPU
        backend asked for with a host `b` copies each application's vector to the host and the
        product back: pass `b` on the device to keep the solve there.
    b : array
        Right-hand side of any shape; float64/complex128 by default, float32/complex64
        allowed; integer input is converted to float64. NaN/Inf raise ValueError.
    x0 : array, optional
        Initial guess (default zeros), same shape as `b`.
    tol, atol : float
        Stop when ``||r|| < max(atol, tol·||b||)`` (SciPy's rule, checked before each iteration).
    maxiter : int
        Maximum number of iterations.
    M : callable, LinearOperator-like or matrix, optional
        Hermitian positive definite preconditioner, applied as ``z = M r``.
    callback : callable, optional
        ``callback(x)`` after every iteration with the current iterate (the solver's array:
        copy it to keep it). Forces a host check every iteration on GPU backends.
    check_every : int, optional
        GPU backends: iterations between host looks at the device-resident scalars (default
        8). CPU backends look every iteration at no cost.
    backend : str
        ``"auto"`` picks a CPU backend for host `b` and a GPU backend for device `b`.

    Returns
    -------
    CGResult
        ``x``, ``iterations``, ``residuals``, ``converged``, ``status``, ``breakdown``.
    """
    if A is None:
        raise TypeError("`A` must be an operator, got None")
    op_a = _as_operator("A", A)
    op_m = _as_operator("M", M)
    if callback is not None and not callable(callback):
        raise TypeError("`callback` must be callable")
    on_device = is_device_array(b)
    b = ensure_array("b", b)
    ensure_nonempty("b", b)
    dtype = np.dtype(b.dtype)
    if dtype.kind == "b":
        raise TypeError("`b` must be float32, float64, complex64 or complex128 (or integer), got bool")
    if dtype.kind in "iu":
        if on_device:
            raise TypeError(f"`b` must be float32, float64, complex64 or complex128, got {dtype.name}")
        b = np.asarray(b, dtype=np.float64)
        dtype = b.dtype
    if dtype not in _DTYPES:
        raise TypeError(f"`b` must be float32, float64, complex64 or complex128, got {dtype.name}")
    ensure_finite("b", b)
    if not on_device:
        # CG works with ||r||^2: refuse a `b` whose squared norm overflows float64 (it used to
        # end at once with status "nonfinite" blamed on the operator).
        amax = float(np.max(np.abs(b)))
        if amax * math.sqrt(b.size) >= 1e150:
            raise ValueError(f"`b` holds values up to {amax:.3g}: its squared norm overflows float64; rescale it")
    tol = ensure_real("tol", tol, low=0.0)
    atol = ensure_real("atol", atol, low=0.0)
    maxiter = ensure_int("maxiter", maxiter, low=0)
    # The residual history holds maxiter + 1 float64 values: refuse, before allocating, a
    # maxiter whose history alone would take more than a quarter of the memory.
    ensure_fits("maxiter", 8 * (maxiter + 1), "the residual history (maxiter + 1 float64 values)", fraction=0.25)
    if check_every is not None:
        check_every = ensure_int("check_every", check_every, low=1)
    if not isinstance(backend, str):
        raise TypeError(f"`backend` must be a string, got {type(backend).__name__}")

    if backend == "auto" and not on_device:
        name = _backends.resolve("auto", supported=_CPU_BACKENDS)
    else:
        name = _backends.resolve(backend, on_device=on_device)
    gpu = name in _backends.GPU_BACKENDS
    host_op = gpu and not on_device  # a GPU solver asked for explicitly with host `b`
    if check_every is None:
        check_every = _tuned_check_every(name, dtype, b.size) if gpu else 1
    if callback is not None or not gpu:
        check_every = 1

    shape = tuple(int(s) for s in b.shape)
    # cg needs no batching: the solver's memory is a few vectors of b's size, which the caller
    # already holds; the operator is the caller's.
    eng = _backends.load(name, "cg").Engine(shape, dtype, maxiter)
    bv = eng.adopt(b)
    if x0 is not None:
        if is_device_array(x0) != on_device:
            raise ValueError("`x0` must live on the same device as `b`")
        x0 = ensure_array("x0", x0)
        if tuple(x0.shape) != shape:
            raise ValueError(f"`x0` must have `b`'s shape {shape}, got {tuple(x0.shape)}")
        if np.dtype(x0.dtype).kind == "c" and dtype.kind != "c":
            raise TypeError(f"`x0` is complex ({np.dtype(x0.dtype).name}) but `b` is real")
        ensure_finite("x0", x0)
        x = eng.empty()  # never iterate in the caller's array
        eng.copy(x, eng.adopt(x0))
    else:
        x = eng.zeros()

    bnorm = float(np.linalg.norm(to_host(b).ravel())) if not on_device else float(_device_norm(b))
    atol_eff = max(atol, tol * bnorm)
    herm_tol = 10.0 * math.sqrt(float(np.finfo(dtype).eps))
    st0 = np.zeros(_m.STATE_SIZE)
    st0[_m.ATOL] = atol_eff
    st0[_m.HERM_TOL] = herm_tol
    st0[_m.PRECOND] = 1.0 if op_m is not None else 0.0
    eng.set_state(st0)

    r = eng.empty()
    if bnorm == 0.0:
        x = eng.zeros()
        st = st0
        st[_m.STATUS] = _m.CONVERGED
        hist = np.zeros(1)
        return CGResult(eng.to_user(x, on_device), 0, hist, True, "converged", None, atol_eff, name)
    if x0 is not None:
        eng.residual(r, bv, _apply("A", op_a, x, eng, dtype, host_op))
    else:
        eng.copy(r, bv)
    eng.dot(r, r, _m.DOT_RR0)
    if op_m is not None:
        z = _apply("M", op_m, r, eng, dtype, host_op)
        eng.dot(r, z, _m.DOT_RHO)
    else:
        z = r
    p = eng.empty()
    eng.copy(p, z)
    st = eng.read_state()
    done = int(st[_m.ITER])
    k = 0
    while st[_m.STATUS] == _m.RUNNING and k < maxiter:
        q = _apply("A", op_a, p, eng, dtype, host_op)
        eng.dot(p, q, _m.DOT_PQ)
        eng.update_xr(x, r, p, q)
        if op_m is not None:
            z = _apply("M", op_m, r, eng, dtype, host_op)
            eng.dot(r, z, _m.DOT_RHO)
        else:
            z = r
        eng.update_p(p, z)
        k += 1
        if k % check_every == 0 or k == maxiter:
            st = eng.read_state()
            if callback is not None and int(st[_m.ITER]) > done:
                callback(to_host(eng.user_view(x)) if host_op else eng.user_view(x))
            done = int(st[_m.ITER])
    st = eng.read_state()
    iters = int(st[_m.ITER])
    status = _STATUS.get(float(st[_m.STATUS]), "unknown")
    hist = eng.read_hist()[: iters + 1]
    msg = _breakdown_message(status, st)
    if msg:
        log.warning("cg breakdown: %s", msg)
    return CGResult(eng.to_user(x, on_device), iters, hist, status == "converged", status, msg, atol_eff, name)


def _tuned_check_every(name, dtype, size):
    """GPU backends' iterations between host looks: the one ``spkernels.tuning`` stored (family
    ``cg``, ``check_every``), else 8. The iterates do not depend on it (see the module docstring)."""
    from ..tuning import active, sizes

    cfg = active.current("cg", name, np.dtype(dtype).name, sizes.cg(size))
    return active.value(cfg, "check_every", 8, lambda v: active.is_int(v, 1, 1 << 16), "cg")


def _device_norm(b):
    from .._arrays import array_module

    xp = array_module(b)
    if xp is None:
        return np.linalg.norm(to_host(b).ravel())
    return xp.linalg.norm(b.ravel())
