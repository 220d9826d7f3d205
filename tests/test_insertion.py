"""The insertion family: every backend against the float64 NumPy reference, the reference against
an independent pixel-driven scatter written here (blob evaluated directly, no table), the
adjoint (dot-product) test, the footprint, determinism and bad input."""

from __future__ import annotations

import importlib
import inspect

import numpy as np
import pytest

from spkernels import backends
from spkernels.kernels import insertion as ins

SIM = backends.cuda_simulator()


def _rotations(rng, n):
    from spkernels.geometry.quaternion import quaternion_to_matrix
    from spkernels.geometry.orientations import random_orientations

    return quaternion_to_matrix(random_orientations(n, rng))


def _case(rng, n, N, dtype=np.complex128, with_ctf=True):
    img = (rng.standard_normal((n, N, N)) + 1j * rng.standard_normal((n, N, N))).astype(dtype)
    rot = _rotations(rng, n)
    ctf = rng.uniform(-1.0, 1.0, (n, N, N)) if with_ctf else None
    return img, rot, ctf


def _size(backend):
    return (3, 8) if (backend == "numba-cuda" and SIM) else (6, 16)


@pytest.mark.parametrize("pkg", sorted(set(backends.PACKAGES.values())))
def test_insertion_contract(pkg):
    mod = importlib.import_module(f"spkernels.backends.{pkg}.insertion")
    assert mod.__doc__ and "contract" in mod.__doc__
    assert "gather" in mod.METHODS
    assert list(inspect.signature(mod.insert).parameters) == [
        "images", "ctf", "rotations", "table", "scale", "radius", "max_freq2", "volume", "weights", "method",
        "params"]
    assert list(inspect.signature(mod.extract).parameters)[:7] == [
        "volume", "ctf", "rotations", "table", "scale", "radius", "max_freq2"]
    assert callable(mod.array_module)


def _scatter_oracle(img, rot, ctf, blob, max_freq2):
    """Pixel-driven insertion written independently: each pixel's 3-D point q = Rᵀ(u, v, 0) adds
    into the integer voxels with |k - q| < radius, kx >= 0, |k|² <= max_freq2, with the blob
    evaluated directly."""
    n, N, _ = img.shape
    h = N // 2
    vol = np.zeros((N, N, h + 1), dtype=np.complex128)
    wts = np.zeros((N, N, h + 1))
    r = blob.radius
    off = np.arange(-2, 3)
    for j in range(n):
        for row in range(N):
            for col in range(N):
                u, v = col - h, row - h
                q = rot[j].T @ np.array([u, v, 0.0])
                base = np.floor(q).astype(int)
                kx, ky, kz = np.meshgrid(base[0] + off, base[1] + off, base[2] + off, indexing="ij")
                kx, ky, kz = kx.ravel(), ky.ravel(), kz.ravel()
                d = np.sqrt((kx - q[0]) ** 2 + (ky - q[1]) ** 2 + (kz - q[2]) ** 2)
                ok = ((d < r) & (kx >= 0) & (kx <= h) & (ky >= -h) & (ky < h) & (kz >= -h) & (kz < h)
                      & (kx * kx + ky * ky + kz * kz <= max_freq2))
                w = blob.value(d[ok])
                c = 1.0 if ctf is None else ctf[j, row, col]
                np.add.at(vol, (kz[ok] + h, ky[ok] + h, kx[ok]), w * c * img[j, row, col])
                np.add.at(wts, (kz[ok] + h, ky[ok] + h, kx[ok]), w * c * c)
    return vol, wts


def test_reference_matches_independent_scatter(rng):
    img, rot, ctf = _case(rng, 3, 12)
    blob = ins.Blob()
    vol, wts = ins.insert(img, rot, ctf=ctf, backend="numpy", max_freq=5.5)
    ov, ow = _scatter_oracle(img, rot, ctf, blob, 5.5 ** 2)
    # the reference reads the r²-table (nearest of 10 000 samples); the oracle evaluates the blob
    assert np.abs(vol - ov).max() <= 2e-3 * np.abs(ov).max()
    assert np.abs(wts - ow).max() <= 2e-3 * np.abs(ow).max()
    assert np.array_equal(vol != 0, ov != 0)


def test_projection_of_known_volume_is_recovered(rng):
    """Insert the exact central slices of a smooth known spectrum from many views; V / W must
    reproduce the spectrum where the sampling is dense (normalised interpolation)."""
    N = 16
    h = N // 2
    n = 150
    rot = _rotations(rng, n)
    a = rng.standard_normal(3)

    def f(k):  # a smooth complex function of frequency, k (..., 3)
        return np.exp(-0.02 * (k ** 2).sum(-1)) * np.exp(0.05j * (k @ a))

    u, v = np.meshgrid(np.arange(N) - h, np.arange(N) - h, indexing="xy")
    plane = np.stack([u, v, np.zeros_like(u)], -1).astype(float)
    img = np.stack([f(plane @ rot[j]) for j in range(n)])  # q = Rᵀ(u, v, 0) -> row vector @ R
    vol, wts = ins.insert(img, rot, backend="numpy")
    kz, ky, kx = np.meshgrid(np.arange(N) - h, np.arange(N) - h, np.arange(h + 1), indexing="ij")
    k = np.stack([kx, ky, kz], -1).astype(float)
    inner = ((k ** 2).sum(-1) <= (h - 3) ** 2) & (wts > 0.05 * wts.max())
    est = vol[inner] / wts[inner]
    truth = f(k[inner])
    assert np.abs(est - truth).max() < 0.02


