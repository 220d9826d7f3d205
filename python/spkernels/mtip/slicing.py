"""Slicing: model intensities of an autocorrelation at detector pixels for given orientations.

A pixel with s-vector ``s`` (Å⁻¹, laboratory frame) seen by a particle in orientation R sits at
``Rᵀ s`` in the particle frame, i.e. at NUFFT point ``2π · dx · Rᵀ s`` of a grid with voxel
``dx`` (axis order z, y, x); the model is the type-2 NUFFT of ``ac`` there.

Everything is computed with the array module of the inputs: on a GPU backend ``s``, the
rotation matrices, ``ac`` and the slices are CuPy arrays and never leave the device.
"""

from __future__ import annotations

import numpy as np

from .. import kernels as K
from .._arrays import array_module
from ..geometry import quaternion_to_matrix


def rotations(quats, xp=np):
    """Rotation matrices (n, 3, 3) of quaternions `quats` (host), as arrays of module `xp`."""
    rot = quaternion_to_matrix(np.asarray(quats, dtype=np.float64))
    return rot if xp is np else xp.asarray(rot)


def nufft_points(rot, s, dx: float):
    """NUFFT points (z, y, x order, radians) of pixels `s` rotated into each particle frame.

    `rot` holds rotation matrices (n, 3, 3) (particle → lab) or, on the host, quaternions
    (n, 4); `s` and `rot` live in the same array module, which the points come back in.
    """
    xp = array_module(s)
    if rot.shape[-1] == 4:
        rot = rotations(rot, xp)
    # Rᵀ s (lab → particle frame) for every pixel: row p of s @ R is (Rᵀ s_p)ᵀ. One batched
    # matmul with the 2π·dx scale folded into s; axis-major output gives contiguous z, y, x.
    p = xp.matmul((2.0 * np.pi * dx) * s.astype(np.float64), rot)   # (n, P, 3) xyz
    return tuple(xp.ascontiguousarray(p[..., axis]).reshape(-1) for axis in (2, 1, 0))


def slice_model(ac, quats, s, dx: float, *, eps: float, backend: str):
    """Model intensities (n, P) of `ac` for orientations `quats` (or rotation matrices) at pixels `s`."""
    x, y, z = nufft_points(quats, s, dx)
    vals = K.nufft3d2(x, y, z, ac.astype(np.complex128), eps=eps, backend=backend)
    return vals.real.reshape(int(quats.shape[0]), int(s.shape[0]))
