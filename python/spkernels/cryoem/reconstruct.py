"""Direct Fourier inversion of a particle set (gather insertion), half maps and their FSC.

Steps of :func:`reconstruct_fourier`: each image is padded to ``N >= pad · box`` (the smallest
even 7-smooth size, :data:`PAD_SMOOTH`, that the 2-D and 3-D FFTs handle fast), its
centred spectrum is shifted by the particle's origin, multiplied by its CTF (Wiener numerator)
and inserted with the blob by :func:`spkernels.kernels.insertion.insert`, which also sums the
CTF² weights. The half volume is exactly Hermitian already (every image is a full plane, no fold
is left). Then ``F = V / max(W, floor)`` with the floor a fraction (1e-3) of the mean weight of
the voxel's shell, as RELION floors its weights; the inverse real FFT; the gridding correction
(division by the blob's 3-D Fourier transform, normalised at 0); and the central box window.
"""

from __future__ import annotations

import dataclasses
import logging
import math

import numpy as np

from .. import parallel as _parallel
from .._arrays import ensure_int, ensure_real, host_available_bytes
from ..kernels import insertion as _ins
from .particles import ParticleSet

__all__ = ["reconstruct_fourier", "reconstruct_half_maps", "memory_estimate", "Reconstruction", "HalfMaps",
           "soft_sphere", "padded_spectra"]

log = logging.getLogger("spkernels.cryoem")


@dataclasses.dataclass(eq=False)
class Reconstruction:
    """A reconstructed map.

    Attributes
    ----------
    volume : ndarray (box, box, box) float32
    voxel_size : float
    n_particles : int
    backend : str
    """

    volume: np.ndarray
    voxel_size: float
    n_particles: int
    backend: str


def memory_estimate(box: int, pad: int = 2, batch: int = 256, single: bool = True) -> int:
    """Bytes a reconstruction of `box` with padding `pad` needs at its peak (half volume and
    weights, the real-space padded volume, one batch of padded spectra and CTFs)."""
    N = _padded(box, pad)
    c, r = (8, 4) if single else (16, 8)
    half = N * N * (N // 2 + 1)
    return int(half * (c + r) + 2 * N ** 3 * 8 + batch * N * N * (c + r + 16))


PAD_SMOOTH = 7
"""Largest prime factor of the padded size N (:func:`spkernels.fft.good_size`, even); None keeps
``ceil(pad · box)`` rounded up to even. The map does not depend on N beyond interpolation: the
blob, the frequency limit and the gridding correction all follow N (``finish`` reads it from the
volume), and the window keeps the central box."""


def _padded(box, pad):
    from .. import fft as _fftsize

    N = int(math.ceil(box * pad))
    N += N % 2
    return N if PAD_SMOOTH is None else _fftsize.good_size(N, smooth=PAD_SMOOTH, even=True, backend="cpu")


def padded_spectra(images, N, shifts_px=None):
    """Centred spectra (b, N, N) complex128 of images padded into N x N (centre kept at N//2),
    shifted by +`shifts_px` (b, 2) pixels."""
    b, box, _ = images.shape
    o = N // 2 - box // 2
    pad = np.zeros((b, N, N))
    pad[:, o:o + box, o:o + box] = images
    f = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(pad, axes=(-2, -1))), axes=(-2, -1))
    if shifts_px is not None:
        k = np.arange(N) - N // 2
        u, v = np.meshgrid(k, k, indexing="xy")
        s = np.asarray(shifts_px, dtype=np.float64)
        f *= np.exp(-2j * np.pi * (u[None] * s[:, 0, None, None] + v[None] * s[:, 1, None, None]) / N)
    return f


def _progress(total, enabled, desc):
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, unit="particle", leave=False)


