"""Orientation accuracy of a reconstruction against known (simulated) orientations."""

from __future__ import annotations

import numpy as np

from ..geometry import quaternion_multiply


def orientation_errors(estimated, true, *, allow_mirror: bool = True) -> np.ndarray:
    """Per-image angular error (degrees) after removing the best global rotation.

    A reconstruction is only defined up to a global rotation of its density, ρ_est(x) =
    ρ(Hᵀx). Pixels are sliced at ``Rᵀ s``, so the orientations that fit the same data are
    R_est,n = R_true,n · Hᵀ: the global rotation multiplies from the right (particle frame).
    Hᵀ is the quaternion average of R_true,nᵀ R_est,n; errors are the angles of the residuals.

    With `allow_mirror` the reconstruction may also be the mirror image of the truth. Diffraction
    on a nearly flat Ewald sphere cannot tell the hands apart (a mirror through the detector
    plane moves pixels only by their small s_z), so MTIP converges to either hand; for the
    mirrored density the orientations are the truth's conjugated by the mirror, M R M, which no
    global rotation absorbs: measured against the wrong hand a converged run shows ~120° errors.
    Both hands are tried and the one with the smaller median error is returned.
    """
    qe = np.asarray(estimated, dtype=np.float64)
    qt = np.asarray(true, dtype=np.float64)
    best = _errors_up_to_rotation(qe, qt)
    if allow_mirror:
        # M R M for the mirror M = diag(1, 1, -1): the axis v maps to -M v, the angle is kept.
        other = _errors_up_to_rotation(qe, qt * np.array([1, -1, -1, 1]))
        if np.median(other) < np.median(best):
            best = other
    return best


def _errors_up_to_rotation(qe: np.ndarray, qt: np.ndarray) -> np.ndarray:
    conj = qt * np.array([1, -1, -1, -1])
    rel = quaternion_multiply(conj, qe)  # R_true,nᵀ R_est,n = Hᵀ for every n when exact
    # Mean of ±q: dominant eigenvector of Σ q qᵀ (sign-invariant).
    _, vecs = np.linalg.eigh(rel.T @ rel)
    g = vecs[:, -1]
    resid = quaternion_multiply(rel, g * np.array([1, -1, -1, -1]))
    return np.degrees(2 * np.arccos(np.clip(np.abs(resid[:, 0]), 0, 1)))
