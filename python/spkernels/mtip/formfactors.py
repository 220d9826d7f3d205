"""Atomic X-ray form factors of neutral atoms: Waasmaier & Kirfel (1995) five-Gaussian fits.

``f0(k) = sum_i a_i exp(-b_i k^2) + c`` with ``k = sin(theta) / lambda = |s| / 2`` in 1/Angstrom,
valid for k up to 6 1/Angstrom. Coefficients from D. Waasmaier & A. Kirfel, Acta Cryst. A51
(1995) 416-431, Table 1 (neutral atoms), typed in for the elements of biological
macromolecules and common metals. ``sum(a) + c`` equals the atomic number to within 0.01.
"""

from __future__ import annotations

import numpy as np

__all__ = ["WK_COEFFICIENTS", "form_factor", "gaussian_terms", "supported_elements"]

#: element -> ((a1..a5), (b1..b5), c); b in Angstrom^2.
WK_COEFFICIENTS: dict[str, tuple[tuple[float, ...], tuple[float, ...], float]] = {
    "H": ((0.413048, 0.294953, 0.187491, 0.080701, 0.023736),
          (15.569946, 32.398468, 5.711404, 61.889874, 1.334118), 0.000049),
    "C": ((2.657506, 1.078079, 1.490909, -4.241070, 0.713791),
          (14.780758, 0.776775, 42.086842, -0.000294, 0.239535), 4.297983),
    "N": ((11.893780, 3.277479, 1.858092, 0.858927, 0.912985),
          (0.000158, 10.232723, 30.344690, 0.656065, 0.217287), -11.804902),
    "O": ((2.960427, 2.508818, 0.637853, 0.722838, 1.142756),
          (14.182259, 5.936858, 0.112726, 34.958481, 0.390240), 0.027014),
    "Na": ((4.910127, 3.081783, 1.262067, 1.098938, 0.560991),
           (3.281434, 9.119178, 0.102763, 132.013947, 0.405878), 0.079712),
    "Mg": ((4.708971, 1.194814, 1.558157, 1.170413, 3.239403),
           (4.875207, 108.506081, 0.111516, 48.292408, 1.928171), 0.126842),
    "P": ((1.950541, 4.146930, 1.494560, 1.522042, 5.729711),
          (0.908139, 27.044952, 0.071280, 67.520187, 1.981173), 0.155233),
    "S": ((6.372157, 5.154568, 1.473732, 1.635073, 1.209372),
          (1.514347, 22.092527, 0.061373, 55.445175, 0.646925), 0.154722),
    "Cl": ((1.446071, 6.870609, 6.151801, 1.750347, 0.634168),
           (0.052357, 1.193165, 18.343416, 46.398396, 0.401005), 0.146773),
    "K": ((8.163991, 7.146945, 1.070140, 0.877316, 1.486434),
          (12.816323, 0.808945, 210.327011, 39.597652, 0.052821), 0.253614),
    "Ca": ((8.593655, 1.477324, 1.436254, 1.182839, 7.113258),
           (10.460644, 0.041891, 81.390381, 169.847839, 0.688098), 0.196255),
    "Mn": ((11.709542, 1.733414, 2.673141, 2.023368, 7.003180),
           (5.597120, 0.017800, 21.788420, 89.517914, 0.383054), -0.147293),
    "Fe": ((12.311098, 1.876623, 3.066177, 2.070451, 6.975185),
           (5.009415, 0.014461, 18.743040, 82.767876, 0.346506), -0.304931),
    "Co": ((12.914510, 2.481908, 3.466894, 2.106351, 6.960892),
           (4.507138, 0.009126, 16.438129, 76.987320, 0.314418), -0.936572),
    "Ni": ((13.521865, 6.947285, 3.866028, 2.135900, 4.284731),
           (4.077277, 0.286763, 14.622634, 71.966080, 0.004437), -2.762697),
    "Cu": ((14.014192, 4.784577, 5.056806, 1.457971, 6.932996),
           (3.738280, 0.003744, 13.034982, 72.554794, 0.265666), -3.254477),
    "Zn": ((14.741002, 6.907748, 4.642337, 2.191766, 38.424042),
           (3.388232, 0.243315, 11.903689, 63.312130, 0.000397), -36.915829),
    "Se": ((17.354071, 4.653248, 4.259489, 4.136455, 6.749163),
           (2.349787, 0.002550, 15.579460, 45.181202, 0.177432), -3.160982),
}


def _normalise(element: str) -> str:
    e = str(element).strip()
    e = e[:1].upper() + e[1:].lower()
    if e == "D":  # deuterium scatters X-rays like hydrogen
        e = "H"
    if e not in WK_COEFFICIENTS:
        raise ValueError(f"no Waasmaier-Kirfel coefficients for element {element!r}; "
                         f"known: {', '.join(sorted(WK_COEFFICIENTS))}")
    return e


def supported_elements() -> list[str]:
    """Element symbols with tabulated coefficients."""
    return sorted(WK_COEFFICIENTS)


def gaussian_terms(element: str) -> tuple[np.ndarray, np.ndarray]:
    """The six Gaussians of an element's form factor in |s|: amplitudes and widths.

    Returns ``(amp, width)`` with ``f0(|s|) = sum_k amp_k exp(-width_k |s|^2 / 4)``; the
    constant c is the sixth term with width 0. (With ``k = |s|/2``, ``width_k`` are the b_i.)
    """
    a, b, c = WK_COEFFICIENTS[_normalise(element)]
    return np.array(a + (c,)), np.array(b + (0.0,))


def form_factor(element: str, s) -> np.ndarray:
    """``f0`` of a neutral atom at ``|s|`` (1/Angstrom; array or scalar), in electrons."""
    amp, width = gaussian_terms(element)
    s = np.asarray(s, dtype=np.float64)
    return np.sum(amp * np.exp(-np.multiply.outer(s * s / 4.0, width)), axis=-1)
