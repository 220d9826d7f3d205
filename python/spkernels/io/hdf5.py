"""SPI diffraction datasets in the HDF5 layout skopi writes for SpiniFEL.

Layout (read and written; extra datasets are ignored by SpiniFEL):

=============================  ==========================  ===================================
name                           shape / type                meaning
=============================  ==========================  ===================================
``intensities``                (N, panels, nx, ny) f32     photons per pixel
``orientations``               (N, 1, 4) f64               ground-truth [w, x, y, z] of the
                                                           (first) particle in each image
``pixel_position_reciprocal``  (panels, nx, ny, 3) f64     s-vectors in 1/m (not 1/Angstrom)
``pixel_index_map``            (panels, nx, ny, 2) i64     (row, column) of each pixel in the
                                                           assembled image
``polarization``               (panels, nx, ny) f64        polarisation factor
``solid_angle``                (panels, nx, ny) f64        steradians
attr ``reciprocal_extent``     float                       max ``|s|`` in 1/m
attr ``det_shape``             int array                   (panels, nx, ny)
attr ``det_distance``          float                       metres
=============================  ==========================  ===================================

Orientation convention: quaternion q rotates the particle (density ``rho(R(q)^T r)`` in the
lab frame), so image n samples the particle's transform at ``R(q_n)^T s`` for the lab-frame
pixel s-vectors, as SpiniFEL's slicing does (it rotates pixels by the inverse matrix).

Written by spkernels in addition, all optional on reading: ``mask`` (panels, nx, ny) uint8
(1 = usable pixel), ``n_particles`` (N,), ``hit_orientations`` (N, k, 4) and ``hit_offsets``
(N, k, 3) in Angstrom for multi-particle hits (unused slots NaN), ``density`` (z, y, x) with attr
``voxel_size`` (the ground-truth electron density), and attrs ``photon_energy`` (eV),
``wavelength`` (Angstrom), ``photons_per_pulse``, ``focus_radius`` (m), ``fluence`` (1/m^2).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields

import numpy as np

from ._optional import require

__all__ = ["SPIDataset", "write_spi_h5", "read_spi_h5"]


def _h5py():
    return require("h5py", "HDF5 input/output")


@dataclass(eq=False)
class SPIDataset:
    """Diffraction images with their geometry, in the skopi/SpiniFEL layout (see module doc).

    Units follow the file: `pixel_position_reciprocal` in 1/m. :attr:`s_vectors` gives the same
    in 1/Angstrom, the unit the rest of spkernels uses.
    """

    intensities: np.ndarray
    pixel_position_reciprocal: np.ndarray
    orientations: np.ndarray | None = None
    pixel_index_map: np.ndarray | None = None
    polarization: np.ndarray | None = None
    solid_angle: np.ndarray | None = None
    det_distance: float | None = None
    mask: np.ndarray | None = None
    n_particles: np.ndarray | None = None
    hit_orientations: np.ndarray | None = None
    hit_offsets: np.ndarray | None = None
    density: np.ndarray | None = None
    voxel_size: float | None = None
    photon_energy: float | None = None
    wavelength: float | None = None
    photons_per_pulse: float | None = None
    focus_radius: float | None = None
    fluence: float | None = None
    attrs: dict = field(default_factory=dict)

    def __post_init__(self):
        i = np.asarray(self.intensities)
        if i.ndim == 3:  # (N, nx, ny): one panel
            i = i[:, None]
        if i.ndim != 4:
            raise ValueError(f"`intensities` must have shape (N, panels, nx, ny), got {i.shape}")
        self.intensities = i
        det = i.shape[1:]
        ppr = np.asarray(self.pixel_position_reciprocal, dtype=np.float64)
        if ppr.ndim == 3:
            ppr = ppr[None]
        if ppr.shape != det + (3,):
            raise ValueError(f"`pixel_position_reciprocal` must have shape {det + (3,)}, got {ppr.shape}")
        self.pixel_position_reciprocal = ppr
        if self.orientations is not None:
            q = np.asarray(self.orientations, dtype=np.float64)
            if q.ndim == 2:
                q = q[:, None, :]
            if q.shape != (i.shape[0], 1, 4):
                raise ValueError(f"`orientations` must have shape ({i.shape[0]}, 1, 4), got {q.shape}")
            self.orientations = q
        if self.pixel_index_map is None:
            self.pixel_index_map = _default_index_map(det)
        for name in ("polarization", "solid_angle", "mask"):
            v = getattr(self, name)
            if v is not None:
                v = np.asarray(v)
                if v.ndim == 2:
                    v = v[None]
                if v.shape != det:
                    raise ValueError(f"`{name}` must have shape {det}, got {v.shape}")
                setattr(self, name, v)

    # -- conveniences ---------------------------------------------------------------------
    @property
    def n_images(self) -> int:
        return self.intensities.shape[0]

    @property
    def det_shape(self) -> tuple[int, int, int]:
        """(panels, nx, ny)."""
        return tuple(self.intensities.shape[1:])

    @property
    def reciprocal_extent(self) -> float:
        """Largest ``|s|`` over the pixels in 1/m (skopi's ``reciprocal_extent``)."""
        return float(np.linalg.norm(self.pixel_position_reciprocal, axis=-1).max())

    @property
    def s_vectors(self) -> np.ndarray:
        """Pixel s-vectors (panels, nx, ny, 3) in 1/Angstrom."""
        return self.pixel_position_reciprocal * 1e-10

    @property
    def quaternions(self) -> np.ndarray | None:
        """Ground-truth orientations as (N, 4), or None."""
        return None if self.orientations is None else self.orientations[:, 0, :]

    def __len__(self) -> int:
        return self.n_images

    def binned(self, b: int) -> "SPIDataset":
        """The data with each panel's pixels binned b x b (a 128² detector read as 64² with b = 2).

        Photon counts add; a binned pixel's reciprocal position is the mean of its pixels', its
        solid angle their sum and its polarization their mean. It is masked out unless all its
        pixels are valid (a partly shadowed pixel's counts would not match its model). Rows and
        columns beyond a multiple of b are dropped (logged). The ground truth (orientations,
        density) is kept; the pixel index map becomes the default one of the binned panels.
        """
        if isinstance(b, bool) or not isinstance(b, (int, np.integer)) or b < 1:
            raise ValueError(f"`binning` must be a positive integer, got {b!r}")
        b = int(b)
        if b == 1:
            return self
        panels, nx, ny = self.det_shape
        if nx < b or ny < b:
            raise ValueError(f"`binning` {b} exceeds the panel size {nx} x {ny}")
        mx, my = nx // b, ny // b
        if (mx * b, my * b) != (nx, ny):
            import logging

            logging.getLogger("spkernels.io").warning("binning %d: dropping %d row(s) and %d column(s) of each "
                                                       "%d x %d panel", b, nx - mx * b, ny - my * b, nx, ny)

        inten = self.intensities[..., : mx * b, : my * b].reshape(self.n_images, panels, mx, b, my, b)
        ppr = self.pixel_position_reciprocal[:, : mx * b, : my * b].reshape(panels, mx, b, my, b, 3)
        mask = None if self.mask is None else self.mask[:, : mx * b, : my * b].reshape(panels, mx, b, my, b)
        pol = None if self.polarization is None else self.polarization[:, : mx * b, : my * b].reshape(
            panels, mx, b, my, b)
        sa = None if self.solid_angle is None else self.solid_angle[:, : mx * b, : my * b].reshape(
            panels, mx, b, my, b)
        from dataclasses import replace

        return replace(self, intensities=inten.sum(axis=(3, 5)), pixel_position_reciprocal=ppr.mean(axis=(2, 4)),
                       pixel_index_map=None,
                       mask=None if mask is None else (mask > 0).all(axis=(2, 4)).astype(self.mask.dtype),
                       polarization=None if pol is None else pol.mean(axis=(2, 4)),
                       solid_angle=None if sa is None else sa.sum(axis=(2, 4)),
                       attrs={**self.attrs, "binning": int(self.attrs.get("binning", 1)) * b})


def _default_index_map(det_shape) -> np.ndarray:
    panels, nx, ny = det_shape
    m = np.empty(det_shape + (2,), dtype=np.int64)
    m[..., 0] = np.arange(nx)[None, :, None] + np.arange(panels)[:, None, None] * nx
    m[..., 1] = np.arange(ny)[None, None, :]
    return m


_ARRAYS = ("intensities", "orientations", "pixel_position_reciprocal", "pixel_index_map", "polarization",
           "solid_angle", "mask", "n_particles", "hit_orientations", "hit_offsets", "density")
_SCALARS = ("det_distance", "voxel_size", "photon_energy", "wavelength", "photons_per_pulse", "focus_radius",
            "fluence")


def write_spi_h5(path, data: SPIDataset, *, compression: str | None = "gzip", overwrite: bool = True) -> None:
    """Write `data` to `path` in the skopi/SpiniFEL layout (see module docstring).

    The file is written to ``path + ".tmp"`` and renamed, so a crash never leaves a truncated
    file under the final name. `intensities` are stored as float32 (the layout's type).
    """
    h5py = _h5py()
    if not isinstance(data, SPIDataset):
        raise TypeError(f"`data` must be an SPIDataset, got {type(data).__name__}")
    p = os.fspath(path)
    if os.path.exists(p) and not overwrite:
        raise FileExistsError(p)
    tmp = p + ".tmp"
    kw = {"compression": compression} if compression else {}
    with h5py.File(tmp, "w") as f:
        for name in _ARRAYS:
            v = getattr(data, name)
            if v is None:
                continue
            v = np.asarray(v)
            if name == "intensities":
                v = v.astype(np.float32, copy=False)
            big = v.ndim >= 3 and v.size > 4096
            f.create_dataset(name, data=v, chunks=(1,) + v.shape[1:] if name == "intensities" else None,
                             **(kw if big else {}))
        f.attrs["reciprocal_extent"] = data.reciprocal_extent
        f.attrs["det_shape"] = np.asarray(data.det_shape, dtype=np.int64)
        for name in _SCALARS:
            v = getattr(data, name)
            if v is not None:
                (f["density"].attrs if name == "voxel_size" and "density" in f else f.attrs)[name] = float(v)
        for k, v in data.attrs.items():
            f.attrs[k] = v
    os.replace(tmp, p)


def read_spi_h5(path, *, start: int = 0, stop: int | None = None, load_density: bool = True,
                binning: int = 1) -> SPIDataset:
    """Read an SPI dataset written by skopi or by :func:`write_spi_h5`.

    Parameters
    ----------
    path : str or PathLike
    start, stop : int
        Range of images to load (all by default), so large files can be read in parts.
    load_density : bool
        Also load the ground-truth ``density`` when present.
    binning : int
        Bin each panel's pixels ``binning`` x ``binning`` on reading (:meth:`SPIDataset.binned`).

    Raises
    ------
    FileNotFoundError
        When `path` does not exist.
    ValueError
        When a required dataset (``intensities``, ``pixel_position_reciprocal``) is missing.
    """
    h5py = _h5py()
    p = os.fspath(path)
    if not os.path.exists(p):
        raise FileNotFoundError(p)
    known = set(_ARRAYS) | set(_SCALARS) | {"reciprocal_extent", "det_shape"}
    with h5py.File(p, "r") as f:
        for req in ("intensities", "pixel_position_reciprocal"):
            if req not in f:
                raise ValueError(f"{p!r} has no `{req}` dataset: not an SPI dataset")
        sel = slice(start, stop)
        kw = {}
        for name in _ARRAYS:
            if name not in f or (name == "density" and not load_density):
                continue
            ds = f[name]
            per_image = name in ("intensities", "orientations", "n_particles", "hit_orientations", "hit_offsets")
            kw[name] = ds[sel] if per_image else ds[()]
        for name in _SCALARS:
            if name in f.attrs:
                kw[name] = float(f.attrs[name])
        if "density" in f and "voxel_size" in f["density"].attrs:
            kw["voxel_size"] = float(f["density"].attrs["voxel_size"])
        extra = {k: f.attrs[k] for k in f.attrs if k not in known}
    return SPIDataset(attrs=extra, **kw).binned(binning)


# Keep the field list and the written names in step: every dataclass field except attrs is
# either an array dataset or a scalar attribute.
assert {f.name for f in fields(SPIDataset)} == set(_ARRAYS) | set(_SCALARS) | {"attrs"}
