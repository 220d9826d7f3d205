"""Every CUDA C++ launcher of cpp/cuda/*.h executed on the CPU (cpp/testing) against the float64 reference.

The kernels are compiled by the host compiler once per session (cached under build/cuda_host/)
and run with one cooperative fibre per CUDA thread: real block barriers, warp collectives, WMMA
with tf32 / bf16 / fp16 inputs. Each family runs under several resume orders (forward, reverse,
seeded random), so a missing barrier or a race that changes a result fails here. The last
section tests the harness itself: a kernel with a barrier removed, a divergent barrier and an
out-of-bounds write must each be caught.
"""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

from _cases import distance_inputs
from cuda_host import build as hb
from spkernels import backends
from spkernels.kernels import distance as kdist

SCHEDULES = ["forward", "reverse", "random"]


@pytest.fixture(scope="module")
def host():
    """The host-execution library of cpp/cuda (skips when there is no C++ compiler)."""
    if hb.compiler() is None:
        pytest.skip("no C++ compiler found: the CUDA C++ kernels cannot be executed on the host")
    return hb.HostCuda(hb.build())


@pytest.fixture
def dev(host):
    """Allocates emulated device buffers for one test; frees them and checks that nothing leaked."""
    before = host.live_allocations()
    made = []

    class Dev:
        def put(self, a):
            b = host.to_device(a)
            made.append(b)
            return b

        def empty(self, shape, dtype):
            b = host.empty(shape, dtype)
            made.append(b)
            return b

    yield Dev()
    for b in made:
        b.free()
    assert host.live_allocations() == before, "a launcher leaked device memory (scratch not freed)"


def _ref(family):
    return backends.load("numpy", family)


# ----------------------------------------------------------------------------------------- runtime


def test_runtime_wrappers(host, dev, rng):
    """runtime.h: device count and properties, current device, memory copies both ways and d2d."""
    assert host.lib.spkh_device_count() == 1
    name = ctypes.create_string_buffer(256)
    ints = (ctypes.c_int * 4)()
    sizes = (ctypes.c_ulonglong * 2)()
    host.call("device_properties", 0, name, 256, ints, sizes)
    assert b"host execution" in name.value and (ints[0], ints[1]) == (9, 0) and sizes[1] >= 48 * 1024
    with pytest.raises(hb.LauncherError, match="cudaErrorInvalidDevice"):
        host.call("device_properties", 3, name, 256, ints, sizes)
    host.reset()
    d = ctypes.c_int(-1)
    host.call("set_device", 0)
    host.call("current_device", ctypes.byref(d))
    assert d.value == 0
    with pytest.raises(hb.LauncherError, match="cudaErrorInvalidDevice"):
        host.call("set_device", 1)
    host.reset()
    free = ctypes.c_ulonglong()
    host.call("free_memory", ctypes.byref(free))
    a = rng.standard_normal(1000)
    da = dev.put(a)
    db = dev.empty(1000, np.float64)
    host.call("memcpy_d2d", db.ptr, da.ptr, a.nbytes, 0)
    host.call("stream_synchronize", 0)
    host.call("device_synchronize")
    np.testing.assert_array_equal(db.get(), a)
    # a copy past the end of an allocation is refused, as cudaMemcpy refuses it
    with pytest.raises(hb.LauncherError, match="cudaErrorInvalidValue"):
        host.call("memcpy_d2d", db.ptr, da.ptr, a.nbytes + 8, 0)
    # as on a GPU, the failed call's error stays the "last error" that the next launch check
    # (cudaGetLastError) would report, until it is read
    with pytest.raises(hb.LauncherError, match="cudaErrorInvalidValue"):
        host.call("cg_residual", db.ptr, da.ptr, da.ptr, 1000, 0, 0)
    host.call("cg_residual", db.ptr, da.ptr, da.ptr, 1000, 0, 0)
    np.testing.assert_array_equal(db.get(), 0.0)
    # fresh allocations are poisoned (NaN), so a kernel that reads unwritten memory shows it
    assert np.isnan(dev.empty(4, np.float64).get()).all()


# ---------------------------------------------------------------------------------------- distance

PRECISIONS = ["fp32", "3xtf32", "tf32", "bf16", "fp16"]


def _run_distance(host, dev, X, Y, w, metric_id, precision, k):
    R, P = X.shape
    N = Y.shape[0]
    dX, dY = dev.put(X), dev.put(Y)
    dw = dev.put(w) if w is not None else None
    S = dev.empty((R, N), np.float32)
    host.call("pairwise_score", dX.ptr, dY.ptr, dw.ptr if dw else 0, R, N, P, metric_id, precision.encode(), S.ptr, 0)
    oi, osc = dev.empty((N, k), np.int64), dev.empty((N, k), np.float32)
    host.call("distance_topk", dX.ptr, dY.ptr, dw.ptr if dw else 0, R, N, P, metric_id, k, precision.encode(),
              oi.ptr, osc.ptr, 0)
    return S.get(), oi.get(), osc.get()


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("metric", ["euclidean", "poisson"])
def test_distance_launchers(host, dev, rng, metric, precision):
    """pairwise_score within the documented error bound of the float64 reference; distance_topk
    equal to the exact (score, index) top-k of the same kernel's scores (splits, merge and ties);
    both bitwise the same under every resume order."""
    X, Y, w = distance_inputs(rng, metric, weighted=metric == "euclidean")
    X[7] = X[100]  # duplicate models in different tiles and splits: an exact tie, lowest index first
    metric_id = 0 if metric == "euclidean" else 1
    k = 5
    runs = []
    for schedule in SCHEDULES:  # deterministic by design: the same bits under every order
        host.schedule(schedule, seed=rng.integers(1, 2**62))
        runs.append(_run_distance(host, dev, X, Y, w, metric_id, precision, k))
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            np.testing.assert_array_equal(a, b)
    S, idx, sc = runs[0]
    ref = _ref("distance").score_matrix(X, Y, w, metric_id, "fp64")
    bound = kdist.error_bound(X, Y, metric=metric, weights=w, precision=precision)
    assert np.isfinite(S).all()
    assert (np.abs(S - ref) <= bound).all(), f"max excess {np.max(np.abs(S - ref) - bound):.3g}"
    for n in range(Y.shape[0]):
        order = np.lexsort((np.arange(X.shape[0]), S[:, n]))[:k]
        np.testing.assert_array_equal(idx[n], order)
        np.testing.assert_array_equal(sc[n], S[order, n])
    # the top-k is right against the reference too, to within the bound
    kth = np.sort(ref, axis=0)[k - 1]
    got = np.take_along_axis(ref, idx.T, 0)
    assert (got <= kth[None, :] + 2 * bound.max(axis=0)[None, :]).all()


