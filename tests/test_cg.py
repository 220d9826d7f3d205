"""Conjugate gradient: iterates against scipy.sparse.linalg.cg, ill-conditioned and complex
systems, preconditioning, breakdown detection and bad input, on every backend."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as sla

from spkernels import backends
from spkernels.kernels import CGResult, cg

SIM = backends.cuda_simulator()
N = 12 if SIM else 150


def _spd(rng, n, cond=10.0, complex_=False):
    """Random Hermitian positive definite matrix with eigenvalues log-uniform in [1, cond]."""
    z = rng.standard_normal((n, n))
    if complex_:
        z = z + 1j * rng.standard_normal((n, n))
    q, _ = np.linalg.qr(z)
    ev = np.exp(rng.uniform(0.0, np.log(cond), n))
    ev[0], ev[-1] = 1.0, cond
    a = (q * ev) @ q.conj().T
    return (a + a.conj().T) / 2


def _op(a):
    """`v -> a @ v`: with a host `b` every backend's solver hands the operator host arrays."""
    return lambda v: a @ v


def _rhs(rng, n, complex_=False):
    b = rng.standard_normal(n)
    return b + 1j * rng.standard_normal(n) if complex_ else b


def _host(x):
    return x.copy_to_host() if hasattr(x, "copy_to_host") else (x.get() if hasattr(x, "get") else np.array(x))


def _scipy_iterates(a, b, tol, maxiter, M=None, x0=None):
    its = []
    x, info = sla.cg(a, b, x0=x0, rtol=tol, atol=0.0, maxiter=maxiter, M=M, callback=lambda xk: its.append(xk.copy()))
    return x, info, its


def _max_rel_diff(ours, theirs):
    assert len(ours) == len(theirs), (len(ours), len(theirs))
    return max(np.abs(o - t).max() / np.abs(t).max() for o, t in zip(ours, theirs))


@pytest.mark.parametrize("complex_", [False, True])
def test_iterates_match_scipy(backend, rng, complex_):
    a = _spd(rng, N, 10.0, complex_)
    b = _rhs(rng, N, complex_)
    xs, info, its = _scipy_iterates(a, b, 1e-10, 500)
    assert info == 0
    ours = []
    res = cg(_op(a), b, tol=1e-10, maxiter=500, backend=backend, callback=lambda xk: ours.append(_host(xk)))
    assert isinstance(res, CGResult) and res.backend == backend
    assert res.converged and res.status == "converged" and res.breakdown is None and res.info == 0
    assert res.iterations == len(its) > 5
    assert _max_rel_diff(ours, its) < 1e-10
    x = _host(res.x)
    assert x.dtype == b.dtype and np.abs(x - xs).max() / np.abs(xs).max() < 1e-10
    # History: the recursive residuals, ending below tol * ||b||, and close to the true ones.
    assert res.residuals.shape == (res.iterations + 1,)
    assert res.residuals[-1] < 1e-10 * np.linalg.norm(b) <= res.residuals[-2]
    true = [np.linalg.norm(b - a @ xk) for xk in its]
    # The recursive and true residuals drift apart by rounding (~1e-11 of ||b|| near the end).
    np.testing.assert_allclose(res.residuals[1:], true, rtol=1e-6, atol=1e-9 * np.linalg.norm(b))
    assert res.residuals[0] == pytest.approx(np.linalg.norm(b), rel=1e-14)


@pytest.mark.numba_cuda
def test_gpu_check_every_changes_nothing(rng):
    name = next((b for b in ("cuda", "numba-cuda") if backends.is_available(b)), None)
    if name is None:
        pytest.skip("no GPU backend (or simulator) available")
    a = _spd(rng, N, 10.0)
    b = _rhs(rng, N)
    one = cg(_op(a), b, tol=1e-9, backend=name, check_every=1)
    five = cg(_op(a), b, tol=1e-9, backend=name, check_every=5)
    assert one.iterations == five.iterations and one.converged and five.converged
    assert _host(one.x).tobytes() == _host(five.x).tobytes()
    np.testing.assert_array_equal(one.residuals, five.residuals)


