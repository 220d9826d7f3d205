"""Simulate X-ray single-particle diffraction: images, ground-truth orientations, geometry.

For each image the particle (an atomic model turned into Gaussians, see
:mod:`spkernels.mtip.density`) is rotated by a uniformly random orientation q; the detector
pixels' s-vectors are rotated into the particle frame (``R(q)^T s``) and F is evaluated there
by the package's type-2 NUFFT of the density grid. The expected photon count of a pixel is

    |F(s)|^2 * fluence * r_e^2 * polarisation * solid angle

(fluence = photons per pulse / focus area, r_e^2 = 7.94e-30 m^2), and the recorded count is a
Poisson draw of it. Optional multi-particle hits add further particles, each with its own
orientation and an in-plane offset, coherently: ``F = sum_p F(R_p^T s) exp(2 pi i s . t_p)``.
"""

from __future__ import annotations

import logging
import math
import os

import numpy as np

from ..geometry import R_E_SQUARED, Beam, Detector, quaternion_to_matrix, random_orientations
from ..geometry.quaternion import as_quaternions
from ..io.hdf5 import SPIDataset
from ..io.structure import AtomicStructure, read_structure
from .density import GaussianDensity, StructureFactorGrid, band_limited_density

__all__ = ["simulate", "expected_photons", "slice_structure_factors", "particle_density"]

log = logging.getLogger("spkernels.mtip")


def particle_density(particle=None, *, b_factor: float | None = None, seed: int = 0) -> GaussianDensity:
    """A :class:`GaussianDensity` centred at the origin, from whatever describes a particle.

    `particle` is a GaussianDensity (used as is), an AtomicStructure, a path to a PDB/mmCIF
    file (read without waters), or None for the built-in demo particle (:func:`spkernels.mtip.particle.demo_particle`
    with `seed`). Atomic models are moved to their electron-weighted centre.
    """
    if isinstance(particle, GaussianDensity):
        return particle
    if particle is None:
        from .particle import demo_particle

        particle = demo_particle(seed)
    elif isinstance(particle, (str, os.PathLike)):
        particle = read_structure(particle, remove_water=True)
    if not isinstance(particle, AtomicStructure):
        raise TypeError("`particle` must be a GaussianDensity, an AtomicStructure, a structure file path or None, "
                        f"got {type(particle).__name__}")
    return GaussianDensity.from_atoms(particle.centered(), b_factor=b_factor)


def slice_structure_factors(model, s_lab: np.ndarray, quaternions, offsets=None) -> np.ndarray:
    """F of a particle in orientations `quaternions` at lab-frame s-vectors.

    Parameters
    ----------
    model : callable
        ``model(s) -> F`` in the particle frame (a :class:`StructureFactorGrid`, or
        ``GaussianDensity.structure_factors`` for the exact direct sum).
    s_lab : ndarray (P, 3)
        Pixel s-vectors in the lab frame (1/Angstrom).
    quaternions : ndarray (B, 4) or (B, k, 4)
        Orientation of each particle; with k particles per image their fields add coherently.
    offsets : ndarray (B, k, 3), optional
        Particle positions in Angstrom (lab frame); NaN rows mark absent particles.

    Returns
    -------
    ndarray (B, P) complex128
    """
    q = as_quaternions(quaternions, "quaternions")
    if q.ndim == 2:
        q = q[:, None, :]
    b, k = q.shape[:2]
    p = s_lab.shape[0]
    rot = quaternion_to_matrix(q)  # (B, k, 3, 3)
    present = np.ones((b, k), dtype=bool) if offsets is None else ~np.isnan(offsets[..., 0])
    out = np.zeros((b, p), dtype=np.complex128)
    for j in range(k):
        rows = np.flatnonzero(present[:, j])
        if rows.size == 0:
            continue
        # row vector s @ R equals (R^T s)^T: lab s-vectors seen in the particle frame
        s_part = np.einsum("pi,bij->bpj", s_lab, rot[rows, j])
        f = np.asarray(model(s_part.reshape(-1, 3))).reshape(rows.size, p)
        if offsets is not None:
            f = f * np.exp(2j * np.pi * (offsets[rows, j] @ s_lab.T))
        out[rows] += f
    return out


