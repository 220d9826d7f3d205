"""ToeplitzNormalOperator against the explicit type-2 matrix A then Aᴴ (built by a direct sum),
and against finufft; Hermitian/PSD structure; CG on the normal equations; bad input."""

from __future__ import annotations

import numpy as np
import pytest

from spkernels import backends
from spkernels.kernels import ToeplitzNormalOperator, cg, nufft3d2

NUFFT_BACKENDS = ["numpy", "numba-cpu", "cpu"]


def _nufft_backend(name):
    if not backends.is_available(name):
        pytest.skip(f"{name} unavailable")
    return name


def _points(rng, m, spread=np.pi):
    return tuple(rng.uniform(-spread, spread, m) for _ in range(3))


def _explicit_a(x, y, z, n_modes):
    """Dense type-2 matrix: A[j, k] = exp(-i k·x_j), k in C order over the (N1, N2, N3) grid."""
    ks = [np.arange(n) - n // 2 for n in n_modes]
    k1, k2, k3 = np.meshgrid(*ks, indexing="ij")
    phase = np.outer(x, k1.ravel()) + np.outer(y, k2.ravel()) + np.outer(z, k3.ravel())
    return np.exp(-1j * phase)


def _rel(a, b):
    return np.linalg.norm(np.ravel(a - b)) / np.linalg.norm(np.ravel(b))


def test_explicit_matrix_matches_nufft_convention(rng):
    n_modes = (4, 5, 3)
    x, y, z = _points(rng, 50)
    u = rng.standard_normal(n_modes) + 1j * rng.standard_normal(n_modes)
    a = _explicit_a(x, y, z, n_modes)
    assert _rel(a @ u.ravel(), nufft3d2(x, y, z, u, backend="numpy")) < 1e-13


@pytest.mark.parametrize("name", NUFFT_BACKENDS)
@pytest.mark.parametrize("n_modes", [(6, 5, 4), (5, 5, 5)])
def test_matches_explicit_a_then_ah(name, n_modes, rng):
    name = _nufft_backend(name)
    m = 400
    x, y, z = _points(rng, m, spread=2.5 * np.pi)  # also exercises folding into [-pi, pi)
    w = rng.uniform(0.2, 3.0, m)
    op = ToeplitzNormalOperator(x, y, z, n_modes, w, backend=name)
    a = _explicit_a(x, y, z, n_modes)
    u = rng.standard_normal(n_modes) + 1j * rng.standard_normal(n_modes)
    ref = (a.conj().T @ (w * (a @ u.ravel()))).reshape(n_modes)
    out = op.matvec(u)
    assert out.shape == n_modes and out.dtype == np.complex128
    assert _rel(out, ref) < 1e-5
    # Real input: the real part, through real-to-complex transforms.
    ur = rng.standard_normal(n_modes)
    refr = (a.conj().T @ (w * (a @ ur.ravel()))).real.reshape(n_modes)
    outr = op(ur)
    assert outr.dtype == np.float64 and _rel(outr, refr) < 1e-5
    # Flat vectors keep their shape.
    assert _rel(op @ u.ravel(), ref.ravel()) < 1e-5


@pytest.mark.parametrize("name", NUFFT_BACKENDS)
@pytest.mark.parametrize("n_modes", [(6, 5, 4), (5, 7, 5)])
def test_values_give_the_adjoint_in_the_same_pass(name, n_modes, rng):
    name = _nufft_backend(name)
    m = 400
    x, y, z = _points(rng, m, spread=2.5 * np.pi)
    w = rng.uniform(0.2, 3.0, m)
    b = rng.standard_normal(m) + 1j * rng.standard_normal(m)
    op = ToeplitzNormalOperator(x, y, z, n_modes, w, backend=name, eps=1e-9, values=b)
    a = _explicit_a(x, y, z, n_modes)
    assert op.adjoint.shape == n_modes
    assert _rel(op.adjoint, (a.conj().T @ (w * b)).reshape(n_modes)) < 1e-7
    # The kernel is unchanged by the extra vector.
    plain = ToeplitzNormalOperator(x, y, z, n_modes, w, backend=name, eps=1e-9)
    u = rng.standard_normal(n_modes)
    assert _rel(op(u), plain(u)) < 1e-12
    assert plain.adjoint is None
    with pytest.raises(ValueError, match="values"):
        ToeplitzNormalOperator(x, y, z, n_modes, w, backend=name, values=b[:-1])


def test_default_weights_and_finufft(rng):
    finufft = pytest.importorskip("finufft")
    n_modes = (8, 6, 7)
    x, y, z = _points(rng, 1000)
    op = ToeplitzNormalOperator(x, y, z, n_modes, backend="numpy")
    u = rng.standard_normal(n_modes) + 1j * rng.standard_normal(n_modes)
    c = finufft.nufft3d2(x, y, z, u, eps=1e-13, isign=-1)
    ref = finufft.nufft3d1(x, y, z, c, n_modes, eps=1e-13, isign=+1)
    assert _rel(op(u), ref) < 1e-9


def test_hermitian_positive_semidefinite(rng):
    n_modes = (6, 6, 6)
    x, y, z = _points(rng, 300)
    op = ToeplitzNormalOperator(x, y, z, n_modes, rng.uniform(0.1, 1.0, 300), backend="numpy")
    u = rng.standard_normal(n_modes) + 1j * rng.standard_normal(n_modes)
    v = rng.standard_normal(n_modes) + 1j * rng.standard_normal(n_modes)
    lhs = np.vdot(v, op(u))
    rhs = np.vdot(op(v), u)
    assert abs(lhs - rhs) < 1e-10 * abs(lhs)
    quad = np.vdot(u, op(u))
    assert quad.real > 0 and abs(quad.imag) < 1e-10 * quad.real


def test_cg_solves_the_normal_equations(rng):
    # min ||W^1/2 (A u - d)||^2 + lam ||u||^2 through CG on the Toeplitz operator, against a
    # dense solve.
    n_modes = (5, 6, 4)
    m = 500
    x, y, z = _points(rng, m)
    w = rng.uniform(0.5, 1.5, m)
    lam = 0.3 * m / np.prod(n_modes)
    a = _explicit_a(x, y, z, n_modes)
    d = rng.standard_normal(m) + 1j * rng.standard_normal(m)
    rhs = (a.conj().T @ (w * d)).reshape(n_modes)
    op = ToeplitzNormalOperator(x, y, z, n_modes, w, backend="numpy")
    res = cg(lambda v: op(v) + lam * v, rhs, tol=1e-10, maxiter=500, backend="cpu" if backends.is_available("cpu")
             else "numpy")
    assert res.converged
    dense = np.linalg.solve(a.conj().T @ (w[:, None] * a) + lam * np.eye(a.shape[1]), rhs.ravel())
    assert _rel(res.x.ravel(), dense) < 1e-8


def test_bad_input(rng):
    x, y, z = _points(rng, 20)
    with pytest.raises(ValueError, match="`n_modes`"):
        ToeplitzNormalOperator(x, y, z, (4, 4), backend="numpy")
    with pytest.raises(TypeError, match="`weights`"):
        ToeplitzNormalOperator(x, y, z, 4, weights=np.ones(20, complex), backend="numpy")
    with pytest.raises(ValueError, match="`weights`"):
        ToeplitzNormalOperator(x, y, z, 4, weights=np.ones(19), backend="numpy")
    bad = np.ones(20)
    bad[2] = np.nan
    with pytest.raises(ValueError, match="`weights` contains NaN"):
        ToeplitzNormalOperator(x, y, z, 4, weights=bad, backend="numpy")
    op = ToeplitzNormalOperator(x, y, z, 4, backend="numpy")
    with pytest.raises(ValueError, match="`u` must have shape"):
        op(np.ones((4, 4, 5)))


@pytest.mark.parametrize("fft_shape", ["advised", "2N", (9, 11, 7), (13, 12, 8), (16, 15, 12)])
def test_result_does_not_depend_on_the_circulant_size(fft_shape, rng):
    """Any embedding L >= 2N-1 (odd, even, the advised one) gives the explicit AᴴWA to the NUFFT's
    accuracy, and all of them agree with each other to rounding."""
    n_modes = (5, 6, 4)
    m = 300
    x, y, z = _points(rng, m, spread=2.5 * np.pi)
    w = rng.uniform(0.2, 3.0, m)
    shape = {"advised": None, "2N": tuple(2 * n for n in n_modes)}.get(fft_shape, fft_shape)
    op = ToeplitzNormalOperator(x, y, z, n_modes, w, backend="numpy", fft_shape=shape)
    ref_op = ToeplitzNormalOperator(x, y, z, n_modes, w, backend="numpy", fft_shape=tuple(2 * n for n in n_modes))
    assert all(L >= 2 * n - 1 for L, n in zip(op.fft_shape, n_modes))
    if shape is not None:
        assert op.fft_shape == tuple(shape)
    a = _explicit_a(x, y, z, n_modes)
    u = rng.standard_normal(n_modes) + 1j * rng.standard_normal(n_modes)
    ur = rng.standard_normal(n_modes)
    ref = (a.conj().T @ (w * (a @ u.ravel()))).reshape(n_modes)
    assert _rel(op(u), ref) < 1e-9
    assert _rel(op(ur), ref_op(ur)) < 1e-12
    assert _rel(op(u), ref_op(u)) < 1e-12
    assert _rel(op(ur), (a.conj().T @ (w * (a @ ur.ravel()))).real.reshape(n_modes)) < 1e-9


def test_embedding_holds_only_the_lags_a_product_reads(rng):
    """Lags |d| <= N-1 at d mod L, zeros elsewhere: the 2N grid's mode -N is not wrapped in."""
    n_modes = (3, 4, 2)
    L = (7, 9, 5)
    x, y, z = _points(rng, 60)
    op = ToeplitzNormalOperator(x, y, z, n_modes, backend="numpy", fft_shape=L)
    circ = op._circ
    lags = [np.arange(-(n - 1), n) for n in n_modes]
    # T(d) = Σ exp(+i d·x) at the lags, directly
    d1, d2, d3 = np.meshgrid(*lags, indexing="ij")
    t = np.exp(1j * (np.multiply.outer(d1, x) + np.multiply.outer(d2, y) + np.multiply.outer(d3, z))).sum(-1)
    idx = np.ix_(*[lag % n for lag, n in zip(lags, L)])
    assert _rel(circ[idx], t) < 1e-9
    mask = np.ones(L, bool)
    mask[idx] = False
    assert not np.any(circ[mask])


def test_advised_size_with_tuning_off(monkeypatch, rng):
    from spkernels import fft

    monkeypatch.setenv("SPK_TUNING", "off")
    x, y, z = _points(rng, 30)
    op = ToeplitzNormalOperator(x, y, z, (6, 7, 5), backend="numpy")
    assert op.fft_shape == tuple(fft.good_size(2 * n - 1, backend="cpu") for n in (6, 7, 5)) == (12, 14, 9)


def test_bad_fft_shape(rng):
    x, y, z = _points(rng, 20)
    with pytest.raises(ValueError, match="`fft_shape`"):
        ToeplitzNormalOperator(x, y, z, (4, 4, 4), backend="numpy", fft_shape=(7, 6, 8))
    with pytest.raises(ValueError, match="`fft_shape`"):
        ToeplitzNormalOperator(x, y, z, 4, backend="numpy", fft_shape=(8, 8))
    with pytest.raises((TypeError, ValueError), match="`fft_shape`"):
        ToeplitzNormalOperator(x, y, z, 4, backend="numpy", fft_shape=8.5)


def test_mtip_merge_does_not_depend_on_the_circulant_size(rng):
    """The MTIP merge (Toeplitz kernel + CG) with the plain 2M grid and with the advised one."""
    from spkernels.mtip.grid import ball
    from spkernels.mtip.merging import merge

    M, n_img, n_pix = 9, 40, 60
    r = 0.45 * np.sqrt(rng.uniform(0, 1, n_pix))
    ph = rng.uniform(0, 2 * np.pi, n_pix)
    s = np.stack([r * np.cos(ph), r * np.sin(ph), 0.1 * r * r], axis=1)
    w = rng.uniform(0.5, 1.5, n_pix)
    q = rng.standard_normal((n_img, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    data = rng.poisson(3.0, (n_img, n_pix)).astype(np.float64)
    kw = dict(eps=1e-9, backend="numpy", tikhonov=1e-2, cg_tol=1e-10, cg_maxiter=500)
    support = ball(M, M // 2, np)
    plain, res_p = merge(data, s, w, q, M, 1.0, support, None, fft_shape=(2 * M,) * 3, **kw)
    odd, res_o = merge(data, s, w, q, M, 1.0, support, None, fft_shape=(2 * M - 1,) * 3, **kw)
    advised, res_a = merge(data, s, w, q, M, 1.0, support, None, **kw)
    assert res_p.converged and res_o.converged and res_a.converged, (res_p.iterations, res_p.residuals[-1])
    assert _rel(odd, plain) < 1e-9 and _rel(advised, plain) < 1e-9
    assert np.abs(plain).max() > 0