def test_preconditioned_iterates_match_scipy(fast_backend, rng):
    if fast_backend in backends.GPU_BACKENDS and SIM:
        pytest.skip("kept out of the simulator run for time")
    n = N
    d = np.exp(rng.uniform(0, np.log(1e3), n))
    a = _spd(rng, n, 5.0) * np.sqrt(d)[:, None] * np.sqrt(d)[None, :]
    b = _rhs(rng, n)
    minv = 1.0 / np.diag(a)
    xs, info, its = _scipy_iterates(a, b, 1e-10, 500, M=sp.diags(minv))
    ours = []
    res = cg(_op(a), b, tol=1e-10, maxiter=500, M=_op(np.diag(minv)),
             backend=fast_backend, callback=lambda xk: ours.append(_host(xk)))
    assert res.converged and res.iterations == len(its)
    assert _max_rel_diff(ours, its) < 1e-10


def _laplacian(n):
    return sp.diags([-np.ones(n - 1), 2 * np.ones(n), -np.ones(n - 1)], [-1, 0, 1], format="csr")


@pytest.mark.parametrize("name", ["numpy", "cpu", "numba-cpu"])
def test_ill_conditioned_converges(name, rng):
    if not backends.is_available(name):
        pytest.skip(f"{name} unavailable")
    n = 300
    lap = _laplacian(n)  # condition number ~ 4 n^2 / pi^2 ~ 3.6e4
    b = rng.standard_normal(n)
    res = cg(lap, b, tol=1e-8, maxiter=5 * n, backend=name)
    assert res.converged, res.status
    assert np.linalg.norm(b - lap @ res.x) < 1e-7 * np.linalg.norm(b)
    xs, _ = sla.cg(lap, b, rtol=1e-8, maxiter=5 * n)
    assert np.abs(res.x - xs).max() < 1e-6 * np.abs(xs).max()

    # Badly scaled as well: Jacobi preconditioning recovers the Laplacian's iteration count.
    s = np.exp(rng.uniform(0, np.log(1e4), n))
    a = sp.diags(s) @ lap @ sp.diags(s)
    plain = cg(a, b, tol=1e-8, maxiter=5 * n, backend=name)
    pre = cg(a, b, tol=1e-8, maxiter=5 * n, M=sp.diags(1.0 / a.diagonal()), backend=name)
    assert pre.converged and np.linalg.norm(b - a @ pre.x) < 1e-7 * np.linalg.norm(b)
    assert pre.iterations < plain.iterations or not plain.converged


def test_x0_and_nd_vectors(fast_backend, rng):
    if fast_backend in backends.GPU_BACKENDS and SIM:
        pytest.skip("kept out of the simulator run for time")
    # An FFT-diagonal SPD operator on a 3-D volume: b and x keep their shape throughout.
    shape = (6, 5, 4)
    sym = 1.0 + rng.random(shape)
    sym = (sym + np.roll(sym[::-1, ::-1, ::-1], 1, axis=(0, 1, 2))) / 2  # real symbol -> real operator

    def op(v):
        if fast_backend in backends.GPU_BACKENDS:
            import cupy

            return cupy.fft.ifftn(cupy.asarray(sym) * cupy.fft.fftn(v)).real
        return np.fft.ifftn(sym * np.fft.fftn(v)).real

    b = rng.standard_normal(shape)
    x0 = rng.standard_normal(shape)
    x0_before = x0.copy()
    lin = sla.LinearOperator((b.size, b.size), matvec=lambda v: op(v.reshape(shape)).ravel(), dtype=np.float64)
    xs, _, its = _scipy_iterates(lin, b.ravel(), 1e-10, 200, x0=x0.ravel())
    ours = []
    res = cg(op, b, x0=x0, tol=1e-10, maxiter=200, backend=fast_backend, callback=lambda xk: ours.append(_host(xk)))
    assert res.converged and _host(res.x).shape == shape
    assert _max_rel_diff([o.ravel() for o in ours], its) < 1e-10
    assert np.array_equal(x0, x0_before)  # the caller's x0 is not iterated in place


