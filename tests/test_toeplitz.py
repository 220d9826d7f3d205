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
