"""Density maps in MRC/CCP4 format through mrcfile, as (z, y, x) arrays with a voxel size."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ._optional import require

__all__ = ["MRCVolume", "read_mrc", "write_mrc"]


def _mrcfile():
    return require("mrcfile", "MRC input/output")


@dataclass(frozen=True, eq=False)
class MRCVolume:
    """A map read from an MRC file.

    Attributes
    ----------
    data : ndarray, (z, y, x) float32
    voxel_size : tuple of 3 floats
        (x, y, z) voxel sizes in Angstrom, as in the MRC header (0 where the header has none).
    origin : tuple of 3 floats
        (x, y, z) origin in Angstrom from the header.
    """

    data: np.ndarray
    voxel_size: tuple
    origin: tuple


def write_mrc(path, volume, voxel_size, *, origin=(0.0, 0.0, 0.0), overwrite: bool = True) -> None:
    """Write a (z, y, x) volume as float32 MRC with the given voxel size (Angstrom).

    `voxel_size` is one number or (x, y, z). The file is written beside `path` and renamed.
    """
    mrcfile = _mrcfile()
    v = np.asarray(volume)
    if v.ndim != 3:
        raise ValueError(f"`volume` must be 3-D (z, y, x), got shape {v.shape}")
    if v.dtype.kind not in "fiu":
        raise TypeError(f"`volume` must be real numeric, got {v.dtype}")
    if not np.all(np.isfinite(v)):
        raise ValueError("`volume` holds NaN or Inf")
    vs = np.broadcast_to(np.asarray(voxel_size, dtype=np.float64), (3,))
    if not np.all(np.isfinite(vs)) or np.any(vs <= 0):
        raise ValueError(f"`voxel_size` must be > 0, got {voxel_size!r}")
    p = os.fspath(path)
    if os.path.exists(p) and not overwrite:
        raise FileExistsError(p)
    tmp = p + ".tmp"
    with mrcfile.new(tmp, overwrite=True) as m:
        m.set_data(np.ascontiguousarray(v, dtype=np.float32))
        m.voxel_size = tuple(float(x) for x in vs)
        m.header.origin = tuple(float(x) for x in origin)
        m.update_header_stats()
    os.replace(tmp, p)


def read_mrc(path, *, permissive: bool = False) -> MRCVolume:
    """Read an MRC/CCP4 map, reordered to (z, y, x) whatever the header's axis order.

    Raises
    ------
    FileNotFoundError
        When `path` does not exist.
    ValueError
        When the file is not a 3-D map.
    """
    mrcfile = _mrcfile()
    p = os.fspath(path)
    if not os.path.exists(p):
        raise FileNotFoundError(p)
    with mrcfile.open(p, mode="r", permissive=permissive) as m:
        data = np.asarray(m.data)
        if data.ndim != 3:
            raise ValueError(f"{p!r} holds a {data.ndim}-D array, expected a 3-D map")
        h = m.header
        # data axes are (sections, rows, columns); mapc/mapr/maps say which of x=1, y=2, z=3
        # each one is. Reorder so that axis 0 is z, 1 is y and 2 is x.
        labels = (int(h.maps), int(h.mapr), int(h.mapc))
        if sorted(labels) != [1, 2, 3]:
            labels = (3, 2, 1)
        perm = [labels.index(a) for a in (3, 2, 1)]
        data = np.ascontiguousarray(data.transpose(perm), dtype=np.float32)
        vs = m.voxel_size
        voxel = (float(vs.x), float(vs.y), float(vs.z))
        o = h.origin
        origin = (float(o.x), float(o.y), float(o.z))
    return MRCVolume(data, voxel, origin)