def test_float32(fast_backend, rng):
    if fast_backend in backends.GPU_BACKENDS and SIM:
        pytest.skip("kept out of the simulator run for time")
    a = _spd(rng, N, 10.0)
    b = _rhs(rng, N)
    ref = np.linalg.solve(a, b)
    res = cg(_op(a.astype(np.float32)), b.astype(np.float32), tol=1e-5, backend=fast_backend)
    x = _host(res.x)
    assert res.converged and x.dtype == np.float32
    assert np.abs(x - ref).max() / np.abs(ref).max() < 1e-4


def test_deterministic(fast_backend, rng):
    if fast_backend in backends.GPU_BACKENDS and SIM:
        pytest.skip("kept out of the simulator run for time")
    a = _spd(rng, N, 50.0)
    b = _rhs(rng, N)
    r1 = cg(_op(a), b, tol=1e-12, backend=fast_backend)
    r2 = cg(_op(a), b, tol=1e-12, backend=fast_backend)
    assert _host(r1.x).tobytes() == _host(r2.x).tobytes()


def test_breakdown_detected(backend, rng):
    n = N
    # Indefinite: p^H A p <= 0 along the way.
    ev = np.linspace(-1.0, 3.0, n)
    ev[np.abs(ev) < 0.1] = 0.5
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    a = (q * ev) @ q.T
    b = q[:, 0] + 0.3 * q[:, -1]  # mostly the negative eigenvector: the first p^T A p < 0
    res = cg(_op(a), b, tol=1e-10, maxiter=200, backend=backend)
    x = _host(res.x)
    assert not res.converged and res.status == "indefinite" and res.info == -1
    assert "not positive definite" in res.breakdown
    assert np.isfinite(x).all() and np.isfinite(res.residuals).all()

    # NaN from the operator: reported, the returned iterate stays finite.
    h = _spd(rng, n, 10.0)
    calls = {"n": 0}
    inner = _op(h)

    def flaky(v):
        calls["n"] += 1
        out = inner(v)
        if calls["n"] == 3:
            out = out * np.nan
        return out

    res = cg(flaky, _rhs(rng, n), tol=1e-12, maxiter=50, backend=backend)
    assert res.status == "nonfinite" and not res.converged and np.isfinite(_host(res.x)).all()


def test_non_hermitian_complex_detected(rng):
    n = 40
    h = _spd(rng, n, 5.0, complex_=True)
    skew = 0.5j * np.eye(n)  # A = H + i/2 I: p^H A p has imaginary part ||p||^2 / 2
    res = cg(h + skew, _rhs(rng, n, True), tol=1e-10, backend="numpy")
    assert res.status == "non-hermitian" and "not Hermitian" in res.breakdown
    for name in ("cpu", "numba-cpu"):
        if backends.is_available(name):
            assert cg(h + skew, _rhs(rng, n, True), tol=1e-10, backend=name).status == "non-hermitian"


def test_bad_preconditioner_detected(rng):
    a = _spd(rng, 30, 5.0)
    res = cg(a, _rhs(rng, 30), M=-np.eye(30), backend="cpu" if backends.is_available("cpu") else "numpy")
    assert res.status == "preconditioner" and not res.converged


def test_maxiter_and_zero_rhs(rng):
    a = _spd(rng, 50, 100.0)
    res = cg(a, _rhs(rng, 50), tol=1e-14, maxiter=3)
    assert res.status == "maxiter" and res.iterations == 3 and res.info == 3 and not res.converged
    zero = cg(a, np.zeros(50))
    assert zero.converged and zero.iterations == 0 and not np.any(zero.x)
    none = cg(a, _rhs(rng, 50), maxiter=0)
    assert none.iterations == 0 and not none.converged


