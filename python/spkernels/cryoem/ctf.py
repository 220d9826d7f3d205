"""Contrast transfer function with RELION's conventions, evaluated on image grids.

``CTF(s) = -sin(π λ Δf(θ) s² + (π/2) Cs λ³ s⁴ - φ - atan(Q0 / sqrt(1 - Q0²))) · exp(-B s² / 4)``

with ``Δf(θ) = -[(U + V)/2 + (U - V)/2 · cos 2(θ - azimuth)]`` (U, V the underfocus values in Å,
positive for underfocus), ``λ`` the relativistic electron wavelength, ``Cs`` in Å, ``φ`` the phase
shift and ``s`` the spatial frequency in Å⁻¹. The CTF is positive at low frequency
(amplitude contrast), as in RELION.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .._arrays import ensure_real

__all__ = ["CTF", "electron_wavelength", "frequency_grid", "phase_flip", "wiener_filter"]


def electron_wavelength(voltage_kv: float) -> float:
    """Relativistic electron wavelength (Å) at accelerating voltage `voltage_kv` (kV)."""
    v = ensure_real("voltage_kv", voltage_kv, low=0.0, low_open=True) * 1e3
    return 12.2643247 / math.sqrt(v * (1.0 + v * 0.978466e-6))


def frequency_grid(n: int, pixel_size: float):
    """(sx, sy) in Å⁻¹ of a centred n x n spectrum (pixel [r, c] at ((c - n//2), (r - n//2)) / (n·px))."""
    k = (np.arange(n) - n // 2) / (n * pixel_size)
    sx, sy = np.meshgrid(k, k, indexing="xy")
    return sx, sy


@dataclasses.dataclass(frozen=True)
class CTF:
    """CTF parameters of one particle (RELION names in brackets).

    Attributes
    ----------
    defocus_u, defocus_v : float
        Underfocus in Å along the major / minor axis (rlnDefocusU/V); positive = underfocus.
    defocus_angle : float
        Azimuth of the major axis in degrees (rlnDefocusAngle).
    voltage : float
        Accelerating voltage in kV (rlnVoltage); default 300.
    cs : float
        Spherical aberration in mm (rlnSphericalAberration); default 2.7.
    amplitude_contrast : float
        Q0 (rlnAmplitudeContrast); default 0.1.
    bfactor : float
        Envelope B-factor in Å² (rlnCtfBfactor); default 0.
    phase_shift : float
        Phase shift in degrees (rlnPhaseShift); default 0.
    """

    defocus_u: float
    defocus_v: float
    defocus_angle: float = 0.0
    voltage: float = 300.0
    cs: float = 2.7
    amplitude_contrast: float = 0.1
    bfactor: float = 0.0
    phase_shift: float = 0.0

    def __post_init__(self):
        for name in ("defocus_u", "defocus_v", "defocus_angle", "cs", "bfactor", "phase_shift"):
            ensure_real(name, getattr(self, name))
        ensure_real("voltage", self.voltage, low=0.0, low_open=True)
        ensure_real("amplitude_contrast", self.amplitude_contrast, low=0.0, high=1.0, high_open=True)

    def __call__(self, sx, sy):
        """The CTF at frequencies (sx, sy) in Å⁻¹ (arrays of one shape), float64."""
        return evaluate(np.asarray(sx, dtype=np.float64), np.asarray(sy, dtype=np.float64),
                        self.defocus_u, self.defocus_v, self.defocus_angle, self.voltage, self.cs,
                        self.amplitude_contrast, self.bfactor, self.phase_shift)

    def image(self, n: int, pixel_size: float):
        """The CTF on a centred n x n spectrum of pixel size `pixel_size` (Å)."""
        sx, sy = frequency_grid(n, pixel_size)
        return self(sx, sy)


def evaluate(sx, sy, defocus_u, defocus_v, defocus_angle, voltage, cs, amplitude_contrast, bfactor=0.0,
             phase_shift=0.0):
    """Vectorised CTF: every parameter may be an array broadcasting against ``sx[None]``-style
    stacks (e.g. (n, 1, 1) per-particle parameters against (N, N) grids)."""
    lam = 12.2643247 / np.sqrt(np.asarray(voltage, dtype=np.float64) * 1e3
                               * (1.0 + np.asarray(voltage, dtype=np.float64) * 1e3 * 0.978466e-6))
    cs_a = np.asarray(cs, dtype=np.float64) * 1e7
    q0 = np.asarray(amplitude_contrast, dtype=np.float64)
    s2 = sx * sx + sy * sy
    theta = np.arctan2(sy, sx)
    du = np.asarray(defocus_u, dtype=np.float64)
    dv = np.asarray(defocus_v, dtype=np.float64)
    az = np.deg2rad(np.asarray(defocus_angle, dtype=np.float64))
    deltaf = -(0.5 * (du + dv) + 0.5 * (du - dv) * np.cos(2.0 * (theta - az)))
    k1 = math.pi * lam
    k2 = 0.5 * math.pi * cs_a * lam ** 3
    k3 = np.arctan(q0 / np.sqrt(1.0 - q0 * q0))
    k5 = np.deg2rad(np.asarray(phase_shift, dtype=np.float64))
    arg = k1 * deltaf * s2 + k2 * s2 * s2 - k5 - k3
    out = -np.sin(arg)
    b = np.asarray(bfactor, dtype=np.float64)
    if np.any(b != 0):
        out = out * np.exp(-b / 4.0 * s2)
    return out


def _spectrum(images):
    return np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(images, axes=(-2, -1))), axes=(-2, -1))


def _image(spectra):
    return np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(spectra, axes=(-2, -1))), axes=(-2, -1)).real


def phase_flip(images, ctf_images):
    """Multiply each image's spectrum by the sign of its CTF (`ctf_images`: centred, image-sized)."""
    return _image(_spectrum(np.asarray(images, dtype=np.float64)) * np.sign(ctf_images))


def wiener_filter(images, ctf_images, snr: float = 1.0):
    """Wiener-filter images: spectrum · c / (c² + 1/snr)."""
    snr = ensure_real("snr", snr, low=0.0, low_open=True)
    c = np.asarray(ctf_images, dtype=np.float64)
    return _image(_spectrum(np.asarray(images, dtype=np.float64)) * c / (c * c + 1.0 / snr))
