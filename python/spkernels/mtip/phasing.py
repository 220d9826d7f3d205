"""Phase retrieval for MTIP: from a 3-D autocorrelation to an electron density.

The merged model of MTIP is the autocorrelation ``ac = ρ ⋆ ρ`` of the density on a centred grid
(origin at index ``M // 2``), so its Fourier transform gives the Fourier magnitudes
``|F| = sqrt(|FFT(ac)|)`` and phasing restores the lost phases by alternating projections:
error reduction (ER) and hybrid input-output (HIO) with a shrink-wrap support, as in MTIP
(Donatelli et al.) and SpiniFEL. Density is real and non-negative inside the support.

All functions take NumPy or CuPy arrays and compute with the array's own module, so GPU arrays
stay on the GPU.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from .._arrays import array_module, ensure_array, ensure_finite, fft_module

log = logging.getLogger("spkernels.mtip.phasing")


@dataclass(frozen=True)
class PhasingSchedule:
    """Iteration schedule and thresholds of :func:`phase`.

    One loop is ``er_before`` ER steps, ``hio`` HIO steps (feedback ``beta``), ``er_after`` ER
    steps and a shrink-wrap update (Gaussian ``shrinkwrap_sigma`` voxels, keep voxels above
    ``shrinkwrap_threshold`` of the maximum; SpiniFEL's 5% keeps Gaussian tails that 12% cut off
    in our tests). ``final_er`` ER steps end the run. The initial
    support keeps voxels x with ``ac(2x) > support_threshold * max(ac)`` (the autocorrelation
    spans twice the object, so this is a generous support); 0.02 worked in a prototype where 0.1
    collapsed it. The magnitudes come from ``ac`` blurred by ``ac_filter_sigma`` voxels, which
    damps noise at high frequency: SpiniFEL's σ = 1 cost resolution in our tests (a 3000-image
    merge with true orientations phased to FSC-0.5 of 14.1 Å with σ = 1, 10.7–11.8 Å with 0.5 and
    18.4 Å unfiltered; corner resolution 9.96 Å), so the default is 0.5. Of several independent
    runs (:func:`phase`'s ``n_runs``), those whose final Fourier error exceeds the best run's by
    more than ``average_tolerance`` (a fraction) stagnated in another minimum and are left out of
    the average: from one 2CEX merge with the true orientations (25³ grid), 12 runs ended at
    errors 0.038–0.043 with FSC-0.5 of 13.8–14.5 Å, or at 0.045–0.048 with 16.7–25.2 Å, and
    averaging a failed run in turned a 13–14 Å result into a 22 Å one.
    """

    n_loops: int = 4
    er_before: int = 50
    hio: int = 25
    er_after: int = 50
    beta: float = 0.3
    shrinkwrap_sigma: float = 1.0
    shrinkwrap_threshold: float = 0.05
    final_er: int = 50
    support_threshold: float = 0.02
    ac_filter_sigma: float = 0.5
    average_tolerance: float = 0.1

    def __post_init__(self):
        for name in ("n_loops", "er_before", "hio", "er_after", "final_er"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < 0:
                raise ValueError(f"`{name}` must be a non-negative integer, got {v!r}")
        if not 0 < self.beta < 2:
            raise ValueError(f"`beta` must lie in (0, 2), got {self.beta}")
        for name in ("shrinkwrap_threshold", "support_threshold"):
            v = getattr(self, name)
            if not 0 < v < 1:
                raise ValueError(f"`{name}` must lie in (0, 1), got {v}")
        for name in ("shrinkwrap_sigma", "ac_filter_sigma", "average_tolerance"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"`{name}` must be >= 0, got {getattr(self, name)!r}")


@dataclass
class PhasingResult:
    """Output of :func:`phase`.

    Attributes
    ----------
    rho : array (M, M, M)
        Density, real, non-negative, centred by its centre of mass.
    support : bool array (M, M, M)
        Final support.
    fourier_error : list of float
        ``‖|F(ρ)| − A‖ / ‖A‖`` after each iteration (DC excluded).
    ac_phased : array (M, M, M)
        Autocorrelation of ``rho`` (centred); what MTIP feeds back into the next generation.
    runs_errors : list of float
        Final Fourier error of each independent run, best first.
    runs_averaged : int
        How many of them (the first ones) went into ``rho``: those within
        :attr:`PhasingSchedule.average_tolerance` of the best.
    """

    rho: object
    support: object
    fourier_error: list = field(default_factory=list)
    ac_phased: object = None
    runs_errors: list = field(default_factory=list)
    runs_averaged: int = 1


def gaussian_filter(vol, sigma: float):
    """Periodic Gaussian blur of a real volume (σ in voxels) via FFT; works for NumPy and CuPy."""
    if sigma <= 0:
        return vol
    xp = array_module(vol)
    fft = fft_module(xp)
    axes_freq = [fft.fftfreq(n) for n in vol.shape[:-1]] + [fft.rfftfreq(vol.shape[-1])]
    g = 1.0
    for ax, f in enumerate(axes_freq):
        shape = [1] * vol.ndim
        shape[ax] = f.size
        g = g * xp.exp(-2.0 * np.pi**2 * sigma**2 * f.reshape(shape) ** 2)
    axes = tuple(range(vol.ndim))
    return fft.irfftn(fft.rfftn(vol) * g, s=vol.shape, axes=axes)


def autocorrelation(rho):
    """Centred autocorrelation ``|IFFT(|FFT(ρ)|²)|`` of a density on a centred grid."""
    xp = array_module(rho)
    fft = fft_module(xp)
    f = fft.fftn(fft.ifftshift(rho))
    return fft.fftshift(xp.abs(fft.ifftn(xp.abs(f) ** 2)))


def initial_support(ac, threshold: float):
    """Voxels x (relative to the centre) with ``ac(2x) > threshold · max(ac)``."""
    xp = array_module(ac)
    m = ac.shape
    c = [n // 2 for n in m]
    idx = [2 * (xp.arange(n) - cc) + cc for n, cc in zip(m, c)]
    valid = [(i >= 0) & (i < n) for i, n in zip(idx, m)]
    clipped = [xp.clip(i, 0, n - 1) for i, n in zip(idx, m)]
    sampled = ac[xp.ix_(*clipped)]
    inside = valid[0][:, None, None] & valid[1][None, :, None] & valid[2][None, None, :]
    return inside & (sampled > threshold * ac.max())


def center_of_mass_shift(rho):
    """Integer roll that moves the centre of mass of ``rho`` to the grid centre."""
    xp = array_module(rho)
    total = float(rho.sum())
    if total <= 0:
        return (0,) * rho.ndim
    shifts = []
    for ax, n in enumerate(rho.shape):
        coords = xp.arange(n, dtype=rho.dtype)
        other = tuple(a for a in range(rho.ndim) if a != ax)
        com = float((rho.sum(axis=other) * coords).sum()) / total
        shifts.append(int(round(n // 2 - com)))
    return tuple(shifts)


def align(ref, vol, *, allow_inversion: bool = True):
    """Best integer translation (and optional inversion ρ(−x)) of `vol` onto `ref`.

    Uses the FFT cross-correlation; returns ``(aligned, cc)`` with the Pearson correlation of the
    aligned volume and ``ref``.
    """
    xp = array_module(ref)
    fft = fft_module(xp)
    candidates = [vol]
    if allow_inversion:
        # ρ(−x) about the centred origin: flip every axis, then re-centre even-sized grids.
        flipped = vol[::-1, ::-1, ::-1]
        candidates.append(xp.roll(flipped, [1 if n % 2 == 0 else 0 for n in vol.shape], axis=(0, 1, 2)))
    fr = fft.rfftn(ref - ref.mean())
    best, best_cc = None, -np.inf
    for cand in candidates:
        c0 = cand - cand.mean()
        xc = fft.irfftn(fr * xp.conj(fft.rfftn(c0)), s=ref.shape, axes=(0, 1, 2))
        k = int(xp.argmax(xc))
        shift = np.unravel_index(k, ref.shape)
        moved = xp.roll(cand, [int(s) for s in shift], axis=(0, 1, 2))
        cc = _pearson(ref, moved)
        if cc > best_cc:
            best, best_cc = moved, cc
    return best, best_cc


def _pearson(a, b) -> float:
    a = a - a.mean()
    b = b - b.mean()
    den = float((a * a).sum() * (b * b).sum()) ** 0.5
    return float((a * b).sum()) / den if den > 0 else 0.0


def phase(ac, *, schedule: PhasingSchedule | None = None, n_runs: int = 1, rho0=None, support=None,
          max_frequency: float | None = None, seed=None, progress: bool = False) -> PhasingResult:
    """Recover a real, non-negative density from its centred autocorrelation.

    Parameters
    ----------
    ac : float array (M, M, M)
        Autocorrelation on a centred grid (origin at ``M // 2``), e.g. the MTIP merge output.
        Negative values (noise) are clipped; it is blurred by ``schedule.ac_filter_sigma``.
    schedule : PhasingSchedule, optional
        Iteration counts and thresholds.
    n_runs : int
        Independent runs from different random starts; those whose final Fourier error is
        within ``schedule.average_tolerance`` of the best are aligned to the best run
        (translation and inversion) and averaged, which damps phasing randomness; the others
        are dropped.
    rho0 : array, optional
        Starting density for the first run (MTIP carries the density between generations); the
        other runs then start from random values inside the support shrink-wrap gives it.
    support : bool array, optional
        Starting support; default :func:`initial_support` of the filtered ``ac``.
    max_frequency : float, optional
        Radius (cycles per voxel) of the Fourier region the data measured. MTIP's data fill a
        sphere inscribed in the grid's cube of frequencies; the ``ac`` values in the cube's
        corners are not measurements, so their magnitudes are left free, like the DC term.
        Default: every frequency is enforced.
    seed : int or numpy.random.Generator, optional
        Random starts.
    progress : bool
        Log the error of each loop at INFO level.

    Returns
    -------
    PhasingResult
    """
    schedule = schedule or PhasingSchedule()
    ac = ensure_array("ac", ac, dtypes=(np.float32, np.float64), ndim=3)
    ensure_finite("ac", ac)
    if min(ac.shape) < 4:
        raise ValueError(f"`ac` must be at least 4 voxels per side, got {tuple(ac.shape)}")
    if not isinstance(n_runs, (int, np.integer)) or n_runs < 1:
        raise ValueError(f"`n_runs` must be a positive integer, got {n_runs!r}")
    xp = array_module(ac)
    fft = fft_module(xp)
    ac = ac.astype(xp.float64)
    ac_filt = gaussian_filter(xp.maximum(ac, 0.0), schedule.ac_filter_sigma)
    if float(ac_filt.max()) <= 0:
        raise ValueError("`ac` has no positive values to phase")
    amplitudes = xp.sqrt(xp.abs(fft.fftn(fft.ifftshift(ac_filt))))
    # The DC term (total scattering) is not measured reliably behind a beam stop: leave it free.
    measured = xp.ones(ac.shape, dtype=bool)
    if max_frequency is not None:
        if not max_frequency > 0:
            raise ValueError(f"`max_frequency` must be > 0 cycles per voxel, got {max_frequency}")
        f2 = sum(fft.fftfreq(n).reshape([-1 if a == ax else 1 for a in range(3)]) ** 2
                 for ax, n in enumerate(ac.shape))
        measured = f2 <= max_frequency**2
    measured[0, 0, 0] = False
    if support is None:
        support = initial_support(ac_filt, schedule.support_threshold)
    else:
        support = ensure_array("support", support, ndim=3).astype(bool)
        if support.shape != ac.shape:
            raise ValueError(f"`support` must have shape {tuple(ac.shape)}, got {tuple(support.shape)}")
    if not bool(support.any()):
        raise ValueError("the initial support is empty; lower `support_threshold`")
    if rho0 is not None:
        rho0 = ensure_array("rho0", rho0, ndim=3)
        if rho0.shape != ac.shape:
            raise ValueError(f"`rho0` must have shape {tuple(ac.shape)}, got {tuple(rho0.shape)}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)

    # With a starting density, the other runs start from random values inside the support that
    # shrink-wrap gives it (the shape found so far) rather than inside the autocorrelation's
    # centrosymmetric estimate. 2CEX with the true orientations held fixed, 3 simulations x 8
    # seeds (corner 13.2 Å): 21 of 24 reached 13.2-14.5 Å before, the others 15.0, 15.4 and
    # 22.3 Å (the final random starts never beat a stagnated carried density); with this, all
    # 24 reached 13.1-14.6 Å. A fourth simulation still stagnated once in 8 (21.1 Å).
    restart_support = support
    if rho0 is not None and n_runs > 1:
        blurred = gaussian_filter(xp.maximum(xp.asarray(rho0, dtype=xp.float64), 0.0), schedule.shrinkwrap_sigma)
        own = blurred > schedule.shrinkwrap_threshold * float(blurred.max())
        if bool(own.any()):
            restart_support = own
    runs = []
    for run in range(n_runs):
        carried = rho0 is not None and run == 0
        runs.append(_phase_once(amplitudes, measured, (support if carried else restart_support).copy(),
                                rho0 if carried else None, schedule, rng, progress))
    runs.sort(key=lambda r: r.fourier_error[-1] if r.fourier_error else np.inf)
    best = runs[0]
    errors = [r.fourier_error[-1] if r.fourier_error else np.inf for r in runs]
    keep = [r for r, e in zip(runs, errors) if e <= errors[0] * (1.0 + schedule.average_tolerance)] or [best]
    if len(keep) > 1:
        total = best.rho.copy()
        for other in keep[1:]:
            aligned, _ = align(best.rho, other.rho)
            total += aligned
        rho = total / len(keep)
        rho = xp.roll(rho, center_of_mass_shift(rho), axis=(0, 1, 2))
        best = PhasingResult(rho=rho, support=best.support, fourier_error=best.fourier_error)
    best.runs_errors = [float(e) for e in errors if np.isfinite(e)]
    best.runs_averaged = len(keep)
    best.ac_phased = autocorrelation(best.rho)
    return best


def _phase_once(amplitudes, measured, support, rho0, schedule, rng, progress):
    xp = array_module(amplitudes)
    fft = fft_module(xp)
    shape = amplitudes.shape
    if rho0 is None:
        centred = xp.asarray(rng.random(shape)) * support
    else:
        centred = xp.asarray(rho0, dtype=xp.float64) * 1.0
    rho = fft.ifftshift(centred)
    # Work in uncentred (FFT) order; supports and densities are shifted once here and back at the end.
    support = fft.ifftshift(support)
    amp_norm = float(xp.linalg.norm(amplitudes[measured]))
    errors: list[float] = []

    def project_fourier(r):
        f = fft.fftn(r)
        mag = xp.abs(f)
        errors.append(float(xp.linalg.norm((mag - amplitudes)[measured])) / amp_norm)
        scale = xp.where(mag > 0, amplitudes / xp.where(mag > 0, mag, 1.0), 0.0)
        f = xp.where(measured, f * scale, f)
        return fft.ifftn(f).real

    def er(r, n):
        for _ in range(n):
            rm = project_fourier(r)
            r = xp.where(support & (rm > 0), rm, 0.0)
        return r

    def hio(r, n):
        for _ in range(n):
            rm = project_fourier(r)
            r = xp.where(support & (rm > 0), rm, r - schedule.beta * rm)
        return r

    for loop in range(schedule.n_loops):
        rho = er(rho, schedule.er_before)
        rho = hio(rho, schedule.hio)
        rho = er(rho, schedule.er_after)
        blurred = gaussian_filter(rho, schedule.shrinkwrap_sigma)
        new_support = blurred > schedule.shrinkwrap_threshold * float(blurred.max())
        if bool(new_support.any()):
            support = new_support
        if progress and errors:
            log.info("phasing loop %d/%d: Fourier error %.4f, support %d voxels", loop + 1,
                     schedule.n_loops, errors[-1], int(support.sum()))
    rho = er(rho, schedule.final_er)
    rho = fft.fftshift(rho)
    support = fft.fftshift(support)
    shift = center_of_mass_shift(rho)
    rho = xp.roll(rho, shift, axis=(0, 1, 2))
    support = xp.roll(support, shift, axis=(0, 1, 2))
    return PhasingResult(rho=rho, support=support, fourier_error=errors)
