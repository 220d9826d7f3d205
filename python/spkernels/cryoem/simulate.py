"""Simulated particles: projections of a map by the Fourier slice theorem (our type-2 NUFFT of
the map at the rotated central planes), RELION CTF, white noise at a given SNR."""

from __future__ import annotations

import numpy as np

from .._arrays import ensure_int, ensure_real
from ..geometry.orientations import random_orientations
from ..geometry.quaternion import quaternion_to_matrix
from .particles import ParticleSet

__all__ = ["simulate", "project"]


def _check_volume(volume):
    v = np.asarray(volume)
    if v.ndim != 3 or len(set(v.shape)) != 1:
        raise ValueError(f"`volume` must be a cube (box, box, box), got shape {v.shape}")
    if v.dtype.kind not in "fiu":
        raise TypeError(f"`volume` must be real, got dtype {v.dtype}")
    if not np.all(np.isfinite(v)):
        raise ValueError("`volume` holds NaN or Inf")
    return np.asarray(v, dtype=np.float64)


def project(volume, rotations, *, shifts=None, eps=1e-6, backend="auto", batch=256) -> np.ndarray:
    """Centred 2-D spectra (n, box, box) complex128 of the projections of `volume` (z, y, x)
    along the rotated z axis: ``P_j(u, v) = F(A_jᵀ (u, v, 0))`` by a type-2 NUFFT; `shifts`
    (n, 2) in pixels move each projection by ``-shift`` (the particle sits at ``-origin``)."""
    from ..kernels.nufft import nufft3d2

    vol = _check_volume(volume)
    box = vol.shape[0]
    rot = np.asarray(rotations, dtype=np.float64).reshape(-1, 3, 3)
    h = box // 2
    k = np.arange(box) - h
    u, v = np.meshgrid(k, k, indexing="xy")
    plane = np.stack([u.ravel(), v.ravel(), np.zeros(u.size)], axis=0).astype(np.float64)  # (3, P)
    f = np.ascontiguousarray(vol.transpose(2, 1, 0)).astype(np.complex128)  # axis 0 <-> x
    out = np.empty((rot.shape[0], box, box), dtype=np.complex128)
    for s in range(0, rot.shape[0], batch):
        r = rot[s:s + batch]
        q = np.einsum("nij,ip->njp", r, plane) * (2.0 * np.pi / box)  # Aᵀ(u, v, 0), radians
        c = nufft3d2(q[:, 0].ravel(), q[:, 1].ravel(), q[:, 2].ravel(), f, eps=eps, backend=backend)
        out[s:s + batch] = np.asarray(c).reshape(len(r), box, box)
    if shifts is not None:
        sh = np.asarray(shifts, dtype=np.float64).reshape(-1, 2)
        out *= np.exp(2j * np.pi * (u[None] * sh[:, 0, None, None] + v[None] * sh[:, 1, None, None]) / box)
    return out


def simulate(volume, n, *, voxel_size, defocus=(10000.0, 30000.0), astigmatism=200.0, snr=None, shifts=0.0,
             voltage=300.0, cs=2.7, amplitude_contrast=0.1, bfactor=0.0, ctf=True, rotations=None, seed=0,
             backend="auto", output=None) -> ParticleSet:
    """Simulate `n` particles of `volume` (z, y, x; Å per voxel `voxel_size`).

    Parameters
    ----------
    defocus : (min, max) Å
        Defocus U drawn uniformly (1–3 µm by default); V = U - `astigmatism`·uniform(0, 1).
    snr : float, optional
        Signal-to-noise ratio: the variance of the clean CTF-modulated images, taken over every
        pixel of the whole box of every particle, over the variance of the white Gaussian noise
        added to each pixel; None for noiseless particles. This is the usual simulation
        convention (signal power over noise power per pixel, whole image). Measured over the
        particle's disc instead (radius 0.4·box) the signal variance is about twice as large
        (1.98x for the 65³ ribosome), so the same number there would mean twice the noise
        variance: the whole-box convention is the lenient one, kept as is.
    shifts : float or (n, 2) array
        Maximum |origin| per axis in Å (uniform), or the origins themselves (``rlnOriginX/YAngst``).
    ctf : bool
        Modulate by the CTF (the parameters are stored either way).
    rotations : (n, 3, 3), optional
        Poses; uniformly random (seeded) when None.
    output : str, optional
        Write a RELION STAR file at this path and its ``.mrcs`` stack.

    Returns
    -------
    ParticleSet
        With ``subset`` a seeded random half split (1/2).
    """
    vol = _check_volume(volume)
    n = ensure_int("n", n, low=1)
    px = ensure_real("voxel_size", voxel_size, low=0.0, low_open=True)
    box = vol.shape[0]
    rng = np.random.default_rng(seed)
    if rotations is None:
        rot = quaternion_to_matrix(random_orientations(n, rng))
    else:
        rot = np.asarray(rotations, dtype=np.float64)
        if rot.shape != (n, 3, 3):
            raise ValueError(f"`rotations` must have shape ({n}, 3, 3), got {rot.shape}")
    if np.ndim(shifts) == 0:
        m = ensure_real("shifts", shifts, low=0.0)
        origins = rng.uniform(-m, m, (n, 2))
    else:
        origins = np.asarray(shifts, dtype=np.float64)
        if origins.shape != (n, 2):
            raise ValueError(f"`shifts` must be a number or shape ({n}, 2), got {origins.shape}")
    lo, hi = (float(x) for x in defocus)
    du = rng.uniform(lo, hi, n)
    dv = du - float(astigmatism) * rng.uniform(0.0, 1.0, n)
    ang = rng.uniform(0.0, 180.0, n)
    subset = rng.permutation(np.arange(n) % 2) + 1
    p = ParticleSet(images=np.zeros((n, box, box), np.float32), pixel_size=px, rotations=rot, shifts=origins,
                    defocus_u=du, defocus_v=dv, defocus_angle=ang, voltage=voltage, cs=cs,
                    amplitude_contrast=amplitude_contrast, bfactor=bfactor, phase_shift=0.0, subset=subset)
    spec = project(vol, rot, shifts=origins / px, backend=backend)
    if ctf:
        spec *= p.ctf_images(np.arange(n), box)
    img = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(spec, axes=(-2, -1))), axes=(-2, -1)).real
    if snr is not None:
        snr = ensure_real("snr", snr, low=0.0, low_open=True)
        sigma = np.sqrt(img.var() / snr)
        img = img + rng.normal(0.0, sigma, img.shape)
    p.images = img.astype(np.float32)
    if output is not None:
        from .particles import write_relion

        write_relion(output, p)
    return p
