"""A built-in test particle: a procedurally generated pseudo-protein assembly.

Nothing is downloaded: a seeded generator builds compact globular chains and arranges them either
as a compact asymmetric cluster (the default) or as a nearly symmetric ring with an off-axis cap.
Each chain is a self-avoiding random walk of C-alpha positions (3.8 Angstrom steps) confined to
an ellipsoid of protein density, dressed with backbone N, C, O atoms and side chains whose element
mix matches proteins (about 7.8 heavy atoms and 110 Da per residue with implicit hydrogens).
Subunits differ in size, shape and tilt, so the assembly has a unique orientation.
"""

from __future__ import annotations

import math

import numpy as np

from ..io.structure import AtomicStructure

__all__ = ["demo_particle"]

_CA_STEP = 3.8  # Angstrom between consecutive C-alpha atoms
_PROTEIN_DA_PER_A3 = 0.81  # 1.35 g/cm^3
_DA_PER_RESIDUE = 110.0
# Side-chain heavy atoms beyond C-alpha: counts of C, N, O, S per residue on average, so that
# the whole protein is about 63% C, 17% N, 19% O and 1% S by atom count.
_SIDE_ELEMENTS = np.array(["C", "N", "O", "S"])
_SIDE_P = np.array([2.9, 0.33, 0.48, 0.08]) / 3.79
_SIDE_MEAN = 3.79