@pytest.mark.parametrize("method", ["gather", "scatter"])
@pytest.mark.parametrize("precision", [np.complex128, np.complex64])
def test_backend_matches_reference(backend, method, precision, rng):
    impl = importlib.import_module(f"spkernels.backends.{backends.PACKAGES[backend]}.insertion")
    assert method in impl.METHODS, f"{backend} has no {method}"  # every backend has both
    n, N = _size(backend)
    img, rot, ctf = _case(rng, n, N, precision)
    if precision == np.complex64:  # the reference sees what the float32 kernels see
        rot = rot.astype(np.float32).astype(np.float64)
        ctf = ctf.astype(np.float32).astype(np.float64)
    ref_v, ref_w = ins.insert(img.astype(np.complex128), rot, ctf=ctf, backend="numpy")
    from spkernels._arrays import to_host

    v, w = ins.insert(img, rot, ctf=ctf, backend=backend, method=method)
    v, w = to_host(v), to_host(w)
    assert v.dtype == (np.complex128 if backend == "numpy" else precision)
    # float32: a squared distance rounded differently can pick the neighbouring table entry
    tol = 1e-12 if precision == np.complex128 else 2e-3
    assert np.abs(v - ref_v).max() <= tol * np.abs(ref_v).max()
    assert np.abs(w - ref_w).max() <= tol * np.abs(ref_w).max()
    # without a CTF the weights are the plain blob sums, and accumulators add up
    v2, w2 = ins.insert(img, rot, backend=backend, method=method)
    v3, w3 = ins.insert(img, rot, backend=backend, method=method, volume=v2, weights=w2)
    r2, rw2 = ins.insert(img.astype(np.complex128), rot, backend="numpy")
    assert np.abs(to_host(v3) - 2 * r2).max() <= 2 * tol * np.abs(r2).max()
    assert np.abs(to_host(w3) - 2 * rw2).max() <= 2 * tol * np.abs(rw2).max()


@pytest.mark.parametrize("gpu", ["cuda", "numba-cuda"])
@pytest.mark.parametrize("layout", ["slab", "brick"])
def test_gpu_gather_layouts(gpu, layout, rng):
    """Both thread layouts of the GPU gather (columns across each plane; voxel bricks) give the
    float64 reference's volume and weights, with and without a CTF."""
    from conftest import _check_backend
    from spkernels._arrays import to_host

    _check_backend(gpu)
    n, N = _size(gpu)
    img, rot, ctf = _case(rng, n, N, np.complex128)
    params = ins.LaunchParams(layout=layout, block=(4, 4, 2), batch=3)
    for c in (ctf, None):
        ref_v, ref_w = ins.insert(img, rot, ctf=c, backend="numpy")
        v, w = (to_host(a) for a in ins.insert(img, rot, ctf=c, backend=gpu, params=params))
        assert np.abs(v - ref_v).max() <= 1e-12 * np.abs(ref_v).max()
        assert np.abs(w - ref_w).max() <= 1e-12 * np.abs(ref_w).max()


def test_launch_params_layout_is_checked(rng):
    img, rot, _ = _case(rng, 2, 8, with_ctf=False)
    with pytest.raises(ValueError, match="params.layout"):
        ins.insert(img, rot, backend="numpy", params=ins.LaunchParams(layout="tiles"))


