"""Geometry of single-particle imaging: quaternions, orientation sets, detectors and beams.

Quaternions are ``[w, x, y, z]`` (unit norm, q and -q the same rotation); rotation matrices act
on column vectors. Reciprocal space is in 1/Angstrom as s-vectors, ``|s| = 2 sin(theta) / lambda``.
"""

from .detector import HC_EV_ANGSTROM, R_E_SQUARED, Beam, Detector, read_beam_file
from .orientations import nearest_neighbour_angles, random_orientations, super_fibonacci
from .quaternion import (
    angular_distance,
    as_quaternions,
    canonical,
    matrix_to_quaternion,
    quaternion_conjugate,
    quaternion_multiply,
    quaternion_to_matrix,
)

__all__ = [
    "Beam",
    "Detector",
    "HC_EV_ANGSTROM",
    "R_E_SQUARED",
    "angular_distance",
    "as_quaternions",
    "canonical",
    "matrix_to_quaternion",
    "nearest_neighbour_angles",
    "quaternion_conjugate",
    "quaternion_multiply",
    "quaternion_to_matrix",
    "random_orientations",
    "read_beam_file",
    "super_fibonacci",
]
