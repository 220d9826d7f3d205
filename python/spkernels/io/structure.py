"""Atomic structures (PDB, mmCIF) read through gemmi into plain NumPy arrays."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import numpy as np

from ._optional import require

__all__ = ["AtomicStructure", "read_structure", "list_assemblies", "write_structure"]

log = logging.getLogger("spkernels.io")


def _gemmi():
    return require("gemmi", "reading structures")


@dataclass(frozen=True, eq=False)
class AtomicStructure:
    """Atoms as arrays: what simulation and resolution measurement need from a model.

    Attributes
    ----------
    coords : ndarray, (n, 3) float64
        Cartesian coordinates in Angstrom.
    elements : ndarray, (n,) str
        Element symbols, capitalised as in the periodic table (``"C"``, ``"Zn"``).
    b_factors : ndarray, (n,) float64
        Isotropic displacement parameters B in Angstrom^2.
    occupancies : ndarray, (n,) float64
    chain_ids : ndarray, (n,) str
    name : str
    """

    coords: np.ndarray
    elements: np.ndarray
    b_factors: np.ndarray
    occupancies: np.ndarray
    chain_ids: np.ndarray
    name: str = ""
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        c = np.ascontiguousarray(self.coords, dtype=np.float64)
        if c.ndim != 2 or c.shape[1] != 3:
            raise ValueError(f"`coords` must have shape (n, 3), got {c.shape}")
        n = c.shape[0]
        if not np.all(np.isfinite(c)):
            raise ValueError("`coords` holds NaN or Inf")
        arrays = {"coords": c}
        for name, dtype in (("elements", str), ("b_factors", np.float64), ("occupancies", np.float64),
                            ("chain_ids", str)):
            a = np.asarray(getattr(self, name)).astype(dtype)
            if a.shape != (n,):
                raise ValueError(f"`{name}` must have shape ({n},), got {a.shape}")
            arrays[name] = a
        if not np.all(np.isfinite(arrays["b_factors"])):
            raise ValueError("`b_factors` holds NaN or Inf")
        for k, v in arrays.items():
            v.setflags(write=False)
            object.__setattr__(self, k, v)

    @property
    def n_atoms(self) -> int:
        return self.coords.shape[0]

    def __len__(self) -> int:
        return self.n_atoms

    def _element_table(self):
        if "table" not in self._cache:
            gemmi = _gemmi()
            uniq, inv = np.unique(self.elements, return_inverse=True)
            z = np.array([gemmi.Element(e).atomic_number for e in uniq])
            w = np.array([gemmi.Element(e).weight for e in uniq])
            self._cache["table"] = (z[inv], w[inv])
        return self._cache["table"]

    @property
    def atomic_numbers(self) -> np.ndarray:
        """Atomic number of each atom."""
        return self._element_table()[0]

    @property
    def mass(self) -> float:
        """Sum of atomic weights times occupancies in Dalton (atoms present in the model only)."""
        return float(np.sum(self._element_table()[1] * self.occupancies))

    @property
    def n_electrons(self) -> float:
        """Electrons of the neutral atoms times occupancies: the forward scattering F(0)."""
        return float(np.sum(self.atomic_numbers * self.occupancies))

    def center_of_mass(self, weights: str = "electrons") -> np.ndarray:
        """Centre weighted by ``"electrons"`` (Z * occupancy), ``"mass"`` or ``"none"``."""
        if weights == "electrons":
            w = self.atomic_numbers * self.occupancies
        elif weights == "mass":
            w = self._element_table()[1] * self.occupancies
        elif weights == "none":
            w = np.ones(self.n_atoms)
        else:
            raise ValueError(f"`weights` must be 'electrons', 'mass' or 'none', got {weights!r}")
        return (w[:, None] * self.coords).sum(0) / w.sum()

    def transformed(self, rotation=None, shift=None) -> "AtomicStructure":
        """A copy with coordinates ``R @ x + shift`` (rotation matrix acting on column vectors)."""
        c = self.coords
        if rotation is not None:
            r = np.asarray(rotation, dtype=np.float64)
            if r.shape != (3, 3):
                raise ValueError(f"`rotation` must be a 3x3 matrix, got {r.shape}")
            c = c @ r.T
        if shift is not None:
            c = c + np.asarray(shift, dtype=np.float64)
        return AtomicStructure(c, self.elements, self.b_factors, self.occupancies, self.chain_ids, self.name)

    def centered(self, weights: str = "electrons") -> "AtomicStructure":
        """A copy moved so that its centre (see :meth:`center_of_mass`) is at the origin."""
        return self.transformed(shift=-self.center_of_mass(weights))

    def radius(self) -> float:
        """Largest distance of an atom from the electron-weighted centre, in Angstrom."""
        return float(np.linalg.norm(self.coords - self.center_of_mass(), axis=1).max())


def _to_arrays(model, name: str) -> AtomicStructure:
    coords, elements, b, occ, chains = [], [], [], [], []
    for chain in model:
        for res in chain:
            for atom in res:
                p = atom.pos
                coords.append((p.x, p.y, p.z))
                elements.append(atom.element.name)
                b.append(atom.b_iso)
                occ.append(atom.occ)
                chains.append(chain.name)
    if not coords:
        raise ValueError(f"structure {name!r} has no atoms left")
    return AtomicStructure(np.array(coords), np.array(elements), np.array(b), np.array(occ),
                           np.array(chains), name)


def list_assemblies(path) -> list[str]:
    """Names of the biological assemblies a PDB (REMARK 350) or mmCIF file defines."""
    gemmi = _gemmi()
    st = gemmi.read_structure(os.fspath(path))
    return [a.name for a in st.assemblies]


def read_structure(path, *, assembly: str | None = None, model: int = 0, remove_water: bool = False,
                   remove_hydrogens: bool = False, remove_ligands: bool = False) -> AtomicStructure:
    """Read a PDB or mmCIF file (optionally gzipped) with gemmi.

    Parameters
    ----------
    path : str or PathLike
    assembly : str, optional
        Name of a biological assembly to build (see :func:`list_assemblies`, often ``"1"``);
        ``None`` keeps the deposited asymmetric unit.
    model : int
        Index of the model to keep (NMR ensembles have several).
    remove_water, remove_hydrogens, remove_ligands : bool
        Drop waters, hydrogens, or ligands and waters, before returning.

    Raises
    ------
    FileNotFoundError
        When `path` does not exist.
    ValueError
        When the assembly or model does not exist, or no atoms are left.
    """
    gemmi = _gemmi()
    p = os.fspath(path)
    if not os.path.exists(p):
        raise FileNotFoundError(p)
    st = gemmi.read_structure(p)
    if len(st) == 0:
        raise ValueError(f"`path` {p!r} holds no models")
    if not 0 <= model < len(st):
        raise ValueError(f"`model` must be in [0, {len(st)}), got {model}")
    st.setup_entities()
    if remove_ligands:
        st.remove_ligands_and_waters()
    elif remove_water:
        st.remove_waters()
    if remove_hydrogens:
        st.remove_hydrogens()
    if model:
        keep = st[model].clone() if hasattr(st[model], "clone") else st[model]
        while len(st) > 0:
            del st[0]
        st.add_model(keep)
    else:
        while len(st) > 1:
            del st[1]
    if assembly is not None:
        names = [a.name for a in st.assemblies]
        if str(assembly) not in names:
            raise ValueError(f"`assembly` {assembly!r} not in {p!r}; it defines {names or 'none'}")
        st.transform_to_assembly(str(assembly), gemmi.HowToNameCopiedChain.AddNumber)
        log.info("built assembly %s of %s", assembly, p)
    return _to_arrays(st[0], st.name)


def write_structure(structure: AtomicStructure, path) -> None:
    """Write atoms to PDB (``.pdb``/``.ent``) or mmCIF (``.cif``) through gemmi.

    Every atom becomes its own residue ``UNK`` (the arrays carry no residue information), which
    is enough to view a generated particle or read it back with :func:`read_structure`.
    """
    gemmi = _gemmi()
    st = gemmi.Structure()
    st.name = structure.name or "spkernels"
    model = gemmi.Model("1") if _model_takes_name(gemmi) else gemmi.Model(1)
    chains: dict[str, object] = {}
    for i in range(structure.n_atoms):
        cid = str(structure.chain_ids[i]) or "A"
        if cid not in chains:
            chains[cid] = gemmi.Chain(cid)
        res = gemmi.Residue()
        res.name = "UNK"
        res.seqid = gemmi.SeqId(len(chains[cid]) + 1, " ")
        atom = gemmi.Atom()
        el = str(structure.elements[i])
        atom.name = el.upper()
        atom.element = gemmi.Element(el)
        atom.pos = gemmi.Position(*structure.coords[i])
        atom.b_iso = float(structure.b_factors[i])
        atom.occ = float(structure.occupancies[i])
        res.add_atom(atom)
        chains[cid].add_residue(res)
    for ch in chains.values():
        model.add_chain(ch)
    st.add_model(model)
    st.setup_entities()
    p = os.fspath(path)
    if p.lower().endswith((".cif", ".mmcif")):
        st.make_mmcif_document().write_file(p)
    else:
        st.write_pdb(p)


def _model_takes_name(gemmi) -> bool:
    try:
        gemmi.Model("1")
        return True
    except TypeError:
        return False
