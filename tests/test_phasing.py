"""MTIP phasing: recover a density from its exact autocorrelation, up to translation and hand."""

import numpy as np
import pytest

from spkernels.mtip.phasing import (PhasingSchedule, align, autocorrelation, gaussian_filter,
                                    initial_support, phase)

M = 24


def blobs(rng, n=10, m=M):
    """An asymmetric non-negative density: random Gaussian blobs inside the central half cube."""
    z, y, x = np.mgrid[:m, :m, :m] - m // 2
    rho = np.zeros((m, m, m))
    for _ in range(n):
        c = rng.uniform(-m / 6, m / 6, 3)
        s = rng.uniform(1.0, 1.8)
        rho += rng.uniform(0.5, 1.5) * np.exp(-((z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2) / (2 * s * s))
    return rho


def test_autocorrelation_is_translation_and_inversion_invariant(rng):
    rho = blobs(rng)
    ac = autocorrelation(rho)
    np.testing.assert_allclose(autocorrelation(np.roll(rho, (2, -3, 1), axis=(0, 1, 2))), ac, atol=1e-9 * ac.max())
    inverted = np.roll(rho[::-1, ::-1, ::-1], (1, 1, 1), axis=(0, 1, 2))  # ρ(−x) about index M//2
    np.testing.assert_allclose(autocorrelation(inverted), ac, atol=1e-9 * ac.max())
    assert ac.argmax() == np.ravel_multi_index((M // 2,) * 3, ac.shape)  # origin at the centre


def test_align_recovers_shift_and_hand(rng):
    rho = blobs(rng)
    moved = np.roll(rho[::-1, ::-1, ::-1], (3, 0, -2), axis=(0, 1, 2))
    aligned, cc = align(rho, moved)
    assert cc > 0.999999
    _, cc_no_hand = align(rho, moved, allow_inversion=False)
    assert cc_no_hand < 0.99


def test_gaussian_filter_matches_scipy_periodic(rng):
    from scipy.ndimage import gaussian_filter as sp_gauss

    v = rng.random((16, 16, 16))
    ours = gaussian_filter(v, 1.3)
    ref = sp_gauss(v, 1.3, mode="wrap", truncate=8.0)
    assert np.abs(ours - ref).max() < 1e-3 * np.abs(ref).max()


def test_initial_support_contains_the_object(rng):
    from spkernels.mtip.phasing import center_of_mass_shift

    rho = blobs(rng)
    rho = np.roll(rho, center_of_mass_shift(rho), axis=(0, 1, 2))
    sup = initial_support(autocorrelation(rho), 0.02)
    # ac(2x) covers the object exactly only where it is point-symmetric (here ~70% of the mass);
    # it is a compact, centrosymmetric start that phasing then reshapes (see the next test).
    assert rho[sup].sum() > 0.6 * rho.sum()
    assert sup.sum() < 0.15 * sup.size
    c = np.array(np.nonzero(sup)) - M // 2
    assert sup[tuple(M // 2 - c)].all()  # centrosymmetric, like every autocorrelation


def test_phasing_recovers_density_from_exact_autocorrelation(rng):
    rho = blobs(rng)
    sched = PhasingSchedule(n_loops=3, ac_filter_sigma=0.0)
    res = phase(autocorrelation(rho), schedule=sched, seed=1)
    _, cc = align(rho, res.rho)
    assert cc > 0.97, cc
    assert res.fourier_error[-1] < 0.1
    assert (res.rho >= 0).all()
    # The autocorrelation of the result matches the input autocorrelation.
    ac = autocorrelation(rho)
    assert np.linalg.norm(res.ac_phased - ac) / np.linalg.norm(ac) < 0.1


def test_unmeasured_frequencies_are_left_free(rng):
    # MTIP's data fill the sphere inscribed in the cube of grid frequencies; the autocorrelation's
    # Fourier values in the cube's corners are not measurements. Noise there must not matter
    # once phasing is told where the measurements end.
    fr = np.sqrt(sum(np.fft.fftfreq(M).reshape([-1 if a == ax else 1 for a in range(3)]) ** 2 for ax in range(3)))
    inside = fr <= 0.4

    def band_limited(v):
        return np.fft.fftshift(np.fft.ifftn(np.fft.fftn(np.fft.ifftshift(v)) * inside).real)

    rho = band_limited(blobs(rng))
    f = np.fft.fftn(np.fft.ifftshift(autocorrelation(rho)))
    noise = np.abs(f[inside & (fr > 0.3)]).mean() * rng.uniform(0, 3, f.shape)
    f = np.where(inside, f, 0.5 * (noise + noise[(-np.arange(M)) % M][:, (-np.arange(M)) % M][:, :, (-np.arange(M)) % M]))
    ac_noisy = np.fft.fftshift(np.fft.ifftn(f).real)  # real and even: a valid autocorrelation input
    sched = PhasingSchedule(n_loops=3, ac_filter_sigma=0.0)
    free = phase(ac_noisy, schedule=sched, seed=1, max_frequency=0.4)
    assert align(rho, band_limited(free.rho))[1] > 0.95
    # Only the measured sphere counts in the error, and it is fitted better than when the noisy
    # corners are enforced too.
    forced = phase(ac_noisy, schedule=sched, seed=1)
    assert free.fourier_error[-1] < 0.5 * forced.fourier_error[-1], (free.fourier_error[-1], forced.fourier_error[-1])
    with pytest.raises(ValueError, match="max_frequency"):
        phase(ac_noisy, max_frequency=0.0)


def test_phasing_is_deterministic_and_averages_runs(rng):
    rho = blobs(rng)
    ac = autocorrelation(rho)
    sched = PhasingSchedule(n_loops=1, er_before=20, hio=10, er_after=20, final_er=10)
    a = phase(ac, schedule=sched, seed=5, n_runs=2)
    b = phase(ac, schedule=sched, seed=5, n_runs=2)
    np.testing.assert_array_equal(a.rho, b.rho)
    assert len(a.runs_errors) == 2


@pytest.mark.parametrize("bad, exc, match", [
    (np.zeros((8, 8)), ValueError, "3-D"),
    (np.full((8, 8, 8), np.nan), ValueError, "NaN"),
    (np.zeros((8, 8, 8), dtype=np.int32), TypeError, "dtype"),
    (-np.ones((8, 8, 8)), ValueError, "no positive"),
])
def test_phase_rejects_bad_input(bad, exc, match):
    with pytest.raises(exc, match=match):
        phase(bad)


def test_schedule_validation():
    with pytest.raises(ValueError, match="beta"):
        PhasingSchedule(beta=2.5)
    with pytest.raises(ValueError, match="n_loops"):
        PhasingSchedule(n_loops=-1)


def test_runs_that_stagnated_are_left_out_of_the_average(rng, monkeypatch):
    """Of several runs, those whose Fourier error exceeds the best one's by more than
    ``average_tolerance`` are dropped; the others are aligned and averaged."""
    from spkernels.mtip import phasing
    from spkernels.mtip.phasing import PhasingResult

    good = blobs(rng)
    bad = blobs(np.random.default_rng(99))  # another object: a run stuck in a wrong minimum
    shifted = np.roll(good, 2, axis=1)       # the same object elsewhere: alignment undoes it
    runs = iter([(good, 0.040), (bad, 0.047), (shifted, 0.042)])

    def fake_once(*args, **kwargs):
        rho, err = next(runs)
        return PhasingResult(rho=rho.copy(), support=rho > 0, fourier_error=[err])

    monkeypatch.setattr(phasing, "_phase_once", fake_once)
    res = phase(autocorrelation(good), n_runs=3, seed=0)
    assert res.runs_averaged == 2
    assert res.runs_errors == [0.040, 0.042, 0.047]
    aligned, _ = align(good, res.rho)
    np.testing.assert_allclose(aligned, good, atol=1e-9 * good.max())

    runs = iter([(good, 0.040), (bad, 0.047), (shifted, 0.042)])
    every = phase(autocorrelation(good), n_runs=3, seed=0, schedule=PhasingSchedule(average_tolerance=np.inf))
    assert every.runs_averaged == 3
    assert np.abs(every.rho - res.rho).max() > 1e-3 * good.max()
    with pytest.raises(ValueError, match="average_tolerance"):
        PhasingSchedule(average_tolerance=-0.1)
    with pytest.raises(ValueError, match="average_tolerance"):
        PhasingSchedule(average_tolerance=float("nan"))


def test_restarts_beside_a_carried_density_start_inside_its_support(rng, monkeypatch):
    """With ``rho0``, the first run starts from it inside the autocorrelation's support and the
    other runs from random values inside the support shrink-wrap gives ``rho0`` (the shape found
    so far, not the autocorrelation's centrosymmetric estimate); without ``rho0`` every run
    starts inside the autocorrelation's support."""
    from spkernels.mtip import phasing
    from spkernels.mtip.phasing import PhasingResult, gaussian_filter, initial_support

    rho = blobs(rng)
    ac = autocorrelation(rho)
    sched = PhasingSchedule()
    seen = []

    def record(amplitudes, measured, support, rho0, schedule, rng_, progress):
        seen.append((support.copy(), None if rho0 is None else rho0.copy()))
        return PhasingResult(rho=rho.copy(), support=support, fourier_error=[0.04])

    monkeypatch.setattr(phasing, "_phase_once", record)
    phase(ac, n_runs=3, rho0=rho, seed=0, schedule=sched)
    loose = initial_support(gaussian_filter(np.maximum(ac, 0.0), sched.ac_filter_sigma), sched.support_threshold)
    b = gaussian_filter(rho, sched.shrinkwrap_sigma)
    own = b > sched.shrinkwrap_threshold * b.max()
    assert (own != loose).sum() > 0.2 * loose.sum()  # the two supports differ: not vacuous
    assert np.array_equal(seen[0][0], loose) and np.array_equal(seen[0][1], rho)
    for support, start in seen[1:]:
        assert np.array_equal(support, own) and start is None
    seen.clear()
    phase(ac, n_runs=2, seed=0, schedule=sched)
    assert all(np.array_equal(s, loose) and r0 is None for s, r0 in seen)
