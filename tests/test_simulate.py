"""spkernels.mtip simulation: form factors, Gaussian densities, NUFFT slices, photons, HDF5."""

from __future__ import annotations


import numpy as np
import pytest

from spkernels import geometry as g
from spkernels import io as sio
from spkernels.mtip import (
    GaussianDensity,
    StructureFactorGrid,
    band_limited_density,
    demo_particle,
    form_factor,
    simulate,
    slice_structure_factors,
    supported_elements,
)
from spkernels.mtip.density import resolve_nufft3d2

from _data import DATA




PDB = DATA / "2cex.pdb"


@pytest.fixture(scope="module")
def nufft():
    """The package's own type-2 NUFFT (the simulation's default)."""
    from spkernels.kernels import nufft3d2

    return nufft3d2


def _gaussians(rng, k=6, radius=20.0, wmin=10.0, wmax=60.0):
    return GaussianDensity(rng.uniform(-radius, radius, (k, 3)), rng.uniform(1, 10, k), rng.uniform(wmin, wmax, k))


def _atoms(rng, n=200, radius=20.0, b=(0.0, 30.0)):
    return sio.AtomicStructure(rng.uniform(-radius, radius, (n, 3)), rng.choice(["C", "N", "O", "S", "Fe", "Zn"], n),
                               rng.uniform(*b, n), rng.uniform(0.5, 1.0, n), ["A"] * n)


def _small_detector():
    # the standard geometry binned 8x: 16 x 16 pixels, same max|s| region
    return g.Detector.standard(binning=8)


# -- form factors ---------------------------------------------------------------------------
def test_form_factors_forward_and_it92():
    gemmi = pytest.importorskip("gemmi")
    stol = np.linspace(0, 1.5, 61)
    for el in supported_elements():
        z = gemmi.Element(el).atomic_number
        assert form_factor(el, 0.0) == pytest.approx(z, abs=0.01)
        if el == "H":
            continue  # IT92 tabulates bonded hydrogen; WK the free atom
        it92 = np.array([gemmi.Element(el).it92.calculate_sf(k * k) for k in stol])
        # two independent fits of the same tables: agree to ~0.5% of Z
        np.testing.assert_allclose(form_factor(el, 2 * stol), it92, atol=0.005 * z + 0.02, err_msg=el)
    with pytest.raises(ValueError, match="Waasmaier"):
        form_factor("Xx", 0.1)


