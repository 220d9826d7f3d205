"""spkernels.finufft against finufft itself (issue 17 item 1): the same calls, positional forms
included, give the same shapes, dtypes and values (relative l2 within a few eps: both are
eps-accurate approximations of the same sums), the same warnings and the same error classes.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

finufft = pytest.importorskip("finufft")
import spkernels.finufft as ours  # noqa: E402

MODES = (10, 9, 8)
M = 400
CPLX = {np.float32: np.complex64, np.float64: np.complex128}
EPS = {np.float32: 1e-5, np.float64: 1e-9}


def rel(a, b):
    return float(np.linalg.norm(np.ravel(a - b)) / np.linalg.norm(np.ravel(b)))


def problem(rng, real, m=M, modes=MODES, n_trans=(), span=math.pi):
    pts = tuple(rng.uniform(-span, span, m).astype(real) for _ in range(len(modes)))
    cdt = CPLX[real]
    c = (rng.standard_normal(n_trans + (m,)) + 1j * rng.standard_normal(n_trans + (m,))).astype(cdt)
    f = (rng.standard_normal(n_trans + modes) + 1j * rng.standard_normal(n_trans + modes)).astype(cdt)
    return pts, c, f


def same(a, b, tol):
    assert type(a) is type(b) and a.shape == b.shape and a.dtype == b.dtype
    assert rel(a, b) <= tol, rel(a, b)


# ----------------------------------------------------------------------------- simple interface


CALLS = [
    # (id, type, how the call is written)
    ("kw", 1, lambda mod, p, c, f, out, eps: mod.nufft3d1(*p, c, MODES, eps=eps)),
    ("positional", 1, lambda mod, p, c, f, out, eps: mod.nufft3d1(*p, c, MODES, None, eps, 1)),
    ("isign-by-sign", 1, lambda mod, p, c, f, out, eps: mod.nufft3d1(*p, c, MODES, eps=eps, isign=-7)),
    ("isign-zero", 2, lambda mod, p, c, f, out, eps: mod.nufft3d2(*p, f, None, eps, 0)),
    ("modes-from-out", 1, lambda mod, p, c, f, out, eps: mod.nufft3d1(*p, c, out=out, eps=eps)),
    ("out-positional", 2, lambda mod, p, c, f, out, eps: mod.nufft3d2(*p, f, out, eps)),
    ("upsampfac-1.25", 1, lambda mod, p, c, f, out, eps: mod.nufft3d1(*p, c, MODES, eps=eps, upsampfac=1.25)),
    ("upsampfac-1.5", 2, lambda mod, p, c, f, out, eps: mod.nufft3d2(*p, f, eps=eps, upsampfac=1.5)),
    ("upsampfac-auto", 2, lambda mod, p, c, f, out, eps: mod.nufft3d2(*p, f, eps=eps, upsampfac=0)),
    ("legacy-es", 1, lambda mod, p, c, f, out, eps: mod.nufft3d1(*p, c, MODES, eps=eps, spread_kerformula=1)),
    ("ignored-opts", 2, lambda mod, p, c, f, out, eps: mod.nufft3d2(
        *p, f, eps=eps, nthreads=1, debug=0, spread_debug=0, showwarn=0, fftw=0, spread_sort=1, spread_kerpad=0,
        spread_kerevalmeth=0, spread_thread=1, maxbatchsize=1, spread_nthr_atomic=0, spread_max_sp_size=1000)),
]


@pytest.mark.parametrize("real", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("n_trans", [(), (3,)], ids=["one", "three"])
@pytest.mark.parametrize("name,kind,call", CALLS, ids=[c[0] for c in CALLS])
def test_simple_calls_match_finufft(rng, real, n_trans, name, kind, call):
    pts, c, f = problem(rng, real, n_trans=n_trans)
    eps = EPS[real]
    shape = n_trans + (MODES if kind == 1 else (M,))
    res = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # none of these calls warns, in either library
        for mod in (ours, finufft):
            out = np.empty(shape, CPLX[real])
            got = call(mod, pts, c.copy(), f.copy(), out, eps)
            if "out" in name:
                assert got is out
            res.append(got)
    same(res[0], res[1], 5 * eps)


def test_points_anywhere_are_folded(rng):
    # finufft folds any finite coordinate; so do we (also far outside [-3 pi, 3 pi))
    pts, c, f = problem(rng, np.float64, span=40.0)
    pts = (pts[0] + 1e3, pts[1], pts[2] - 250.0)
    same(ours.nufft3d1(*pts, c, MODES, eps=1e-9), finufft.nufft3d1(*pts, c, MODES, eps=1e-9), 1e-8)
    same(ours.nufft3d2(*pts, f, eps=1e-9), finufft.nufft3d2(*pts, f, eps=1e-9), 1e-8)


@pytest.mark.parametrize("dim", [1, 2])
def test_lower_dimensions(rng, dim):
    modes = MODES[:dim]
    pts, c, f = problem(rng, np.float64, m=60, modes=modes)
    one, two = {1: ("nufft1d1", "nufft1d2"), 2: ("nufft2d1", "nufft2d2")}[dim]
    same(getattr(ours, one)(*pts, c, modes, eps=1e-8), getattr(finufft, one)(*pts, c, modes, eps=1e-8), 5e-8)
    same(getattr(ours, two)(*pts, f, eps=1e-8), getattr(finufft, two)(*pts, f, eps=1e-8), 5e-8)


# ----------------------------------------------------------------------------- plans


@pytest.mark.parametrize("real", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("kind", [1, 2])
@pytest.mark.parametrize("modeord", [0, 1])
@pytest.mark.parametrize("n_trans", [1, 2])
def test_plan_matches_finufft(rng, real, kind, modeord, n_trans):
    lead = (n_trans,) if n_trans > 1 else ()
    pts, c, f = problem(rng, real, n_trans=lead)
    eps = EPS[real]
    cdt = CPLX[real]
    results = []
    for mod in (ours, finufft):
        plan = mod.Plan(kind, MODES, n_trans, eps, None, cdt, modeord=modeord)  # finufft's positional order
        plan.setpts(*pts)
        fwd = plan.execute(c if kind == 1 else f)
        adj = plan.execute_adjoint(fwd)
        out = np.empty_like(fwd)
        assert plan.execute(c if kind == 1 else f, out=out) is out
        results.append((fwd, adj, out))
    for a, b in zip(*results):
        same(a, b, 5 * eps)


def test_plan_properties_are_read_only():
    plan = ours.Plan(2, (8, 7, 6), 2, dtype=np.complex64)
    ref = finufft.Plan(2, (8, 7, 6), 2, dtype=np.complex64)
    assert (plan.type, plan.dim, plan.n_trans, plan.dtype) == (ref.type, ref.dim, ref.n_trans, ref.dtype)
    assert tuple(plan.n_modes) == (8, 7, 6)
    for name, value in [("type", 1), ("n_modes", (4, 4, 4)), ("dim", 1), ("n_trans", 1), ("dtype", np.float64)]:
        with pytest.raises(AttributeError):
            setattr(plan, name, value)


def test_backend_is_keyword_only(rng):
    pts, c, _ = problem(rng, np.float64)
    with pytest.raises(TypeError):
        ours.Plan(1, MODES, 1, 1e-6, 1, "complex128", "cpu")
    with pytest.raises(TypeError):
        ours.nufft3d1(*pts, c, MODES, None, 1e-6, 1, "cpu")
    for backend in ("numba-cpu", "numpy"):
        same(ours.nufft3d1(*pts, c, MODES, eps=1e-9, backend=backend), finufft.nufft3d1(*pts, c, MODES, eps=1e-9),
             5e-9)


# ----------------------------------------------------------------------------- warnings and errors


@pytest.mark.parametrize("dtype,eps", [("complex128", 1e-30), ("complex64", 1e-9)])
def test_eps_too_small_is_clamped_with_finufft_warning(rng, dtype, eps):
    real = np.float64 if dtype == "complex128" else np.float32
    pts, c, _ = problem(rng, real)
    got = []
    for mod in (ours, finufft):
        with pytest.warns(Warning, match="eps tolerance too small"):
            plan = mod.Plan(1, MODES, 1, eps, 1, dtype, upsampfac=2.0)
        plan.setpts(*pts)
        got.append(plan.execute(c))
    same(got[0], got[1], 1e-13 if real == np.float64 else 1e-5)


def test_unknown_option_warns_as_finufft():
    for mod in (ours, finufft):
        with pytest.warns(Warning, match='finufft_opts does not have attribute "foo"'):
            mod.Plan(1, (8, 8, 8), foo="bar")


BAD = [
    ("lock-function", lambda mod: mod.Plan(1, (8, 8, 8), fftw_lock_fun=None)),
    ("spread_thread", lambda mod: mod.Plan(1, (8, 8, 8), spread_thread=5)),
    ("upsampfac<=1", lambda mod: mod.Plan(1, (8, 8, 8), upsampfac=0.9)),
    ("dtype", lambda mod: mod.Plan(1, (8, 8, 8), dtype="float64")),
    ("type", lambda mod: mod.Plan(4, (8, 8, 8))),
    ("n_modes-dim", lambda mod: mod.Plan(2, (1, 2, 3, 4))),
    ("point-dtype", lambda mod: mod.Plan(1, (8, 8, 8), dtype="complex64").setpts(*np.ones((3, 4)))),
    ("point-length", lambda mod: mod.Plan(1, (8, 8, 8)).setpts(np.ones(3), np.ones(4), np.ones(3))),
    ("c-size", lambda mod: mod.nufft3d1(*np.ones((3, 5)), np.ones(7, np.complex128), 4)),
    ("no-modes", lambda mod: mod.nufft3d1(*np.ones((3, 5)), np.ones(5, np.complex128))),
    ("modes-type", lambda mod: mod.nufft3d1(*np.ones((3, 5)), np.ones(5, np.complex128), "8")),
    ("out-modes", lambda mod: mod.nufft3d1(*np.ones((3, 5)), np.ones(5, np.complex128), 4,
                                           out=np.zeros((3, 3, 3), np.complex128))),
    ("f-ndim", lambda mod: mod.nufft3d2(*np.ones((3, 5)), np.ones((2, 2), np.complex128))),
    ("out-not-C", lambda mod: mod.nufft3d2(*np.ones((3, 5)), np.ones((4, 4, 4), np.complex128),
                                           out=np.ones((5, 2), np.complex128)[:, 0])),
    ("x-int", lambda mod: mod.nufft3d1(*np.ones((3, 5), np.int64), np.ones(5, np.complex128), 4)),
]


@pytest.mark.parametrize("name,call", BAD, ids=[b[0] for b in BAD])
def test_errors_are_finufft_errors(name, call):
    with pytest.raises(Exception) as theirs:
        call(finufft)
    with pytest.raises(type(theirs.value)):
        call(ours)


def test_what_we_refuse_is_named():
    with pytest.raises(ValueError, match="upsampfac"):
        ours.Plan(1, (8, 8, 8), upsampfac=1.75)
    with pytest.raises(ValueError, match="spread_kerformula"):
        ours.Plan(1, (8, 8, 8), spread_kerformula=3)
    with pytest.raises(ValueError, match="spreadinterponly"):
        ours.Plan(1, (8, 8, 8), spreadinterponly=1)
    with pytest.raises(NotImplementedError, match="type 3"):
        ours.Plan(3, 3)
    with pytest.raises(ValueError, match="finite"):
        ours.Plan(1, (8, 8, 8)).setpts(np.array([np.nan]), np.zeros(1), np.zeros(1))


def test_auto_upsampfac_follows_finufft_rule():
    # finufft 2.5's 3-D choice (its FFTW build): 2.0 where the wider grid is faster or needed
    assert ours.auto_upsampfac(False, 3, 1, 1e-10, 0.1, 2) == 2.0
    assert ours.auto_upsampfac(False, 3, 1, 1e-6, 0.5, 2) == 1.25
    assert ours.auto_upsampfac(False, 3, 1, 1e-6, 16.0, 2) == 2.0
    assert ours.auto_upsampfac(False, 3, 2, 1e-4, 4.0, 1) == 2.0
    assert ours.auto_upsampfac(True, 3, 2, 1e-3, 0.1, 1) == 2.0
    assert ours.auto_upsampfac(True, 3, 1, 1e-3, 0.1, 4) == 1.25