@pytest.mark.parametrize("gpu", ["cuda", "numba-cuda"])
@pytest.mark.parametrize("layout", ["slab", "brick"])
def test_gather_in_z_slabs(gpu, layout, rng):
    """A device budget smaller than the volume: the gather fills it slab by slab, bitwise as whole."""
    from conftest import _check_backend

    _check_backend(gpu)
    n, N = _size(gpu)
    img, rot, ctf = _case(rng, n, N, np.complex64)
    whole = ins.insert(img, rot, ctf=ctf, backend=gpu, params=ins.LaunchParams(layout=layout))
    budget = n * N * N * 12 + n * 36 + (1 << 20) + 3 * N * (N // 2 + 1) * 12  # three z-planes
    sl = ins.insert(img, rot, ctf=ctf, backend=gpu, params=ins.LaunchParams(max_device_bytes=budget, layout=layout))
    from spkernels._arrays import to_host

    assert np.array_equal(to_host(sl[0]), to_host(whole[0])) and np.array_equal(to_host(sl[1]), to_host(whole[1]))


def test_gather_is_deterministic(fast_backend, rng):
    n, N = _size(fast_backend)
    img, rot, ctf = _case(rng, n, N, np.complex64)
    from spkernels._arrays import to_host

    a = to_host(ins.insert(img, rot, ctf=ctf, backend=fast_backend)[0])
    b = to_host(ins.insert(img, rot, ctf=ctf, backend=fast_backend)[0])
    assert np.array_equal(a, b)


@pytest.mark.parametrize("precision", [np.complex128, np.complex64])
def test_extract_is_the_adjoint(backend, precision, rng):
    n, N = _size(backend)
    img, rot, ctf = _case(rng, n, N, precision)
    h = N // 2
    vol = (rng.standard_normal((N, N, h + 1)) + 1j * rng.standard_normal((N, N, h + 1))).astype(precision)
    from spkernels._arrays import to_host

    fwd = to_host(ins.insert(img, rot, ctf=ctf, backend=backend)[0])
    adj = to_host(ins.extract(vol, rot, ctf=ctf, backend=backend))
    lhs = np.vdot(vol.astype(np.complex128), fwd.astype(np.complex128))
    rhs = np.vdot(adj.astype(np.complex128), img.astype(np.complex128))
    tol = 1e-12 if precision == np.complex128 else 1e-5
    assert abs(lhs - rhs) <= tol * (np.abs(vol).sum() * np.abs(fwd).max() + abs(lhs))
    if precision == np.complex64:  # the reference sees what the float32 kernels see
        rot = rot.astype(np.float32).astype(np.float64)
        ctf = ctf.astype(np.float32).astype(np.float64)
    ref = ins.extract(vol.astype(np.complex128), rot, ctf=ctf, backend="numpy")
    # float32: a squared distance rounded differently can pick the neighbouring table entry
    assert np.abs(adj - ref).max() <= (1e-12 if precision == np.complex128 else 2e-3) * np.abs(ref).max()


def test_footprint(rng):
    N, h = 24, 12
    img, rot, _ = _case(rng, 1, N, with_ctf=False)
    mf = 10.0
    vol, wts = ins.insert(img, rot, backend="numba-cpu", max_freq=mf)
    kz, ky, kx = np.meshgrid(np.arange(N) - h, np.arange(N) - h, np.arange(h + 1), indexing="ij")
    k = np.stack([kx, ky, kz], -1).astype(float)
    pz = k @ rot[0][2]
    r2 = (k ** 2).sum(-1)
    outside = (np.abs(pz) >= 1.9) | (r2 > mf * mf)
    assert np.all(vol[outside] == 0) and np.all(wts[outside] == 0)
    inside = (np.abs(pz) < 1.8) & (r2 <= mf * mf)
    assert inside.sum() > 100
    assert np.all(wts[inside] > 0) and np.all(vol[inside] != 0)


def test_blob_and_table():
    b = ins.Blob()
    t = b.table()
    assert t.shape == (10000,) and t[0] == pytest.approx(1.0) and 0 < t[-1] < 1e-5
    assert np.all(np.diff(t) <= 0)
    # Fourier transform: B(0) is the blob's volume integral; the transform decays with frequency
    r = np.linspace(0, b.radius, 20001)
    vol_int = np.trapezoid(4 * np.pi * r * r * b.value(r), r)
    assert ins.blob_fourier(0.0, b) == pytest.approx(vol_int, rel=1e-6)
    f = ins.blob_fourier(np.array([0.0, 0.1, 0.2, 0.3]), b)
    assert np.all(np.diff(f) < 0)


def test_bad_input(rng):
    img, rot, ctf = _case(rng, 2, 8)
    with pytest.raises(ValueError, match="`images`"):
        ins.insert(img[:, :, :6], rot, backend="numpy")
    with pytest.raises(TypeError, match="`images`"):
        ins.insert(img.real, rot, backend="numpy")
    with pytest.raises(ValueError, match="`rotations`"):
        ins.insert(img, rot[:1], backend="numpy")
    with pytest.raises(ValueError, match="`rotations`"):
        ins.insert(img, rot[:, :2], backend="numpy")
    bad = img.copy()
    bad[0, 1, 1] = np.nan
    with pytest.raises(ValueError, match="`images`"):
        ins.insert(bad, rot, backend="numpy")
    badc = ctf.copy()
    badc[1, 0, 0] = np.inf
    with pytest.raises(ValueError, match="`ctf`"):
        ins.insert(img, rot, ctf=badc, backend="numpy")
    with pytest.raises(ValueError, match="`ctf`"):
        ins.insert(img, rot, ctf=ctf[:, :4], backend="numpy")
    with pytest.raises(ValueError, match="`method`"):
        ins.insert(img, rot, method="splat", backend="numpy")
    with pytest.raises(ValueError, match="`volume`"):
        ins.insert(img, rot, volume=np.zeros((8, 8, 8), complex), backend="numpy")
    with pytest.raises(ValueError, match="`max_freq`"):
        ins.insert(img, rot, max_freq=-1.0, backend="numpy")
    with pytest.raises(ValueError, match="`volume`"):
        ins.extract(np.zeros((8, 8, 8), complex), rot, backend="numpy")
    with pytest.raises(ValueError, match="radius"):
        ins.Blob(radius=0.1)
