"""Slicing: model intensities of an autocorrelation at detector pixels for given orientations.

A pixel with s-vector ``s`` (Å⁻¹, laboratory frame) seen by a particle in orientation R sits at
``Rᵀ s`` in the particle frame, i.e. at NUFFT point ``2π · dx · Rᵀ s`` of a grid with voxel
``dx`` (axis order z, y, x); the model is the type-2 NUFFT of ``ac`` there.
"""

from __future__ import annotations

import numpy as np

from .. import kernels as K
from ..geometry import quaternion_to_matrix


def nufft_points(quats: np.ndarray, s: np.ndarray, dx: float):
    """NUFFT points (z, y, x order, radians) of pixels `s` rotated into each particle frame."""
    rot = quaternion_to_matrix(quats)                  # (n, 3, 3), particle → lab
    # Rᵀ s (lab → particle frame) for every pixel: row p of s @ R is (Rᵀ s_p)ᵀ. One batched
    # matmul with the 2π·dx scale folded into s; axis-major output gives contiguous z, y, x.
    p = np.matmul((2.0 * np.pi * dx) * np.asarray(s, dtype=np.float64), rot)   # (n, P, 3) xyz
    return tuple(np.ascontiguousarray(p[..., axis]).reshape(-1) for axis in (2, 1, 0))


def slice_model(ac: np.ndarray, quats: np.ndarray, s: np.ndarray, dx: float, *, eps: float,
                backend: str) -> np.ndarray:
    """Model intensities (n, P) of `ac` for orientations `quats` at pixels `s`."""
    x, y, z = nufft_points(quats, s, dx)
    vals = K.nufft3d2(x, y, z, ac.astype(np.complex128), eps=eps, backend=backend)
    return np.asarray(vals).real.reshape(len(quats), s.shape[0])