# -- densities ------------------------------------------------------------------------------
def test_gaussians_on_grid_match_formula(rng):
    gd = _gaussians(rng, k=4, radius=8.0, wmin=40.0, wmax=80.0)
    n, d = 40, 0.8
    vol = gd.on_grid((n, n, n), d)
    assert vol.sum() * d**3 == pytest.approx(gd.n_electrons, rel=1e-6)
    idx = rng.integers(5, 35, (20, 3))
    r = (idx[:, ::-1] - n // 2) * d  # (z, y, x) index -> (x, y, z) position
    expect = np.zeros(len(idx))
    for c, w, b in zip(gd.centers, gd.weights, gd.widths):
        expect += w * (4 * np.pi / b) ** 1.5 * np.exp(-4 * np.pi**2 * np.sum((r - c) ** 2, axis=1) / b)
    np.testing.assert_allclose(vol[idx[:, 0], idx[:, 1], idx[:, 2]], expect, rtol=1e-6, atol=1e-9 * expect.max())
    with pytest.raises(ValueError, match="outside the grid"):
        gd.on_grid((8, 8, 8), 0.5)


def test_atoms_expand_to_six_gaussians(rng):
    st = _atoms(rng, n=30)
    gd = GaussianDensity.from_atoms(st)
    assert gd.expanded().n_terms == 6 * 30
    s = rng.normal(size=(50, 3)) * 0.05
    np.testing.assert_allclose(gd.expanded().structure_factors(s), gd.structure_factors(s), rtol=1e-12)
    # F(0) = sum of occupancy * f0(0): the electrons, within the fits' 0.01 per atom
    assert gd.n_electrons == pytest.approx(st.n_electrons, abs=0.01 * st.n_atoms)
    # the direct sum of one atom is its form factor times the Debye-Waller factor
    one = GaussianDensity.from_atoms(sio.AtomicStructure(np.zeros((1, 3)), ["Fe"], [15.0], [1.0], ["A"]))
    s1 = np.array([[0.0, 0.0, 0.2]])
    assert one.structure_factors(s1)[0].real == pytest.approx(form_factor("Fe", 0.2) * np.exp(-15 * 0.04 / 4))


@pytest.mark.parametrize("kind", ["gaussians", "atoms"])
@pytest.mark.parametrize("tol", [1e-4, 1e-7])
def test_structure_factor_grid_matches_direct_sum(rng, nufft, kind, tol):
    dens = _gaussians(rng) if kind == "gaussians" else GaussianDensity.from_atoms(_atoms(rng))
    s_max = 0.1
    sfg = StructureFactorGrid(dens, s_max, tol=tol, nufft=nufft)
    s = rng.normal(size=(3000, 3))
    s *= (s_max * rng.uniform(0, 1, 3000) ** (1 / 3) / np.linalg.norm(s, axis=1))[:, None]
    s[0] = 0.0
    f = sfg(s)
    ref = dens.structure_factors(s)
    err = np.abs(f - ref).max() / np.abs(ref).max()
    # measured with finufft: about 0.35 * tol (Gaussians) and 0.05 * tol (atoms)
    assert err < tol
    with pytest.raises(ValueError, match="s_max"):
        sfg(np.array([[0.0, 0.0, 0.11]]))


def test_package_nufft_is_default_and_matches_finufft(rng):
    """The default NUFFT is the package's; an injected finufft gives the same F to ~tol."""
    finufft = pytest.importorskip("finufft")
    kernels = pytest.importorskip("spkernels.kernels")
    assert resolve_nufft3d2() is kernels.nufft3d2
    dens = GaussianDensity.from_atoms(_atoms(rng, n=50))
    s = rng.uniform(-0.05, 0.05, (500, 3))
    ours = StructureFactorGrid(dens, 0.09, tol=1e-6)(s)
    theirs = StructureFactorGrid(dens, 0.09, tol=1e-6, nufft=finufft.nufft3d2)(s)
    assert np.abs(ours - theirs).max() < 1e-6 * np.abs(theirs).max()


def test_band_limited_density_equals_samples_of_smooth_density(rng, nufft):
    # wide Gaussians have no spectrum beyond the grid's Nyquist sphere: the band-limited map
    # must then equal the point samples
    gd = _gaussians(rng, k=5, radius=10.0, wmin=300.0, wmax=500.0)
    n, d = 41, 1.25
    bl = band_limited_density(gd, n, d, tol=1e-8, nufft=nufft)
    ps = gd.on_grid((n, n, n), d)
    assert np.abs(bl - ps).max() < 1e-4 * np.abs(ps).max()
    # a lower limit removes detail: the map is smoother but keeps the electrons
    low = band_limited_density(gd, n, d, s_limit=0.1, tol=1e-8, nufft=nufft)
    assert low.sum() * d**3 == pytest.approx(gd.n_electrons, rel=1e-6)
    assert np.abs(low - ps).max() > 1e-3 * np.abs(ps).max()


# -- slicing and photons --------------------------------------------------------------------
def test_slices_match_direct_evaluation(rng, nufft):
    det, beam = _small_detector(), g.Beam.standard()
    gd = _gaussians(rng, k=8)
    sfg = StructureFactorGrid(gd, det.max_s(beam), tol=1e-7, nufft=nufft)
    s_lab = det.s_vectors(beam).reshape(-1, 3)
    q = g.random_orientations(5, rng)
    f = slice_structure_factors(sfg, s_lab, q)
    ref = slice_structure_factors(gd.structure_factors, s_lab, q)
    assert np.abs(f - ref).max() / np.abs(ref).max() < 1e-7
    # the convention: orientation q rotates the particle, so its slice equals the direct
    # transform of the explicitly rotated particle at the lab-frame s-vectors
    for i in range(5):
        rot = g.quaternion_to_matrix(q[i])
        turned = GaussianDensity(gd.centers @ rot.T, gd.weights, gd.widths)
        np.testing.assert_allclose(ref[i], turned.structure_factors(s_lab), rtol=1e-10, atol=1e-10)


def test_expected_photons_formula_and_scaling(rng, nufft):
    det = _small_detector()
    st = _atoms(rng, n=150)
    q = g.random_orientations(3, rng)
    common = dict(orientations=q, poisson=False, nufft=nufft, density_grid=None, tol=1e-6)
    base = simulate(3, st, det, g.Beam(4600.0, 1e12, 0.5e-6), **common)
    # by hand: |F|^2 * photons / (pi r^2) * r_e^2 * polarisation * solid angle
    gd = GaussianDensity.from_atoms(st.centered())
    f = slice_structure_factors(gd.structure_factors, det.s_vectors(g.Beam(4600.0)).reshape(-1, 3), q)
    by_hand = np.abs(f) ** 2 * 1e12 / (np.pi * 0.25e-12) * 7.9407877e-30 \
        * (det.polarization() * det.solid_angle()).reshape(-1)
    np.testing.assert_allclose(base.intensities.reshape(3, -1), by_hand, rtol=1e-4)
    more = simulate(3, st, det, g.Beam(4600.0, 3e12, 0.5e-6), **common)
    np.testing.assert_allclose(more.intensities, 3 * base.intensities, rtol=1e-5)
    wider = simulate(3, st, det, g.Beam(4600.0, 1e12, 1.0e-6), **common)
    np.testing.assert_allclose(wider.intensities, base.intensities / 4, rtol=1e-5)


def test_poisson_statistics_and_seed(rng, nufft):
    det = _small_detector()
    st = _atoms(rng, n=300, radius=30.0)
    kw = dict(particle=st, detector=det, beam=g.Beam(4600.0, 1e15, 0.5e-6), nufft=nufft, density_grid=None,
              keep_expected=True)
    a = simulate(200, seed=11, **kw)
    b = simulate(200, seed=11, **kw)
    np.testing.assert_array_equal(a.intensities, b.intensities)
    np.testing.assert_array_equal(a.orientations, b.orientations)
    n = a.intensities.astype(np.float64).reshape(-1)
    lam = a.expected.reshape(-1)
    assert np.all(n == np.round(n)) and n.min() >= 0
    sel = lam > 0.5
    # Pearson chi^2 of Poisson counts about their means: mean 1, sd sqrt(2 / m) for m pixels
    chi2 = np.mean((n[sel] - lam[sel]) ** 2 / lam[sel])
    assert abs(chi2 - 1) < 6 * np.sqrt(2 / sel.sum())
    assert n.sum() == pytest.approx(lam.sum(), rel=6 / np.sqrt(lam.sum()))
    # zero-mean pixels: P(n = 0) = exp(-lambda) for small lambda bins
    small = (lam > 0.05) & (lam < 0.2)
    assert np.mean(n[small] == 0) == pytest.approx(np.mean(np.exp(-lam[small])), abs=0.02)


def test_orientations_round_trip_through_hdf5(tmp_path, rng, nufft):
    det = _small_detector()
    st = _atoms(rng, n=100)
    data = simulate(12, st, det, seed=5, nufft=nufft, keep_expected=True, density_grid=0)
    path = tmp_path / "sim.h5"
    sio.write_spi_h5(path, data)
    back = sio.read_spi_h5(path)
    np.testing.assert_array_equal(back.orientations, data.orientations)
    np.testing.assert_array_equal(back.intensities, data.intensities)
    np.testing.assert_array_equal(back.density, data.density)
    assert back.voxel_size == data.voxel_size
    assert back.orientations.shape == (12, 1, 4) and back.intensities.shape == (12, 1, 16, 16)
    # the file alone (its s-vectors, orientations, beam, polarisation, solid angle) regenerates
    # the expected photons
    gd = GaussianDensity.from_atoms(st.centered())
    f = slice_structure_factors(gd.structure_factors, back.s_vectors.reshape(-1, 3), back.quaternions)
    lam = np.abs(f) ** 2 * back.fluence * g.R_E_SQUARED * (back.polarization * back.solid_angle).reshape(-1)
    np.testing.assert_allclose(lam, data.expected.reshape(12, -1), rtol=1e-4)
    assert back.reciprocal_extent == pytest.approx(det.max_s(g.Beam.standard()) * 1e10)


def test_multi_hits_and_beamstop(rng, nufft):
    det = _small_detector()
    st = _atoms(rng, n=80, radius=15.0)
    data = simulate(6, st, det, seed=3, nufft=nufft, multi_hit_fraction=1.0, max_particles=2, poisson=False,
                    beamstop_radius=2.5, density_grid=None)
    assert np.all(data.n_particles == 2)
    gd = GaussianDensity.from_atoms(st.centered())
    dist = np.linalg.norm(data.hit_offsets[:, 1], axis=1)
    diameter = 2 * gd.radius()
    assert np.all((dist >= diameter) & (dist <= 2 * diameter))
    s_lab = det.s_vectors(g.Beam.standard()).reshape(-1, 3)
    f = sum(slice_structure_factors(gd.structure_factors, s_lab, data.hit_orientations[:, j])
            * np.exp(2j * np.pi * data.hit_offsets[:, j] @ s_lab.T) for j in range(2))
    geom = (det.polarization() * det.solid_angle()).reshape(-1)
    lam = np.abs(f) ** 2 * g.Beam.standard().fluence * g.R_E_SQUARED * geom
    mask = data.mask.reshape(-1).astype(bool)
    c = np.arange(16) - 7.5
    assert np.array_equal(~mask, (np.hypot(c[:, None], c[None, :]) <= 2.5).reshape(-1))
    assert (~mask).sum() == 16  # centres at (+-0.5, +-0.5), (+-0.5, +-1.5), (+-1.5, +-0.5), (+-1.5, +-1.5)
    np.testing.assert_allclose(data.intensities.reshape(6, -1)[:, mask], lam[:, mask], rtol=1e-4)
    assert np.all(data.intensities.reshape(6, -1)[:, ~mask] == 0)


def test_simulate_validation(rng, nufft):
    st = _atoms(rng, n=10)
    # odd pixel count: the central pixel sits on the beam and stays usable without a beam stop
    odd = simulate(1, st, g.Detector(15, 0.2, width=0.08), nufft=nufft, poisson=False, density_grid=None)
    assert odd.mask.all() and odd.intensities[0, 0, 7, 7] > 0
    with pytest.raises(TypeError, match="`n_images`"):
        simulate(2.0, st, nufft=nufft)
    with pytest.raises(ValueError, match="`multi_hit_fraction`"):
        simulate(2, st, multi_hit_fraction=2.0, nufft=nufft)
    with pytest.raises(ValueError, match="`orientations`"):
        simulate(2, st, orientations=np.ones((3, 4)), nufft=nufft)
    with pytest.raises(TypeError, match="`particle`"):
        simulate(2, 42, nufft=nufft)
    with pytest.raises(TypeError, match="`nufft`"):
        resolve_nufft3d2("finufft")
    assert callable(resolve_nufft3d2())


# -- particles ------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["cluster", "ring"])
def test_demo_particle(layout):
    p = demo_particle(0, layout=layout)
    assert np.array_equal(p.coords, demo_particle(0, layout=layout).coords)
    assert not np.array_equal(p.coords[:100], demo_particle(1, layout=layout).coords[:100])
    n_res = np.sum(p.elements == "N")  # roughly one backbone N per residue (+ side-chain N)
    # heavy atoms plus ~7.5 implicit hydrogens per residue: a 500-900 kDa assembly
    assert 500e3 < p.mass + 7.5 * 1.008 * n_res < 900e3
    frac = {e: np.mean(p.elements == e) for e in ("C", "N", "O", "S")}
    assert 0.58 < frac["C"] < 0.68 and 0.14 < frac["N"] < 0.2 and 0.16 < frac["O"] < 0.22 and frac["S"] < 0.02
    np.testing.assert_allclose(p.center_of_mass(), 0, atol=1e-9)
    # no symmetry axis: the three principal moments differ
    ev = np.sort(np.linalg.eigvalsh(np.cov(p.coords.T)))
    assert ev[1] / ev[0] > 1.05 and ev[2] / ev[1] > 1.05
    # compact: 130-200 A across
    assert 130 < 2 * np.linalg.norm(p.coords, axis=1).max() < 200
    # mean bonded distance sane: consecutive backbone atoms ~1.2-1.6 A apart
    from scipy.spatial import cKDTree

    d, _ = cKDTree(p.coords).query(p.coords, k=2)
    assert 1.1 < np.median(d[:, 1]) < 1.7


def test_demo_particle_rejects_bad_settings():
    with pytest.raises(ValueError, match="layout"):
        demo_particle(0, layout="helix")
    with pytest.raises(ValueError, match="residues"):
        demo_particle(0, residues=(10, 5))
    with pytest.raises(ValueError, match="n_subunits"):
        demo_particle(0, n_subunits=0)


def test_simulate_demo_particle_smoke(nufft):
    data = simulate(3, None, _small_detector(), seed=0, nufft=nufft, density_grid=None)
    assert data.intensities.shape == (3, 1, 16, 16)
    assert data.intensities.sum() > 0


def test_simulate_from_pdb_file(nufft):
    data = simulate(2, str(PDB), _small_detector(), seed=0, nufft=nufft, density_grid=None, poisson=False)
    assert np.all(np.isfinite(data.intensities)) and data.intensities.max() > 0


def test_cli_simulate(tmp_path, rng, nufft, capsys):
    from spkernels import cli

    st = _atoms(rng, n=60)
    pdb = tmp_path / "toy.pdb"
    sio.write_structure(st, pdb)
    out = tmp_path / "sim.h5"
    rc = cli.main(["mtip", "simulate", str(out), "-n", "5", "--pdb", str(pdb), "--binning", "8", "--photons", "1e14",
                   "--seed", "2", "--mrc", str(tmp_path / "truth.mrc"), "--quiet"])
    assert rc == 0 and "5 images of 16x16 px" in capsys.readouterr().out
    data = sio.read_spi_h5(out)
    assert data.intensities.shape == (5, 1, 16, 16) and data.photons_per_pulse == 1e14
    vol = sio.read_mrc(tmp_path / "truth.mrc")
    assert vol.data.shape == data.density.shape and vol.voxel_size[0] == pytest.approx(data.voxel_size, rel=1e-6)
