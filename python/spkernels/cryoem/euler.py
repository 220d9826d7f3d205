"""RELION's ZYZ Euler angles (rlnAngleRot, rlnAngleTilt, rlnAnglePsi, degrees) and rotation
matrices ``A = R_z(psi) R_y(tilt) R_z(rot)``: pixel (u, v) of a particle's 2-D spectrum lies at
3-D frequency ``Aᵀ (u, v, 0)`` (RELION's projector), which is what :mod:`spkernels.kernels.insertion`
takes as ``rotations``."""

from __future__ import annotations

import numpy as np

__all__ = ["euler_to_matrix", "matrix_to_euler"]


def euler_to_matrix(rot, tilt, psi) -> np.ndarray:
    """Rotation matrices (n, 3, 3) from ZYZ Euler angles in degrees (arrays of one length)."""
    a, b, g = (np.deg2rad(np.atleast_1d(np.asarray(x, dtype=np.float64))) for x in (rot, tilt, psi))
    ca, sa, cb, sb, cg, sg = np.cos(a), np.sin(a), np.cos(b), np.sin(b), np.cos(g), np.sin(g)
    cc, cs, sc, ss = cb * ca, cb * sa, sb * ca, sb * sa
    m = np.empty(a.shape + (3, 3))
    m[..., 0, 0] = cg * cc - sg * sa
    m[..., 0, 1] = cg * cs + sg * ca
    m[..., 0, 2] = -cg * sb
    m[..., 1, 0] = -sg * cc - cg * sa
    m[..., 1, 1] = -sg * cs + cg * ca
    m[..., 1, 2] = sg * sb
    m[..., 2, 0] = sc
    m[..., 2, 1] = ss
    m[..., 2, 2] = cb
    return m


def matrix_to_euler(m) -> np.ndarray:
    """ZYZ Euler angles (n, 3) in degrees (rot, tilt, psi) of rotation matrices (n, 3, 3)."""
    m = np.asarray(m, dtype=np.float64).reshape(-1, 3, 3)
    tilt = np.arccos(np.clip(m[:, 2, 2], -1.0, 1.0))
    sb = np.sin(tilt)
    rot = np.arctan2(m[:, 2, 1], m[:, 2, 0])
    psi = np.arctan2(m[:, 1, 2], -m[:, 0, 2])
    flat = sb < 1e-9  # gimbal lock: put the whole in-plane turn into rot
    if np.any(flat):
        psi[flat] = 0.0
        up = m[flat, 2, 2] > 0
        rot[flat] = np.where(up, np.arctan2(m[flat, 0, 1], m[flat, 0, 0]),
                             np.arctan2(-m[flat, 0, 1], -m[flat, 0, 0]))
    return np.rad2deg(np.stack([rot, tilt, psi], axis=1))
