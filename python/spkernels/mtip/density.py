"""Electron densities as sums of 3-D Gaussians, on grids and in Fourier space.

Convention: ``F(s) = integral rho(r) exp(+2 pi i s . r) dr`` with s in 1/Angstrom, rho in
electrons per cubic Angstrom. A Gaussian term with weight w (electrons), width B (Angstrom^2) and
centre c has

    rho(r) = w (4 pi / B)^(3/2) exp(-4 pi^2 |r - c|^2 / B),   F(s) = w exp(-B |s|^2 / 4) exp(2 pi i s . c).

An atom of element e with displacement parameter B_atom is six such terms: its Waasmaier-Kirfel
Gaussians (amplitude a_k, width b_k + B_atom) and the constant (width B_atom). So the density of
a model is analytic: it is evaluated on a grid exactly, without a direct sum over atoms in
Fourier space. (:class:`GaussianDensity` keeps an atom as one term of its element's *species*
and expands the six Gaussians only where a real-space map is asked for.)

:class:`StructureFactorGrid` computes F at arbitrary s through a type-2 NUFFT of a sampled
density: the density is first blurred by an extra width ``b_extra`` (so the sampled grid is
alias-free up to the tolerance), transformed, and the blur divided out exactly,
``F(s) = F_blur(s) exp(+b_extra |s|^2 / 4)``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from .formfactors import gaussian_terms

__all__ = ["GaussianDensity", "StructureFactorGrid", "band_limited_density", "resolve_nufft3d2"]

log = logging.getLogger("spkernels.mtip")


def resolve_nufft3d2(nufft=None):
    """The type-2 NUFFT to use: `nufft` when given, else ``spkernels.kernels.nufft3d2``.

    Any callable with finufft's signature ``nufft3d2(x, y, z, f, eps=..., isign=...)`` works
    (``finufft.nufft3d2`` included, e.g. to cross-check the package's own NUFFT).
    """
    if nufft is not None:
        if not callable(nufft):
            raise TypeError(f"`nufft` must be callable like nufft3d2(x, y, z, f, eps=, isign=), got {nufft!r}")
        return nufft
    from ..kernels import nufft3d2

    return nufft3d2


@dataclass(frozen=True, eq=False)
class GaussianDensity:
    """A density made of isotropic 3-D Gaussians (formulas in the module docstring).

    Each term j has a centre, a weight and a width; it may belong to a *species* whose shape
    factor ``g(s) = sum_k amp_k exp(-b_k |s|^2 / 4)`` multiplies its transform, so that

        F(s) = sum_j g_{species(j)}(s) w_j exp(-W_j |s|^2 / 4) exp(2 pi i s . c_j).

    Atoms are one term each: species = element (g = its Waasmaier-Kirfel form factor),
    weight = occupancy, width = B-factor. Terms without a species (``species == -1``) have
    ``g = 1``: plain Gaussians of ``w`` electrons.

    Attributes
    ----------
    centers : ndarray (K, 3)
        Centres in Angstrom, (x, y, z).
    weights : ndarray (K,)
    widths : ndarray (K,)
        B-like widths in Angstrom^2.
    species : ndarray (K,) int
        Index into `species_terms`, or -1.
    species_terms : tuple of (amp, b) array pairs
    species_names : tuple of str
    """

    centers: np.ndarray
    weights: np.ndarray
    widths: np.ndarray
    species: np.ndarray | None = None
    species_terms: tuple = ()
    species_names: tuple = ()

    def __post_init__(self):
        c = np.ascontiguousarray(self.centers, dtype=np.float64)
        w = np.ascontiguousarray(self.weights, dtype=np.float64).reshape(-1)
        b = np.ascontiguousarray(self.widths, dtype=np.float64).reshape(-1)
        if c.ndim != 2 or c.shape[1] != 3 or c.shape[0] == 0:
            raise ValueError(f"`centers` must have shape (K, 3) with K >= 1, got {c.shape}")
        k = c.shape[0]
        if w.shape != (k,) or b.shape != (k,):
            raise ValueError(f"`weights` and `widths` must have shape ({k},), got {w.shape}, {b.shape}")
        sp = np.full(k, -1, dtype=np.int64) if self.species is None else np.asarray(self.species, dtype=np.int64)
        if sp.shape != (k,) or np.any(sp < -1) or np.any(sp >= len(self.species_terms)):
            raise ValueError(f"`species` must hold indices into `species_terms` or -1, shape ({k},)")
        for name, a in (("centers", c), ("weights", w), ("widths", b)):
            if not np.all(np.isfinite(a)):
                raise ValueError(f"`{name}` holds NaN or Inf")
        terms = tuple((np.asarray(a, dtype=np.float64), np.asarray(bb, dtype=np.float64))
                      for a, bb in self.species_terms)
        names = tuple(self.species_names) or tuple(f"species{i}" for i in range(len(terms)))
        for name, a in (("centers", c), ("weights", w), ("widths", b), ("species", sp)):
            a.setflags(write=False)
            object.__setattr__(self, name, a)
        object.__setattr__(self, "species_terms", terms)
        object.__setattr__(self, "species_names", names)

    @classmethod
    def from_atoms(cls, structure, *, b_factor: float | None = None) -> "GaussianDensity":
        """One term per atom, species = element with its Waasmaier-Kirfel form factor.

        Parameters
        ----------
        structure : spkernels.io.AtomicStructure
        b_factor : float, optional
            Use this B (Angstrom^2) for every atom instead of the model's B-factors.
        """
        n = structure.n_atoms
        b_atom = np.full(n, float(b_factor)) if b_factor is not None else np.asarray(structure.b_factors, float)
        if np.any(b_atom < 0):
            raise ValueError("atomic B-factors must be >= 0")
        names, species = np.unique(structure.elements, return_inverse=True)
        terms = tuple(gaussian_terms(e) for e in names)
        return cls(structure.coords, structure.occupancies, b_atom, species, terms, tuple(str(e) for e in names))

    @property
    def n_terms(self) -> int:
        return self.weights.shape[0]

    def _groups(self):
        """(species index, term indices, (amp, b)) for every species present, -1 included."""
        out = []
        for v in np.unique(self.species):
            idx = np.flatnonzero(self.species == v)
            ab = (np.ones(1), np.zeros(1)) if v < 0 else self.species_terms[v]
            out.append((int(v), idx, ab))
        return out

    @property
    def n_electrons(self) -> float:
        """F(0): the integral of the density."""
        return float(sum(self.weights[idx].sum() * ab[0].sum() for _, idx, ab in self._groups()))

    def radius(self) -> float:
        """Largest distance of a centre from the origin (Angstrom)."""
        return float(np.linalg.norm(self.centers, axis=1).max())

    def expanded(self) -> "GaussianDensity":
        """The same density with every species term split into its plain Gaussians."""
        cs, ws, bs = [], [], []
        for v, idx, (amp, b) in self._groups():
            cs.append(np.repeat(self.centers[idx], amp.size, axis=0))
            ws.append((self.weights[idx, None] * amp[None, :]).reshape(-1))
            bs.append((self.widths[idx, None] + b[None, :]).reshape(-1))
        return GaussianDensity(np.concatenate(cs), np.concatenate(ws), np.concatenate(bs))

    def structure_factors(self, s, *, chunk: int = 1 << 22) -> np.ndarray:
        """F(s) by direct summation over the terms: exact, O(K M); the oracle for small models.

        `s` is (..., 3) in 1/Angstrom; returns complex128 of shape s.shape[:-1].
        """
        s = np.asarray(s, dtype=np.float64)
        if s.shape[-1] != 3:
            raise ValueError(f"`s` must have shape (..., 3), got {s.shape}")
        flat = s.reshape(-1, 3)
        s2 = np.sum(flat * flat, axis=1)
        out = np.zeros(flat.shape[0], dtype=np.complex128)
        for _, idx, (amp, b) in self._groups():
            g = np.exp(-np.outer(s2, b) / 4.0) @ amp
            step = max(1, chunk // idx.size)
            for i in range(0, flat.shape[0], step):
                sl = slice(i, i + step)
                t = self.weights[idx] * np.exp(-np.outer(s2[sl], self.widths[idx]) / 4.0)
                t = t * np.exp(2j * np.pi * (flat[sl] @ self.centers[idx].T))
                out[sl] += g[sl] * t.sum(axis=1)
        return out.reshape(s.shape[:-1])

    def on_grid(self, shape, voxel_size: float, *, b_extra: float = 0.0, truncate: float = 1e-8) -> np.ndarray:
        """Point samples of the density (e/Angstrom^3) on a (z, y, x) grid centred at the origin.

        Voxel index i of an axis of length n sits at ``(i - n // 2) * voxel_size``. Every width
        is increased by `b_extra` (a Gaussian blur: F is multiplied by ``exp(-b_extra |s|^2/4)``).
        Each Gaussian is evaluated in a box where it exceeds `truncate` times its peak; parts
        outside the grid are dropped. Point samples represent the density only when its
        narrowest Gaussian spans a few voxels: blur with `b_extra`, or use
        :func:`band_limited_density` for a map to compare with.

        Raises
        ------
        ValueError
            When a total width is not positive (e.g. the C and N terms of the WK fits with
            B = 0), or a centre lies outside the grid.
        """
        g = self if self.species_terms == () and np.all(self.species < 0) else self.expanded()
        return _splat_gaussians(g.centers, g.weights, g.widths + float(b_extra), shape, voxel_size, truncate)


def _splat_gaussians(centers, weights, widths, shape, voxel_size, truncate):
    """Sum of normalised Gaussians (weight w, width B) sampled on a centred (z, y, x) grid."""
    shape = tuple(int(n) for n in np.broadcast_to(np.asarray(shape), (3,)))
    if min(shape) < 1:
        raise ValueError(f"`shape` must be positive, got {shape}")
    d = float(voxel_size)
    if not d > 0:
        raise ValueError(f"`voxel_size` must be > 0, got {voxel_size}")
    if not 0 < truncate < 1:
        raise ValueError(f"`truncate` must be in (0, 1), got {truncate}")
    if np.any(widths <= 0):
        raise ValueError(f"total Gaussian widths must be > 0 (smallest is {widths.min():.3g}); "
                         "raise `b_extra` or the atomic B-factors")
    half = np.array(shape[::-1]) // 2  # (x, y, z)
    upper = np.array(shape[::-1]) - 1 - half
    u = centers / d  # grid units, (x, y, z)
    if np.any(u < -half - 0.5) or np.any(u > upper + 0.5):
        raise ValueError("a Gaussian centre lies outside the grid: enlarge `shape` or `voxel_size`")
    from ._splat import splat_gaussians

    out = np.zeros(shape)
    alpha = 4.0 * np.pi**2 / widths  # exp(-alpha r^2)
    peak = weights * (4.0 * np.pi / widths) ** 1.5
    # Gaussians of similar width share a box size: sort by width and group (<= 25% spread).
    # The sort is stable and the loop serial, so the sum order (and result) is reproducible.
    order = np.argsort(widths, kind="stable")
    sorted_w = widths[order]
    log_t = math.log(1.0 / truncate)
    i = 0
    while i < order.size:
        j = int(np.searchsorted(sorted_w, sorted_w[i] * 1.25, side="right"))
        grp = order[i:j]
        rb = int(math.ceil(math.sqrt(log_t / alpha[grp].min()) / d))
        splat_gaussians(out, np.ascontiguousarray(u[grp]), np.ascontiguousarray(alpha[grp]),
                        np.ascontiguousarray(peak[grp]), d, half.astype(np.int64), rb)
        i = j
    return out


class StructureFactorGrid:
    """F(s) of a :class:`GaussianDensity` for ``|s| <= s_max`` through a type-2 NUFFT.

    The density is blurred by ``b_extra``, sampled on a grid of voxel ``1 / (sampling s_max)``
    and transformed at the requested s by the NUFFT; the blur is then divided out. ``b_extra``
    is chosen so that the aliased copies of the spectrum (at distance ``1/voxel - s_max`` or
    more) are below `tol` relative to the signal, which costs an amplification
    ``exp(b_extra s_max^2 / 4)`` of the NUFFT's own error; the NUFFT's `eps` is set accordingly.

    Parameters
    ----------
    density : GaussianDensity
    s_max : float
        Largest ``|s|`` (1/Angstrom) that will be asked for.
    tol : float
        Target relative accuracy of F (aliasing, truncation and NUFFT together; see the tests
        for measured figures).
    sampling : float
        Grid frequency ``1/voxel`` in units of ``s_max`` (> 2).
    nufft : callable, optional
        ``nufft3d2(x, y, z, f, eps=, isign=)``; default :func:`resolve_nufft3d2`.
    eps : float, optional
        NUFFT tolerance; default ``tol / (10 * amplification)`` clipped to [1e-13, 1e-4].
    """

    def __init__(self, density: GaussianDensity, s_max: float, *, tol: float = 1e-6, sampling: float = 4.0,
                 nufft=None, eps: float | None = None):
        if not isinstance(density, GaussianDensity):
            raise TypeError(f"`density` must be a GaussianDensity, got {type(density).__name__}")
        if not (s_max > 0 and math.isfinite(s_max)):
            raise ValueError(f"`s_max` must be > 0, got {s_max}")
        if not 0 < tol < 1:
            raise ValueError(f"`tol` must be in (0, 1), got {tol}")
        if not sampling > 2:
            raise ValueError(f"`sampling` must be > 2, got {sampling}")
        self.density = density
        self.s_max = float(s_max)
        self.voxel_size = 1.0 / (sampling * s_max)
        inv_d = 1.0 / self.voxel_size
        self.b_extra = 4.0 * math.log(1.0 / tol) / (inv_d * (inv_d - 2.0 * s_max))
        # every width + b_extra must be positive (WK terms of C and N have b <= 0 at B = 0)
        min_width = float(density.expanded().widths.min()) if density.species_terms else float(density.widths.min())
        self.b_extra = max(self.b_extra, 1.0 - min_width)
        amplification = math.exp(self.b_extra * s_max**2 / 4.0)
        self.eps = float(eps) if eps is not None else float(np.clip(tol / (10 * amplification), 1e-13, 1e-4))
        self._nufft = resolve_nufft3d2(nufft)
        truncate = min(tol * 1e-2, 1e-6)
        w_max = float(density.widths.max()) + max((float(b.max()) for _, b in density.species_terms), default=0.0) \
            + self.b_extra
        r_tail = math.sqrt(math.log(1.0 / truncate) * w_max) / (2.0 * math.pi)
        n = 2 * int(math.ceil((density.radius() + r_tail) / self.voxel_size)) + 2
        self.shape = (n, n, n)
        # All species expanded into plain Gaussians on one grid: one NUFFT vector instead of
        # one per element (the spreading is cheap next to the NUFFT's per-point work).
        g = density.expanded() if density.species_terms else density
        vol = _splat_gaussians(g.centers, g.weights, g.widths + self.b_extra, self.shape, self.voxel_size, truncate)
        # the NUFFT sum approximates the integral: weight each sample by the voxel volume
        self.grid = (vol * self.voxel_size**3).astype(np.complex128)
        log.info("structure-factor grid %s, voxel %.3f A, b_extra %.1f A^2, eps %.1e", self.shape,
                 self.voxel_size, self.b_extra, self.eps)

    def __call__(self, s) -> np.ndarray:
        """F at s (..., 3) in 1/Angstrom (all ``|s| <= s_max``); complex128 of shape s.shape[:-1]."""
        s = np.asarray(s, dtype=np.float64)
        if s.shape[-1] != 3:
            raise ValueError(f"`s` must have shape (..., 3), got {s.shape}")
        flat = s.reshape(-1, 3)
        s2 = np.sum(flat * flat, axis=1)
        if s2.size and s2.max() > (self.s_max * (1 + 1e-9)) ** 2:
            raise ValueError(f"`s` exceeds s_max = {self.s_max} (|s| up to {math.sqrt(s2.max()):.4g})")
        t = 2.0 * np.pi * self.voxel_size * flat
        # grid axis 0 is z: the NUFFT's first coordinate goes with it
        c = self._nufft(np.ascontiguousarray(t[:, 2]), np.ascontiguousarray(t[:, 1]),
                        np.ascontiguousarray(t[:, 0]), self.grid, eps=self.eps, isign=1)
        out = np.asarray(c).reshape(-1) * np.exp(self.b_extra * s2 / 4.0)
        return out.reshape(s.shape[:-1])


def band_limited_density(density, n: int, voxel_size: float, *, s_limit: float | None = None,
                         tol: float = 1e-6, nufft=None) -> np.ndarray:
    """The density band-limited to ``|s| <= s_limit``, sampled on an n^3 (z, y, x) grid.

    F is evaluated (through :class:`StructureFactorGrid`) at the grid's DFT frequencies
    ``k / (n voxel_size)`` inside the sphere ``|s| <= s_limit`` (default, and at most, the
    Nyquist frequency ``1 / (2 voxel_size)``), set to zero outside, and transformed back: a
    map without aliasing that holds what data reaching `s_limit` can determine, the reference
    for a reconstruction on this grid. Voxel ``i`` sits at ``(i - n // 2) * voxel_size``; the
    box is periodic and must contain the particle. The sharp cut-off rings slightly in real
    space; odd `n` keeps the map exactly real.

    Parameters
    ----------
    density : GaussianDensity or StructureFactorGrid
        A ready StructureFactorGrid is reused when its ``s_max`` covers `s_limit`.
    """
    n = int(n)
    if n < 2:
        raise ValueError(f"`n` must be >= 2, got {n}")
    d = float(voxel_size)
    if not d > 0:
        raise ValueError(f"`voxel_size` must be > 0, got {voxel_size}")
    nyquist = 1.0 / (2.0 * d)
    s_limit = nyquist if s_limit is None else float(s_limit)
    if not 0 < s_limit <= nyquist * (1 + 1e-12):
        raise ValueError(f"`s_limit` must be in (0, {nyquist:.6g}] (Nyquist of the grid), got {s_limit}")
    if isinstance(density, StructureFactorGrid):
        model = density
        if model.s_max < s_limit * (1 - 1e-12):
            raise ValueError(f"the StructureFactorGrid reaches s = {model.s_max:.6g}, below `s_limit`")
        gd = model.density
    elif isinstance(density, GaussianDensity):
        model, gd = None, density
    else:
        raise TypeError(f"`density` must be a GaussianDensity or StructureFactorGrid, got {type(density).__name__}")
    if gd.radius() > (n // 2) * d:
        raise ValueError(f"the particle (radius {gd.radius():.1f} A) does not fit in {n} voxels of {d} A")
    if model is None:
        model = StructureFactorGrid(gd, s_limit, tol=tol, nufft=nufft)
    f = np.fft.fftfreq(n, d=d)  # 1/Angstrom, FFT order
    kz, ky, kx = np.meshgrid(f, f, f, indexing="ij")
    s = np.stack([kx, ky, kz], axis=-1).reshape(-1, 3)
    inside = np.sum(s * s, axis=1) <= min(s_limit, model.s_max) ** 2
    big_f = np.zeros(n**3, dtype=np.complex128)
    big_f[inside] = model(s[inside])
    # rho(r_j) = (1 / (n d)^3) sum_k F(s_k) exp(-2 pi i s_k . r_j): a forward DFT
    rho = np.fft.fftn(big_f.reshape(n, n, n)) / (n * d) ** 3
    return np.ascontiguousarray(np.fft.fftshift(rho).real)
