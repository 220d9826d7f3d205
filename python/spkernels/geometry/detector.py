"""Flat detectors and X-ray beams: pixel s-vectors on the Ewald sphere, polarisation, solid angle.

Frame: the beam travels along +z, the particle sits at the origin, the detector plane is
``z = distance`` with pixel (i, j) at ``x = (i - (n - 1) / 2) * pixel_size`` and
``y = (j - (n - 1) / 2) * pixel_size`` (image axis 0 is x, axis 1 is y). For the unit direction
p of a pixel seen from the particle, the scattering vector is ``s = (p - z) / lambda`` in 1/Angstrom
(``|s| = 2 sin(theta) / lambda``, resolution ``1/|s|``; the momentum transfer is ``q = 2 pi s``).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass

import numpy as np

__all__ = ["Detector", "Beam", "read_beam_file", "HC_EV_ANGSTROM", "R_E_SQUARED"]

log = logging.getLogger("spkernels.geometry")

#: h c in eV * Angstrom (CODATA 2018): lambda [A] = HC_EV_ANGSTROM / E [eV].
HC_EV_ANGSTROM = 12398.419843320026
#: Classical electron radius squared in m^2 (r_e = 2.8179403262e-15 m): the Thomson cross
#: section per steradian of one electron, before polarisation.
R_E_SQUARED = 2.8179403262e-15**2


def _positive(name: str, v) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise TypeError(f"`{name}` must be a real number, got {type(v).__name__}")
    v = float(v)
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"`{name}` must be finite and > 0, got {v}")
    return v


def _wavelength(wavelength) -> float:
    """Accept a Beam or a wavelength in Angstrom."""
    if isinstance(wavelength, Beam):
        return wavelength.wavelength
    return _positive("wavelength", wavelength)


class Detector:
    """A flat square detector normal to the beam, centred on it.

    Parameters
    ----------
    n_pixels : int
        Physical pixels per side.
    distance : float
        Particle-to-detector distance in metres.
    pixel_size, width : float
        Physical pixel size or total side length in metres; give exactly one.
    binning : int
        Sum ``binning x binning`` blocks of physical pixels into one (``n_pixels`` must be a
        multiple). All properties below describe the binned detector.
    polarization_axis : sequence of 3 floats
        Direction of the incident electric field (default x: horizontal linear polarisation).

    Examples
    --------
    The standard SPI geometry (skopi/SpiniFEL): 128 x 128 pixels over 0.08 m at 0.2 m.

    >>> det = Detector(128, 0.2, width=0.08)
    >>> round(det.corner_resolution(Beam(4600.0)), 2)
    9.88
    """

    def __init__(self, n_pixels: int, distance: float, *, pixel_size: float | None = None,
                 width: float | None = None, binning: int = 1, polarization_axis=(1.0, 0.0, 0.0)):
        if isinstance(n_pixels, bool) or not isinstance(n_pixels, (int, np.integer)):
            raise TypeError(f"`n_pixels` must be an integer, got {type(n_pixels).__name__}")
        if n_pixels < 1:
            raise ValueError(f"`n_pixels` must be >= 1, got {n_pixels}")
        if isinstance(binning, bool) or not isinstance(binning, (int, np.integer)):
            raise TypeError(f"`binning` must be an integer, got {type(binning).__name__}")
        if binning < 1 or n_pixels % binning:
            raise ValueError(f"`binning` must be >= 1 and divide `n_pixels` ({n_pixels}), got {binning}")
        if (pixel_size is None) == (width is None):
            raise ValueError("give exactly one of `pixel_size` and `width`")
        phys = _positive("pixel_size", pixel_size) if width is None else _positive("width", width) / n_pixels
        e = np.asarray(polarization_axis, dtype=np.float64)
        if e.shape != (3,) or not np.all(np.isfinite(e)) or np.linalg.norm(e) == 0:
            raise ValueError(f"`polarization_axis` must be a finite non-zero 3-vector, got {polarization_axis!r}")
        self._physical_pixels = int(n_pixels)
        self._physical_pixel_size = phys
        self._binning = int(binning)
        self._distance = _positive("distance", distance)
        self._polarization_axis = e / np.linalg.norm(e)

    # -- description ----------------------------------------------------------------------
    @classmethod
    def standard(cls, binning: int = 1) -> "Detector":
        """128 x 128 pixels over 0.08 m at 0.2 m (the skopi/SpiniFEL test geometry)."""
        return cls(128, 0.2, width=0.08, binning=binning)

    @property
    def n_pixels(self) -> int:
        """Pixels per side after binning."""
        return self._physical_pixels // self._binning

    @property
    def shape(self) -> tuple[int, int]:
        """Image shape ``(n, n)`` after binning."""
        return (self.n_pixels, self.n_pixels)

    @property
    def pixel_size(self) -> float:
        """Pixel side in metres after binning."""
        return self._physical_pixel_size * self._binning

    @property
    def width(self) -> float:
        """Side length of the sensitive area in metres."""
        return self._physical_pixel_size * self._physical_pixels

    @property
    def distance(self) -> float:
        """Particle-to-detector distance in metres."""
        return self._distance

    @property
    def binning(self) -> int:
        return self._binning

    @property
    def polarization_axis(self) -> np.ndarray:
        return self._polarization_axis.copy()

    def __repr__(self) -> str:
        return (f"Detector(n_pixels={self._physical_pixels}, distance={self._distance!r}, "
                f"pixel_size={self._physical_pixel_size!r}, binning={self._binning})")

    def __eq__(self, other) -> bool:
        return (isinstance(other, Detector) and self._physical_pixels == other._physical_pixels
                and self._binning == other._binning and self._distance == other._distance
                and self._physical_pixel_size == other._physical_pixel_size
                and np.array_equal(self._polarization_axis, other._polarization_axis))

    __hash__ = None

    # -- per-pixel quantities -------------------------------------------------------------
    def pixel_positions(self) -> np.ndarray:
        """Pixel centres ``(n, n, 3)`` in metres (x, y, distance)."""
        n = self.n_pixels
        c = (np.arange(n) - (n - 1) / 2.0) * self.pixel_size
        pos = np.empty((n, n, 3))
        pos[..., 0] = c[:, None]
        pos[..., 1] = c[None, :]
        pos[..., 2] = self._distance
        return pos

    def pixel_directions(self) -> np.ndarray:
        """Unit vectors ``(n, n, 3)`` from the particle to each pixel centre."""
        p = self.pixel_positions()
        return p / np.linalg.norm(p, axis=-1, keepdims=True)

    def s_vectors(self, wavelength) -> np.ndarray:
        """Scattering vectors ``s = (p - z) / lambda`` of the pixels ``(n, n, 3)`` in 1/Angstrom.

        `wavelength` is in Angstrom, or a :class:`Beam`.
        """
        lam = _wavelength(wavelength)
        s = self.pixel_directions()
        s[..., 2] -= 1.0
        return s / lam

    def scattering_angles(self) -> np.ndarray:
        """Scattering angle 2 theta of each pixel ``(n, n)`` in radians."""
        p = self.pixel_positions()
        return np.arctan2(np.hypot(p[..., 0], p[..., 1]), p[..., 2])

    def polarization(self) -> np.ndarray:
        """Polarisation factor ``|p x e|^2 = 1 - (p . e)^2`` per pixel ``(n, n)``."""
        d = self.pixel_directions()
        return 1.0 - (d @ self._polarization_axis) ** 2

    def solid_angle(self) -> np.ndarray:
        """Solid angle of each pixel ``(n, n)`` in steradians: ``A cos(t) / r^2``.

        t is the angle between the ray and the detector normal, so ``cos(t) = distance / r``.
        """
        p = self.pixel_positions()
        r = np.linalg.norm(p, axis=-1)
        return self.pixel_size**2 * self._distance / r**3

    # -- resolution -----------------------------------------------------------------------
    def _half_extent(self) -> float:
        """Distance from the beam to the outermost pixel centres along x (or y)."""
        return (self.n_pixels - 1) / 2.0 * self.pixel_size

    def _s_at_radius(self, radius: float, wavelength) -> float:
        two_theta = math.atan2(radius, self._distance)
        return 2.0 * math.sin(two_theta / 2.0) / _wavelength(wavelength)

    def max_s(self, wavelength) -> float:
        """Largest ``|s|`` on the detector (a corner pixel centre) in 1/Angstrom."""
        return self._s_at_radius(math.sqrt(2.0) * self._half_extent(), wavelength)

    def corner_resolution(self, wavelength) -> float:
        """Resolution ``1/|s|`` in Angstrom at the corner pixel centres."""
        return 1.0 / self.max_s(wavelength)

    def edge_resolution(self, wavelength) -> float:
        """Resolution ``1/|s|`` in Angstrom at the centres of the edge pixels (mid-side)."""
        return 1.0 / self._s_at_radius(self._half_extent(), wavelength)


@dataclass(frozen=True)
class Beam:
    """A pulsed X-ray beam with a flat-top circular focus.

    Parameters
    ----------
    photon_energy : float
        Photon energy in eV.
    photons_per_pulse : float
        Photons per pulse.
    focus_radius : float
        Radius of the focal spot in metres.
    """

    photon_energy: float
    photons_per_pulse: float = 1e12
    focus_radius: float = 0.5e-6

    def __post_init__(self):
        _positive("photon_energy", self.photon_energy)
        _positive("photons_per_pulse", self.photons_per_pulse)
        _positive("focus_radius", self.focus_radius)

    @classmethod
    def standard(cls) -> "Beam":
        """4600 eV, 1e12 photons, 0.5 um radius (the skopi/SpiniFEL test beam)."""
        return cls(4600.0, 1e12, 0.5e-6)

    @classmethod
    def from_file(cls, path) -> "Beam":
        """Read a CrystFEL-style ``.beam`` file (see :func:`read_beam_file`)."""
        return read_beam_file(path)

    @property
    def wavelength(self) -> float:
        """Wavelength in Angstrom."""
        return HC_EV_ANGSTROM / self.photon_energy

    @property
    def wavelength_m(self) -> float:
        """Wavelength in metres."""
        return self.wavelength * 1e-10

    @property
    def focus_area(self) -> float:
        """Area of the focal spot in m^2."""
        return math.pi * self.focus_radius**2

    @property
    def fluence(self) -> float:
        """Photons per m^2 per pulse at the particle."""
        return self.photons_per_pulse / self.focus_area


# Keys understood in .beam files, with the Beam field they set and a unit factor.
_BEAM_KEYS = {
    "photon_energy": ("photon_energy", 1.0),
    "photonsPerShot": ("photons_per_pulse", 1.0),
    "photons_per_shot": ("photons_per_pulse", 1.0),
    "radius": ("focus_radius", 1.0),
    "focus_radius": ("focus_radius", 1.0),
}


def read_beam_file(path) -> Beam:
    """Read a CrystFEL/skopi-style ``.beam`` file.

    Lines are ``beam/key = value``; text after ``;`` or ``#`` is a comment. Understood keys:
    ``photon_energy`` (eV), ``photonsPerShot``, ``radius`` (m) and, instead of the energy,
    ``wavelength`` (m). Other keys are logged and ignored.

    Raises
    ------
    FileNotFoundError
        When `path` does not exist.
    ValueError
        When a line cannot be parsed, a value is not a number, or no photon energy is given.
    """
    values: dict[str, float] = {}
    with open(os.fspath(path), encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, 1):
            line = raw.split(";", 1)[0].split("#", 1)[0].strip()
            if not line:
                continue
            if "=" not in line:
                raise ValueError(f"{path}:{lineno}: expected `key = value`, got {raw.strip()!r}")
            key, val = (t.strip() for t in line.split("=", 1))
            key = key.split("/")[-1]
            try:
                num = float(val.split()[0])
            except (ValueError, IndexError):
                raise ValueError(f"{path}:{lineno}: value of `{key}` is not a number: {val!r}") from None
            if key == "wavelength":
                values["photon_energy"] = HC_EV_ANGSTROM / (num * 1e10)
            elif key in _BEAM_KEYS:
                field, factor = _BEAM_KEYS[key]
                values[field] = num * factor
            else:
                log.info("%s:%d: ignoring beam key %r", path, lineno, key)
    if "photon_energy" not in values:
        raise ValueError(f"{path}: no `photon_energy` (or `wavelength`) given")
    return Beam(**values)