def expected_photons(structure_factors, detector: Detector, beam: Beam) -> np.ndarray:
    """Expected photons per pixel: ``|F|^2 fluence r_e^2 polarisation solid_angle``.

    `structure_factors` is (..., nx, ny) or (..., nx * ny) in electrons.
    """
    f = np.asarray(structure_factors)
    scale = (beam.fluence * R_E_SQUARED) * detector.polarization() * detector.solid_angle()
    if f.shape[-1] == scale.size and f.shape[-2:] != scale.shape:
        scale = scale.reshape(-1)
    return (np.abs(f) ** 2) * scale


def simulate(n_images: int, particle=None, detector: Detector | None = None, beam: Beam | None = None, *,
             seed=None, orientations=None, poisson: bool = True, multi_hit_fraction: float = 0.0,
             max_particles: int = 2, beamstop_radius: float = 0.0, b_factor: float | None = None,
             tol: float = 1e-5, nufft=None, batch_size: int | None = None, density_grid: int | None = 0,
             keep_expected: bool = False, progress: bool = False) -> SPIDataset:
    """Simulate `n_images` diffraction images of a particle in random orientations.

    Parameters
    ----------
    n_images : int
    particle : GaussianDensity, AtomicStructure, path or None
        What to image (see :func:`particle_density`); None builds the demo particle.
    detector, beam : Detector, Beam
        Default: the standard geometry (128 x 128 over 0.08 m at 0.2 m; 4600 eV, 1e12
        photons, 0.5 um focus).
    seed : int or numpy.random.Generator
        Drives orientations, multi-hit layout and Poisson noise (the demo particle is built
        with seed 0 unless given explicitly).
    orientations : ndarray (n_images, 4), optional
        Use these orientations instead of random ones.
    poisson : bool
        Draw Poisson counts (else return the expected photons).
    multi_hit_fraction : float
        Probability that an image holds 2..`max_particles` particles instead of one. Extra
        particles sit at an in-plane offset of 1 to 2 particle diameters.
    beamstop_radius : float
        Radius in (binned) pixels around the beam centre masked out (intensity 0, mask 0).
    b_factor : float, optional
        Override the atoms' B-factors (Angstrom^2).
    tol : float
        Relative accuracy of F (see :class:`StructureFactorGrid`).
    nufft : callable, optional
        Type-2 NUFFT with finufft's signature; default ``spkernels.kernels.nufft3d2``.
    batch_size : int, optional
        Images per NUFFT call; default: about 2 million pixels per call (each call pays
        for an FFT of the fine grid, so calls should be large).
    density_grid : int or None
        Also store the ground-truth density, band-limited to the detector's ``max|s|`` and
        sampled on a grid of this many voxels per side at voxel ``1 / (2 max|s|)`` (the
        reconstruction's grid; see :func:`band_limited_density`). 0 picks the
        smallest odd size holding the particle; None stores no density.
    keep_expected : bool
        Keep the noiseless expected photons as attribute ``expected`` of the result.
    progress : bool
        Show a tqdm bar.

    Returns
    -------
    SPIDataset
        Ready for :func:`spkernels.io.write_spi_h5`: intensities (N, 1, nx, ny) float32,
        orientations (N, 1, 4), geometry, mask, multi-hit bookkeeping and the beam.
    """
    if isinstance(n_images, bool) or not isinstance(n_images, (int, np.integer)):
        raise TypeError(f"`n_images` must be an integer, got {type(n_images).__name__}")
    if n_images < 1:
        raise ValueError(f"`n_images` must be >= 1, got {n_images}")
    if not 0.0 <= multi_hit_fraction <= 1.0:
        raise ValueError(f"`multi_hit_fraction` must be in [0, 1], got {multi_hit_fraction}")
    if max_particles < 1:
        raise ValueError(f"`max_particles` must be >= 1, got {max_particles}")
    if beamstop_radius < 0:
        raise ValueError(f"`beamstop_radius` must be >= 0, got {beamstop_radius}")
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"`batch_size` must be >= 1, got {batch_size}")
    detector = Detector.standard() if detector is None else detector
    beam = Beam.standard() if beam is None else beam
    if not isinstance(detector, Detector):
        raise TypeError(f"`detector` must be a Detector, got {type(detector).__name__}")
    if not isinstance(beam, Beam):
        raise TypeError(f"`beam` must be a Beam, got {type(beam).__name__}")
    rng = np.random.default_rng(seed)

    density = particle_density(particle, b_factor=b_factor)
    if orientations is None:
        quats = random_orientations(n_images, rng)
    else:
        quats = as_quaternions(orientations, "orientations")
        if quats.shape != (n_images, 4):
            raise ValueError(f"`orientations` must have shape ({n_images}, 4), got {quats.shape}")

    # multi-particle hits: how many particles, their orientations and in-plane offsets
    k_max = max_particles if multi_hit_fraction > 0 else 1
    n_part = np.ones(n_images, dtype=np.int64)
    hit_q = np.full((n_images, k_max, 4), np.nan)
    hit_t = np.full((n_images, k_max, 3), np.nan)
    hit_q[:, 0] = quats
    hit_t[:, 0] = 0.0
    if k_max > 1:
        multi = rng.random(n_images) < multi_hit_fraction
        n_part[multi] = rng.integers(2, k_max + 1, int(multi.sum()))
        diameter = 2.0 * density.radius()
        for j in range(1, k_max):
            rows = np.flatnonzero(n_part > j)
            hit_q[rows, j] = random_orientations(max(rows.size, 1), rng)[: rows.size]
            dist = rng.uniform(diameter, 2 * diameter, rows.size)
            phi = rng.uniform(0, 2 * math.pi, rows.size)
            hit_t[rows, j] = np.stack([dist * np.cos(phi), dist * np.sin(phi), np.zeros(rows.size)], axis=1)

    s_lab = detector.s_vectors(beam).reshape(-1, 3)
    s_max = detector.max_s(beam)
    model = StructureFactorGrid(density, s_max, tol=tol, nufft=nufft)
    nx, ny = detector.shape
    if batch_size is None:
        batch_size = max(1, (1 << 21) // (nx * ny * k_max))
    scale = (beam.fluence * R_E_SQUARED) * (detector.polarization() * detector.solid_angle()).reshape(-1)

    # beam stop: pixels within the radius (in pixels) of the beam centre are masked
    c = (np.arange(nx) - (nx - 1) / 2.0)
    r_pix = np.hypot(c[:, None], (np.arange(ny) - (ny - 1) / 2.0)[None, :])
    mask = (r_pix > beamstop_radius) if beamstop_radius > 0 else np.ones((nx, ny), dtype=bool)
    mask = mask.astype(np.uint8)
    good = mask.reshape(-1).astype(bool)

    intensities = np.empty((n_images, 1, nx, ny), dtype=np.float32)
    expected_all = np.empty((n_images, nx * ny)) if keep_expected else None
    starts = range(0, n_images, batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="simulate", unit="batch")
    for b0 in starts:
        b1 = min(b0 + batch_size, n_images)
        offs = hit_t[b0:b1] if k_max > 1 else None
        f = slice_structure_factors(model, s_lab, np.nan_to_num(hit_q[b0:b1], nan=1.0), offs)
        lam = (np.abs(f) ** 2) * scale
        lam[:, ~good] = 0.0
        if keep_expected:
            expected_all[b0:b1] = lam
        counts = rng.poisson(lam) if poisson else lam
        intensities[b0:b1, 0] = counts.reshape(-1, nx, ny)

    data = SPIDataset(
        intensities=intensities,
        pixel_position_reciprocal=(detector.s_vectors(beam) * 1e10)[None],
        orientations=quats[:, None, :],
        polarization=detector.polarization()[None],
        solid_angle=detector.solid_angle()[None],
        det_distance=detector.distance,
        mask=mask[None],
        n_particles=n_part if k_max > 1 else None,
        hit_orientations=hit_q if k_max > 1 else None,
        hit_offsets=hit_t if k_max > 1 else None,
        photon_energy=beam.photon_energy,
        wavelength=beam.wavelength,
        photons_per_pulse=beam.photons_per_pulse,
        focus_radius=beam.focus_radius,
        fluence=beam.fluence,
        attrs={"pixel_size": detector.pixel_size, "simulator": "spkernels.mtip.simulate",
               "detector_width": detector.width, "binning": detector.binning},
    )
    if density_grid is not None:
        voxel = 1.0 / (2.0 * s_max)
        n = int(density_grid) or 2 * int(math.ceil(density.radius() / voxel)) + 3
        data.density = band_limited_density(model, n, voxel)
        data.voxel_size = voxel
    if keep_expected:
        data.expected = expected_all.reshape(n_images, 1, nx, ny)
    return data
