"""spkernels.io: structures through gemmi, SPI datasets in HDF5, maps in MRC."""

from __future__ import annotations

import numpy as np
import pytest

from spkernels import io as sio

from _data import DATA

PDB = DATA / "2cex.pdb"
MRC = DATA / "ribosome70S_65.mrc"


# -- structures ----------------------------------------------------------------------------
def _pdb_atoms(path):
    """Independent check: the ATOM/HETATM records read as fixed columns."""
    coords, elements, b, occ = [], [], [], []
    for line in open(path):
        if line.startswith(("ATOM  ", "HETATM")):
            coords.append([float(line[30:38]), float(line[38:46]), float(line[46:54])])
            occ.append(float(line[54:60]))
            b.append(float(line[60:66]))
            elements.append(line[76:78].strip().capitalize())
    return np.array(coords), np.array(elements), np.array(b), np.array(occ)


def test_read_pdb_2cex():
    s = sio.read_structure(PDB)
    assert s.n_atoms == 2452
    coords, elements, b, occ = _pdb_atoms(PDB)
    np.testing.assert_allclose(s.coords, coords, atol=1e-3)
    np.testing.assert_array_equal(s.elements, elements)
    np.testing.assert_allclose(s.b_factors, b, atol=1e-2)
    counts = dict(zip(*np.unique(s.elements, return_counts=True)))
    assert counts == {"C": 1516, "N": 382, "O": 545, "S": 8, "Zn": 1}
    np.testing.assert_allclose(s.occupancies, occ, atol=1e-3)
    z = {"C": 6, "N": 7, "O": 8, "S": 16, "Zn": 30}
    assert s.n_electrons == pytest.approx(sum(z[e] * o for e, o in zip(elements, occ)))
    assert 30_000 < s.mass < 35_000
    nowater = sio.read_structure(PDB, remove_water=True)
    assert 0 < nowater.n_atoms < s.n_atoms
    c = s.centered()
    np.testing.assert_allclose(c.center_of_mass(), 0, atol=1e-9)


def test_mmcif_and_assembly(tmp_path):
    gemmi = pytest.importorskip("gemmi")
    st = gemmi.read_structure(str(PDB))
    st.setup_entities()
    # a made-up dimer: chain A plus a copy rotated 180 degrees about z and shifted
    asm = gemmi.Assembly("1")
    gen = gemmi.Assembly.Gen()
    gen.chains = ["A"]
    ident, rot = gemmi.Assembly.Operator(), gemmi.Assembly.Operator()
    ident.name, rot.name = "1", "2"
    rot.transform = gemmi.Transform(gemmi.Mat33([[-1, 0, 0], [0, -1, 0], [0, 0, 1]]), gemmi.Vec3(10.0, 0.0, 5.0))
    gen.operators.append(ident)
    gen.operators.append(rot)
    asm.generators.append(gen)
    st.assemblies.append(asm)
    path = tmp_path / "dimer.cif"
    st.make_mmcif_document().write_file(str(path))

    assert sio.list_assemblies(path) == ["1"]
    mono = sio.read_structure(path)
    assert mono.n_atoms == 2452
    dimer = sio.read_structure(path, assembly="1")
    assert dimer.n_atoms == 2 * 2452
    names = sorted(set(dimer.chain_ids))
    assert len(names) == 2  # the two copies of chain A get distinct names
    first = dimer.coords[dimer.chain_ids == names[0]]
    second = dimer.coords[dimer.chain_ids == names[1]]
    np.testing.assert_allclose(first, mono.coords, atol=1e-3)
    expect = mono.coords * np.array([-1, -1, 1]) + np.array([10.0, 0.0, 5.0])
    np.testing.assert_allclose(second, expect, atol=1e-3)
    with pytest.raises(ValueError, match="`assembly`"):
        sio.read_structure(path, assembly="7")


def test_write_structure_round_trip(tmp_path, rng):
    n = 40
    s = sio.AtomicStructure(rng.uniform(-20, 20, (n, 3)), rng.choice(["C", "N", "O", "S", "Fe"], n),
                            rng.uniform(5, 50, n), np.ones(n), np.array(["A"] * 20 + ["B"] * 20), "toy")
    for ext in ("pdb", "cif"):
        sio.write_structure(s, tmp_path / f"toy.{ext}")
        back = sio.read_structure(tmp_path / f"toy.{ext}")
        np.testing.assert_allclose(back.coords, s.coords, atol=1e-3)
        np.testing.assert_array_equal(back.elements, s.elements)
        np.testing.assert_allclose(back.b_factors, s.b_factors, atol=1e-2)


