"""orientation_errors: the ambiguities of a reconstruction's frame must not count as errors."""

import numpy as np

from spkernels.geometry import matrix_to_quaternion, quaternion_multiply, quaternion_to_matrix, random_orientations
from spkernels.mtip.reconstruct import orientation_errors


def _rotations_by(angle_deg, n, rng):
    ax = rng.standard_normal((n, 3))
    ax /= np.linalg.norm(ax, axis=1, keepdims=True)
    h = np.radians(angle_deg) / 2
    return np.concatenate([np.full((n, 1), np.cos(h)), ax * np.sin(h)], axis=1)


def test_global_rotation_of_the_density_is_not_an_error(rng):
    # slicing at R^T s: a density rotated by H is fitted by R_true H^T (right multiplication)
    qt = random_orientations(300, rng)
    h = random_orientations(1, rng)[0]
    est = quaternion_multiply(qt, h)
    np.testing.assert_allclose(orientation_errors(est, qt), 0, atol=1e-5)


def test_mirror_image_is_not_an_error_unless_disallowed(rng):
    # the mirror image rho(Mx) is fitted by Mz R M on a flat Ewald sphere
    qt = random_orientations(300, rng)
    mz = np.diag([1.0, 1.0, -1.0])
    m = quaternion_to_matrix(random_orientations(1, rng)[0]) @ mz
    est = matrix_to_quaternion(mz @ quaternion_to_matrix(qt) @ m)
    np.testing.assert_allclose(orientation_errors(est, qt), 0, atol=1e-5)
    assert np.median(orientation_errors(est, qt, allow_mirror=False)) > 30


def test_per_image_errors_are_measured(rng):
    qt = random_orientations(400, rng)
    h = random_orientations(1, rng)[0]
    est = quaternion_multiply(quaternion_multiply(_rotations_by(10.0, 400, rng), qt), h)
    err = orientation_errors(est, qt)
    # each image is 10 degrees off; the fitted global rotation absorbs a little of it
    assert 8.0 < np.median(err) < 10.5
