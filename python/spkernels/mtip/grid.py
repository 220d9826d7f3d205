"""Centred odd-sized grids of MTIP: the spherical support :func:`ball` and Fourier :func:`resample`."""

from __future__ import annotations

import numpy as np

from .._arrays import array_module, fft_module


def ball(M: int, radius_vox: float, xp=np):
    """Voxels of an M³ grid within `radius_vox` of the centre index M // 2 (arrays of module `xp`)."""
    c = xp.arange(M) - M // 2
    r2 = c[:, None, None] ** 2 + c[None, :, None] ** 2 + c[None, None, :] ** 2
    return r2 <= radius_vox**2


def resample(vol, M_new: int):
    """Fourier pad/crop a centred odd-sized volume to M_new³ over the same box (values kept;
    NumPy or CuPy, computed where `vol` lives)."""
    M = vol.shape[0]
    if M == M_new:
        return vol.copy()
    xp = array_module(vol)
    _fft = fft_module(xp)
    f = _fft.fftshift(_fft.fftn(_fft.ifftshift(vol)))
    out = xp.zeros((M_new,) * 3, dtype=complex)
    c_old, c_new = M // 2, M_new // 2
    h = min(M, M_new) // 2
    so = slice(c_old - h, c_old + h + 1)
    sn = slice(c_new - h, c_new + h + 1)
    out[sn, sn, sn] = f[so, so, so]
    res = _fft.fftshift(_fft.ifftn(_fft.ifftshift(out))).real
    return res * (M_new / M) ** 3
