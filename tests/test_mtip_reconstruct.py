"""MTIP reconstruction steps on a small simulated particle: merge, match, resume, resolution."""

import numpy as np
import pytest

from _cases import resume_after_crash
from _cli_data import CONFIG  # the short MTIP config of the CLI tests

from spkernels.geometry import Detector, Beam, random_orientations
from spkernels.mtip import simulate
from spkernels.mtip.density import GaussianDensity
from spkernels.mtip.grid import ball
from spkernels.mtip.reconstruct import (MTIPConfig, SPIData, Stage, estimate_diameter, grid_size,
                                        match_orientations, merge, orientation_errors, reconstruct, resample,
                                        slice_model)
from spkernels.mtip.resolution import align_to_reference, rotate

BOX = 120.0  # Å, real-space box of the autocorrelation grid for the 40 Å-wide test particle


@pytest.fixture(scope="module")
def blob_particle():
    """40 Gaussian blobs in an asymmetric 40 Å cloud (so orientations are well defined)."""
    rng = np.random.default_rng(7)
    pts = []
    while len(pts) < 40:
        p = rng.uniform(-1, 1, 3) * np.array([22.0, 15.0, 10.0])
        if (p / np.array([22.0, 15.0, 10.0])) @ (p / np.array([22.0, 15.0, 10.0])) <= 1 and not (p[0] > 5 and p[1] > 0):
            pts.append(p)
    return GaussianDensity(np.array(pts), np.full(40, 50.0), np.full(40, 300.0))


@pytest.fixture(scope="module")
def noiseless(blob_particle):
    det = Detector(24, 0.2, width=0.08)
    ds = simulate(400, blob_particle, det, Beam(4600.0, 3e14, 1e-7), seed=3, poisson=False, density_grid=None)
    return SPIData.from_dataset(ds)


def _stage_arrays(data, res):
    M = grid_size(res, BOX)
    dx = BOX / M
    sel = np.linalg.norm(data.s, axis=1) <= 1.0 / res
    return M, dx, np.ascontiguousarray(data.intensities[:, sel]), data.s[sel], np.ones(int(sel.sum()))


def _merge_settings(cfg):
    return dict(eps=cfg.eps, backend=cfg.backend, tikhonov=cfg.tikhonov, cg_tol=cfg.cg_tol, cg_maxiter=cfg.cg_maxiter)


def _match_settings(cfg):
    return dict(reference_batch=cfg.reference_batch, photon_floor=cfg.photon_floor, eps=cfg.eps, backend=cfg.backend,
                keep_current=cfg.keep_current, local_candidates=cfg.local_candidates, local_angle=cfg.local_angle,
                switch_margin=cfg.switch_margin)