def _unit(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _random_rotation(rng) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    return q


def _chain(n_res: int, semi_axes: np.ndarray, rng) -> np.ndarray:
    """C-alpha positions of a compact chain filling an ellipsoid (centred at the origin)."""
    cell = 4.2  # occupancy grid for self-avoidance
    occupied: set[tuple[int, int, int]] = set()
    pos = np.zeros((n_res, 3))
    p = rng.uniform(-0.3, 0.3, 3) * semi_axes
    d = _unit(rng.standard_normal(3))
    for i in range(n_res):
        pos[i] = p
        occupied.add(tuple(np.floor(p / cell).astype(int)))
        # try persistent-random directions; keep the first that stays inside and is unoccupied
        cand = _unit(0.6 * d + rng.standard_normal((24, 3)))
        nxt = p + _CA_STEP * cand
        inside = np.sum((nxt / semi_axes) ** 2, axis=1) <= 1.0
        free = np.array([tuple(np.floor(x / cell).astype(int)) not in occupied for x in nxt])
        ok = np.flatnonzero(inside & free)
        if ok.size == 0:
            ok = np.flatnonzero(inside)
        if ok.size == 0:  # pull back towards the centre
            k = int(np.argmin(np.sum((nxt / semi_axes) ** 2, axis=1)))
        else:
            k = int(ok[0])
        d = cand[k]
        p = nxt[k]
    return pos


def _dress(ca: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
    """Backbone N, C, O and side-chain atoms around a C-alpha trace."""
    n = ca.shape[0]
    fwd = np.empty_like(ca)
    fwd[:-1] = _unit(ca[1:] - ca[:-1])
    fwd[-1] = fwd[-2] if n > 1 else _unit(rng.standard_normal(3))
    back = np.empty_like(ca)
    back[1:] = -fwd[:-1]
    back[0] = -fwd[0]
    jitter = lambda: 0.35 * rng.standard_normal((n, 3))  # noqa: E731
    n_at = ca + 1.46 * _unit(back + jitter())
    c_at = ca + 1.52 * _unit(fwd + jitter())
    o_at = c_at + 1.23 * _unit(np.cross(fwd, back + jitter()) + 0.3 * rng.standard_normal((n, 3)))
    coords = [ca, n_at, c_at, o_at]
    elements = [np.full(n, "C"), np.full(n, "N"), np.full(n, "C"), np.full(n, "O")]
    # side chains point away from the backbone, grown atom by atom
    n_side = np.minimum(rng.poisson(_SIDE_MEAN, n), 9)
    out_dir = _unit(-(fwd + back) + 0.5 * rng.standard_normal((n, 3)))
    tip = ca.copy()
    for k in range(int(n_side.max(initial=0))):
        has = n_side > k
        step = _unit(out_dir + 0.6 * rng.standard_normal((n, 3)))
        tip = tip + 1.53 * step
        coords.append(tip[has])
        elements.append(rng.choice(_SIDE_ELEMENTS, size=int(has.sum()), p=_SIDE_P))
    return np.concatenate(coords), np.concatenate(elements)


def demo_particle(seed: int = 0, *, layout: str = "cluster", n_subunits: int | None = None, residues=None,
                  cap_residues: int = 800, b_factor: float = 20.0) -> AtomicStructure:
    """Build the built-in pseudo-protein assembly.

    Two layouts:

    - ``"cluster"`` (default, about 560 kDa, about 150 Å across): 6 chains of 700–1000 residues
      docked one by one against the growing assembly, each where it sits closest to the
      assembly's centre. Compact and without symmetry, like most large complexes, so every
      orientation is distinct.
    - ``"ring"`` (about 650 kDa, about 190 Å): 6 chains of 700–950 residues on a ring plus an
      off-axis cap of ``cap_residues``. Nearly 6-fold symmetric: a hard case for orientation
      recovery from scratch, since symmetric mates of an orientation fit the data almost equally.

    Parameters
    ----------
    seed : int
        Seed of the generator: the same seed always gives the same atoms.
    layout : {"cluster", "ring"}
    n_subunits : int, optional
        Chains (in the ring, or in the cluster); default 6.
    residues : (int, int), optional
        Range of residues per chain (drawn uniformly).
    cap_residues : int
        Residues of the ring's off-axis cap chain (0 for none; unused by the cluster).
    b_factor : float
        B-factor given to every atom (Angstrom^2).

    Returns
    -------
    AtomicStructure
        Centred on its electron-weighted centre; chains named A, B, ...
    """
    if layout not in ("cluster", "ring"):
        raise ValueError(f"`layout` must be 'cluster' or 'ring', got {layout!r}")
    n_subunits = 6 if n_subunits is None else n_subunits
    residues = ((700, 1000) if layout == "cluster" else (700, 950)) if residues is None else residues
    if n_subunits < 1:
        raise ValueError(f"`n_subunits` must be >= 1, got {n_subunits}")
    if not 1 <= residues[0] <= residues[1]:
        raise ValueError(f"`residues` must be (low, high) with 1 <= low <= high, got {residues}")
    rng = np.random.default_rng(seed)
    sizes = rng.integers(residues[0], residues[1] + 1, n_subunits)
    radii = _globule_radius(sizes)
    if layout == "cluster":
        specs = list(zip((int(n) for n in sizes), _docked_centres(radii, rng)))
        return _assemble(specs, rng, b_factor, f"spkernels-demo-cluster-{seed}")
    ring_r = 0.85 * radii.mean() / math.sin(math.pi / n_subunits) if n_subunits > 1 else 0.0
    specs = []
    for k in range(n_subunits):
        phi = 2 * math.pi * k / n_subunits + rng.normal(0, 0.05)
        centre = np.array([ring_r * math.cos(phi), ring_r * math.sin(phi), rng.normal(0, 4.0)])
        specs.append((int(sizes[k]), centre))
    if cap_residues:
        r_cap = float(_globule_radius(cap_residues))
        phi = rng.uniform(0, 2 * math.pi)
        centre = np.array([0.45 * ring_r * math.cos(phi), 0.45 * ring_r * math.sin(phi),
                           radii.mean() + 0.8 * r_cap])
        specs.append((int(cap_residues), centre))
    return _assemble(specs, rng, b_factor, f"spkernels-demo-{seed}")


def _globule_radius(n_res):
    """Radius (Angstrom) of a sphere of protein density holding `n_res` residues."""
    return (3.0 * np.asarray(n_res) * _DA_PER_RESIDUE / _PROTEIN_DA_PER_A3 / (4.0 * math.pi)) ** (1.0 / 3.0)


def _docked_centres(radii, rng, *, contact: float = 0.85, tries: int = 32) -> list:
    """Centres of spheres docked one by one: each new sphere touches the assembly (centre
    distance ``contact`` × the sum of radii to its nearest neighbour) at the spot, among
    `tries` random directions, closest to the assembly's centre of mass."""
    centres = [np.zeros(3)]
    for r in radii[1:]:
        placed = np.array(centres)
        com = (placed * radii[: len(placed), None] ** 3).sum(axis=0) / (radii[: len(placed)] ** 3).sum()
        best, best_d = None, np.inf
        for d in _unit(rng.standard_normal((tries, 3))):
            # march out from the centre of mass until no sphere overlaps more than `contact` allows
            t = 0.0
            while True:
                c = com + t * d
                gap = np.linalg.norm(placed - c, axis=1) - contact * (radii[: len(placed)] + r)
                if (gap >= 0).all():
                    break
                t += max(float(-gap.min()), 0.5)
            if t < best_d:
                best, best_d = c, t
        centres.append(best)
    return centres


def _assemble(specs, rng, b_factor: float, name: str) -> AtomicStructure:
    """Atoms of compact chains (residues, centre) with random shapes and tilts."""
    coords, elements, chains = [], [], []
    for k, (n_res, centre) in enumerate(specs):
        r = float(_globule_radius(n_res))
        # prolate/oblate globules of the same volume, randomly tilted
        stretch = rng.uniform(0.8, 1.25, 3)
        stretch /= np.prod(stretch) ** (1.0 / 3.0)
        ca = _chain(n_res, r * stretch, rng)
        xyz, el = _dress(ca, rng)
        xyz = xyz @ _random_rotation(rng).T + centre
        coords.append(xyz)
        elements.append(el)
        chains.append(np.full(el.size, chr(ord("A") + k % 26)))
    coords = np.concatenate(coords)
    elements = np.concatenate(elements)
    n = elements.size
    s = AtomicStructure(coords, elements, np.full(n, float(b_factor)), np.ones(n), np.concatenate(chains), name)
    return s.centered()
