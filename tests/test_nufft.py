"""3-D NUFFT (issue 3): every backend against the float64 direct sum and against finufft.

The numpy backend *is* the direct sum (checked against finufft at eps 1e-12); every other
backend is checked against it and against finufft at the same eps (relative l2 <= 10 eps), plus
the adjoint (dot) test, gather vs scatter, determinism, plan reuse, several vectors, both signs,
folding of [-3 pi, 3 pi), batching and every class of bad input.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from spkernels import backends
from spkernels.kernels import Plan, nufft3d1, nufft3d2
from spkernels.backends.numpy import nufft as REF
from spkernels.kernels import nufft as K

SIM = backends.cuda_simulator()
# tiny under the CUDA simulator (every GPU thread is a Python thread there)
M = 48 if SIM else 1500
MODES = (6, 5, 4) if SIM else (12, 10, 9)
# accuracy of the API tests (plan reuse, vectors, folding, batching): w = 10 on the CPU, w = 7
# (fewer, cheaper simulated threads) under the simulator
EPS_API = 1e-6 if SIM else 1e-9
TOL_API = 10 * EPS_API
CASES = [(np.float32, 1e-3), (np.float32, 1e-6), (np.float64, 1e-6), (np.float64, 1e-9)]
CASE_IDS = ["f32-1e-3", "f32-1e-6", "f64-1e-6", "f64-1e-9"]
CPLX = {np.float32: np.complex64, np.float64: np.complex128}


def rel(a, b):
    return float(np.linalg.norm(np.ravel(a - b)) / np.linalg.norm(np.ravel(b)))


def points(rng, m=M, dtype=np.float64, span=math.pi):
    return tuple(rng.uniform(-span, span, m).astype(dtype) for _ in range(3))


def values(rng, shape, dtype=np.complex128):
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)


def oracle1(x, y, z, c, n_modes, isign=1):
    """float64 direct sum at exactly the (possibly float32) points given."""
    c2 = np.atleast_2d(c)
    out = REF.direct_type1(x, y, z, c2, n_modes, isign)
    return out if np.ndim(c) == 2 else out[0]


def oracle2(x, y, z, f, isign=-1):
    f4 = f if f.ndim == 4 else f[None]
    out = REF.direct_type2(x, y, z, f4, isign)
    return out if f.ndim == 4 else out[0]


# ----------------------------------------------------------------------------- accuracy


def test_direct_sum_matches_finufft(rng):
    finufft = pytest.importorskip("finufft")
    x, y, z = points(rng)
    c = values(rng, M)
    f = values(rng, MODES)
    assert rel(oracle1(x, y, z, c, MODES), finufft.nufft3d1(x, y, z, c, MODES, eps=1e-13)) < 1e-11
    assert rel(oracle2(x, y, z, f), finufft.nufft3d2(x, y, z, f, eps=1e-13)) < 1e-11


@pytest.mark.parametrize("real,eps", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("kind", [1, 2])
def test_accuracy_vs_direct_sum(backend, rng, real, eps, kind):
    x, y, z = points(rng, dtype=real)
    if kind == 1:
        c = values(rng, M, CPLX[real])
        got = nufft3d1(x, y, z, c, MODES, eps=eps, backend=backend)
        want = oracle1(x, y, z, c, MODES)
        assert got.shape == MODES
    else:
        f = values(rng, MODES, CPLX[real])
        got = nufft3d2(x, y, z, f, eps=eps, backend=backend)
        want = oracle2(x, y, z, f)
        assert got.shape == (M,)
    assert got.dtype == CPLX[real]
    err = rel(got, want)
    assert err <= 10 * eps, f"{backend} type {kind} {np.dtype(real).name} eps={eps:g}: rel err {err:.3g}"


@pytest.mark.parametrize("real,eps", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("kind", [1, 2])
def test_accuracy_vs_finufft(backend, rng, real, eps, kind):
    finufft = pytest.importorskip("finufft")
    x, y, z = points(rng, dtype=real)
    if kind == 1:
        c = values(rng, M, CPLX[real])
        got = nufft3d1(x, y, z, c, MODES, eps=eps, backend=backend)
        want = finufft.nufft3d1(x, y, z, c, MODES, eps=eps)
    else:
        f = values(rng, MODES, CPLX[real])
        got = nufft3d2(x, y, z, f, eps=eps, backend=backend)
        want = finufft.nufft3d2(x, y, z, f, eps=eps)
    err = rel(got, want)
    assert err <= 10 * eps, f"{backend} vs finufft type {kind} eps={eps:g}: rel err {err:.3g}"


# (precision, upsampfac, eps, how far above finufft 2.5's error ours may be)
PARITY = [(np.float64, 2.0, 1e-4, 1.1), (np.float64, 2.0, 1e-7, 1.1), (np.float64, 2.0, 1e-10, 1.1),
          (np.float64, 1.25, 1e-6, 1.1), (np.float32, 2.0, 1e-5, 1.5), (np.float32, 1.25, 1e-6, 2.0)]


@pytest.mark.parametrize("real,sigma,eps,factor", PARITY,
                         ids=[f"{np.dtype(r).name}-{s}-{e:g}" for r, s, e, _ in PARITY])
def test_accuracy_at_least_finufft(fast_backend, rng, real, sigma, eps, factor):
    # the default PSWF kernel is as accurate as finufft 2.5's default at the same width and
    # sigma (float64: equal to a few %; float32, where rounding adds to the kernel's error, and
    # at sigma = 1.25, within `factor`), on the same inputs against the float64 direct sum
    finufft = pytest.importorskip("finufft")
    if SIM:
        pytest.skip("sizes too large for the simulator")
    modes, m = (16, 16, 16), 3000
    x, y, z = points(rng, m, real)
    c = values(rng, m, CPLX[real])
    f = values(rng, modes, CPLX[real])
    for kind in (1, 2):
        if kind == 1:
            want = oracle1(x, y, z, c, modes)
            ours = nufft3d1(x, y, z, c, modes, eps=eps, upsampfac=sigma, backend=fast_backend)
            theirs = finufft.nufft3d1(x, y, z, c, modes, eps=eps, upsampfac=sigma)
        else:
            want = oracle2(x, y, z, f)
            ours = nufft3d2(x, y, z, f, eps=eps, upsampfac=sigma, backend=fast_backend)
            theirs = finufft.nufft3d2(x, y, z, f, eps=eps, upsampfac=sigma)
        e_ours, e_theirs = rel(ours, want), rel(theirs, want)
        assert e_ours <= factor * e_theirs + 1e-15, f"type {kind}: ours {e_ours:.3g} finufft {e_theirs:.3g}"
        if real == np.float64:
            assert e_ours <= 2 * eps


@pytest.mark.parametrize("real,tol", [(np.float32, 2e-6), (np.float64, 1e-13)], ids=["f32", "f64"])
def test_dot_test_adjoint(backend, rng, real, tol):
    # A = type 2 (isign -1), A^H = type 1 (isign +1) at the same points and eps: the spread /
    # FFT / deconvolve chain is exactly the adjoint of its reverse, so equality holds to rounding.
    x, y, z = points(rng, dtype=real)
    f = values(rng, MODES, CPLX[real])
    c = values(rng, M, CPLX[real])
    af = nufft3d2(x, y, z, f, eps=1e-6, isign=-1, backend=backend).astype(np.complex128)
    ahc = nufft3d1(x, y, z, c, MODES, eps=1e-6, isign=+1, backend=backend).astype(np.complex128)
    lhs = np.vdot(c.astype(np.complex128), af)
    rhs = np.vdot(ahc, f.astype(np.complex128))
    scale = np.linalg.norm(af) * np.linalg.norm(c)
    assert abs(lhs - rhs) / scale < tol, f"dot-test residual {abs(lhs - rhs) / scale:.3g}"


def test_upsampfac_125(fast_backend, rng):
    x, y, z = points(rng)
    c = values(rng, M)
    f = values(rng, MODES)
    got1 = nufft3d1(x, y, z, c, MODES, eps=1e-6, upsampfac=1.25, backend=fast_backend)
    got2 = nufft3d2(x, y, z, f, eps=1e-6, upsampfac=1.25, backend=fast_backend)
    assert rel(got1, oracle1(x, y, z, c, MODES)) <= 1e-5
    assert rel(got2, oracle2(x, y, z, f)) <= 1e-5


# ----------------------------------------------------------------------------- spreading


@pytest.mark.parametrize("real", [np.float32, np.float64], ids=["f32", "f64"])
def test_gather_matches_scatter(fast_backend, rng, real):
    x, y, z = points(rng, dtype=real)
    c = values(rng, (2, M), CPLX[real])
    g = nufft3d1(x, y, z, c, MODES, eps=1e-6, backend=fast_backend, method="gather")
    s = nufft3d1(x, y, z, c, MODES, eps=1e-6, backend=fast_backend, method="scatter")
    assert rel(g, s) < (2e-6 if real == np.float32 else 1e-13)


def test_gather_with_many_and_partial_bins(fast_backend, rng, monkeypatch):
    # bins of w + 2 cells: several bins per axis, partial last bins, neighbour lists that wrap
    monkeypatch.setattr(K, "_bin_size", lambda n, w, target, largest: min(n, w + 2))
    x, y, z = points(rng)
    c = values(rng, M)
    plan = Plan(1, MODES, eps=1e-6, backend=fast_backend)
    plan.setpts(x, y, z)
    nb = [-(-n // b) for n, b in zip(plan.n_fine, plan.bin_size)]
    assert min(nb) >= 2 and any(n % b for n, b in zip(plan.n_fine, plan.bin_size))
    g = plan.execute(c)
    assert rel(g, oracle1(x, y, z, c, MODES)) <= 1e-5
    s = nufft3d1(x, y, z, c, MODES, eps=1e-6, backend=fast_backend, method="scatter")
    assert rel(g, s) < 1e-13


def test_gather_is_bitwise_deterministic(fast_backend, rng):
    x, y, z = points(rng)
    c = values(rng, M)
    a = nufft3d1(x, y, z, c, MODES, eps=1e-6, backend=fast_backend, method="gather")
    b = nufft3d1(x, y, z, c, MODES, eps=1e-6, backend=fast_backend, method="gather")
    assert np.array_equal(a.view(np.float64), b.view(np.float64))


def test_does_not_modify_inputs(fast_backend, rng):
    x, y, z = points(rng, span=2.5 * math.pi)
    c = values(rng, M)
    f = values(rng, MODES)
    for a in (x, y, z, c, f):
        a.setflags(write=False)
    nufft3d1(x, y, z, c, MODES, backend=fast_backend)
    nufft3d2(x, y, z, f, backend=fast_backend)


# ----------------------------------------------------------------------------- API


def test_plan_reuse_equals_fresh_calls(backend, rng):
    x, y, z = points(rng)
    c1, c2 = values(rng, M), values(rng, M)
    f1, f2 = values(rng, MODES), values(rng, MODES)
    p1 = Plan(1, MODES, eps=EPS_API, backend=backend)
    p1.setpts(x, y, z)
    p2 = Plan(2, MODES, eps=EPS_API, backend=backend)
    p2.setpts(x, y, z)
    for c in (c1, c2):
        np.testing.assert_array_equal(p1.execute(c), nufft3d1(x, y, z, c, MODES, eps=EPS_API, backend=backend))
    for f in (f1, f2):
        np.testing.assert_array_equal(p2.execute(f), nufft3d2(x, y, z, f, eps=EPS_API, backend=backend))
    out = np.full(M, np.nan, np.complex128)  # poisoned: execute must overwrite every entry
    assert p2.execute(f1, out=out) is out
    np.testing.assert_array_equal(out, p2.execute(f1))


def test_several_vectors(backend, rng):
    v = 2 if SIM else 3
    x, y, z = points(rng)
    c = values(rng, (v, M))
    f = values(rng, (v, *MODES))
    g1 = nufft3d1(x, y, z, c, MODES, eps=EPS_API, backend=backend)
    g2 = nufft3d2(x, y, z, f, eps=EPS_API, backend=backend)
    assert g1.shape == (v, *MODES) and g2.shape == (v, M)
    assert rel(g1, oracle1(x, y, z, c, MODES)) <= TOL_API
    assert rel(g2, oracle2(x, y, z, f)) <= TOL_API
    for k in range(1 if SIM else v):  # the same as one vector at a time
        assert rel(g1[k], nufft3d1(x, y, z, c[k], MODES, eps=EPS_API, backend=backend)) < 1e-13
        assert rel(g2[k], nufft3d2(x, y, z, f[k], eps=EPS_API, backend=backend)) < 1e-13
    plan = Plan(2, MODES, eps=EPS_API, n_trans=v, backend=backend)
    plan.setpts(x, y, z)
    assert rel(plan.execute(f), g2) < 1e-13


def test_isign_both_ways(backend, rng):
    x, y, z = points(rng)
    c = values(rng, M)
    f = values(rng, MODES)
    for s in (+1, -1):
        assert rel(nufft3d1(x, y, z, c, MODES, eps=1e-6, isign=s, backend=backend),
                   oracle1(x, y, z, c, MODES, isign=s)) <= 1e-5
        assert rel(nufft3d2(x, y, z, f, eps=1e-6, isign=s, backend=backend), oracle2(x, y, z, f, isign=s)) <= 1e-5
    # and the signs really differ
    assert rel(oracle1(x, y, z, c, MODES, 1), oracle1(x, y, z, c, MODES, -1)) > 0.1


def test_points_in_three_periods_fold(backend, rng):
    x, y, z = points(rng)
    shift = rng.integers(-1, 2, (3, M)) * (2 * math.pi)  # -2pi, 0 or +2pi per coordinate
    xs, ys, zs = x + shift[0], y + shift[1], z + shift[2]
    assert xs.min() < -math.pi and xs.max() >= math.pi
    assert (np.abs(np.stack([xs, ys, zs])) < 3 * math.pi).all()
    c = values(rng, M)
    f = values(rng, MODES)
    assert rel(nufft3d1(xs, ys, zs, c, MODES, eps=EPS_API, backend=backend), oracle1(x, y, z, c, MODES)) <= TOL_API
    assert rel(nufft3d2(xs, ys, zs, f, eps=EPS_API, backend=backend), oracle2(x, y, z, f)) <= TOL_API


def test_points_at_the_edges(fast_backend, rng):
    # -pi, just below pi and values that fold onto the boundary must not crash or mis-wrap
    x, y, z = points(rng)
    edge = np.array([-math.pi, np.nextafter(math.pi, 0), -3 * math.pi, np.nextafter(3 * math.pi, 0), 0.0, math.pi])
    x[: edge.size] = edge
    y[: edge.size] = edge[::-1]
    c = values(rng, M)
    got = nufft3d1(x, y, z, c, MODES, eps=EPS_API, backend=fast_backend)
    assert rel(got, oracle1(x, y, z, c, MODES)) <= TOL_API


def test_point_and_vector_batching(fast_backend, rng, monkeypatch):
    # a job split over points (and vectors) must give the same answer as one pass (to rounding:
    # type-1 chunks are summed as separate grids); under the simulator the one-pass reference
    # is replaced by the direct sum to save two simulated transforms
    x, y, z = points(rng)
    c = values(rng, (2, M))
    f = values(rng, (2, *MODES))
    if SIM:
        whole1, whole2, tol = oracle1(x, y, z, c, MODES), oracle2(x, y, z, f), TOL_API
    else:
        whole1 = nufft3d1(x, y, z, c, MODES, eps=EPS_API, backend=fast_backend)
        whole2 = nufft3d2(x, y, z, f, eps=EPS_API, backend=fast_backend)
        tol = 1e-13
    nchunk = 2 if SIM else 3
    monkeypatch.setattr(K, "_POINT_CHUNK_OVERRIDE", M // nchunk + 1)
    plan = Plan(1, MODES, eps=EPS_API, n_trans=2, backend=fast_backend)
    plan.setpts(x, y, z)
    assert len(plan._chunks) == nchunk
    plan._vb = 1  # one vector per pass
    assert rel(plan.execute(c), whole1) < tol
    assert rel(nufft3d2(x, y, z, f, eps=EPS_API, backend=fast_backend), whole2) < tol


def test_parameters_follow_eps():
    # ES (finufft <= 2.4's rules)
    assert K.kernel_params(1e-6, kernel="es") == (7, pytest.approx(2.30 * 7))
    assert K.kernel_params(1e-3, "float32", kernel="es")[0] == 4
    assert K.kernel_params(1e-15, kernel="es")[0] == 16
    w, beta = K.kernel_params(1e-6, upsampfac=1.25, kernel="es")
    assert w == 10 and beta == pytest.approx(0.97 * math.pi * 0.6 * 10)
    # PSWF (finufft 2.5's 3-D rule): w = ceil(ln(0.3528 / eps) / (pi sqrt(1 - 1/sigma)) + 1),
    # c = pi w (1 - 1/(2 sigma)) - 0.05, passed as beta = -c; float32 below sigma 1.4 caps w at 8
    for eps, sigma, want in [(1e-3, 2.0, 4), (1e-6, 2.0, 7), (1e-10, 2.0, 11), (1e-6, 1.25, 11), (1e-6, 1.5, 9)]:
        w, beta = K.kernel_params(eps, upsampfac=sigma)
        assert w == want, (eps, sigma)
        assert beta == pytest.approx(-(math.pi * w * (1 - 0.5 / sigma) - 0.05))
    assert K.kernel_params(1e-15)[0] == 16 and K.kernel_width(1e-15) == 17
    assert K.kernel_params(1e-6, "float32", upsampfac=1.25)[0] == 8
    assert K.kernel_params(1e-6, "float32", upsampfac=2.0)[0] == 7
    with pytest.raises(ValueError, match="kernel"):
        K.kernel_params(1e-6, kernel="kb")
    assert K.fine_grid_size((81, 81, 81), 7) == (162, 162, 162)
    n = K.fine_grid_size((7, 33, 100), 7)
    assert n == (16, 72, 200)
    # phihat by quadrature against a brute-force Riemann sum of the kernel on a fine lattice
    w, beta, N, nf = 7, 2.30 * 7, 20, 40
    u = np.linspace(-w / 2, w / 2, 200001)
    phi = np.exp(beta * (np.sqrt(np.clip(1 - (2 * u / w) ** 2, 0, None)) - 1))
    k = K._mode_indices(N)
    brute = np.trapezoid(phi[None, :] * np.cos(2 * np.pi * k[:, None] * u[None, :] / nf), u, axis=1)
    np.testing.assert_allclose(K.kernel_fourier(N, nf, w, beta), brute, rtol=1e-8)


CONTRACT = ("BIN_TARGET", "BIN_MAX", "EXACT", "array_module", "max_points", "why_unavailable", "setpts", "spread",
            "interp")


def test_every_backend_module_has_the_contract():
    for name in backends.BACKENDS:
        mod = backends.load(name, "nufft")
        missing = [a for a in CONTRACT if not hasattr(mod, a)]
        assert not missing, f"backends.load({name!r}, 'nufft') lacks {missing}"
        assert mod.EXACT == (name == "numpy")
        why = mod.why_unavailable()
        assert why is None or (isinstance(why, str) and why), (name, why)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_backend_steps_match_numpy_reference(fast_backend, dtype, rng):
    # setpts / spread / interp of each backend module against the float64 NumPy reference steps
    why = K._family_unavailable(fast_backend)
    if why:
        pytest.skip(why)
    mod = backends.load(fast_backend, "nufft")
    xp = mod.array_module()
    m, n_fine, bs = (40, (12, 10, 14), (4, 5, 7)) if SIM else (700, (20, 18, 24), (8, 9, 8))
    w, beta = K.kernel_params(1e-6 if dtype == np.float64 else 1e-4, np.dtype(dtype).name)
    host = [np.ascontiguousarray(K._fold(a, np)) for a in points(rng, m, dtype, 3 * math.pi - 1e-3)]
    c = values(rng, (2, m), CPLX[dtype])
    fine = values(rng, (2, *n_fine), CPLX[dtype])
    pts = [xp.asarray(a) for a in host]
    perm, offs = mod.setpts(*pts, n_fine, bs)
    rperm, roffs = REF.setpts(*host, n_fine, bs)
    perm, offs = (a if isinstance(a, np.ndarray) else a.get() for a in (perm, offs))
    np.testing.assert_array_equal(offs, roffs)
    np.testing.assert_array_equal(perm, rperm)
    tol = 1e-5 if dtype == np.float32 else 1e-7
    dperm, doffs = xp.asarray(perm), xp.asarray(offs)
    expect = REF.spread(*host, c, rperm, roffs, n_fine, bs, w, beta, "gather")
    for method in ("gather", "scatter"):
        got = mod.spread(*pts, xp.asarray(c), dperm, doffs, n_fine, bs, w, beta, method)
        got = got if isinstance(got, np.ndarray) else got.get()
        assert got.dtype == c.dtype and got.shape == (2, *n_fine)
        assert rel(got, expect) < tol, method
    got = mod.interp(*pts, xp.asarray(fine), dperm, w, beta)
    got = got if isinstance(got, np.ndarray) else got.get()
    assert got.dtype == fine.dtype and got.shape == (2, m)
    assert rel(got, REF.interp(*host, fine, rperm, w, beta)) < tol


def test_numba_weight_table_matches_kernel():
    # the numba-cpu Horner table against the direct kernel, at every width eps can ask for
    pytest.importorskip("numba")
    from spkernels.backends.numba_math import nufft as NM

    rng = np.random.default_rng(3)
    for w in range(2, 17):
        beta = 2.30 * w
        coef = NM.kernel_poly(w, beta)
        a, b = np.empty(16), np.empty(16)
        worst = 0.0
        for t in rng.uniform(-40, 40, 200):
            assert NM.axis_weights_poly(t, w, coef, a) == NM.axis_weights(t, w, beta, b)
            worst = max(worst, float(np.abs(a[:w] - b[:w]).max()))
        # the fit is limited by the kernel's edge kink, ~exp(-beta): far below eps = 10^(1-w),
        # down to double rounding (~100 ulp of a Horner sum: 2e-14; w = 14 measures 1.1e-14 with
        # numpy 2.4 / numba 0.68, whose fit rounds differently from the versions before)
        assert worst < max(5 * math.exp(-beta), 1e-13) and worst < max(10.0 ** (1 - w) / 10, 2e-14)
    # the PSWF table (beta < 0), at the widths and bandwidths the PSWF rule gives
    for eps in (1e-2, 1e-4, 1e-6, 1e-9, 1e-12, 1e-14):
        for sigma in (2.0, 1.25):
            w, beta = K.kernel_params(eps, upsampfac=sigma)
            coef = NM.kernel_poly(w, beta)
            a, b = np.empty(16), np.empty(16)
            worst = 0.0
            for t in rng.uniform(-40, 40, 100):
                assert NM.axis_weights_poly(t, w, coef, a) == NM.axis_weights(t, w, beta, b)
                worst = max(worst, float(np.abs(a[:w] - b[:w]).max()))
            assert worst < max(eps / 50, 2e-14), (eps, sigma, worst)  # measured: <= eps / 80


def _pswf_reference(c, z):
    """psi_0^c(z) / psi_0^c(0) from a dense eigen-solve of the prolate operator in the Legendre
    basis (numpy.linalg.eig on 80 even terms): an independent route to the same function."""
    k = 2.0 * np.arange(80)
    diag = k * (k + 1) + c * c * (2 * k * k + 2 * k - 1) / ((2 * k - 1) * (2 * k + 3))
    up = (k + 1) * (k + 2) / ((2 * k + 1) * (2 * k + 3))
    down = k * (k - 1) / ((2 * k - 1) * (2 * k + 1))
    a = np.diag(diag) + np.diag(c * c * down[1:], 1) + np.diag(c * c * up[:-1], -1)
    ev, vec = np.linalg.eig(a)
    i = int(np.argmin(ev.real))
    coef = np.zeros(160)
    coef[::2] = vec[:, i].real
    leg = np.polynomial.legendre.legval
    return leg(z, coef) / leg(0.0, coef), float(ev[i].real)


def test_pswf_kernel_matches_eigen_solve():
    from spkernels.backends.numba_math import nufft as NM

    z = np.linspace(-1.0, 1.0, 61)
    for c in (0.7, 3.0, 9.4, 16.4, 25.8, 37.65):
        want, chi = _pswf_reference(c, z)
        assert NM.pswf_chi0(c) == pytest.approx(chi, rel=1e-13)
        got = NM.kernel_values(z, -c)
        assert np.abs(got - want).max() < 1e-14
        assert NM.kernel_value(0.37, -c) == pytest.approx(float(_pswf_reference(c, np.array([0.37]))[0][0]), abs=1e-14)
    assert NM.kernel_value(1.0001, -10.0) == 0.0 and NM.kernel_value(-1.2, -10.0) == 0.0
    # Newton's start max(0, c - 1) is below chi_0 for every bandwidth a width rule can give, and
    # it lands where the (slow, always safe) bisection does
    for c in np.linspace(0.05, 40.0, 120):
        newton, bisect = NM._pswf_chi0_newton(c), NM._pswf_chi0_bisect(c)
        assert newton >= 0.0 and newton == pytest.approx(bisect, rel=1e-13)
    # phihat by quadrature against a Riemann sum of the PSWF on a fine lattice
    w, beta, N, nf = 7, K.kernel_params(1e-6)[1], 20, 40
    u = np.linspace(-w / 2, w / 2, 200001)
    phi = NM.kernel_values(2 * u / w, beta)
    k = K._mode_indices(N)
    brute = np.trapezoid(phi[None, :] * np.cos(2 * np.pi * k[:, None] * u[None, :] / nf), u, axis=1)
    np.testing.assert_allclose(K.kernel_fourier(N, nf, w, beta), brute, rtol=1e-8)


# ----------------------------------------------------------------------------- bad input


def _bad_cases():
    rng = np.random.default_rng(7)
    m = 50
    x, y, z = points(rng, m)
    c = values(rng, m)
    f = values(rng, (4, 4, 4))
    nanx = x.copy()
    nanx[3] = np.nan
    infc = c.copy()
    infc[5] = np.inf + 0j
    nanf = f.copy()
    nanf[1, 2, 3] = np.nan
    far = x.copy()
    far[0] = 3 * math.pi + 0.1
    e = np.empty(0)
    x32, y32, z32 = (a.astype(np.float32) for a in (x, y, z))
    t1 = lambda *a, **k: nufft3d1(*a, **k)  # noqa: E731
    t2 = lambda *a, **k: nufft3d2(*a, **k)  # noqa: E731
    return [
        ("nan points", lambda b: t1(nanx, y, z, c, (4, 4, 4), backend=b), ValueError, "`x`"),
        ("inf values", lambda b: t1(x, y, z, infc, (4, 4, 4), backend=b), ValueError, "`c`"),
        ("nan modes", lambda b: t2(x, y, z, nanf, backend=b), ValueError, "`f`"),
        ("points beyond 3pi", lambda b: t1(far, y, z, c, (4, 4, 4), backend=b), ValueError, "`x`"),
        ("lengths differ", lambda b: t1(x, y[:-1], z, c, (4, 4, 4), backend=b), ValueError, "`y`"),
        ("values length", lambda b: t1(x, y, z, c[:-1], (4, 4, 4), backend=b), ValueError, "`c`"),
        ("empty points", lambda b: t1(e, e, e, e.astype(complex), (4, 4, 4), backend=b), ValueError, "`x`"),
        ("integer points", lambda b: t1(x.astype(int), y, z, c, (4, 4, 4), backend=b), TypeError, "`x`"),
        ("mixed point dtypes", lambda b: t1(x32, y, z, c, (4, 4, 4), backend=b), TypeError, "`x`"),
        ("values precision", lambda b: t1(x32, y32, z32, c, (4, 4, 4), backend=b), TypeError, "`c`"),
        ("real values", lambda b: t1(x, y, z, c.real, (4, 4, 4), backend=b), TypeError, "`c`"),
        ("modes precision", lambda b: t2(x, y, z, f.astype(np.complex64), backend=b), TypeError, "`f`"),
        ("modes ndim", lambda b: t2(x, y, z, f[0], backend=b), ValueError, "`f`"),
        ("eps too small f32", lambda b: t1(x32, y32, z32, c.astype(np.complex64), (4, 4, 4), eps=1e-9, backend=b),
         ValueError, "`eps`"),
        ("eps too small f64", lambda b: t1(x, y, z, c, (4, 4, 4), eps=1e-16, backend=b), ValueError, "`eps`"),
        ("eps zero", lambda b: t2(x, y, z, f, eps=0.0, backend=b), ValueError, "`eps`"),
        ("eps one", lambda b: t2(x, y, z, f, eps=1.0, backend=b), ValueError, "`eps`"),
        ("eps nan", lambda b: t2(x, y, z, f, eps=float("nan"), backend=b), ValueError, "`eps`"),
        ("eps string", lambda b: t2(x, y, z, f, eps="1e-6", backend=b), TypeError, "`eps`"),
        ("n_modes zero", lambda b: t1(x, y, z, c, (0, 4, 4), backend=b), ValueError, "`n_modes`"),
        ("n_modes two", lambda b: t1(x, y, z, c, (4, 4), backend=b), ValueError, "`n_modes`"),
        ("n_modes float", lambda b: t1(x, y, z, c, (4.5, 4, 4), backend=b), TypeError, "`n_modes`"),
        ("isign two", lambda b: t1(x, y, z, c, (4, 4, 4), isign=2, backend=b), ValueError, "`isign`"),
        ("method", lambda b: t1(x, y, z, c, (4, 4, 4), method="atomic", backend=b), ValueError, "`method`"),
        ("upsampfac", lambda b: t2(x, y, z, f, upsampfac=1.75, backend=b), ValueError, "`upsampfac`"),
        ("grid too large", lambda b: t1(x, y, z, c, (5000, 5000, 5000), backend=b), ValueError, "`n_modes`"),
    ]


BAD = _bad_cases()


@pytest.mark.parametrize("case", BAD, ids=[b[0] for b in BAD])
def test_bad_input(case):
    _, call, exc, match = case
    # validation is backend-independent and happens before any work; "numpy" keeps it quick
    with pytest.raises(exc, match=match):
        call("numpy")


def test_bad_input_on_backend(backend, rng):
    # the checks that depend on the backend (memory) and a sample of the others, per backend
    x, y, z = points(rng, 50)
    c = values(rng, 50)
    with pytest.raises(ValueError, match="`n_modes`"):
        nufft3d1(x, y, z, c, (5000, 5000, 5000), backend=backend)
    with pytest.raises(ValueError, match="`x`"):
        nufft3d1(np.full(50, np.nan), y, z, c, (4, 4, 4), backend=backend)
    with pytest.raises(TypeError, match="`c`"):
        nufft3d1(x, y, z, c.astype(np.complex64), (4, 4, 4), backend=backend)


def test_plan_misuse():
    plan = Plan(1, (4, 4, 4), backend="numpy")
    with pytest.raises(ValueError, match="setpts"):
        plan.execute(np.ones(3, np.complex128))
    rng = np.random.default_rng(1)
    x, y, z = points(rng, 10)
    plan.setpts(x, y, z)
    with pytest.raises(ValueError, match="n_trans"):
        plan.execute(np.ones((2, 10), np.complex128))
    with pytest.raises(TypeError, match="float64"):
        plan.setpts(*(a.astype(np.float32) for a in (x, y, z)))
    with pytest.raises(ValueError, match="`nufft_type`"):
        Plan(3, (4, 4, 4))
    with pytest.raises(ValueError, match="`n_trans`"):
        Plan(1, (4, 4, 4), n_trans=0)
    with pytest.raises(TypeError, match="`dtype`"):
        Plan(1, (4, 4, 4), dtype="int32")
    with pytest.raises(ValueError, match="`backend`"):
        Plan(1, (4, 4, 4), backend="fpga")
    with pytest.raises(ValueError, match="`out`"):
        plan.execute(np.ones(10, np.complex128), out=np.empty((4, 4), np.complex128))


def test_gpu_backends_need_cupy(monkeypatch):
    # the GPU FFT is CuPy's: without it both GPU backends say what to install (the simulator
    # runs numba-cuda on host arrays with scipy's FFT instead)
    import sys

    monkeypatch.setitem(sys.modules, "cupy", None)  # `import cupy` raises ImportError
    why = K._family_unavailable("numba-cuda")
    if SIM:
        assert why is None
    else:
        assert "spkernels[cuda12]" in why
    why = K._family_unavailable("cuda")
    assert "spkernels[cuda12]" in why or "without the nufft CUDA kernels" in why
    assert K._family_unavailable("numba-cpu") is None
    if backends.is_available("cuda") and hasattr(backends.core(), "nufft_spread_cuda"):
        from spkernels import BackendUnavailableError

        with pytest.raises(BackendUnavailableError, match="cuda12"):
            Plan(2, (4, 4, 4), backend="cuda")


@pytest.mark.parametrize("isa", ["native", "avx2", "generic"])
@pytest.mark.parametrize("kind", [1, 2])
def test_cpu_isa_cap_keeps_the_accuracy(monkeypatch, rng, isa, kind):
    """``SPK_CPU_ISA`` caps the C++ spreading loops at AVX2 or the generic build (a CPU without
    AVX2 takes the generic one): each path meets the eps contract against the direct sum."""
    if not backends.is_available("cpu"):
        pytest.skip("the C++ CPU backend is not built")
    monkeypatch.setenv("SPK_CPU_ISA", isa)
    for real, eps in ((np.float32, 1e-4), (np.float64, 1e-9)):
        x, y, z = points(rng, dtype=real)
        if kind == 1:
            c = values(rng, M, CPLX[real])
            err = rel(nufft3d1(x, y, z, c, MODES, eps=eps, backend="cpu"), oracle1(x, y, z, c, MODES))
        else:
            f = values(rng, MODES, CPLX[real])
            err = rel(nufft3d2(x, y, z, f, eps=eps, backend="cpu"), oracle2(x, y, z, f))
        assert err <= 10 * eps, (isa, np.dtype(real).name, err)
