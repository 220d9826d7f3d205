"""Unit quaternions ``[w, x, y, z]`` and the rotations they stand for.

A quaternion q maps to the rotation matrix R(q) acting on column vectors (``v' = R @ v``), and
the Hamilton product composes them the same way: ``R(q1 * q2) = R(q1) @ R(q2)``. q and -q are
the same rotation; functions that return quaternions pick the sign with ``w >= 0``.
All functions accept stacks (``(..., 4)`` / ``(..., 3, 3)``) and return float64.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "as_quaternions",
    "canonical",
    "quaternion_multiply",
    "quaternion_conjugate",
    "quaternion_to_matrix",
    "matrix_to_quaternion",
    "angular_distance",
]


def as_quaternions(q, name: str = "q", *, normalize: bool = True) -> np.ndarray:
    """Validate a stack of quaternions ``(..., 4)`` and return it as float64 (unit norm).

    Raises
    ------
    TypeError
        When `q` is not real numeric.
    ValueError
        When the last axis is not 4, values are not finite or a quaternion has zero norm.
    """
    a = np.asarray(q)
    if a.dtype.kind not in "fiu":
        raise TypeError(f"`{name}` must be a real numeric array, got dtype {a.dtype}")
    a = a.astype(np.float64, copy=True)
    if a.ndim == 0 or a.shape[-1] != 4:
        raise ValueError(f"`{name}` must have shape (..., 4) [w, x, y, z], got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"`{name}` holds NaN or Inf")
    if normalize:
        n = np.linalg.norm(a, axis=-1, keepdims=True)
        if np.any(n == 0):
            raise ValueError(f"`{name}` holds a zero quaternion")
        a /= n
    return a


def canonical(q) -> np.ndarray:
    """Unit quaternions with the sign chosen so that ``w >= 0`` (q and -q are one rotation)."""
    a = as_quaternions(q)
    return np.where(a[..., :1] < 0, -a, a)


def quaternion_multiply(q1, q2) -> np.ndarray:
    """Hamilton product ``q1 * q2`` (broadcasting); the rotation "first q2, then q1"."""
    a = np.asarray(q1, dtype=np.float64)
    b = np.asarray(q2, dtype=np.float64)
    if a.shape[-1] != 4 or b.shape[-1] != 4:
        raise ValueError(f"`q1` and `q2` must have shape (..., 4), got {a.shape} and {b.shape}")
    w1, x1, y1, z1 = np.moveaxis(a, -1, 0)
    w2, x2, y2, z2 = np.moveaxis(b, -1, 0)
    return np.stack(
        [
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        ],
        axis=-1,
    )


def quaternion_conjugate(q) -> np.ndarray:
    """``[w, -x, -y, -z]``: the inverse rotation of a unit quaternion."""
    a = np.array(q, dtype=np.float64)
    if a.shape[-1] != 4:
        raise ValueError(f"`q` must have shape (..., 4), got {a.shape}")
    a[..., 1:] *= -1
    return a


def quaternion_to_matrix(q) -> np.ndarray:
    """Rotation matrices ``(..., 3, 3)`` acting on column vectors, from unit quaternions."""
    a = as_quaternions(q)
    w, x, y, z = np.moveaxis(a, -1, 0)
    r = np.empty(a.shape[:-1] + (3, 3))
    r[..., 0, 0] = 1 - 2 * (y * y + z * z)
    r[..., 0, 1] = 2 * (x * y - w * z)
    r[..., 0, 2] = 2 * (x * z + w * y)
    r[..., 1, 0] = 2 * (x * y + w * z)
    r[..., 1, 1] = 1 - 2 * (x * x + z * z)
    r[..., 1, 2] = 2 * (y * z - w * x)
    r[..., 2, 0] = 2 * (x * z - w * y)
    r[..., 2, 1] = 2 * (y * z + w * x)
    r[..., 2, 2] = 1 - 2 * (x * x + y * y)
    return r


def matrix_to_quaternion(r) -> np.ndarray:
    """Unit quaternions (``w >= 0``) from rotation matrices ``(..., 3, 3)``.

    Uses the largest of the four diagonal combinations as the pivot (Shepperd's method), so the
    result stays accurate for every rotation angle, including 180 degrees.
    """
    m = np.asarray(r, dtype=np.float64)
    if m.ndim < 2 or m.shape[-2:] != (3, 3):
        raise ValueError(f"`r` must have shape (..., 3, 3), got {m.shape}")
    if not np.all(np.isfinite(m)):
        raise ValueError("`r` holds NaN or Inf")
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    # 4w^2, 4x^2, 4y^2, 4z^2 up to a common factor; pick the largest as pivot.
    cand = np.stack(
        [1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22],
        axis=-1,
    )
    piv = np.argmax(cand, axis=-1)
    q = np.empty(m.shape[:-2] + (4,))
    s21, s12 = m[..., 2, 1], m[..., 1, 2]
    s02, s20 = m[..., 0, 2], m[..., 2, 0]
    s10, s01 = m[..., 1, 0], m[..., 0, 1]
    for k in range(4):
        sel = piv == k
        if not np.any(sel):
            continue
        t = np.sqrt(np.maximum(cand[..., k][sel], 0.0)) * 2.0  # = 4 * |component k|
        if k == 0:
            comp = [t / 4, (s21 - s12)[sel] / t, (s02 - s20)[sel] / t, (s10 - s01)[sel] / t]
        elif k == 1:
            comp = [(s21 - s12)[sel] / t, t / 4, (s01 + s10)[sel] / t, (s02 + s20)[sel] / t]
        elif k == 2:
            comp = [(s02 - s20)[sel] / t, (s01 + s10)[sel] / t, t / 4, (s12 + s21)[sel] / t]
        else:
            comp = [(s10 - s01)[sel] / t, (s02 + s20)[sel] / t, (s12 + s21)[sel] / t, t / 4]
        q[sel] = np.stack(comp, axis=-1)
    return canonical(q)


def angular_distance(q1, q2) -> np.ndarray:
    """Rotation angle in degrees of ``q1^-1 * q2`` (broadcasting), in [0, 180].

    q and -q are the same rotation, so the sign of the dot product is discarded. The half-angle
    is computed with ``atan2`` rather than ``arccos`` so that small angles stay accurate.
    """
    a = as_quaternions(q1, "q1")
    b = as_quaternions(q2, "q2")
    a, b = np.broadcast_arrays(a, b)
    dot = np.sum(a * b, axis=-1, keepdims=True)
    b = np.where(dot < 0, -b, b)
    # The chord |a - b| and the sum |a + b| are sin and cos of a quarter of the rotation angle.
    ang = 4.0 * np.arctan2(np.linalg.norm(a - b, axis=-1), np.linalg.norm(a + b, axis=-1))
    return np.degrees(ang)
