"""Fourier shell correlation: every backend against the float64 reference, the reference against
a plain per-voxel loop, statistical checks, resolution interpolation, plots and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from spkernels import backends
from spkernels.kernels import fsc, FSCResult

SIM = backends.cuda_simulator()
SHAPE = (8, 6, 7) if SIM else (20, 18, 17)


def _loop_fsc(v1, v2, voxel_size, shell_width=None):
    """FSC by an explicit loop over every voxel of the full spectrum (the outside oracle)."""
    nz, ny, nx = v1.shape
    f1 = np.fft.fftn(v1.astype(np.float64))
    f2 = np.fft.fftn(v2.astype(np.float64))
    w = 1.0 / (min(v1.shape) * voxel_size) if shell_width is None else shell_width
    n_shells = int(math.floor(0.5 / voxel_size / w * (1 + 1e-12))) + 1
    num = np.zeros(n_shells)
    p1 = np.zeros(n_shells)
    p2 = np.zeros(n_shells)
    cnt = np.zeros(n_shells, dtype=np.int64)
    fz, fy, fx = (np.fft.fftfreq(n, d=voxel_size) for n in (nz, ny, nx))
    for iz in range(nz):
        for iy in range(ny):
            for ix in range(nx):
                s = math.sqrt(fz[iz] ** 2 + fy[iy] ** 2 + fx[ix] ** 2)
                k = int(math.floor(s / w + 0.5))
                if k >= n_shells:
                    continue
                a, b = f1[iz, iy, ix], f2[iz, iy, ix]
                num[k] += (a * np.conj(b)).real
                p1[k] += abs(a) ** 2
                p2[k] += abs(b) ** 2
                cnt[k] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.arange(n_shells) * w, num / np.sqrt(p1 * p2), cnt


def _pair(rng, shape, dtype=np.float64, noise=0.7):
    v = rng.standard_normal(shape)
    u = v + noise * rng.standard_normal(shape)
    return v.astype(dtype), u.astype(dtype)


def test_reference_matches_plain_loop(rng):
    v1, v2 = _pair(rng, (9, 8, 10))
    freq, curve, cnt = _loop_fsc(v1, v2, 1.3)
    res = fsc(v1, v2, voxel_size=1.3, backend="numpy")
    np.testing.assert_array_equal(res.n_voxels, cnt)
    np.testing.assert_allclose(res.frequency, freq, rtol=1e-12)
    np.testing.assert_allclose(res.fsc, curve, rtol=0, atol=1e-12)


@pytest.mark.parametrize("shape", [(8, 8, 8), (7, 6, 9)])
def test_every_backend_matches_plain_loop(backend, rng, shape):
    v1, v2 = _pair(rng, shape)
    freq, curve, cnt = _loop_fsc(v1, v2, 2.0)
    res = fsc(v1, v2, voxel_size=2.0, backend=backend)
    assert isinstance(res, FSCResult) and res.backend == backend
    np.testing.assert_array_equal(res.n_voxels, cnt)
    np.testing.assert_allclose(res.fsc, curve, rtol=0, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_backend_matches_reference(backend, rng, dtype):
    v1, v2 = _pair(rng, SHAPE, dtype)
    ref = fsc(v1, v2, voxel_size=1.1, backend="numpy")
    res = fsc(v1, v2, voxel_size=1.1, backend=backend)
    np.testing.assert_array_equal(res.n_voxels, ref.n_voxels)
    rtol = 1e-12 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(res.sums, ref.sums, rtol=rtol, atol=rtol * np.abs(ref.sums).max())
    np.testing.assert_allclose(res.fsc, ref.fsc, rtol=0, atol=1e-10 if dtype == np.float64 else 1e-4)


def test_self_fsc_is_one(backend, rng):
    v = rng.standard_normal(SHAPE)
    res = fsc(v, v.copy(), backend=backend)
    assert np.isfinite(res.fsc).all()
    np.testing.assert_allclose(res.fsc, 1.0, rtol=0, atol=1e-12)
    assert res.n_voxels.min() >= 1


def test_independent_noise_is_near_zero(backend, rng):
    shape = (10, 10, 10) if SIM else (40, 40, 40)
    v1 = rng.standard_normal(shape)
    v2 = rng.standard_normal(shape)
    res = fsc(v1, v2, backend=backend)
    bound = 3.0 / np.sqrt(res.n_voxels[1:])
    assert np.all(np.abs(res.fsc[1:]) < bound), np.abs(res.fsc[1:]) / bound
    # The bound is not vacuous: the curve really fluctuates at the 1/sqrt(n) scale.
    assert np.std(res.fsc[1:] * np.sqrt(res.n_voxels[1:])) > 0.3


def test_counts_cover_the_sphere(rng):
    shape = (16, 16, 16)
    res = fsc(*_pair(rng, shape), backend="numpy")
    # Shells 0..N/2 hold every voxel within radius N/2 + 1/2 of the origin.
    k = np.fft.fftfreq(16) * 16
    r = np.sqrt(k[:, None, None] ** 2 + k[None, :, None] ** 2 + k[None, None, :] ** 2)
    assert res.n_voxels.sum() == int((np.floor(r + 0.5) <= 8).sum())
    # Shell 1 (radius 0.5 to 1.5): the 6 face and 12 edge neighbours of the origin.
    assert res.n_voxels[0] == 1 and res.n_voxels[1] == 18


def test_deterministic(fast_backend, rng):
    v1, v2 = _pair(rng, SHAPE)
    a = fsc(v1, v2, backend=fast_backend)
    b = fsc(v1, v2, backend=fast_backend)
    assert a.sums.tobytes() == b.sums.tobytes()


def test_mask_and_shell_width(backend, rng):
    v1, v2 = _pair(rng, SHAPE)
    mask = (rng.random(SHAPE) > 0.3).astype(np.float64)
    ref = fsc(v1 * mask, v2 * mask, voxel_size=0.9, shell_width=0.1, backend="numpy")
    res = fsc(v1, v2, voxel_size=0.9, shell_width=0.1, mask=mask, backend=backend)
    assert res.shell_width == 0.1 and len(res.fsc) == int(0.5 / 0.9 / 0.1) + 1
    np.testing.assert_array_equal(res.n_voxels, ref.n_voxels)
    np.testing.assert_allclose(res.fsc, ref.fsc, atol=1e-10)


def test_resolution_of_a_low_pass_pair(rng):
    # Shared signal below 0.2 1/Å, independent noise everywhere: the FSC falls through 0.5
    # near 0.2 1/Å.
    n, vs = 48, 1.0
    sig = np.fft.fftn(rng.standard_normal((n, n, n)))
    k = np.fft.fftfreq(n, d=vs)
    r = np.sqrt(k[:, None, None] ** 2 + k[None, :, None] ** 2 + k[None, None, :] ** 2)
    sig = np.fft.ifftn(sig * (r < 0.2)).real
    v1 = sig + 0.05 * rng.standard_normal(sig.shape)
    v2 = sig + 0.05 * rng.standard_normal(sig.shape)
    res = fsc(v1, v2, voxel_size=vs, backend="cpu" if backends.is_available("cpu") else "numpy")
    r5 = res.resolution(0.5)
    assert r5.reached and abs(r5.frequency - 0.2) < 1.5 / n
    assert abs(float(r5) - 1 / r5.frequency) < 1e-12
    assert "Å" in str(r5)


def test_resolution_interpolation_and_not_reached():
    f = np.arange(6) * 0.1
    curve = np.array([1.0, 0.9, 0.6, 0.3, 0.1, 0.05])
    res = FSCResult(f, curve, np.ones(6, np.int64), 1.0, 0.1, np.zeros((6, 3)), "numpy")
    r = res.resolution(0.5)
    # Linear between (0.2, 0.6) and (0.3, 0.3): 0.2 + 0.1 * 0.1 / 0.3.
    assert r.reached and r.frequency == pytest.approx(0.2 + 0.1 / 3, rel=1e-12)
    assert r.angstrom == pytest.approx(1 / (0.2 + 0.1 / 3), rel=1e-12)
    r143 = res.resolution(0.143)
    assert r143.frequency == pytest.approx(0.3 + 0.1 * (0.3 - 0.143) / 0.2, rel=1e-12)
    never = res.resolution(0.01)
    assert not never.reached and never.angstrom == pytest.approx(2.0)
    assert "not reached" in str(never)


def test_plot_writes_png(tmp_path, rng):
    res = fsc(*_pair(rng, (12, 12, 12)), voxel_size=1.5, backend="numpy")
    path = tmp_path / "fsc.png"
    res.plot(path)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000


def test_bad_input(rng):
    v = rng.standard_normal((6, 6, 6))
    with pytest.raises(ValueError, match="same shape"):
        fsc(v, rng.standard_normal((6, 6, 5)))
    with pytest.raises(TypeError, match="same dtype"):
        fsc(v, v.astype(np.float32))
    with pytest.raises(TypeError, match="`vol1`"):
        fsc(v.astype(np.int32), v)
    with pytest.raises(TypeError, match="`vol2`"):
        fsc(v, v.astype(np.complex128))
    with pytest.raises(ValueError, match="3-D"):
        fsc(v[0], v[0])
    bad = v.copy()
    bad[1, 2, 3] = np.nan
    with pytest.raises(ValueError, match="`vol2` contains NaN"):
        fsc(v, bad)
    with pytest.raises(ValueError, match="`voxel_size`"):
        fsc(v, v, voxel_size=0)
    with pytest.raises(ValueError, match="`shell_width`"):
        fsc(v, v, shell_width=-1)
    with pytest.raises(ValueError, match="`mask`"):
        fsc(v, v, mask=np.ones((6, 6, 5)))
    with pytest.raises(ValueError, match="`backend`"):
        fsc(v, v, backend="fortran")
    with pytest.raises(ValueError, match="`threshold`"):
        fsc(v, v, backend="numpy").resolution(float("nan"))


def test_cpu_sums_do_not_depend_on_thread_count(tmp_path):
    if not backends.is_available("cpu"):
        pytest.skip("cpu backend unavailable")
    import os
    import subprocess
    import sys

    code = ("import numpy as np, sys; from spkernels.kernels import fsc; rng = np.random.default_rng(5); "
            "v = rng.standard_normal((24, 22, 20)); u = v + rng.standard_normal(v.shape); "
            "sys.stdout.write(fsc(v, u, backend='cpu').sums.tobytes().hex())")
    outs = []
    for threads in ("1", "2", "3"):
        env = dict(os.environ, OMP_NUM_THREADS=threads)
        outs.append(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                   check=True).stdout)
    assert outs[0] == outs[1] == outs[2] and len(outs[0]) > 100


CONTRACT = ("spectra", "accumulate")


@pytest.mark.parametrize("name", backends.BACKENDS)
def test_backend_module_has_the_contract(name):
    import importlib
    import inspect

    mod = importlib.import_module(f"spkernels.backends.{backends.PACKAGES[name]}.fsc")
    ref = importlib.import_module("spkernels.backends.numpy.fsc")
    assert mod.__doc__ and "contract" in mod.__doc__
    for fn in CONTRACT:
        assert callable(getattr(mod, fn, None)), f"{name}: no {fn}"
        assert list(inspect.signature(getattr(mod, fn)).parameters) == \
            list(inspect.signature(getattr(ref, fn)).parameters), f"{name}.{fn}"


def test_contract_accumulate_matches_reference_sums(backend, rng):
    from spkernels._arrays import to_host
    from spkernels.backends.numpy.fsc import reference_sums
    from spkernels.kernels.fsc import _shells

    v1, v2 = _pair(rng, SHAPE)
    _, n_shells, scale = _shells(SHAPE, 1.0, None)
    impl = backends.load(backend, "fsc")
    f1, f2 = impl.spectra(v1, v2, False)
    sums = np.asarray(to_host(impl.accumulate(f1, f2, SHAPE[2], *scale, n_shells))).reshape(n_shells, 4)
    ref = reference_sums(v1, v2, n_shells, scale)
    np.testing.assert_array_equal(sums[:, 3], ref[:, 3])
    np.testing.assert_allclose(sums[:, :3], ref[:, :3], rtol=1e-12, atol=1e-12 * np.abs(ref).max())