def test_merge_with_true_orientations_fits_the_data(noiseless):
    M, dx, d, s, w = _stage_arrays(noiseless, 15.0)
    ac, cg = merge(d, s, w, noiseless.orientations, M, dx, ball(M, M // 2), None,
                   **_merge_settings(MTIPConfig(eps=1e-6)))
    model = slice_model(ac, noiseless.orientations, s, dx, eps=1e-6, backend="auto")
    cc = [np.corrcoef(model[i], d[i])[0, 1] for i in range(0, 400, 20)]
    assert min(cc) > 0.99, cc
    np.testing.assert_allclose(ac, ac[::-1, ::-1, ::-1])  # centrosymmetric


def test_matching_recovers_true_orientations_on_noiseless_data(noiseless):
    M, dx, d, s, w = _stage_arrays(noiseless, 15.0)
    cfg = MTIPConfig(eps=1e-6)
    ac, _ = merge(d, s, w, noiseless.orientations, M, dx, ball(M, M // 2), None, **_merge_settings(cfg))
    rng = np.random.default_rng(0)
    # Without the truth among the candidates: error within the reference grid spacing (~16° at 3000).
    q, _, _ = match_orientations(ac, d.astype(np.float32), s, w, None, dx, 3000, rng, **_match_settings(cfg))
    assert np.median(orientation_errors(q, noiseless.orientations)) < 12.0
    # With each image's true orientation competing, the truth wins nearly always.
    q, _, kept = match_orientations(ac, d.astype(np.float32), s, w, noiseless.orientations, dx, 500, rng,
                                    **_match_settings(cfg))
    assert kept > 0.95
    assert np.median(orientation_errors(q, noiseless.orientations)) < 1e-6


def test_an_image_left_at_its_friedel_twin_is_turned_back(noiseless):
    """A 180° turn about the beam axis changes a pattern only through the Ewald curvature (it is
    the other hand's orientation): small local turns cannot undo it, the twin candidate does."""
    from spkernels.geometry import quaternion_multiply

    M, dx, d, s, w = _stage_arrays(noiseless, 12.0)
    cfg = MTIPConfig(eps=1e-6)
    ac, _ = merge(d, s, w, noiseless.orientations, M, dx, ball(M, M // 2), None, **_merge_settings(cfg))
    start = noiseless.orientations.copy()
    flipped = np.arange(0, 400, 3)
    start[flipped] = quaternion_multiply(np.tile([0.0, 0.0, 0.0, 1.0], (flipped.size, 1)), start[flipped])
    # (All of them turned would be the mirror-hand solution, which the metric accepts; a third of
    # them is a merge of both hands.)
    assert np.all(orientation_errors(start, noiseless.orientations)[flipped] > 179.0)
    q, _, _ = match_orientations(ac, d.astype(np.float32), s, w, start, dx, 100, np.random.default_rng(1),
                                 **_match_settings(cfg))
    back = orientation_errors(q, noiseless.orientations)[flipped]
    assert np.mean(back < 1e-3) > 0.95, np.percentile(back, [5, 50, 95])
    # Without local candidates (nor the twin) nothing turns them back.
    q0, _, _ = match_orientations(ac, d.astype(np.float32), s, w, start, dx, 100, np.random.default_rng(1),
                                  **dict(_match_settings(cfg), local_candidates=0))
    assert np.median(orientation_errors(q0, noiseless.orientations)[flipped]) > 90.0


def test_resample_pads_and_crops_band_limited_volumes(rng):
    v = rng.standard_normal((11, 11, 11))
    up = resample(v, 17)
    np.testing.assert_allclose(resample(up, 11), v, atol=1e-10)
    np.testing.assert_allclose(up[::3, ::3, ::3].sum() * 0 + up.sum() * (11 / 17) ** 3, v.sum(), rtol=1e-10)


def test_diameter_estimate_errs_large_but_not_absurd(noiseless, blob_particle):
    c = blob_particle.centers
    true_d = 2 * np.linalg.norm(c - c.mean(0), axis=1).max()
    d = estimate_diameter(noiseless)
    assert true_d <= d <= 2.5 * true_d, (d, true_d)


def test_config_from_toml_round_trip(tmp_path):
    p = tmp_path / "mtip.toml"
    p.write_text("""
seed = 3
n_phasing_runs = 2
[phasing]
hio = 10
[[stages]]
resolution = 30.0
generations = 2
n_references = 100
""")
    cfg = MTIPConfig.from_toml(p)
    assert cfg.seed == 3 and cfg.phasing.hio == 10 and cfg.stages == (Stage(30.0, 2, 100),)
    assert MTIPConfig.from_dict(cfg.to_dict()) == cfg
    p.write_text("sedd = 3\n")
    with pytest.raises(ValueError, match="unknown MTIP settings: sedd"):
        MTIPConfig.from_toml(p)
    with pytest.raises(ValueError, match="box_factor"):
        MTIPConfig(box_factor=1.5)
    with pytest.raises(ValueError, match="generations"):
        Stage(20.0, 0, 10)


def test_spi_data_rejects_bad_input():
    s = np.zeros((4, 3))
    with pytest.raises(ValueError, match="non-negative"):
        SPIData(-np.ones((2, 4)), s)
    with pytest.raises(ValueError, match=r"`s` must have shape"):
        SPIData(np.ones((2, 4)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="NaN"):
        SPIData(np.full((2, 4), np.nan), s)
    with pytest.raises(TypeError, match="dtype"):
        SPIData(np.ones((2, 4), dtype=np.int64), s)


def _tiny_config():
    from spkernels.mtip.phasing import PhasingSchedule

    return MTIPConfig(seed=11, particle_diameter=45.0, stages=(Stage(30.0, 2, 60), Stage(20.0, 1, 80)),
                      phasing=PhasingSchedule(n_loops=1, er_before=5, hio=5, er_after=5, final_er=5),
                      cg_maxiter=8, reference_batch=50)


def test_resume_ends_bitwise_where_an_uninterrupted_run_ends(noiseless, tmp_path):
    data = SPIData(noiseless.intensities[:80], noiseless.s, orientations=noiseless.orientations[:80])
    cfg = _tiny_config()
    full = reconstruct(data, cfg, checkpoint=tmp_path / "a.h5", progress=False)
    assert len(full.history) == 3

    resumed = resume_after_crash(reconstruct, data, cfg, tmp_path / "b.h5")
    np.testing.assert_array_equal(resumed.rho, full.rho)
    np.testing.assert_array_equal(resumed.orientations, full.orientations)
    assert [h["generation"] for h in resumed.history] == [0, 1, 2]
    with pytest.raises(ValueError, match="different settings"):
        reconstruct(data, MTIPConfig(**{**cfg.__dict__, "seed": 12}), checkpoint=tmp_path / "b.h5",
                    resume=True, progress=False)


def test_resume_keeps_the_mode_the_run_started_in(noiseless, tmp_path):
    """A run with its orientations held fixed resumes bitwise in that mode, and a resume in the
    other mode is refused either way (it would hold a searched run's orientations fixed, or search
    from a fixed one, silently)."""
    from functools import partial

    data = SPIData(noiseless.intensities[:80], noiseless.s, orientations=noiseless.orientations[:80])
    cfg = _tiny_config()
    fixed = partial(reconstruct, fixed_orientations=True)
    full = fixed(data, cfg, progress=False)
    resumed = resume_after_crash(fixed, data, cfg, tmp_path / "f.h5")
    np.testing.assert_array_equal(resumed.rho, full.rho)
    np.testing.assert_array_equal(resumed.orientations, data.orientations)
    with pytest.raises(ValueError, match=r"f\.h5: was written with orientations held fixed.*this run has "
                                         r"orientations searched"):
        reconstruct(data, cfg, checkpoint=tmp_path / "f.h5", resume=True, progress=False)
    reconstruct(data, cfg, checkpoint=tmp_path / "s.h5", progress=False)
    with pytest.raises(ValueError, match="was written with orientations searched"):
        fixed(data, cfg, checkpoint=tmp_path / "s.h5", resume=True, progress=False)


def test_alignment_finds_rotation_hand_and_shift(rng):
    z, y, x = np.mgrid[:21, :21, :21] - 10
    ref = np.zeros((21, 21, 21))
    for _ in range(6):
        c = rng.uniform(-4, 4, 3)
        ref += np.exp(-((z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2) / 4.0)
    q = random_orientations(1, 4)[0]
    moved = np.roll(rotate(ref, q, order=3)[::-1, ::-1, ::-1], (1, -2, 0), axis=(0, 1, 2))
    al = align_to_reference(moved, ref, n_rotations=300, n_rounds=6)
    assert al.inverted
    assert al.cc > 0.97, al.cc


def test_alignment_rejects_bad_input(rng):
    cube = rng.random((11, 11, 11))
    with pytest.raises(ValueError, match="share a grid"):
        align_to_reference(cube, rng.random((9, 9, 9)))
    with pytest.raises(ValueError, match="cube"):
        align_to_reference(rng.random((11, 11, 9)), rng.random((11, 11, 9)))
    with pytest.raises(ValueError, match="coarse_factor"):
        align_to_reference(cube, cube, coarse_factor=0)


def test_cli_simulate_then_run_writes_every_output(tmp_path, capsys):
    from spkernels.cli import main

    h5 = tmp_path / "d.h5"
    assert main(["mtip", "simulate", str(h5), "-n", "40", "--pixels", "32", "--binning", "2",
                 "--photons", "3e13", "--quiet"]) == 0
    cfg = tmp_path / "c.toml"
    cfg.write_text(CONFIG.replace('input = "d.h5"', f'input = "{h5.name}"'))
    assert main(["mtip", "run", str(cfg), "--quiet"]) == 0
    out = tmp_path / "out"
    for name in ("density.mrc", "sections.png", "fsc.png", "report.md", "report.json", "checkpoint.h5"):
        assert (out / name).stat().st_size > 0, name
    text = capsys.readouterr().out
    assert "FSC-0.5 resolution" in text and "median orientation error" in text
    report = (out / "report.md").read_text()
    assert report.count("\n| ") >= 3  # header + two generations
    # A resumed run that is already complete just reports again.
    assert main(["mtip", "run", str(cfg), "--quiet", "--resume"]) == 0


def test_fixed_orientations_merge_and_phase_only(noiseless):
    data = SPIData(noiseless.intensities[:120], noiseless.s, orientations=noiseless.orientations[:120])
    cfg = _tiny_config()
    fixed = reconstruct(data, cfg, progress=False, fixed_orientations=True)
    np.testing.assert_array_equal(fixed.orientations, data.orientations)
    assert all("match" not in h["seconds"] for h in fixed.history)
    assert len(fixed.history) == 3 and fixed.history[-1]["cg_iterations"] > 0
    with pytest.raises(ValueError, match="fixed_orientations"):
        reconstruct(SPIData(data.intensities, data.s), cfg, progress=False, fixed_orientations=True)


def test_auto_backend_runs_the_pipeline_on_the_cpu_without_cupy(monkeypatch):
    # On a GPU machine without CuPy the GPU NUFFT and CG cannot hold the pipeline's arrays:
    # "auto" must then pick a CPU backend for every step (an explicit GPU backend stays as asked).
    from spkernels import backends
    from spkernels.mtip import reconstruct as rec

    real_resolve = backends.resolve
    monkeypatch.setattr(backends, "resolve", lambda b, **kw: "cuda" if b == "auto" and "supported" not in kw
                        else real_resolve(b, **kw))
    monkeypatch.setattr(backends, "array_module", lambda name: np)
    assert rec._pipeline_backend("auto") in ("cpu", "numba-cpu", "numpy")
    monkeypatch.setattr(backends, "resolve", lambda b, **kw: b)
    assert rec._pipeline_backend("numba-cuda") == "numba-cuda"


def test_a_finer_stage_starts_from_the_model_it_was_given(noiseless):
    """The first matching on a finer grid slices the previous autocorrelation, Fourier-padded:
    from the true orientations it keeps them. (The autocorrelation of the padded density
    clipped at zero, the old start, moved every slice: on 2CEX it left a 6° median error where
    this keeps 0.5°.)"""
    data = noiseless
    corner = 1.0 / data.s_max
    stages = (Stage(1.6 * corner, 2, 500), Stage(corner, 1, 500))
    cfg = MTIPConfig(seed=2, stages=stages, particle_diameter=40.0, n_phasing_runs=1, final_phasing_runs=1,
                     backend="numpy")
    run = reconstruct(data, cfg, progress=False, initial_orientations=data.orientations)
    errs = [h["median_orientation_error_deg"] for h in run.history]
    assert [h["M"] for h in run.history][1] < run.history[2]["M"]  # generation 2 is the finer stage's first
    assert errs[1] < 2.0 and errs[2] < 2.0, errs