def test_distance_tensor_core_rounding_is_real(host, dev, rng):
    """The emulated tensor cores round their inputs: tf32 / bf16 are measurably less accurate than
    fp32 and 3xtf32 on the same data (an emulation that secretly used fp32 would fail this)."""
    host.schedule("forward")
    X, Y, w = distance_inputs(rng, "euclidean", R=64, N=64, P=64, weighted=False)
    ref = _ref("distance").score_matrix(X, Y, None, 0, "fp64")
    err = {}
    for p in ("fp32", "3xtf32", "tf32", "bf16"):
        S, _, _ = _run_distance(host, dev, X, Y, None, 0, p, 1)
        err[p] = np.max(np.abs(S - ref))
    assert err["tf32"] > 20 * err["3xtf32"] and err["bf16"] > 4 * err["tf32"]
    assert err["3xtf32"] < 4 * err["fp32"] + 1e-6


def test_distance_launcher_arguments(host, dev, rng):
    X, Y, _ = distance_inputs(rng, "euclidean", R=8, N=4, P=5)
    dX, dY = dev.put(X), dev.put(Y)
    oi, osc = dev.empty((4, 2), np.int64), dev.empty((4, 2), np.float32)
    with pytest.raises(ValueError, match="precision"):
        host.call("distance_topk", dX.ptr, dY.ptr, 0, 8, 4, 5, 0, 2, b"fp64", oi.ptr, osc.ptr, 0)
    with pytest.raises(ValueError, match="`k`"):
        host.call("distance_topk", dX.ptr, dY.ptr, 0, 8, 4, 5, 0, 9, b"fp32", oi.ptr, osc.ptr, 0)


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_segmented_argmin(host, dev, rng, schedule):
    host.schedule(schedule, seed=7)
    lengths = np.array([0, 1, 17, 300, 0, 600, 5, 256, 257])
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    values = rng.standard_normal(int(offsets[-1])).astype(np.float32)
    values[offsets[5] + 10] = values[offsets[5] + 500] = -10.0  # a tie: the first wins
    values[offsets[7]:offsets[8]] = np.float32(np.inf)  # an all-inf segment
    S = len(lengths)
    oi, ov = dev.empty(S, np.int64), dev.empty(S, np.float32)
    host.call("segmented_argmin", dev.put(values).ptr, dev.put(offsets).ptr, S, oi.ptr, ov.ptr, 0)
    ri, rv = _ref("distance").segmented_argmin(values, offsets)
    np.testing.assert_array_equal(oi.get(), ri)
    np.testing.assert_array_equal(ov.get(), rv)


# ------------------------------------------------------------------------------------------- nufft

N_FINE = (16, 12, 10)


def _points(rng, M, dtype):
    pts = rng.uniform(-np.pi, np.pi, (3, M))
    pts[:, :5] *= 2.5  # a few outside [-pi, pi): folded
    return [np.ascontiguousarray(p.astype(dtype)) for p in pts]