def test_operator_kinds(rng):
    a = _spd(rng, 40, 10.0)
    b = _rhs(rng, 40)
    ref = cg(a, b, tol=1e-10, backend="numpy").x
    for op in (sp.csr_matrix(a), sla.aslinearoperator(a), lambda v: a @ v):
        np.testing.assert_allclose(cg(op, b, tol=1e-10).x, ref, rtol=0, atol=1e-10 * np.abs(ref).max())


def test_bad_input(rng):
    a = _spd(rng, 10, 5.0)
    b = _rhs(rng, 10)
    bad = b.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="`b` contains NaN"):
        cg(a, bad)
    with pytest.raises(ValueError, match="`x0`"):
        cg(a, b, x0=np.zeros(9))
    with pytest.raises(TypeError, match="`x0` is complex"):
        cg(a, b, x0=np.zeros(10, complex))
    with pytest.raises(ValueError, match="`x0` contains NaN"):
        cg(a, b, x0=bad)
    with pytest.raises(ValueError, match="returned shape"):
        cg(lambda v: np.ones(11), b)
    with pytest.raises(TypeError, match="complex values"):
        cg(lambda v: v + 0j, b)
    with pytest.raises(TypeError, match="`b`"):
        cg(a, np.array(["a", "b"]))
    with pytest.raises(TypeError, match="`A`"):
        cg(object(), b)
    with pytest.raises(ValueError, match="`maxiter`"):
        cg(a, b, maxiter=-1)
    with pytest.raises(ValueError, match="`tol`"):
        cg(a, b, tol=float("nan"))
    with pytest.raises(ValueError, match="`check_every`"):
        cg(a, b, check_every=0)
    with pytest.raises(TypeError, match="returned None"):
        cg(lambda v: None, b)
    # Integer right-hand sides are promoted to float64.
    assert cg(a, np.arange(10)).x.dtype == np.float64


def test_cpu_iterates_do_not_depend_on_thread_count():
    if not backends.is_available("cpu"):
        pytest.skip("cpu backend unavailable")
    import os
    import subprocess
    import sys

    # 60 000 unknowns: above the size where the C++ loops go parallel.
    code = ("import numpy as np, sys; from spkernels.kernels import cg; rng = np.random.default_rng(3); "
            "d = rng.uniform(1, 20, 60000); b = rng.standard_normal(60000); "
            "r = cg(lambda v: d * v, b, tol=1e-12, backend='cpu'); "
            "sys.stdout.write(str(r.iterations) + ':' + r.x.tobytes().hex()[:4000] + r.residuals.tobytes().hex())")
    outs = []
    for threads in ("1", "2", "3"):
        env = dict(os.environ, OMP_NUM_THREADS=threads)
        outs.append(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                   check=True).stdout)
    assert outs[0] == outs[1] == outs[2] and int(outs[0].split(":")[0]) > 5


_ENGINE_METHODS = ("empty", "zeros", "adopt", "user_view", "to_user", "copy", "residual", "dot",
                   "update_xr", "update_p", "set_state", "read_state", "read_hist")


@pytest.mark.parametrize("name", ["numpy", "cpu", "cuda", "numba-cpu", "numba-cuda"])
def test_every_backend_module_has_the_contract(name):
    # the module imports without a GPU; its Engine has every method the solver loop calls,
    # with the numpy reference's signature
    import inspect

    from spkernels import backends

    ref = backends.load("numpy", "cg").Engine
    eng = backends.load(name, "cg").Engine
    assert list(inspect.signature(eng).parameters) == list(inspect.signature(ref).parameters)
    for m in _ENGINE_METHODS:
        assert callable(getattr(eng, m, None)), f"{name} cg Engine lacks {m}"
        assert list(inspect.signature(getattr(eng, m)).parameters) == \
            list(inspect.signature(getattr(ref, m)).parameters), f"{name} cg Engine.{m} signature"
