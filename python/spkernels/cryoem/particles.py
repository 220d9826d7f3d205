"""A particle set (images, poses, CTF parameters) and RELION 3.1+ STAR + MRC stack input/output.

RELION conventions: ZYZ Euler angles ``rlnAngleRot/Tilt/Psi`` (degrees, see :mod:`.euler`),
origins ``rlnOriginXAngst/YAngst`` (Å; the image is shifted by +origin to centre the particle),
an ``optics`` table (pixel size, voltage, Cs, amplitude contrast per ``rlnOpticsGroup``),
``rlnImageName`` as ``index@stack.mrcs`` (1-based index), optional ``rlnRandomSubset`` (1/2).
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from .ctf import evaluate as _ctf_evaluate
from .euler import euler_to_matrix, matrix_to_euler
from .star import read_star, write_star

__all__ = ["ParticleSet", "read_relion", "write_relion"]

_REQUIRED = ("rlnImageName", "rlnDefocusU", "rlnDefocusV")


@dataclasses.dataclass(eq=False)
class ParticleSet:
    """Particles with poses and per-particle CTF parameters.

    Attributes
    ----------
    images : ndarray (n, box, box) float32
    pixel_size : float
        Å per pixel.
    rotations : ndarray (n, 3, 3) float64
        RELION matrices ``A`` (pixel (u, v) at frequency ``Aᵀ(u, v, 0)``).
    shifts : ndarray (n, 2) float64
        ``(rlnOriginXAngst, rlnOriginYAngst)`` in Å.
    defocus_u, defocus_v, defocus_angle : ndarray (n,) float64
        Å, Å, degrees.
    voltage, cs, amplitude_contrast : ndarray (n,) float64
        kV, mm, fraction (from the optics table).
    bfactor, phase_shift : ndarray (n,) float64
    subset : ndarray (n,) int64 or None
        ``rlnRandomSubset`` (1 or 2) when known.
    """

    images: np.ndarray
    pixel_size: float
    rotations: np.ndarray
    shifts: np.ndarray
    defocus_u: np.ndarray
    defocus_v: np.ndarray
    defocus_angle: np.ndarray
    voltage: np.ndarray
    cs: np.ndarray
    amplitude_contrast: np.ndarray
    bfactor: np.ndarray
    phase_shift: np.ndarray
    subset: np.ndarray | None = None

    def __post_init__(self):
        img = np.asarray(self.images)
        if img.ndim != 3:
            raise ValueError(f"`images` must be (n, box, box), got shape {img.shape}")
        if img.shape[1] != img.shape[2]:
            raise ValueError(f"`images` must be square, got {img.shape[1]} x {img.shape[2]} pixels")
        if img.dtype.kind not in "fiu":
            raise TypeError(f"`images` must be real, got dtype {img.dtype}")
        if not np.all(np.isfinite(img)):
            raise ValueError("`images` holds NaN or Inf")
        self.images = np.ascontiguousarray(img, dtype=np.float32)
        n = img.shape[0]
        self.pixel_size = float(self.pixel_size)
        if not (np.isfinite(self.pixel_size) and self.pixel_size > 0):
            raise ValueError(f"`pixel_size` must be positive, got {self.pixel_size}")
        rot = np.asarray(self.rotations, dtype=np.float64)
        if rot.shape != (n, 3, 3):
            raise ValueError(f"`rotations` must have shape ({n}, 3, 3), got {rot.shape}")
        if not np.all(np.isfinite(rot)):
            raise ValueError("`rotations` holds NaN or Inf")
        self.rotations = rot
        sh = np.asarray(self.shifts, dtype=np.float64)
        if sh.shape != (n, 2):
            raise ValueError(f"`shifts` must have shape ({n}, 2), got {sh.shape}")
        if not np.all(np.isfinite(sh)):
            raise ValueError("`shifts` holds NaN or Inf")
        self.shifts = sh
        for name in ("defocus_u", "defocus_v", "defocus_angle", "voltage", "cs", "amplitude_contrast", "bfactor",
                     "phase_shift"):
            v = np.broadcast_to(np.asarray(getattr(self, name), dtype=np.float64), (n,)).copy()
            if not np.all(np.isfinite(v)):
                raise ValueError(f"`{name}` holds NaN or Inf")
            setattr(self, name, v)
        if np.any(self.voltage <= 0):
            raise ValueError("`voltage` must be positive")
        if np.any((self.amplitude_contrast < 0) | (self.amplitude_contrast >= 1)):
            raise ValueError("`amplitude_contrast` must be in [0, 1)")
        if self.subset is not None:
            s = np.asarray(self.subset, dtype=np.int64)
            if s.shape != (n,) or not np.all((s == 1) | (s == 2)):
                raise ValueError("`subset` must hold 1 or 2 for every particle")
            self.subset = s

    def __len__(self):
        return self.images.shape[0]

    @property
    def box(self) -> int:
        """Image side in pixels."""
        return int(self.images.shape[1])

    def select(self, index) -> "ParticleSet":
        """The particles at `index` (integer array, slice or boolean mask)."""
        f = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out = {}
        for k, v in f.items():
            if k == "pixel_size":
                out[k] = v
            elif v is None:
                out[k] = None
            else:
                out[k] = v[index]
        return ParticleSet(**out)

    def ctf_images(self, index, n: int, pixel_size: float | None = None) -> np.ndarray:
        """CTFs of particles `index` on a centred n x n spectrum (the padded grid), float64
        (b, n, n); `pixel_size` defaults to the particles' (a padded grid keeps it)."""
        px = self.pixel_size if pixel_size is None else pixel_size
        k = (np.arange(n) - n // 2) / (n * px)
        sx, sy = np.meshgrid(k, k, indexing="xy")
        p = lambda a: a[index][:, None, None]  # noqa: E731
        return _ctf_evaluate(sx[None], sy[None], p(self.defocus_u), p(self.defocus_v), p(self.defocus_angle),
                             p(self.voltage), p(self.cs), p(self.amplitude_contrast), p(self.bfactor),
                             p(self.phase_shift))

    def euler(self) -> np.ndarray:
        """(n, 3) RELION Euler angles (rot, tilt, psi) in degrees."""
        return matrix_to_euler(self.rotations)


def _column(block, label, path, n=None):
    if label not in block:
        raise ValueError(f"{path}: the particles table has no column `{label}`")
    return block[label]


def read_relion(path, *, stack_dir=None) -> ParticleSet:
    """Read a RELION 3.1+ particle STAR file and the MRC stacks its ``rlnImageName`` names.

    Accepts files with or without an optics table (then pixel size from ``rlnImagePixelSize``
    / ``rlnPixelSize`` / ``rlnDetectorPixelSize`` columns of the particles) and with or without
    ``rlnRandomSubset``; missing angles or origins are zeros. Relative stack paths are taken from
    `stack_dir` (default the STAR file's folder, then the current directory).

    Raises ValueError naming the missing column, a stack shorter than the STAR file says, or an
    image of the wrong size.
    """
    import mrcfile

    blocks = read_star(path)
    part = blocks.get("particles")
    if part is None:
        cand = [b for b in blocks.values() if "rlnImageName" in b]
        if not cand:
            raise ValueError(f"{path}: no particles table (a data block with `rlnImageName`)")
        part = cand[0]
    for lab in _REQUIRED:
        _column(part, lab, path)
    names = [str(s) for s in part["rlnImageName"]]
    n = len(names)
    if n == 0:
        raise ValueError(f"{path}: the particles table is empty")
    optics = blocks.get("optics")
    group = part.get("rlnOpticsGroup", np.ones(n, dtype=np.int64)).astype(np.int64)

    def optic(label, default=None):
        if optics is not None and label in optics:
            table = dict(zip(np.asarray(optics.get("rlnOpticsGroup", np.arange(1, len(optics[label]) + 1))).astype(int),
                             np.asarray(optics[label], dtype=np.float64)))
            missing = set(np.unique(group)) - set(table)
            if missing:
                raise ValueError(f"{path}: optics groups {sorted(missing)} are not in the optics table")
            return np.array([table[g] for g in group])
        if label in part:
            return np.asarray(part[label], dtype=np.float64)
        if default is None:
            raise ValueError(f"{path}: no `{label}` in the optics table or the particles table")
        return np.full(n, float(default))

    px = None
    for lab in ("rlnImagePixelSize", "rlnPixelSize"):
        if (optics is not None and lab in optics) or lab in part:
            px = optic(lab)
            break
    if px is None:
        raise ValueError(f"{path}: no pixel size (`rlnImagePixelSize` in the optics table)")
    if not np.allclose(px, px[0]):
        raise ValueError(f"{path}: particles of different pixel sizes cannot form one set")
    base = os.path.dirname(os.fspath(path)) if stack_dir is None else os.fspath(stack_dir)
    # read each stack once
    refs = []
    for s in names:
        if "@" not in s:
            raise ValueError(f"{path}: `rlnImageName` {s!r} is not index@stack")
        i, st = s.split("@", 1)
        refs.append((int(i) - 1, st))
    images = None
    for st in dict.fromkeys(st for _, st in refs):
        full = st if os.path.isabs(st) else os.path.join(base, st)
        if not os.path.exists(full) and os.path.exists(st):
            full = st
        with mrcfile.mmap(full, mode="r", permissive=True) as m:
            data = np.asarray(m.data)
            if data.ndim == 2:
                data = data[None]
            rows = [j for j, (_, s2) in enumerate(refs) if s2 == st]
            idx = np.array([refs[j][0] for j in rows])
            if idx.min() < 0 or idx.max() >= data.shape[0]:
                raise ValueError(f"{path}: the STAR file names image {idx.max() + 1} of {st}, "
                                 f"which holds only {data.shape[0]} images")
            if images is None:
                images = np.empty((n,) + data.shape[1:], dtype=np.float32)
            elif data.shape[1:] != images.shape[1:]:
                raise ValueError(f"{path}: {st} holds {data.shape[1:]} images, others {images.shape[1:]}")
            images[rows] = data[idx]
    zeros = np.zeros(n)
    get = lambda lab: np.asarray(part[lab], dtype=np.float64) if lab in part else zeros  # noqa: E731
    rot = euler_to_matrix(get("rlnAngleRot"), get("rlnAngleTilt"), get("rlnAnglePsi"))
    shifts = np.stack([get("rlnOriginXAngst"), get("rlnOriginYAngst")], axis=1)
    subset = np.asarray(part["rlnRandomSubset"], dtype=np.int64) if "rlnRandomSubset" in part else None
    return ParticleSet(images=images, pixel_size=float(px[0]), rotations=rot, shifts=shifts,
                       defocus_u=get("rlnDefocusU"), defocus_v=get("rlnDefocusV"),
                       defocus_angle=get("rlnDefocusAngle"), voltage=optic("rlnVoltage", 300.0),
                       cs=optic("rlnSphericalAberration", 2.7), amplitude_contrast=optic("rlnAmplitudeContrast", 0.1),
                       bfactor=get("rlnCtfBfactor"), phase_shift=get("rlnPhaseShift"), subset=subset)


def write_relion(path, particles: ParticleSet, *, stack=None) -> None:
    """Write `particles` as a RELION 3.1 STAR file plus one MRC stack (`stack`, default the STAR
    path with ``.mrcs``), one optics group per distinct (voltage, Cs, Q0)."""
    from ..io.mrc import _mrcfile

    mrcfile = _mrcfile()
    p = os.fspath(path)
    stack = os.path.splitext(p)[0] + ".mrcs" if stack is None else os.fspath(stack)
    with mrcfile.new(stack + ".tmp", overwrite=True) as m:
        m.set_data(particles.images.astype(np.float32))
        m.set_image_stack()
        m.voxel_size = particles.pixel_size
    os.replace(stack + ".tmp", stack)
    keys = np.stack([particles.voltage, particles.cs, particles.amplitude_contrast], axis=1)
    uniq, group = np.unique(keys, axis=0, return_inverse=True)
    group = group.ravel() + 1
    optics = {
        "rlnOpticsGroupName": np.array([f"opticsGroup{i + 1}" for i in range(len(uniq))], dtype=object),
        "rlnOpticsGroup": np.arange(1, len(uniq) + 1),
        "rlnVoltage": uniq[:, 0], "rlnSphericalAberration": uniq[:, 1], "rlnAmplitudeContrast": uniq[:, 2],
        "rlnImagePixelSize": np.full(len(uniq), particles.pixel_size),
        "rlnImageSize": np.full(len(uniq), particles.box), "rlnImageDimensionality": np.full(len(uniq), 2),
    }
    rel = os.path.relpath(stack, os.path.dirname(os.path.abspath(p)) or ".")
    e = particles.euler()
    n = len(particles)
    part = {
        "rlnImageName": np.array([f"{i + 1:06d}@{rel}" for i in range(n)], dtype=object),
        "rlnOpticsGroup": group,
        "rlnAngleRot": e[:, 0], "rlnAngleTilt": e[:, 1], "rlnAnglePsi": e[:, 2],
        "rlnOriginXAngst": particles.shifts[:, 0], "rlnOriginYAngst": particles.shifts[:, 1],
        "rlnDefocusU": particles.defocus_u, "rlnDefocusV": particles.defocus_v,
        "rlnDefocusAngle": particles.defocus_angle, "rlnCtfBfactor": particles.bfactor,
        "rlnPhaseShift": particles.phase_shift,
    }
    if particles.subset is not None:
        part["rlnRandomSubset"] = particles.subset
    write_star(p, {"optics": optics, "particles": part})
