"""A soft mask fitted to the particle, and the masked half-map FSC corrected by phase
randomisation (the correction RELION's post-processing reports, Chen et al. 2013).

A mask that follows the particle keeps all of its signal and less of the reconstruction's noise
(which fills the whole box), so the masked FSC rises; but a tight mask also correlates the two
half maps' noise through its own spectrum. Phase randomisation measures that: the half maps'
phases are randomised beyond the shell where their unmasked FSC first drops below 0.8, the
randomised maps are masked the same way, and their FSC ``FSC_n`` (signal-free there) corrects the
masked one: ``FSC = (FSC_t - FSC_n) / (1 - FSC_n)`` beyond that shell.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .._arrays import ensure_int, ensure_real

__all__ = ["particle_mask", "masked_fsc", "MaskedFSC"]


def _radius(shape):
    k = [np.fft.fftshift(np.fft.fftfreq(n)) for n in shape]  # cycles per voxel, centred
    return np.sqrt(k[0][:, None, None] ** 2 + k[1][None, :, None] ** 2 + k[2][None, None, :] ** 2)


def _check_map(name, v):
    a = np.asarray(v)
    if a.ndim != 3 or a.dtype.kind not in "fiu":
        raise ValueError(f"`{name}` must be a real 3-D map, got shape {a.shape} and dtype {a.dtype}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"`{name}` holds NaN or Inf")
    return a.astype(np.float64)


def particle_mask(volume, voxel_size: float, *, lowpass: float = 15.0, threshold: float = 0.1, extend: int = 3,
                  edge: int = 6) -> np.ndarray:
    """A soft mask (float64, same shape, values in [0, 1]) that follows the particle in `volume`.

    The map is low-passed (Gaussian, ``exp(-2 (s · lowpass)²)``, `lowpass` in Å), binarised at
    `threshold` × its maximum, dilated by `extend` voxels and given a raised-cosine edge of `edge`
    voxels (RELION's ``relion_mask_create`` steps; its tutorial uses 15 Å, extend 3, edge 6).

    Parameters
    ----------
    volume : array (nz, ny, nx)
        Usually the average of the half maps.
    voxel_size : float
        Å per voxel.
    lowpass : float
        Å; the low-pass before binarising.
    threshold : float
        Fraction (0, 1) of the low-passed map's maximum.
    extend, edge : int
        Voxels of dilation and of the soft edge.
    """
    from scipy import ndimage

    v = _check_map("volume", volume)
    px = ensure_real("voxel_size", voxel_size, low=0.0, low_open=True)
    lowpass = ensure_real("lowpass", lowpass, low=0.0)
    threshold = ensure_real("threshold", threshold, low=0.0, high=1.0, low_open=True, high_open=True)
    extend = ensure_int("extend", extend, low=0)
    edge = ensure_int("edge", edge, low=1)
    s = _radius(v.shape) / px
    f = np.fft.fftshift(np.fft.fftn(v)) * np.exp(-2.0 * (s * lowpass) ** 2)
    lp = np.fft.ifftn(np.fft.ifftshift(f)).real
    b = lp > threshold * lp.max()
    if not b.any():
        raise ValueError("`threshold` leaves nothing of the map")
    if extend:
        b = ndimage.binary_dilation(b, iterations=extend)
    dist = ndimage.distance_transform_edt(~b)
    return np.where(dist < edge, 0.5 * (1.0 + np.cos(np.pi * np.minimum(dist, edge) / edge)), 0.0)


@dataclasses.dataclass(eq=False)
class MaskedFSC:
    """The phase-randomisation-corrected masked FSC and its parts.

    Attributes
    ----------
    fsc : spkernels.kernels.FSCResult
        The corrected curve (the one to report); ``.resolution(0.143)``.
    masked, randomised, unmasked : spkernels.kernels.FSCResult
        FSC of the masked half maps, of the masked phase-randomised half maps, and without a mask.
    randomise_from : int
        Phases were randomised in shells beyond this one.
    mask : ndarray
    """

    fsc: object
    masked: object
    randomised: object
    unmasked: object
    randomise_from: int
    mask: np.ndarray

    def resolution(self, threshold: float = 0.143):
        """Resolution of the corrected curve (:meth:`spkernels.kernels.FSCResult.resolution`)."""
        return self.fsc.resolution(threshold)


def _randomise_phases(v, k_from, rng):
    f = np.fft.rfftn(v)
    kz = np.fft.fftfreq(v.shape[0])[:, None, None]
    ky = np.fft.fftfreq(v.shape[1])[None, :, None]
    kx = np.fft.rfftfreq(v.shape[2])[None, None, :]
    sel = np.sqrt(kx * kx + ky * ky + kz * kz) * min(v.shape) > k_from + 0.5
    f[sel] = np.abs(f[sel]) * np.exp(2j * np.pi * rng.random(int(sel.sum())))
    return np.fft.irfftn(f, s=v.shape, axes=(0, 1, 2))


def masked_fsc(half1, half2, voxel_size: float, mask="particle", *, seed: int = 0, randomise_below: float = 0.8,
               **mask_options) -> MaskedFSC:
    """Half-map FSC under `mask`, corrected by phase randomisation (module docstring).

    Parameters
    ----------
    half1, half2 : array (nz, ny, nx)
    voxel_size : float
        Å per voxel.
    mask : "particle" or array
        ``"particle"``: :func:`particle_mask` of the half maps' average (`mask_options` go there).
    seed : int
        Seeds the random phases.
    randomise_below : float
        Phases are randomised beyond the first shell whose unmasked FSC is below this.
    """
    from ..kernels.fsc import fsc as _fsc

    a, b = _check_map("half1", half1), _check_map("half2", half2)
    if a.shape != b.shape:
        raise ValueError(f"`half1` and `half2` must have the same shape, got {a.shape} and {b.shape}")
    px = ensure_real("voxel_size", voxel_size, low=0.0, low_open=True)
    randomise_below = ensure_real("randomise_below", randomise_below, low=0.0, high=1.0)
    if isinstance(mask, str):
        if mask != "particle":
            raise ValueError(f"`mask` must be 'particle' or an array, got {mask!r}")
        m = particle_mask(0.5 * (a + b), px, **mask_options)
    else:
        m = _check_map("mask", mask)
        if m.shape != a.shape:
            raise ValueError(f"`mask` must have the maps' shape {a.shape}, got {m.shape}")
    unmasked = _fsc(a, b, voxel_size=px)
    below = [i for i in range(1, len(unmasked.fsc)) if unmasked.fsc[i] < randomise_below]
    k_from = below[0] if below else len(unmasked.fsc) - 1
    masked = _fsc(a, b, voxel_size=px, mask=m)
    rng = np.random.default_rng(seed)
    randomised = _fsc(_randomise_phases(a, k_from, rng), _randomise_phases(b, k_from, rng), voxel_size=px, mask=m)
    ft, fn = masked.fsc, randomised.fsc
    corr = ft.copy()
    j = np.arange(len(ft)) > k_from
    corr[j] = (ft[j] - fn[j]) / (1.0 - fn[j])
    return MaskedFSC(dataclasses.replace(masked, fsc=corr), masked, randomised, unmasked, int(k_from), m)