def insert_particles(particles: ParticleSet, *, pad=2, ctf=True, max_resolution=None, batch=256, backend="auto",
                     blob=_ins.Blob(), params=None, progress=False, precision="float32", comm=None, tuning=None):
    """The CTF-weighted insertion of every particle: half volume V and weights W on the host
    (complex / real, N x N x N//2+1), summed over the ranks of `comm`. ``tuning="online"``: the
    first batches try insertion launch parameters (:mod:`spkernels.tuning.online`)."""
    box = particles.box
    N = _padded(box, pad)
    max_freq = None
    if max_resolution is not None:
        res = ensure_real("max_resolution", max_resolution, low=0.0, low_open=True)
        max_freq = min(N // 2, N * particles.pixel_size / res)
    cdt = np.complex64 if precision == "float32" else np.complex128
    vol = weights = None
    n = len(particles)
    tuner = _online_tuner(tuning, params, backend, cdt, N, min(n, batch), blob)
    bar = _progress(n, progress, "insert")
    for s in range(0, n, batch):
        idx = np.arange(s, min(n, s + batch))
        spec = padded_spectra(particles.images[idx], N, particles.shifts[idx] / particles.pixel_size)
        c = particles.ctf_images(idx, N) if ctf else None
        if tuner is None:
            vol, weights = _ins.insert(spec.astype(cdt), particles.rotations[idx], ctf=c, volume=vol, weights=weights,
                                       max_freq=max_freq, blob=blob, params=params, backend=backend)
        else:
            vol, weights = tuner.call(lambda acc: _ins.insert(spec.astype(cdt), particles.rotations[idx], ctf=c,
                                                              volume=acc[0], weights=acc[1], max_freq=max_freq,
                                                              blob=blob, backend=backend),
                                      (vol, weights), trial=len(idx) == batch)
        if bar is not None:
            bar.update(len(idx))
    if bar is not None:
        bar.close()
    from .._arrays import to_host

    vol = np.ascontiguousarray(to_host(vol))
    weights = np.ascontiguousarray(to_host(weights))
    if comm is not None:
        vol = _parallel.allreduce_sum(vol, comm)
        weights = _parallel.allreduce_sum(weights, comm)
    return vol, weights


def _online_tuner(tuning, params, backend, cdt, N, n, blob):
    from ..tuning import online

    if online.check_mode(tuning) is None:
        return None
    if params is not None:
        raise ValueError("`tuning='online'` chooses the insertion's `params`: pass one or the other")
    from .. import backends as _backends

    name = _backends.resolve(backend, supported=_ins.SUPPORTED)
    return online.insertion_tuner(name, cdt, N, n, table_size=blob.table_size)


def finish(vol, weights, box, *, blob=_ins.Blob(), floor=1e-3):
    """Weights division, inverse FFT, gridding correction and window: the map (box³ float32)."""
    N = vol.shape[0]
    h = N // 2
    kz, ky, kx = np.meshgrid(np.arange(N) - h, np.arange(N) - h, np.arange(h + 1), indexing="ij")
    shell = np.rint(np.sqrt(kx * kx + ky * ky + kz * kz)).astype(np.int64).ravel()
    w = np.asarray(weights, dtype=np.float64).ravel()
    pos = w > 0
    cnt = np.bincount(shell[pos], minlength=shell.max() + 1)
    tot = np.bincount(shell[pos], weights=w[pos], minlength=shell.max() + 1)
    mean = np.where(cnt > 0, tot / np.maximum(cnt, 1), 0.0)
    fl = floor * mean[shell]
    f = np.zeros(w.shape, dtype=np.complex128)
    f[pos] = np.asarray(vol, dtype=np.complex128).ravel()[pos] / np.maximum(w[pos], fl[pos])
    f = f.reshape(N, N, h + 1)
    f = np.fft.ifftshift(f, axes=(0, 1))
    real = np.fft.fftshift(np.fft.irfftn(f, s=(N, N, N), axes=(0, 1, 2)))
    o = h - box // 2
    real = real[o:o + box, o:o + box, o:o + box]
    x = np.arange(box) - box // 2
    r = np.sqrt(x[:, None, None] ** 2 + x[None, :, None] ** 2 + x[None, None, :] ** 2)
    corr = _ins.blob_fourier(r.ravel() / N, blob).reshape(r.shape) / float(_ins.blob_fourier(0.0, blob))
    return (real / corr).astype(np.float32)


def reconstruct_fourier(particles: ParticleSet, *, pad=2, ctf=True, max_resolution=None, batch=256,
                        backend="auto", blob=_ins.Blob(), params=None, floor=1e-3, progress=False,
                        precision="float32", comm=None, max_bytes=None, tuning=None) -> Reconstruction:
    """Direct Fourier inversion of `particles` (see the module docstring).

    Parameters
    ----------
    particles : ParticleSet
        Images with poses (RELION matrices), origins and CTF parameters.
    pad : int
        Padding factor of the Fourier grid (2: the blob's radius is 1.9 voxels of the 2x grid).
    ctf : bool
        CTF-weighted insertion and Wiener-style division by the CTF² weights.
    max_resolution : float, optional
        Å; Fourier voxels beyond it stay empty (default Nyquist).
    batch : int
        Particles per insertion call.
    backend : str
        Backend of the insertion kernel.
    blob, params
        Blob and GPU launch parameters (:mod:`spkernels.kernels.insertion`).
    floor : float
        Weights are floored at ``floor`` × the shell's mean weight.
    precision : {"float32", "float64"}
    comm : mpi4py communicator, optional
        Each rank inserts the particles it was given; volumes and weights are summed.
    max_bytes : int, optional
        Refuse to start when :func:`memory_estimate` exceeds this (default: the available host memory).
    tuning : {None, "online"}
        None: the insertion uses the launch parameters tuned for this machine (``spkernels tune``)
        or its defaults. ``"online"``: the first batches try candidate parameters against the
        defaults on the same batch (the default's result is kept, so the map is bitwise the
        default's), then the fastest is used for the rest of the run and stored.
    """
    if not isinstance(particles, ParticleSet):
        raise TypeError(f"`particles` must be a ParticleSet, got {type(particles).__name__}")
    pad = ensure_int("pad", pad, low=1, high=4)
    batch = ensure_int("batch", batch, low=1)
    if precision not in ("float32", "float64"):
        raise ValueError(f"`precision` must be 'float32' or 'float64', got {precision!r}")
    need = memory_estimate(particles.box, pad, batch, precision == "float32")
    limit = host_available_bytes() if max_bytes is None else int(max_bytes)
    log.info("reconstruct: box %d, pad %d, %d particles: about %.2f GB", particles.box, pad, len(particles),
             need / 1e9)
    if need > limit:
        raise MemoryError(f"a reconstruction of box {particles.box} with pad {pad} needs about {need / 1e9:.1f} GB, "
                          f"only {limit / 1e9:.1f} GB are available; lower `pad` or `batch`")
    vol, weights = insert_particles(particles, pad=pad, ctf=ctf, max_resolution=max_resolution, batch=batch,
                                    backend=backend, blob=blob, params=params, progress=progress,
                                    precision=precision, comm=comm, tuning=tuning)
    from .. import backends as _backends

    name = _backends.resolve(backend, supported=_ins.SUPPORTED)
    return Reconstruction(finish(vol, weights, particles.box, blob=blob, floor=floor), particles.pixel_size,
                          len(particles), name)


@dataclasses.dataclass(eq=False)
class HalfMaps:
    """Two independent reconstructions and their FSC.

    Attributes
    ----------
    half1, half2 : ndarray (box, box, box) float32
    voxel_size : float
    fsc : spkernels.kernels.FSCResult
        Between the half maps, under `mask`.
    mask : ndarray
        The soft mask the FSC used.
    """

    half1: np.ndarray
    half2: np.ndarray
    voxel_size: float
    fsc: object
    mask: np.ndarray

    @property
    def resolution(self):
        """Resolution at FSC 0.143 (:class:`spkernels.kernels.Resolution`)."""
        return self.fsc.resolution(0.143)

    @property
    def average(self) -> np.ndarray:
        """The mean of the two half maps."""
        return 0.5 * (self.half1 + self.half2)


def soft_sphere(box: int, radius: float | None = None, edge: float = 5.0) -> np.ndarray:
    """A spherical mask (box³ float64): 1 inside `radius` (default 0.4·box), a raised-cosine edge
    of `edge` voxels, 0 beyond."""
    radius = 0.4 * box if radius is None else ensure_real("radius", radius, low=0.0, low_open=True)
    x = np.arange(box) - box // 2
    r = np.sqrt(x[:, None, None] ** 2 + x[None, :, None] ** 2 + x[None, None, :] ** 2)
    t = np.clip((r - radius) / max(edge, 1e-9), 0.0, 1.0)
    return 0.5 * (1.0 + np.cos(np.pi * t))


def reconstruct_half_maps(particles: ParticleSet, *, seed=0, mask=None, backend="auto", **kwargs) -> HalfMaps:
    """Half maps from ``particles.subset`` (or a seeded random split), and their masked FSC.

    `mask` is a (box³) array, None for :func:`soft_sphere`, or ``"particle"``: a soft mask fitted
    to the half maps' average (:func:`~spkernels.cryoem.particle_mask`), the FSC then corrected by
    phase randomisation (:func:`~spkernels.cryoem.masked_fsc`), as RELION's post-processing
    reports it. Other keywords go to :func:`reconstruct_fourier`.
    """
    from ..kernels.fsc import fsc as _fsc

    if isinstance(mask, str) and mask != "particle":
        raise ValueError(f"`mask` must be None, 'particle' or an array, got {mask!r}")
    if particles.subset is not None:
        subset = particles.subset
    else:
        subset = np.random.default_rng(seed).permutation(np.arange(len(particles)) % 2) + 1
    maps = []
    for s in (1, 2):
        sel = np.flatnonzero(subset == s)
        if len(sel) == 0:
            raise ValueError(f"half set {s} is empty")
        maps.append(reconstruct_fourier(particles.select(sel), backend=backend, **kwargs).volume)
    if isinstance(mask, str):
        from .masking import masked_fsc

        res = masked_fsc(maps[0], maps[1], particles.pixel_size, "particle", seed=seed)
        return HalfMaps(maps[0], maps[1], particles.pixel_size, res.fsc, res.mask)
    m = soft_sphere(particles.box) if mask is None else np.asarray(mask, dtype=np.float64)
    if m.shape != maps[0].shape:
        raise ValueError(f"`mask` must have shape {maps[0].shape}, got {m.shape}")
    curve = _fsc(maps[0].astype(np.float64), maps[1].astype(np.float64), voxel_size=particles.pixel_size, mask=m)
    return HalfMaps(maps[0], maps[1], particles.pixel_size, curve, m)