def _setpts(host, dev, pts, bins, dtype):
    M = pts[0].shape[0]
    nb = int(np.prod([(n + b - 1) // b for n, b in zip(N_FINE, bins)]))
    dp = [dev.put(p) for p in pts]
    perm, offs = dev.empty(M, np.int64), dev.empty(nb + 1, np.int64)
    host.call("nufft_setpts", *(d.ptr for d in dp), M, *N_FINE, *bins, np.dtype(dtype).itemsize, perm.ptr, offs.ptr, 0)
    return dp, perm, offs


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_nufft_setpts(host, dev, rng, dtype):
    """Stable sort by bin: the float64 reference's perm and offsets exactly (float32 points: the
    bins of the float32 coordinates, as the CPU backend's shared math computes them)."""
    host.schedule("random", seed=3)
    bins = (8, 4, 3)
    pts = _points(rng, 400, dtype)
    _, perm, offs = _setpts(host, dev, pts, bins, dtype)
    if dtype == np.float64:
        rp, ro = _ref("nufft").setpts(*pts, N_FINE, bins)
    else:
        if backends._why_unavailable("cpu") is not None:
            pytest.skip("float32 bins are compared with the cpu backend, unavailable here: "
                        f"{backends._why_unavailable('cpu')}")
        rp, ro = backends.load("cpu", "nufft").setpts(*pts, N_FINE, bins)
    np.testing.assert_array_equal(perm.get(), rp)
    np.testing.assert_array_equal(offs.get(), ro)


def _kernel_case(kernel, w, dtype):
    """(beta, relative tolerance against the direct float64 reference) for the ES or the PSWF
    kernel of width w: the launchers evaluate the PSWF from the Horner table the CPU uses, fitted
    to 1e-2 * 10**(1 - w) (spk/nufft_horner.h), the ES directly."""
    if kernel == "es":
        return 2.3 * w, (1e-12 if dtype == np.float64 else 2e-5)
    c = np.pi * w * (1 - 1 / (2 * 2.0)) - 0.05  # finufft 2.5's PSWF bandwidth at upsampling 2
    return -c, max(50 * 1e-2 * 10.0 ** (1 - w), 1e-12 if dtype == np.float64 else 2e-5)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("method", ["gather", "scatter"])
@pytest.mark.parametrize("kernel", ["es", "pswf"])
def test_nufft_spread(host, dev, rng, dtype, method, kernel):
    """Type-1 spreading (both methods, both kernels) against the float64 reference; gather is
    bitwise the same under every resume order (it promises determinism), scatter to rounding."""
    w = 5
    beta, tol = _kernel_case(kernel, w, dtype)
    bins = (8, 8, 4)
    M, V = 300, 2
    cdt = np.complex128 if dtype == np.float64 else np.complex64
    pts = _points(rng, M, dtype)
    c = (rng.standard_normal((V, M)) + 1j * rng.standard_normal((V, M))).astype(cdt)
    ref = _ref("nufft").spread(*pts, c, None, None, N_FINE, bins, w, beta, method)
    outs = []
    for schedule in SCHEDULES:
        host.schedule(schedule, seed=11)
        dp, perm, offs = _setpts(host, dev, pts, bins, dtype)
        dc = dev.put(c)
        fine = dev.empty((V, *N_FINE), cdt)
        host.call("nufft_spread", *(d.ptr for d in dp), dc.ptr, V, M, perm.ptr, offs.ptr, *N_FINE, *bins, w, beta,
                  np.dtype(dtype).itemsize, method == "gather", fine.ptr, 0)
        out = fine.get()
        assert np.abs(out - ref).max() <= tol * np.abs(ref).max()
        outs.append(out)
    if method == "gather":
        for o in outs[1:]:
            np.testing.assert_array_equal(o, outs[0])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kernel", ["es", "pswf"])
def test_nufft_interp(host, dev, rng, dtype, kernel):
    host.schedule("reverse")
    w = 6
    beta, tol = _kernel_case(kernel, w, dtype)
    bins = (8, 4, 5)
    M, V = 250, 3
    cdt = np.complex128 if dtype == np.float64 else np.complex64
    pts = _points(rng, M, dtype)
    fine = (rng.standard_normal((V, *N_FINE)) + 1j * rng.standard_normal((V, *N_FINE))).astype(cdt)
    ref = _ref("nufft").interp(*pts, fine, None, w, beta)
    dp, perm, _ = _setpts(host, dev, pts, bins, dtype)
    df = dev.put(fine)
    out = dev.empty((V, M), cdt)
    host.call("nufft_interp", *(d.ptr for d in dp), df.ptr, V, M, perm.ptr, *N_FINE, w, beta, np.dtype(dtype).itemsize,
              out.ptr, 0)
    assert np.abs(out.get() - ref).max() <= tol * np.abs(ref).max()


def test_nufft_arguments(host, dev):
    fine = dev.empty((1, *N_FINE), np.complex64)
    offs = dev.empty(2, np.int64)
    with pytest.raises(ValueError, match="`w`"):
        host.call("nufft_spread", 0, 0, 0, 0, 1, 0, 0, offs.ptr, *N_FINE, 8, 8, 4, 17, 1.0, 4, False, fine.ptr, 0)
    with pytest.raises(ValueError, match="bin_size"):
        host.call("nufft_spread", 0, 0, 0, 0, 1, 0, 0, offs.ptr, *N_FINE, 64, 32, 4, 4, 1.0, 4, True, fine.ptr, 0)


# ---------------------------------------------------------------------------------------------- cg

CG = {"rho": 0, "rho_new": 1, "pq": 2, "pq_im": 3, "alpha": 4, "rr": 5, "status": 6, "iter": 7, "atol": 8,
      "herm_tol": 9, "precond": 10}


def _hpd(rng, n, cplx):
    A = rng.standard_normal((n, n)) + (1j * rng.standard_normal((n, n)) if cplx else 0)
    return A @ A.conj().T / n + np.eye(n)


def _cg_solve(host, dev, A, b, single, precond, maxiter=200):
    """The CG iteration of spk/cg.h driven through the four launchers; q = A p on the host."""
    cplx = np.iscomplexobj(A)
    dt = (np.complex64 if single else np.complex128) if cplx else (np.float32 if single else np.float64)
    n_el = b.shape[0]
    n = n_el * (2 if cplx else 1)
    Minv = 1.0 / np.real(np.diag(A)) if precond else None
    vec = lambda a: dev.put(np.asarray(a, dt))  # noqa: E731
    x, r, p, q, bb = vec(np.zeros(n_el)), vec(np.zeros(n_el)), vec(np.zeros(n_el)), vec(A @ np.zeros(n_el)), vec(b)
    z = vec(np.zeros(n_el)) if precond else r
    st0 = np.zeros(16)
    st0[CG["atol"]] = 1e-5 * np.linalg.norm(b)
    st0[CG["herm_tol"]] = 1e-4
    st0[CG["precond"]] = 1.0 if precond else 0.0
    state, hist = dev.put(st0), dev.put(np.full(maxiter + 1, np.nan))
    work = dev.empty(host.lib.spkh_cg_work_doubles(), np.float64)
    s = int(single)
    host.call("cg_residual", r.ptr, bb.ptr, q.ptr, n, s, 0)  # r = b - A x0 (x0 = 0)
    host.call("cg_dot", r.ptr, r.ptr, n, int(cplx), s, state.ptr, hist.ptr, 2, work.ptr, 0)
    if precond:
        z.set(Minv * r.get())
        host.call("cg_dot", r.ptr, z.ptr, n, int(cplx), s, state.ptr, hist.ptr, 1, work.ptr, 0)
    host.call("memcpy_d2d", p.ptr, z.ptr, z.nbytes, 0)
    for _ in range(maxiter):
        if state.get()[CG["status"]] != 0.0:
            break
        q.set(A @ p.get().astype(np.complex128 if cplx else np.float64))
        host.call("cg_dot", p.ptr, q.ptr, n, int(cplx), s, state.ptr, hist.ptr, 0, work.ptr, 0)
        host.call("cg_update_xr", x.ptr, r.ptr, p.ptr, q.ptr, n, s, state.ptr, hist.ptr, work.ptr, 0)
        if precond:
            z.set(Minv * r.get())
            host.call("cg_dot", r.ptr, z.ptr, n, int(cplx), s, state.ptr, hist.ptr, 1, work.ptr, 0)
        host.call("cg_update_p", p.ptr, z.ptr, n, s, state.ptr, 0)
    return x.get(), state.get(), hist.get()


@pytest.mark.parametrize("precond", [False, True])
@pytest.mark.parametrize("cplx", [False, True])
@pytest.mark.parametrize("single", [False, True])
def test_cg_solve(host, dev, rng, single, cplx, precond):
    """A Hermitian positive definite system solved by the CUDA CG kernels (multi-block reductions,
    the device state machine) to the tolerance, compared with numpy.linalg.solve."""
    host.schedule("random", seed=rng.integers(1, 2**62))
    n = 700
    A = _hpd(rng, n, cplx) + np.diag(rng.uniform(0, 3, n))
    b = rng.standard_normal(n) + (1j * rng.standard_normal(n) if cplx else 0)
    x, st, hist = _cg_solve(host, dev, A, b, single, precond)
    assert st[CG["status"]] == 1.0, f"status {st[CG['status']]}"
    xs = np.linalg.solve(A, b)
    tol = 1e-3 if single else 1e-5
    assert np.linalg.norm(x - xs) <= tol * 10 * np.linalg.norm(xs)
    k = int(st[CG["iter"]])
    assert np.isfinite(hist[: k + 1]).all() and hist[k] < st[CG["atol"]]


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("cplx", [False, True])
def test_cg_dot(host, dev, rng, schedule, cplx):
    """cg_dot's two-stage reduction (several blocks) against a float64 dot; the stopped state
    leaves everything untouched."""
    host.schedule(schedule, seed=5)
    n_el = 5000
    a = rng.standard_normal(n_el) + (1j * rng.standard_normal(n_el) if cplx else 0)
    bv = rng.standard_normal(n_el) + (1j * rng.standard_normal(n_el) if cplx else 0)
    st0 = np.zeros(16)
    st0[CG["rho_new"]] = 2.0
    st0[CG["herm_tol"]] = 1e300
    state, hist = dev.put(st0), dev.put(np.zeros(4))
    work = dev.empty(host.lib.spkh_cg_work_doubles(), np.float64)
    n = n_el * (2 if cplx else 1)
    host.call("cg_dot", dev.put(a).ptr, dev.put(bv).ptr, n, int(cplx), 0, state.ptr, hist.ptr, 0, work.ptr, 0)
    st = state.get()
    d = np.vdot(a, bv)
    scale = np.abs(a) @ np.abs(bv)
    if st[CG["status"]] == 0.0:
        assert abs(st[CG["pq"]] - d.real) <= 1e-13 * scale
        assert abs(st[CG["alpha"]] - 2.0 / st[CG["pq"]]) <= 1e-15 * abs(st[CG["alpha"]])
    else:  # re <= 0: indefinite, as cg_finish_dot says
        assert d.real <= 1e-13 * scale and st[CG["status"]] == 2.0
    if cplx:
        assert abs(st[CG["pq_im"]] - d.imag) <= 1e-13 * scale
    # a stopped solver: every kernel returns at once
    st_stop = st0.copy()
    st_stop[CG["status"]] = 1.0
    state.set(st_stop)
    x = dev.put(a)
    host.call("cg_update_xr", x.ptr, x.ptr, x.ptr, x.ptr, n, 0, state.ptr, hist.ptr, work.ptr, 0)
    host.call("cg_update_p", x.ptr, x.ptr, n, 0, state.ptr, 0)
    np.testing.assert_array_equal(x.get(), a)
    np.testing.assert_array_equal(state.get(), st_stop)


# --------------------------------------------------------------------------------------------- fsc


@pytest.mark.parametrize("single", [True, False])
@pytest.mark.parametrize("schedule", ["forward", "random"])
def test_fsc_accumulate(host, dev, rng, single, schedule):
    """Per-shell sums from the half spectra (shared-memory warp histograms, __match_any_sync)
    against the float64 full-spectrum reference; bitwise the same under any resume order."""
    nz, ny, nx = 10, 8, 13
    n_shells = 6
    scale = (1.0 / nz, 1.0 / ny, 1.0 / nx)
    dt = np.float32 if single else np.float64
    v1 = rng.standard_normal((nz, ny, nx)).astype(dt)
    v2 = (v1 + 0.5 * rng.standard_normal((nz, ny, nx))).astype(dt)
    ref = _ref("fsc").reference_sums(v1, v2, n_shells, scale)
    f1, f2 = np.fft.rfftn(v1), np.fft.rfftn(v2)
    cdt = np.complex64 if single else np.complex128
    d1, d2 = dev.put(f1.astype(cdt)), dev.put(f2.astype(cdt))
    results = []
    for seed in (1, 2):
        host.schedule(schedule, seed=seed)
        sums = dev.empty(n_shells * 4, np.float64)
        host.call("fsc_accumulate", d1.ptr, d2.ptr, int(single), nz, ny, nx, *scale, n_shells, sums.ptr, 0)
        results.append(sums.get().reshape(n_shells, 4))
    got = results[0]
    np.testing.assert_array_equal(got[:, 3], ref[:, 3])
    tol = 1e-5 if single else 1e-11
    assert np.abs(got[:, :3] - ref[:, :3]).max() <= tol * np.abs(ref[:, 1:3]).sum()
    np.testing.assert_array_equal(results[1], got)


# --------------------------------------------------------------------------------------- insertion


def _rotations(rng, n):
    q, r = np.linalg.qr(rng.standard_normal((n, 3, 3)))
    q *= np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]
    return q * np.sign(np.linalg.det(q))[:, None, None]


def _insertion_case(rng, single, n=3, N=16):
    from spkernels.kernels.insertion import Blob

    rdt, cdt = (np.float32, np.complex64) if single else (np.float64, np.complex128)
    blob = Blob()
    images = (rng.standard_normal((n, N, N)) + 1j * rng.standard_normal((n, N, N))).astype(cdt)
    ctf = rng.uniform(0.2, 1.0, (n, N, N)).astype(rdt)
    rot = _rotations(rng, n).astype(rdt)
    table = blob.table().astype(rdt)
    h = N // 2
    vol = (rng.standard_normal((N, N, h + 1)) + 1j * rng.standard_normal((N, N, h + 1))).astype(cdt)
    wts = rng.uniform(0, 1, (N, N, h + 1)).astype(rdt)
    return dict(images=images, ctf=ctf, rot=rot, table=table, scale=blob.scale, radius=float(blob.radius),
                mf2=float((h - 1) ** 2), vol=vol, wts=wts)


_INSERT_CODE = {"slab": 1, "brick": 2, "scatter": 0}  # the C API's `gather` argument


@pytest.mark.parametrize("single", [True, False])
@pytest.mark.parametrize("method", ["slab", "brick", "scatter"])
def test_insertion_insert(host, dev, rng, single, method):
    """insertion_insert (the slab and the brick gathers, with rotations staged in batches and the
    table in shared memory or not; the atomic scatter) adds into the half volume as the float64
    reference does; the gathers are bitwise the same under every order."""
    c = _insertion_case(rng, single)
    n, N = c["images"].shape[:2]
    ref_v, ref_w = _ref("insertion").insert(c["images"], c["ctf"], c["rot"], c["table"].astype(np.float64), c["scale"],
                                            c["radius"], c["mf2"], c["vol"].astype(np.complex128),
                                            c["wts"].astype(np.float64), "gather", None)
    tol = 2e-4 if single else 1e-10
    gather = method != "scatter"
    runs = [("forward", True), ("random", False), ("reverse", True)] if gather else [("random", False)]
    outs = []
    for schedule, shared_table in runs:
        host.schedule(schedule, seed=17)
        dv, dw = dev.put(c["vol"]), dev.put(c["wts"])
        host.call("insertion_insert", dev.put(c["images"]).ptr, dev.put(c["ctf"]).ptr, dev.put(c["rot"]).ptr,
                  dev.put(c["table"]).ptr, c["table"].shape[0], int(single), n, N, c["scale"], c["radius"], c["mf2"],
                  dv.ptr, dw.ptr, _INSERT_CODE[method], 4, 4, 4, 2, int(shared_table), 0, N, 0)
        v, w = dv.get(), dw.get()
        assert np.abs(v - ref_v).max() <= tol * np.abs(ref_v).max()
        assert np.abs(w - ref_w).max() <= tol * np.abs(ref_w).max()
        assert np.abs(w - c["wts"]).max() > 0.1  # the images really went in
        outs.append((v, w))
    for v, w in outs[1:]:
        np.testing.assert_array_equal(v, outs[0][0])
        np.testing.assert_array_equal(w, outs[0][1])


@pytest.mark.parametrize("layout", ["slab", "brick"])
def test_insertion_insert_slabs(host, dev, rng, layout):
    """The gather into z-slabs [z0, z0 + nz) of the volume (for volumes larger than the device)
    gives bitwise the whole-volume result, slab by slab."""
    host.schedule("random", seed=31)
    code = _INSERT_CODE[layout]
    c = _insertion_case(rng, False)
    n, N = c["images"].shape[:2]
    args = [dev.put(c["images"]).ptr, dev.put(c["ctf"]).ptr, dev.put(c["rot"]).ptr, dev.put(c["table"]).ptr,
            c["table"].shape[0], 0, n, N, c["scale"], c["radius"], c["mf2"]]
    dv, dw = dev.put(c["vol"]), dev.put(c["wts"])
    host.call("insertion_insert", *args, dv.ptr, dw.ptr, code, 4, 4, 4, 3, 1, 0, N, 0)
    whole_v, whole_w = dv.get(), dw.get()
    for z0, nz in ((0, 5), (5, 6), (11, N - 11)):
        sv, sw = dev.put(c["vol"][z0:z0 + nz]), dev.put(c["wts"][z0:z0 + nz])
        host.call("insertion_insert", *args, sv.ptr, sw.ptr, code, 4, 4, 4, 3, 1, z0, nz, 0)
        np.testing.assert_array_equal(sv.get(), whole_v[z0:z0 + nz])
        np.testing.assert_array_equal(sw.get(), whole_w[z0:z0 + nz])


@pytest.mark.parametrize("single", [True, False])
def test_insertion_extract(host, dev, rng, single):
    host.schedule("random", seed=19)
    c = _insertion_case(rng, single)
    n, N = c["images"].shape[:2]
    ref = _ref("insertion").extract(c["vol"].astype(np.complex128), c["ctf"], c["rot"], c["table"].astype(np.float64),
                                    c["scale"], c["radius"], c["mf2"])
    out = dev.empty((n, N, N), c["images"].dtype)
    host.call("insertion_extract", dev.put(c["vol"]).ptr, dev.put(c["ctf"]).ptr, dev.put(c["rot"]).ptr,
              dev.put(c["table"]).ptr, c["table"].shape[0], int(single), n, N, c["scale"], c["radius"], c["mf2"],
              out.ptr, 0)
    tol = 2e-4 if single else 1e-10
    assert np.abs(out.get() - ref).max() <= tol * np.abs(ref).max()


def test_every_launcher_is_covered(host):
    """Every launcher declared in cpp/cuda/*.h has a C-ABI wrapper here and is called by a test
    in this file, so a new CUDA kernel cannot skip host execution by omission."""
    import re
    from pathlib import Path

    declared = set()
    decl = re.compile(r"^\s*(?:[\w:]+[\s*&]+)+(\w+)\s*\(")
    for h in sorted((hb.ROOT / "cpp" / "cuda").glob("*.h")):
        lines = [ln for ln in re.sub(r"//.*", "", h.read_text()).splitlines() if ln.strip()]
        for prev, ln in zip([""] + lines, lines):
            m = decl.match(ln)
            # templates and inline definitions are host-side helpers, not launchers
            if m and not prev.strip().startswith("template") and not ln.lstrip().startswith("inline"):
                declared.add(m.group(1))
    declared -= {"device_count", "free_device"}  # wrapped without an error code (spkh_device_count, spkh_free_device)
    missing = sorted(n for n in declared if not hasattr(host.lib, "spkh_" + n))
    assert not missing, f"launchers without a wrapper in cpp/testing/capi.cpp: {missing}"
    text = Path(__file__).read_text() + Path(hb.__file__).read_text()  # the buffers use malloc / memcpy
    untested = sorted(n for n in declared if f'"{n}"' not in text)
    assert not untested, f"launchers no test here calls: {untested}"


# -------------------------------------------------- the Python `cuda` backend, end to end on the host


@pytest.fixture
def cuda_on_host(host, monkeypatch):
    """``backend="cuda"`` with spkernels' own adapters and the CUDA C++ kernels executing on the CPU."""
    from cuda_host import fake_core

    try:
        import cupy  # noqa: F401
        pytest.skip("CuPy is installed: the adapters would hand CuPy (GPU) arrays to the host kernels")
    except ImportError:
        pass
    import gc

    gc.collect()  # buffers an earlier failure's traceback kept alive
    host.allocations_before = host.live_allocations()
    fake_core.install(monkeypatch, host)
    host.schedule("random", seed=23)
    yield host
    fake_core.uninstall(host)


def _no_leaks(host, launches_before):
    import gc

    assert host.stats()["launches"] > launches_before, "no kernel ran on the host: the cuda backend was not used"

    gc.collect()
    assert host.live_allocations() <= host.allocations_before, "the cuda adapters leaked device buffers"


def test_cuda_backend_distance(cuda_on_host, rng):
    """kernels.distance with backend="cuda": argmin / top-k, the pairwise score and the
    segmented argmin, through backends/cuda/distance.py and _arrays.DeviceArray."""
    launches = cuda_on_host.stats()["launches"]
    from spkernels import kernels

    X, Y, w = distance_inputs(rng, "euclidean", R=90, N=40, P=30)
    for precision in ("fp32", "tf32"):
        res = kernels.distance_argmin(X, Y, weights=w, k=3, precision=precision, backend="cuda")
        ref = kernels.distance_argmin(X, Y, weights=w, k=3, precision="fp64", backend="numpy")
        idx = np.asarray(res.index if hasattr(res, "index") else res[0])
        ridx = np.asarray(ref.index if hasattr(ref, "index") else ref[0])
        assert np.mean(idx == ridx) > 0.9
    D = kernels.pairwise_sqdist(X, Y, weights=w, precision="fp32", backend="cuda")
    Dr = kernels.pairwise_sqdist(X, Y, weights=w, precision="fp64", backend="numpy")
    assert np.abs(np.asarray(D) - Dr).max() <= kdist.error_bound(X, Y, weights=w, precision="fp32").max()
    _no_leaks(cuda_on_host, launches)


def test_cuda_backend_segmented_argmin(cuda_on_host, rng):
    from spkernels import kernels

    offsets = np.array([0, 5, 5, 40], np.int64)
    vals = rng.standard_normal(40).astype(np.float32)
    i1, v1 = kernels.segmented_argmin(vals, offsets, backend="cuda")
    i2, v2 = kernels.segmented_argmin(vals, offsets, backend="numpy")
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_array_equal(v1, v2)


def test_cuda_backend_fsc(cuda_on_host, rng):
    """kernels.fsc with backend="cuda" (host spectra, DeviceArray sums) against backend="numpy"."""
    launches = cuda_on_host.stats()["launches"]
    from spkernels import kernels

    v1 = rng.standard_normal((12, 12, 12))
    v2 = v1 + 0.7 * rng.standard_normal((12, 12, 12))
    a = kernels.fsc(v1, v2, voxel_size=2.0, backend="cuda")
    b = kernels.fsc(v1, v2, voxel_size=2.0, backend="numpy")
    np.testing.assert_allclose(a.fsc, b.fsc, rtol=1e-10, atol=1e-12)
    _no_leaks(cuda_on_host, launches)


def test_cuda_backend_insertion(cuda_on_host, rng):
    """kernels.insert / extract with backend="cuda" against backend="numpy"."""
    launches = cuda_on_host.stats()["launches"]
    from spkernels import kernels

    c = _insertion_case(rng, False, n=4, N=12)
    v2, w2 = kernels.fourier_insert(c["images"], c["rot"], ctf=c["ctf"], backend="numpy")
    for layout in ("slab", "brick"):
        params = kernels.insertion.LaunchParams(layout=layout)
        v1, w1 = kernels.fourier_insert(c["images"], c["rot"], ctf=c["ctf"], backend="cuda", params=params)
        assert np.abs(np.asarray(v1) - v2).max() <= 1e-10 * np.abs(v2).max()
        assert np.abs(np.asarray(w1) - w2).max() <= 1e-10 * np.abs(w2).max()
    e1 = kernels.fourier_extract(v2, c["rot"], ctf=c["ctf"], backend="cuda")
    e2 = kernels.fourier_extract(v2, c["rot"], ctf=c["ctf"], backend="numpy")
    assert np.abs(np.asarray(e1) - e2).max() <= 1e-10 * np.abs(e2).max()
    _no_leaks(cuda_on_host, launches)


@pytest.fixture
def cuda_on_host_with_cupy(cuda_on_host, monkeypatch):
    """:func:`cuda_on_host` plus the NumPy-backed CuPy stand-in of tests/_fakecupy.py (for nufft, cg)."""
    from cuda_host import fake_core

    fakecupy = pytest.importorskip("_fakecupy")
    if not hasattr(fakecupy.ndarray, "set"):  # CuPy's host-to-device copy into an existing array
        monkeypatch.setattr(fakecupy.ndarray, "set", lambda self, a: np.copyto(self._a, a), raising=False)
    return fake_core.use_cupy_standin(fakecupy.install(monkeypatch), cuda_on_host)


def test_cuda_backend_nufft(cuda_on_host_with_cupy, host, rng):
    """kernels.nufft3d1 / nufft3d2 with backend="cuda" on device (stand-in) arrays: setpts,
    gather spreading and interpolation through backends/cuda/nufft.py, against the exact sums."""
    from spkernels import kernels

    cp = cuda_on_host_with_cupy
    launches = host.stats()["launches"]
    M, modes = 150, (8, 10, 6)
    x, y, z = rng.uniform(-np.pi, np.pi, (3, M))
    c = rng.standard_normal(M) + 1j * rng.standard_normal(M)
    f = kernels.nufft3d1(*(cp.asarray(a) for a in (x, y, z, c)), modes, eps=1e-6, backend="cuda")
    ref = _ref("nufft").direct_type1(x, y, z, c[None], modes)[0]
    assert np.abs(f.get() - ref).max() <= 1e-5 * np.abs(ref).max()
    g = kernels.nufft3d2(*(cp.asarray(a) for a in (x, y, z)), cp.asarray(ref), eps=1e-6, backend="cuda")
    ref2 = _ref("nufft").direct_type2(x, y, z, ref[None])[0]
    assert np.abs(g.get() - ref2).max() <= 1e-5 * np.abs(ref2).max()
    _no_leaks(host, launches)


def test_cuda_backend_cg(cuda_on_host_with_cupy, host, rng):
    """kernels.cg with backend="cuda" and a device right-hand side: the Engine of
    backends/cuda/cg.py drives the four CG kernels; the solution matches numpy.linalg.solve."""
    from spkernels import kernels

    cp = cuda_on_host_with_cupy
    launches = host.stats()["launches"]
    n = 300
    A = _hpd(rng, n, False)
    b = rng.standard_normal(n)
    res = kernels.cg(lambda v: cp.asarray(A) @ v, cp.asarray(b), tol=1e-10, maxiter=400, backend="cuda")
    x = res.x.get() if hasattr(res.x, "get") else np.asarray(res.x)
    xs = np.linalg.solve(A, b)
    assert np.linalg.norm(x - xs) <= 1e-8 * np.linalg.norm(xs)
    _no_leaks(host, launches)


# ---------------------------------------------------------------------------------- the harness itself


def _patched(host_fixture_path, name, old, new):
    """A library whose cpp/cuda/`name` has `old` replaced by `new` (exactly once)."""

    def patch(text):
        assert text.count(old) == 1, f"the patch target is not unique in {name}"
        return text.replace(old, new)

    return hb.HostCuda(hb.build(patches={name: patch}, sources=("runtime.cu", name)))


def _dot_once(h, rng, schedule):
    h.schedule(schedule, seed=9)
    a = rng.standard_normal(3000)
    st0 = np.zeros(16)
    st0[CG["rho_new"]] = 1.0
    st0[CG["herm_tol"]] = 1e300
    bufs = [h.to_device(a), h.to_device(st0), h.to_device(np.zeros(2)), h.empty(h.lib.spkh_cg_work_doubles(), np.float64)]
    da, state, hist, work = bufs
    try:
        h.call("cg_dot", da.ptr, da.ptr, a.size, 0, 0, state.ptr, hist.ptr, 0, work.ptr, 0)
        return state.get()[CG["pq"]], a @ a
    finally:
        for b in bufs:
            b.free()


def test_harness_catches_a_missing_barrier(rng):
    """block_sum2 in cg.cu without the barrier inside its tree loop: the harness must make the
    dot product wrong (threads read partial sums that are not written yet), while the real
    kernel is right under every order. Reverse order alone happens to hide this race, which is
    why every family runs under more than one order."""
    if hb.compiler() is None:
        pytest.skip("no C++ compiler found")
    good = hb.HostCuda(hb.build(sources=("runtime.cu", "cg.cu")))
    for schedule in SCHEDULES:
        got, want = _dot_once(good, rng, schedule)
        assert abs(got - want) <= 1e-12 * want
    broken = _patched(None, "cg.cu",
                      "      st[threadIdx.x] += st[threadIdx.x + h];\n    }\n    __syncthreads();\n",
                      "      st[threadIdx.x] += st[threadIdx.x + h];\n    }\n")
    wrong = []
    for schedule in SCHEDULES:
        got, want = _dot_once(broken, rng, schedule)
        wrong.append(abs(got - want) > 1e-6 * want)
    assert wrong[0] and wrong[2], "the race went unnoticed under forward / random order"


def test_harness_catches_a_missing_named_barrier(rng):
    """The NUFFT gather without its `bar.sync 1` (the two staging warps publish their ballot
    counts, then read each other's): in forward order warp 0 publishes before warp 1 reads and
    the bug hides; reverse and random orders expose it. The mirror image of the cg case."""
    if hb.compiler() is None:
        pytest.skip("no C++ compiler found")
    broken = _patched(None, "nufft.cu", "              spk_host_named_barrier(1, kStage);",
                      "              (void)0;  // barrier removed")
    dtype, w, bins, M, V = np.float64, 5, (8, 8, 4), 300, 1
    beta = 2.3 * w
    pts = _points(rng, M, dtype)
    c = (rng.standard_normal((V, M)) + 1j * rng.standard_normal((V, M)))
    ref = _ref("nufft").spread(*pts, c, None, None, N_FINE, bins, w, beta, "gather")
    nb = int(np.prod([(n + b - 1) // b for n, b in zip(N_FINE, bins)]))
    errs = {}
    for schedule in SCHEDULES:
        broken.schedule(schedule, seed=29)
        bufs = [broken.to_device(p) for p in pts] + [broken.to_device(c), broken.empty(M, np.int64),
                                                      broken.empty(nb + 1, np.int64), broken.empty((V, *N_FINE), c.dtype)]
        x, y, z, dc, perm, offs, fine = bufs
        try:
            broken.call("nufft_setpts", x.ptr, y.ptr, z.ptr, M, *N_FINE, *bins, 8, perm.ptr, offs.ptr, 0)
            broken.call("nufft_spread", x.ptr, y.ptr, z.ptr, dc.ptr, V, M, perm.ptr, offs.ptr, *N_FINE, *bins, w, beta,
                        8, True, fine.ptr, 0)
            out = fine.get()
        finally:
            for b in bufs:
                b.free()
        errs[schedule] = np.nan_to_num(np.abs(out - ref).max(), nan=np.inf) / np.abs(ref).max()
    assert errs["forward"] < 1e-12, "forward order should hide this race (else the demonstration is moot)"
    assert errs["reverse"] > 1e-3 and errs["random"] > 1e-3, errs


def test_harness_reports_a_divergent_barrier(rng):
    """A __syncthreads that only some threads reach is a launch error naming the deadlock."""
    if hb.compiler() is None:
        pytest.skip("no C++ compiler found")
    broken = _patched(None, "cg.cu", "  ss[threadIdx.x] = s;\n  st[threadIdx.x] = t;\n  __syncthreads();\n",
                      "  ss[threadIdx.x] = s;\n  st[threadIdx.x] = t;\n  if (threadIdx.x < 128) __syncthreads();\n")
    with pytest.raises(hb.LauncherError, match="deadlock.*__syncthreads"):
        _dot_once(broken, rng, "forward")
    # the fault is sticky, like a real one, until reset
    with pytest.raises(hb.LauncherError):
        _dot_once(broken, rng, "forward")
    broken.reset()


def test_harness_reports_an_out_of_bounds_write(rng):
    """One element written past the end of a device allocation overwrites its red zone: the
    launch fails instead of passing silently."""
    if hb.compiler() is None:
        pytest.skip("no C++ compiler found")
    broken = _patched(None, "cg.cu", "  for (index_t i = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)\n    r[i] = b[i] - q[i];",
                      "  for (index_t i = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; i <= n; i += stride)\n    r[i] = b[i] - q[i];")
    a = rng.standard_normal(1000)
    r, b = broken.to_device(a), broken.to_device(a)
    with pytest.raises(hb.LauncherError, match="red zone"):
        broken.call("cg_residual", r.ptr, b.ptr, b.ptr, a.size, 0, 0)
    broken.reset()


def test_preprocess():
    src = ("extern __shared__ __align__(16) unsigned char smem_raw[];\n"
           "k<T, 3><<<grid, 64, smem, st>>>(a, b);\n")
    out = hb.preprocess(src, "x.cu")
    assert out.startswith('#line 1 "x.cu"\n')
    assert "unsigned char* smem_raw = reinterpret_cast<unsigned char*>(::spk_host::dynamic_smem());" in out
    assert "k<T, 3> | ::spk_host::launch_cfg(__FILE__, __LINE__, grid, 64, smem, st) | ::spk_host::launch_args(a, b);" in out
    assert out.count("\n") == src.count("\n") + 1  # line numbers are kept
    with pytest.raises(ValueError, match="unbalanced"):
        hb.preprocess("k<<<1, 1>>(x);", "y.cu")


# ------------------------------------------------------------------- the harness's primitives


@pytest.fixture(scope="module")
def prim():
    """A library with the harness's own test kernels (tests/cuda_host/primitives.cu)."""
    if hb.compiler() is None:
        pytest.skip("no C++ compiler found")
    h = hb.HostCuda(hb.build(sources=("runtime.cu",), extra=[hb.ROOT / "tests" / "cuda_host" / "primitives.cu"]))
    h.lib.spkh_test_error_string.restype = ctypes.c_char_p
    h.lib.spkh_test_float_to_tf32.restype = ctypes.c_float
    h.lib.spkh_test_float_to_tf32.argtypes = [ctypes.c_float]
    return h


def _ptr(a):
    return a.ctypes.data


def _launch(h, name, *arrays_and_ints):
    code = getattr(h.lib, "spkh_test_" + name)(*arrays_and_ints)
    if code:
        msg = h.lib.spkh_test_error_string(code).decode()
        h.reset()
        raise hb.LauncherError(msg)


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_warp_intrinsics(prim, rng, schedule):
    """Votes, matches and every shuffle against their definitions, lane by lane, 4 warps."""
    prim.schedule(schedule, seed=13)
    v = rng.integers(0, 100, 128).astype(np.int32)
    out = np.zeros((128, 8), np.uint32)
    _launch(prim, "warp_ops", ctypes.c_void_p(_ptr(v)), ctypes.c_void_p(_ptr(out)))
    for w in range(4):
        lanes = np.arange(32)
        x = v[32 * w:32 * w + 32]
        o = out[32 * w:32 * w + 32]
        bits = lambda m: np.uint32(sum(1 << int(i) for i in np.nonzero(m)[0]))  # noqa: E731
        assert (o[:, 0] == bits(x & 1)).all()
        for lane in lanes:
            assert o[lane, 1] == bits(x % 5 == x[lane] % 5)
        np.testing.assert_array_equal(o[:, 2], x[(lanes * 7) % 32])
        np.testing.assert_array_equal(o[:, 3], x[lanes ^ 5])
        down = np.where(lanes % 16 + 3 < 16, lanes + 3, lanes)
        np.testing.assert_array_equal(o[:, 4], x[down])
        up = np.where(lanes >= 2, lanes - 2, lanes)
        np.testing.assert_array_equal(o[:, 5], x[up])
        assert (o[:, 6] == 2 * int((x > 90).any()) + 1).all()
        np.testing.assert_array_equal(o[:16, 7], bits(np.r_[x[:16] > 50, np.zeros(16, bool)]))


def test_atomics_and_3d_blocks(prim):
    total = np.zeros(1, np.uint64)
    per_block = np.zeros(3, np.int32)
    dsum = np.zeros(1)
    _launch(prim, "atomics", ctypes.c_void_p(_ptr(total)), ctypes.c_void_p(_ptr(per_block)),
            ctypes.c_void_p(_ptr(dsum)))
    n = 3 * 64
    assert total[0] == n * (n - 1) // 2 and (per_block == 64).all() and dsum[0] == 0.5 * n


def _tf32_round(x):
    """Round float32 to tf32 (10 mantissa bits), to nearest with ties away from zero."""
    u = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x1000) & 0xFFFFE000).astype(np.uint32).view(np.float32)


def test_tf32_conversion(prim, rng):
    x = np.concatenate([rng.standard_normal(200).astype(np.float32),
                        np.float32([1 + 2**-11, 1 + 3 * 2**-11, -(1 + 2**-11), 1 + 2**-11 - 2**-23])])
    got = np.array([prim.lib.spkh_test_float_to_tf32(float(v)) for v in x], np.float32)
    np.testing.assert_array_equal(got, _tf32_round(x))
    assert got[-4] == np.float32(1 + 2**-10) and got[-2] == -np.float32(1 + 2**-10)  # ties away
    assert got[-1] == 1.0


@pytest.mark.parametrize("rounded", [False, True])
def test_wmma_tf32_numerics(prim, rng, rounded):
    """mma_sync reads tf32 inputs as the tensor core does (low 13 bits ignored) and accumulates
    exact products in fp32 onto C; __float_to_tf32 rounds instead."""
    a = rng.standard_normal((16, 8)).astype(np.float32)
    b = rng.standard_normal((16, 8)).astype(np.float32)  # column-major B: row j holds column j
    d = np.zeros((16, 16), np.float32)
    _launch(prim, "wmma_tf32", ctypes.c_void_p(_ptr(a)), ctypes.c_void_p(_ptr(b)), ctypes.c_void_p(_ptr(d)),
            int(rounded))
    conv = _tf32_round if rounded else (lambda m: (m.view(np.uint32) & 0xFFFFE000).view(np.float32))
    A, B = conv(a).astype(np.float64), conv(b).astype(np.float64).T
    want = A @ B + 0.25
    assert np.abs(d - want).max() <= 8 * 2**-24 * (np.abs(A) @ np.abs(B) + 0.25).max()
    full = a.astype(np.float64) @ b.astype(np.float64).T + 0.25
    assert np.abs(d - full).max() > 1e-5  # the inputs really lost bits


def test_wmma_fp16_numerics(prim, rng):
    a = rng.standard_normal((16, 16)).astype(np.float32)
    b = rng.standard_normal((16, 16)).astype(np.float32)
    d = np.zeros((16, 16), np.float32)
    _launch(prim, "wmma_fp16", ctypes.c_void_p(_ptr(a)), ctypes.c_void_p(_ptr(b)), ctypes.c_void_p(_ptr(d)))
    A, B = a.astype(np.float16).astype(np.float64), b.astype(np.float16).astype(np.float64)
    want = (A @ B).T  # stored column-major
    assert np.abs(d - want).max() <= 16 * 2**-24 * (np.abs(A) @ np.abs(B)).max()


def test_harness_reports_misuse(prim):
    """Divergent warp collectives, a misaligned WMMA pointer and too much dynamic shared memory
    are launch errors with a reason, as on the GPU (where they hang, fault or fail to launch)."""
    out = np.zeros(64, np.uint32)
    with pytest.raises(hb.LauncherError, match="divergent warp collectives"):
        _launch(prim, "divergent_warp", ctypes.c_void_p(_ptr(out)))
    d = np.zeros(64, np.float32)
    with pytest.raises(hb.LauncherError, match="32-byte aligned"):
        _launch(prim, "misaligned_wmma", ctypes.c_void_p(_ptr(d)))
    with pytest.raises(hb.LauncherError, match="dynamic shared memory"):
        _launch(prim, "big_smem", ctypes.c_void_p(_ptr(d)), 0)
    _launch(prim, "big_smem", ctypes.c_void_p(_ptr(d)), 1)
    assert (d[:32] == 1.0).all()


def test_cuda_backend_mtip_generations(cuda_on_host_with_cupy, host):
    """Two MTIP generations with backend="cuda": slicing, matching, the Toeplitz merge and CG run
    the CUDA C++ kernels (on the host) over device (stand-in) arrays, and give numba-cpu's
    orientations and, to a small fraction of the NUFFT eps, its density."""
    import test_mtip_transfers as tt
    from spkernels.mtip.reconstruct import reconstruct

    launches = host.stats()["launches"]
    data = tt._make_data()
    gpu = reconstruct(data, tt._config("cuda", tt.N_REFS // 4), progress=False)
    cpu = reconstruct(data, tt._config("numba-cpu", tt.N_REFS // 4), progress=False)
    np.testing.assert_array_equal(gpu.orientations, cpu.orientations)
    assert np.abs(gpu.rho - cpu.rho).max() <= 1e-5 * np.abs(cpu.rho).max()
    assert host.stats()["launches"] > launches