def test_structure_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        sio.read_structure(tmp_path / "missing.pdb")
    with pytest.raises(ValueError, match="`coords`"):
        sio.AtomicStructure(np.zeros((3, 2)), ["C"] * 3, [1.0] * 3, [1.0] * 3, ["A"] * 3)
    with pytest.raises(ValueError, match="`elements`"):
        sio.AtomicStructure(np.zeros((3, 3)), ["C"] * 2, [1.0] * 3, [1.0] * 3, ["A"] * 3)


# -- HDF5 ------------------------------------------------------------------------------------
def _toy_dataset(rng, n=7, nx=6, ny=5):
    ppr = rng.normal(size=(1, nx, ny, 3)) * 1e9
    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return sio.SPIDataset(
        intensities=rng.poisson(3.0, (n, 1, nx, ny)).astype(np.float32),
        pixel_position_reciprocal=ppr,
        orientations=q[:, None, :],
        polarization=rng.uniform(0.5, 1, (1, nx, ny)),
        solid_angle=rng.uniform(1e-6, 2e-6, (1, nx, ny)),
        det_distance=0.2,
        mask=(rng.uniform(size=(1, nx, ny)) > 0.1).astype(np.uint8),
        density=rng.normal(size=(4, 5, 6)),
        voxel_size=2.5,
        photon_energy=4600.0,
        wavelength=2.695,
    )


def test_h5_round_trip(tmp_path, rng):
    d = _toy_dataset(rng)
    path = tmp_path / "spi.h5"
    sio.write_spi_h5(path, d)
    assert not (tmp_path / "spi.h5.tmp").exists()
    r = sio.read_spi_h5(path)
    for name in ("intensities", "orientations", "pixel_position_reciprocal", "pixel_index_map",
                 "polarization", "solid_angle", "mask", "density"):
        np.testing.assert_array_equal(getattr(r, name), getattr(d, name), err_msg=name)
    assert r.intensities.dtype == np.float32
    assert r.det_distance == 0.2 and r.voxel_size == 2.5 and r.photon_energy == 4600.0
    assert r.reciprocal_extent == pytest.approx(d.reciprocal_extent)
    part = sio.read_spi_h5(path, start=2, stop=5)
    np.testing.assert_array_equal(part.intensities, d.intensities[2:5])
    np.testing.assert_array_equal(part.orientations, d.orientations[2:5])


def test_h5_reads_skopi_layout(tmp_path, rng):
    """A file written the way skopi does (no spkernels extras) loads, and names/shapes match."""
    h5py = pytest.importorskip("h5py")
    n, nx, ny = 4, 8, 8
    path = tmp_path / "skopi.h5"
    ppr = rng.normal(size=(1, nx, ny, 3)) * 1e9
    with h5py.File(path, "w") as f:
        f.create_dataset("intensities", data=rng.poisson(2.0, (n, 1, nx, ny)).astype(np.float32))
        f.create_dataset("orientations", data=rng.normal(size=(n, 1, 4)))
        f.create_dataset("pixel_position_reciprocal", data=ppr)
        f.create_dataset("pixel_index_map", data=np.stack(np.meshgrid(np.arange(nx), np.arange(ny),
                                                                       indexing="ij"), -1)[None])
        f.create_dataset("polarization", data=np.ones((1, nx, ny)))
        f.create_dataset("solid_angle", data=np.full((1, nx, ny), 1e-6))
        f.create_dataset("volume", data=np.ones((3, 3, 3)))  # extra datasets are ignored
        f.attrs["reciprocal_extent"] = np.linalg.norm(ppr, axis=-1).max()
        f.attrs["det_shape"] = (1, nx, ny)
        f.attrs["det_distance"] = 0.2
    d = sio.read_spi_h5(path)
    assert d.n_images == n and d.det_shape == (1, nx, ny)
    np.testing.assert_allclose(d.s_vectors, ppr * 1e-10)
    assert d.mask is None and d.density is None
    # and what we write carries exactly the names and shapes SpiniFEL reads
    sio.write_spi_h5(tmp_path / "ours.h5", d)
    with h5py.File(tmp_path / "ours.h5") as f:
        assert f["intensities"].shape == (n, 1, nx, ny) and f["intensities"].dtype == np.float32
        assert f["orientations"].shape == (n, 1, 4)
        assert f["pixel_position_reciprocal"].shape == (1, nx, ny, 3)
        assert f["pixel_index_map"].shape == (1, nx, ny, 2)
        assert tuple(f.attrs["det_shape"]) == (1, nx, ny)
        assert f.attrs["reciprocal_extent"] == pytest.approx(np.linalg.norm(ppr, axis=-1).max())


