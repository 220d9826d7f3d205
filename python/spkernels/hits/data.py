"""Labelled hit images: single, double, triple and quadruple hits simulated by our simulator.

A :class:`HitSet` holds, for one or more particles, each image's **expected** photons (noise
free, the beam stop and detector mask not yet applied), its number of particles and which
particle it shows. Noise is drawn when an image is used (:func:`realise`): a fluence jitter per
image (log-normal, as the particle's place in the focus varies from shot to shot) and Poisson
counts. Drawing the noise late lets training see fresh noise every epoch, and the same set
serve both the noise-free and the noisy comparison.

The photon scale is set per particle so that its single hits average `photons` photons per
image; a k-particle hit then carries about k times that (before jitter).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import numpy as np

__all__ = ["HitSet", "ParticleSpec", "parse_particle", "simulate_hits", "realise", "detector_mask",
           "read_hitset", "write_hitset"]

log = logging.getLogger("spkernels.hits")


@dataclass(frozen=True)
class ParticleSpec:
    """A particle to simulate: the built-in assembly (seed, layout, chains) or a structure file.

    `kind` is ``"demo"`` (then `seed`, `layout` and `n_subunits` describe
    :func:`spkernels.mtip.particle.demo_particle`) or ``"file"`` (then `path` is a PDB/mmCIF file).
    """

    kind: str = "demo"
    seed: int = 0
    layout: str = "cluster"
    n_subunits: int | None = None
    path: str | None = None

    def __post_init__(self):
        if self.kind not in ("demo", "file"):
            raise ValueError(f"`kind` must be 'demo' or 'file', got {self.kind!r}")
        if self.kind == "file" and not self.path:
            raise ValueError("a 'file' particle needs `path`")

    @property
    def name(self) -> str:
        """Short label, e.g. ``demo:3:ring`` or ``file:2cex.pdb`` (what :func:`parse_particle` reads)."""
        if self.kind == "file":
            return f"file:{self.path}"
        s = f"demo:{self.seed}:{self.layout}"
        return s + (f":{self.n_subunits}" if self.n_subunits else "")

    def build(self):
        """The atoms (:class:`spkernels.io.structure.AtomicStructure`) of this particle."""
        if self.kind == "file":
            from ..io.structure import read_structure

            return read_structure(self.path, remove_water=True)
        from ..mtip.particle import demo_particle

        return demo_particle(self.seed, layout=self.layout, n_subunits=self.n_subunits)


def parse_particle(text) -> ParticleSpec:
    """A :class:`ParticleSpec` from ``demo:SEED[:LAYOUT[:CHAINS]]``, ``file:PATH`` or a bare path.

    >>> parse_particle("demo:2:ring").name
    'demo:2:ring'
    """
    if isinstance(text, ParticleSpec):
        return text
    if not isinstance(text, (str, os.PathLike)):
        raise TypeError(f"`particle` must be a string like 'demo:1' or a path, got {type(text).__name__}")
    text = os.fspath(text)
    if text.startswith("file:"):
        return ParticleSpec("file", path=text[5:])
    if text.startswith("demo"):
        parts = text.split(":")
        try:
            seed = int(parts[1]) if len(parts) > 1 else 0
            layout = parts[2] if len(parts) > 2 else "cluster"
            chains = int(parts[3]) if len(parts) > 3 else None
        except ValueError as exc:
            raise ValueError(f"`particle` must look like demo:SEED[:LAYOUT[:CHAINS]], got {text!r}") from exc
        return ParticleSpec("demo", seed=seed, layout=layout, n_subunits=chains)
    return ParticleSpec("file", path=text)


@dataclass
class HitSet:
    """Labelled expected-photon images of one or more particles.

    Attributes
    ----------
    images : float32 (N, nx, ny)
        Expected photons per pixel (noise free, no mask applied) — or recorded counts when
        `counts` is True (data that already carry their noise).
    n_particles : int64 (N,)
        Particles in each image (1 = single hit).
    particle : int64 (N,)
        Index into `particle_names` of the particle each image shows.
    particle_names : list of str
    counts : bool
        True when `images` are recorded photon counts (noise already drawn).
    mask : float32 (nx, ny), optional
        The detector's usable pixels (1) and bad ones (0), when the data come with one.
    """

    images: np.ndarray
    n_particles: np.ndarray
    particle: np.ndarray
    particle_names: list = field(default_factory=list)
    counts: bool = False
    mask: np.ndarray | None = None

    def __post_init__(self):
        self.images = np.asarray(self.images, dtype=np.float32)
        if self.images.ndim != 3:
            raise ValueError(f"`images` must have shape (N, nx, ny), got {self.images.shape}")
        n = self.images.shape[0]
        self.n_particles = np.asarray(self.n_particles, dtype=np.int64).reshape(-1)
        self.particle = np.asarray(self.particle, dtype=np.int64).reshape(-1)
        if self.n_particles.shape != (n,):
            raise ValueError(f"`n_particles` must have {n} entries, got {self.n_particles.size}")
        if self.particle.shape != (n,):
            raise ValueError(f"`particle` must have {n} entries, got {self.particle.size}")
        if n and self.n_particles.min() < 1:
            raise ValueError("`n_particles` must be >= 1")
        if not np.isfinite(self.images).all() or (self.images < 0).any():
            raise ValueError("`images` must be finite and non-negative")
        self.particle_names = [str(p) for p in self.particle_names]
        if self.mask is not None:
            self.mask = (np.asarray(self.mask).reshape(-1) > 0).astype(np.float32)
            if self.mask.size != self.images.shape[1] * self.images.shape[2]:
                raise ValueError(f"`mask` must have {self.images.shape[1:]} pixels, got {self.mask.size}")
            self.mask = self.mask.reshape(self.images.shape[1:])
        if n and self.particle.max() >= max(len(self.particle_names), 1) and self.particle_names:
            raise ValueError("`particle` indexes past `particle_names`")

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def shape(self) -> tuple[int, int]:
        """(nx, ny) of the images."""
        return tuple(self.images.shape[1:])

    def subset(self, rows) -> "HitSet":
        """The images at `rows` (indices or a boolean mask)."""
        rows = np.asarray(rows)
        return HitSet(self.images[rows], self.n_particles[rows], self.particle[rows], list(self.particle_names),
                      self.counts, self.mask)

    def of_particle(self, name_or_index) -> "HitSet":
        """Only the images of one particle (its name or index)."""
        idx = (self.particle_names.index(name_or_index) if isinstance(name_or_index, str) else int(name_or_index))
        return self.subset(self.particle == idx)

    @staticmethod
    def concatenate(sets) -> "HitSet":
        """One set from several (particle names merged, indices renumbered)."""
        sets = list(sets)
        if not sets:
            raise ValueError("`sets` is empty")
        if len({s.shape for s in sets}) != 1:
            raise ValueError(f"all sets must have the same image shape, got {[s.shape for s in sets]}")
        if len({s.counts for s in sets}) != 1:
            raise ValueError("cannot mix sets of expected photons with sets of recorded counts")
        names, pidx = [], []
        for s in sets:
            local = s.particle_names or ["?"]
            remap = []
            for nm in local:
                if nm not in names:
                    names.append(nm)
                remap.append(names.index(nm))
            pidx.append(np.asarray(remap, dtype=np.int64)[s.particle])
        masks = [s.mask for s in sets if s.mask is not None]
        mask = np.prod(masks, axis=0) if masks else None
        return HitSet(np.concatenate([s.images for s in sets]), np.concatenate([s.n_particles for s in sets]),
                      np.concatenate(pidx), names, sets[0].counts, mask)


def simulate_hits(particle, n_images: int, *, detector=None, photon_energy: float = 4600.0,
                  photons: float = 1e4, multi_hit_fraction: float = 0.5, max_particles: int = 4,
                  seed=0, progress: bool = False) -> HitSet:
    """Simulate labelled hits of one particle with :func:`spkernels.mtip.simulate.simulate`.

    Parameters
    ----------
    particle : ParticleSpec, str or path
        What to image (see :func:`parse_particle`).
    n_images : int
    detector : Detector, optional
        Default: the standard detector binned 2x2 (64 x 64 pixels, as the MTIP demo).
    photon_energy : float
        eV.
    photons : float
        Mean photons of this particle's single hits; the beam is scaled to give it.
    multi_hit_fraction : float
        Share of images holding 2..`max_particles` particles (uniformly many).
    max_particles : int
    seed : int
        Orientations and layout of the hits.
    progress : bool

    Returns
    -------
    HitSet
        Expected photons (noise is drawn later by :func:`realise`).
    """
    from ..geometry import Beam, Detector
    from ..mtip.simulate import simulate

    spec = parse_particle(particle)
    if photons <= 0:
        raise ValueError(f"`photons` must be > 0, got {photons}")
    detector = Detector.standard(binning=2) if detector is None else detector
    atoms = spec.build()
    ds = simulate(n_images, atoms, detector, Beam(photon_energy, 1e12, 5e-7), seed=seed, poisson=False,
                  multi_hit_fraction=multi_hit_fraction, max_particles=max_particles, density_grid=None,
                  progress=progress)
    images = np.asarray(ds.intensities[:, 0], dtype=np.float64)
    n_part = np.ones(n_images, dtype=np.int64) if ds.n_particles is None else np.asarray(ds.n_particles)
    single = images[n_part == 1].sum(axis=(1, 2))
    if single.size == 0:  # no single hit drawn: scale by the per-particle mean of the others
        single = images.sum(axis=(1, 2)) / n_part
    images *= photons / float(single.mean())
    log.info("simulated %d hits of %s (%s per class)", n_images, spec.name, np.bincount(n_part).tolist())
    return HitSet(images.astype(np.float32), n_part, np.zeros(n_images, dtype=np.int64), [spec.name])


def detector_mask(shape, beamstop_radius: float = 0.0, mask=None) -> np.ndarray:
    """Usable pixels (nx, ny) float32: outside a central beam stop of `beamstop_radius` pixels and
    where `mask` (optional, same shape, nonzero = usable) allows."""
    nx, ny = shape
    r = np.hypot((np.arange(nx) - (nx - 1) / 2.0)[:, None], (np.arange(ny) - (ny - 1) / 2.0)[None, :])
    m = (r > beamstop_radius).astype(np.float32)
    if mask is not None:
        mask = np.asarray(mask).reshape(nx, ny)
        m *= (mask > 0).astype(np.float32)
    return m


def realise(hits: HitSet, *, noise: bool = True, fluence_jitter: float = 0.5, seed=0) -> np.ndarray:
    """Images as recorded: expected photons × a per-image log-normal fluence factor, Poisson drawn.

    `fluence_jitter` is the log-normal sigma (mean factor 1). With ``noise=False`` the jittered
    expected photons are returned. Recorded counts (``hits.counts``) are returned as they are.
    """
    if hits.counts:
        return hits.images.copy()
    if fluence_jitter < 0:
        raise ValueError(f"`fluence_jitter` must be >= 0, got {fluence_jitter}")
    rng = np.random.default_rng(seed)
    f = rng.lognormal(-0.5 * fluence_jitter ** 2, fluence_jitter, len(hits)) if fluence_jitter else np.ones(len(hits))
    lam = hits.images.astype(np.float64) * f[:, None, None]
    return (rng.poisson(lam) if noise else lam).astype(np.float32)


def write_hitset(path, hits: HitSet) -> None:
    """Write a :class:`HitSet` to HDF5 (``images``, ``n_particles``, ``particle``; attrs
    ``particle_names``, ``counts``)."""
    import h5py

    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=hits.images, compression="gzip")
        f["n_particles"] = hits.n_particles
        f["particle"] = hits.particle
        f.attrs["particle_names"] = np.array(hits.particle_names, dtype=h5py.string_dtype())
        f.attrs["counts"] = bool(hits.counts)
        f.attrs["format"] = "spkernels.hits.HitSet"
        if hits.mask is not None:
            f["mask"] = hits.mask.astype(np.uint8)


def read_hitset(path) -> HitSet:
    """Read images for the hit classifier from HDF5.

    Two layouts: a file written by :func:`write_hitset`, or an SPI file in the skopi/SpiniFEL
    layout (:func:`spkernels.io.read_spi_h5`, one panel), whose ``n_particles`` (written by
    ``spkernels mtip simulate --multi-hit``) are the labels (all 1 when absent) and whose
    intensities are taken as recorded counts.
    """
    import h5py

    with h5py.File(path, "r") as f:
        if f.attrs.get("format", "") == "spkernels.hits.HitSet":
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in f.attrs["particle_names"]]
            return HitSet(f["images"][...], f["n_particles"][...], f["particle"][...], names,
                          bool(f.attrs["counts"]), f["mask"][...] if "mask" in f else None)
    from ..io import read_spi_h5

    ds = read_spi_h5(path, load_density=False)
    if ds.intensities.shape[1] != 1:
        raise ValueError(f"{path}: the hit classifier takes one-panel images, got {ds.intensities.shape[1]} panels")
    n = ds.n_images
    n_part = np.ones(n, dtype=np.int64) if ds.n_particles is None else np.asarray(ds.n_particles)
    mask = None if ds.mask is None else ds.mask[0]
    return HitSet(ds.intensities[:, 0], n_part, np.zeros(n, dtype=np.int64), [os.path.basename(os.fspath(path))],
                  counts=True, mask=mask)