def test_h5_errors(tmp_path, rng):
    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f.create_dataset("something", data=[1, 2])
    with pytest.raises(ValueError, match="`intensities`"):
        sio.read_spi_h5(tmp_path / "x.h5")
    with pytest.raises(ValueError, match="`orientations`"):
        sio.SPIDataset(np.zeros((3, 1, 2, 2), np.float32), np.zeros((1, 2, 2, 3)), orientations=np.zeros((2, 1, 4)))
    with pytest.raises(FileExistsError):
        sio.write_spi_h5(tmp_path / "x.h5", _toy_dataset(rng), overwrite=False)


# -- MRC -------------------------------------------------------------------------------------
def test_read_ribosome_mrc():
    mrcfile = pytest.importorskip("mrcfile")
    v = sio.read_mrc(MRC, permissive=True)
    assert v.data.shape == (65, 65, 65) and v.data.dtype == np.float32
    with mrcfile.open(MRC, permissive=True) as m:
        np.testing.assert_array_equal(v.data, m.data)  # standard axis order: no reordering
    assert np.isfinite(v.data).all() and v.data.std() > 0


def test_mrc_round_trip_and_axis_order(tmp_path, rng):
    mrcfile = pytest.importorskip("mrcfile")
    vol = rng.normal(size=(6, 7, 8)).astype(np.float32)
    sio.write_mrc(tmp_path / "a.mrc", vol, 1.75, origin=(1.0, 2.0, 3.0))
    back = sio.read_mrc(tmp_path / "a.mrc")
    np.testing.assert_array_equal(back.data, vol)
    assert back.voxel_size == pytest.approx((1.75, 1.75, 1.75))
    assert back.origin == pytest.approx((1.0, 2.0, 3.0))
    # a file whose sections are x and columns are z (mapc=3, mapr=2, maps=1) is reordered
    with mrcfile.new(tmp_path / "b.mrc") as m:
        m.set_data(np.ascontiguousarray(vol.transpose(2, 1, 0)))
        m.header.mapc, m.header.mapr, m.header.maps = 3, 2, 1
        m.voxel_size = (1.0, 2.0, 3.0)
    back = sio.read_mrc(tmp_path / "b.mrc")
    np.testing.assert_array_equal(back.data, vol)
    assert back.voxel_size == pytest.approx((1.0, 2.0, 3.0))
    with pytest.raises(ValueError, match="`voxel_size`"):
        sio.write_mrc(tmp_path / "c.mrc", vol, 0.0)
    with pytest.raises(ValueError, match="`volume`"):
        sio.write_mrc(tmp_path / "c.mrc", vol[0], 1.0)


def test_read_second_model(tmp_path):
    gemmi = pytest.importorskip("gemmi")
    st = gemmi.read_structure(str(PDB))
    m2 = st[0].clone()
    if hasattr(m2, "num"):
        m2.num = 2
    else:  # gemmi < 0.7 names models with strings
        m2.name = "2"
    for ch in m2:
        for res in ch:
            for atom in res:
                atom.pos = gemmi.Position(atom.pos.x + 100.0, atom.pos.y, atom.pos.z)
    st.add_model(m2)
    st.write_pdb(str(tmp_path / "two.pdb"))
    first = sio.read_structure(tmp_path / "two.pdb")
    second = sio.read_structure(tmp_path / "two.pdb", model=1)
    np.testing.assert_allclose(second.coords - first.coords, np.tile([100.0, 0, 0], (first.n_atoms, 1)), atol=1e-3)
    with pytest.raises(ValueError, match="`model`"):
        sio.read_structure(tmp_path / "two.pdb", model=2)
