"""The MTIP schedule: convergence-driven stage ends, their limits, and the particle-size estimates."""

import logging
import os

import numpy as np
import pytest
from _cases import resume_after_crash

from spkernels.geometry import Beam, Detector, quaternion_multiply, random_orientations
from spkernels.mtip import simulate
from spkernels.mtip.config import Convergence, MTIPConfig, Stage
from spkernels.mtip.data import SPIData
from spkernels.mtip.density import GaussianDensity
from spkernels.mtip.phasing import PhasingSchedule
from spkernels.mtip.reconstruct import reconstruct, stage_summary
from spkernels.mtip.report import format_report
from spkernels.mtip.schedule import (default_schedule, ellipsoid_intensity, generation_metrics, rotation_angles,
                                     shape_diameter, size_estimate, stage_decision)

CRIT = Convergence()


def _m(moved, settled, change=None, thr=10.0):
    return {"moved_median_deg": moved, "settled_fraction": settled, "settled_angle_deg": thr, "score_change": change}


def _decide(metrics, stage, crit=CRIT, left=100, reserved=0, restarts=0):
    return stage_decision(metrics, stage, crit, generations_left=left, reserved=reserved, restarts_left=restarts)


def _turns(n, angle_deg, rng):
    ax = rng.standard_normal((n, 3))
    ax /= np.linalg.norm(ax, axis=1, keepdims=True)
    h = np.radians(angle_deg) / 2
    return np.column_stack([np.cos(h), ax * np.sin(h)[:, None]])


# --- the decisions ---------------------------------------------------------------------------


def test_fixed_stage_ends_after_exactly_its_generations():
    st = Stage(20.0, 3, 100)
    assert not st.adaptive and st.most_generations == 3
    # Whatever the metrics say (settled at once, or never), a fixed stage runs its count.
    for m in (_m(0.0, 1.0, 0.0), _m(150.0, 0.0, 0.5)):
        assert [_decide([m] * k, st).end for k in (1, 2, 3)] == [False, False, True]
        assert _decide([m] * 3, st, left=0).end and not _decide([m] * 3, st, restarts=5).restart


def test_adaptive_stage_ends_when_its_orientations_settled():
    st = Stage(20.0, 2, 100, max_generations=6)
    # Settled share above the threshold ends it, but not before the minimum.
    assert not _decide([_m(2.0, 0.95)], st).end
    d = _decide([_m(60.0, 0.2), _m(2.0, 0.95)], st)
    assert d.end and not d.restart and "settled" in d.reason and "95%" in d.reason
    # A small score change with a small median move also counts as settled ...
    d = _decide([_m(60.0, 0.2), _m(3.0, 0.6, change=2e-4)], st)
    assert d.end and "score" in d.reason
    # ... except in the final stage, which ends as settled only by the settled share.
    assert not stage_decision([_m(60.0, 0.2), _m(3.0, 0.6, change=2e-4)], st, CRIT, generations_left=9,
                              final=True).end
    # ... but not with a median move above the settled angle, nor a large score change.
    assert not _decide([_m(60.0, 0.2), _m(12.0, 0.4, change=2e-4)], st).end
    assert not _decide([_m(60.0, 0.2), _m(3.0, 0.6, change=5e-2)], st).end
    # Near-random assignments (median move above unbroken_angle) never end as settled.
    d = _decide([_m(60.0, 0.2), _m(100.0, 0.95, change=0.0)], st)
    assert not d.end and "symmetry" in d.reason


def test_adaptive_stage_limits_max_budget_and_restart():
    st = Stage(20.0, 2, 100, max_generations=4)
    moving = [_m(None, None)] + [_m(20.0, 0.5, change=0.1)] * 3
    assert [_decide(moving[:k], st).end for k in (1, 2, 3, 4)] == [False, False, False, True]
    assert "maximum of 4" in _decide(moving, st).reason
    # The budget: with the rest needed by later stages' minima, the stage ends early ...
    d = _decide(moving[:2], st, left=3, reserved=3)
    assert d.end and "budget" in d.reason
    # ... even before its own minimum.
    assert _decide(moving[:1], st, left=2, reserved=2).end
    # At its maximum still near-random: a fresh random start while restarts and room remain.
    stuck = [_m(None, None)] + [_m(120.0, 0.01, change=0.1)] * 3
    d = _decide(stuck, st, restarts=1, left=10)
    assert d.end and d.restart and "fresh random start" in d.reason
    assert not _decide(stuck, st, restarts=0, left=10).restart
    assert not _decide(stuck, st, restarts=1, left=3, reserved=2).restart  # no room for another attempt
    with pytest.raises(ValueError, match="metrics"):
        _decide([], st)
    with pytest.raises(TypeError, match="stage"):
        stage_decision([_m(1.0, 1.0)], (20.0, 2, 100), CRIT, generations_left=3)


def test_generation_metrics_measure_the_moves(rng):
    n = 400
    q = random_orientations(n, rng)
    angles = rng.uniform(0, 40, n)
    q2 = quaternion_multiply(_turns(n, angles, rng), q)
    q2[::2] *= -1  # the sign of a quaternion is no rotation
    np.testing.assert_allclose(rotation_angles(q, q2), angles, atol=1e-6)
    m = generation_metrics(q, q2, resolution=20.0, diameter=200.0, settled_angle=1.0, score=99.0,
                           previous_score=100.0)
    thr = np.degrees(20.0 / 200.0)
    assert m["settled_angle_deg"] == pytest.approx(thr)
    assert m["settled_fraction"] == pytest.approx((angles < thr).mean())
    assert m["moved_median_deg"] == pytest.approx(np.median(angles), abs=1e-6)
    assert m["score_change"] == pytest.approx(0.01)
    assert generation_metrics(q, q, resolution=20.0, diameter=200.0)["score_change"] is None
    floored = generation_metrics(q, q2, resolution=20.0, diameter=200.0, min_angle=30.0)
    assert floored["settled_angle_deg"] == 30.0
    assert floored["settled_fraction"] == pytest.approx((angles < 30.0).mean())
    with pytest.raises(ValueError, match="diameter"):
        generation_metrics(q, q, resolution=20.0, diameter=0.0)
    with pytest.raises(ValueError, match="q1"):
        rotation_angles(q, q[:3])


# --- settings ------------------------------------------------------------------------------


def test_stages_and_convergence_from_toml(tmp_path):
    p = tmp_path / "mtip.toml"
    p.write_text("""
[convergence]
settled_fraction = 0.8
budget = 12
restarts = 0
[[stages]]
resolution = 30.0
generations = 2
n_references = 100
[[stages]]
resolution = 20.0
generations = 2
n_references = 100
max_generations = 5
""")
    cfg = MTIPConfig.from_toml(p)
    assert cfg.convergence == Convergence(settled_fraction=0.8, budget=12, restarts=0)
    assert cfg.stages == (Stage(30.0, 2, 100), Stage(20.0, 2, 100, max_generations=5))
    assert not cfg.stages[0].adaptive and cfg.stages[1].adaptive
    assert MTIPConfig.from_dict(cfg.to_dict()) == cfg
    for bad, err, match in (({"settled_fraction": 1.5}, ValueError, "convergence.settled_fraction"),
                            ({"budget": 0}, ValueError, "convergence.budget"),
                            ({"restarts": 1.5}, TypeError, "convergence.restarts"),
                            ({"patience": 3}, ValueError, "unknown key in `convergence`: patience")):
        with pytest.raises(err, match=match):
            MTIPConfig.from_dict({"convergence": bad})
    with pytest.raises(ValueError, match="stages.0..max_generations"):
        MTIPConfig.from_dict({"stages": [{"resolution": 30.0, "generations": 3, "n_references": 9,
                                          "max_generations": 2}]})
    with pytest.raises(ValueError, match="lacks n_references"):
        MTIPConfig.from_dict({"stages": [{"resolution": 30.0, "generations": 3}]})


def _sphere_data(diameter, n_px=48, width=0.06, beamstop=0.0, n_images=4, seed=0):
    """Noise-free images of a uniform sphere (analytic |F|²) on a flat detector at 0.2 m, 4600 eV;
    pixels with |s| below `beamstop` Å⁻¹ masked."""
    rng = np.random.default_rng(seed)
    lam = 12398.42 / 4600.0
    u = (np.arange(n_px) - (n_px - 1) / 2) * width / n_px
    x, y = np.meshgrid(u, u, indexing="ij")
    d = np.sqrt(x**2 + y**2 + 0.2**2)
    s = np.stack([x / d, y / d, 0.2 / d - 1.0], axis=-1).reshape(-1, 3) / lam
    r = np.linalg.norm(s, axis=1)
    img = 1e4 * ellipsoid_intensity(r, diameter / 2, diameter / 2) + 1e-3
    mask = (r >= beamstop).astype(float)
    return SPIData(np.tile(img * mask, (n_images, 1)) * rng.uniform(0.9, 1.1, (n_images, 1)), s, mask=mask)


def test_default_schedule_is_adaptive_and_fixed_on_request():
    data = _sphere_data(100.0)
    ad, fx = default_schedule(data, 100.0), default_schedule(data, 100.0, adaptive=False)
    assert all(st.adaptive for st in ad) and not any(st.adaptive for st in fx)
    assert [st.resolution for st in ad] == [st.resolution for st in fx]
    assert sum(st.generations for st in fx) == 20
    assert all(a.generations <= f.generations <= a.max_generations for a, f in zip(ad, fx))


# --- size ----------------------------------------------------------------------------------


def test_size_estimate_falls_back_to_the_shape_fit_without_a_guinier_range(rng, caplog):
    true_d = float(rng.uniform(90.0, 160.0))
    # A beam stop out to |s| = 0.8 / D leaves no pixel inside 2π|s|Rg < 1.3 (Rg = 0.39 D, so
    # |s| D < 0.54), only the outer central speckle (to its minimum at 1.43 / D) and the rings.
    data = _sphere_data(true_d, beamstop=0.8 / true_d)
    with caplog.at_level(logging.INFO, logger="spkernels.mtip.schedule"):
        est = size_estimate(data)
    assert est.method == "shape-fit" and est.guinier_pixels < 12
    assert "Guinier" in est.reason and "shape-fit" in caplog.text
    assert 0.95 * true_d <= est.diameter <= 1.5 * true_d, (est.diameter, true_d)
    # The same sphere seen to the centre with finer pixels: Guinier decides, 3.3 Rg = 1.28 D.
    full = size_estimate(_sphere_data(true_d, n_px=96))
    assert full.method == "guinier" and full.guinier_pixels >= 12
    assert full.diameter == pytest.approx(3.3 * np.sqrt(3 / 5) * true_d / 2, rel=0.05)
    assert full.to_dict()["method"] == "guinier"


def _blob_body(semi_axes, rng, n=1500):
    """`n` Gaussian blobs filling an ellipsoid of `semi_axes` (Å); returns it and its true extent."""
    p = rng.uniform(-1, 1, (4 * n, 3))
    p = p[np.linalg.norm(p, axis=1) <= 1][:n] * np.asarray(semi_axes)
    extent = max(np.ptp(p[:, k]) for k in range(3))
    return GaussianDensity(p, np.full(n, 6.0), np.full(n, 20.0)), extent


@pytest.mark.parametrize("semi_axes", [(45.0, 45.0, 45.0), (15.0, 15.0, 90.0), (65.0, 65.0, 18.0)],
                         ids=["sphere", "rod", "disc"])
def test_shape_fit_sizes_spheres_rods_and_discs(semi_axes, rng):
    body, extent = _blob_body(semi_axes, rng)
    ds = simulate(300, body, Detector(32, 0.2, width=0.04), Beam(4600.0, 1e14, 5e-7), seed=rng, poisson=False,
                  density_grid=None)
    data = SPIData.from_dataset(ds)
    d, (a, c) = shape_diameter(data, return_axes=True)
    assert 0.95 * extent <= d <= 1.5 * extent, (d, extent, a, c)
    # Enough pixels for Guinier here: it decides for the sphere and the disc (3.3 Rg covers
    # them), the shape fit for the rod (a 6:1 ellipsoid spans 4.4 Rg).
    est = size_estimate(data)
    assert est.method == ("shape-fit" if semi_axes[2] > 2 * semi_axes[0] else "guinier"), est
    assert 0.9 * extent <= est.diameter <= 1.5 * extent


# --- the loop ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_data():
    rng = np.random.default_rng(5)
    body, _ = _blob_body((20.0, 14.0, 10.0), rng, n=40)
    ds = simulate(60, body, Detector(16, 0.2, width=0.08), Beam(4600.0, 3e14, 1e-7), seed=3, poisson=False,
                  density_grid=None)
    return SPIData.from_dataset(ds)


def _cfg(stages, **conv):
    return MTIPConfig(seed=2, particle_diameter=45.0, stages=stages, convergence=Convergence(**conv),
                      phasing=PhasingSchedule(n_loops=1, er_before=3, hio=3, er_after=3, final_er=3),
                      cg_maxiter=5, reference_batch=40, final_phasing_runs=1)


def test_reconstruct_keeps_fixed_counts_and_respects_the_budget(tiny_data):
    fixed = reconstruct(tiny_data, _cfg((Stage(30.0, 2, 30), Stage(25.0, 1, 30))), progress=False)
    assert [h["stage"] for h in fixed.history] == [0, 0, 1]
    assert [(s["stage"], s["generations"]) for s in fixed.stages] == [(0, 2), (1, 1)]
    assert all(h["decision"]["reason"].startswith("fixed stage") for h in fixed.history)
    # Adaptive stages that never settle (settled share 1.0 is never reached while images move,
    # the score tolerance 0) run to the budget, which keeps the final stage its maximum.
    never = (Stage(30.0, 1, 30, max_generations=9), Stage(25.0, 2, 30, max_generations=3))
    res = reconstruct(tiny_data, _cfg(never, settled_fraction=1.0, score_tolerance=0.0, unbroken_angle=180.0,
                                      budget=5), progress=False)
    assert [h["stage"] for h in res.history] == [0, 0, 1, 1, 1]
    assert "budget" in res.stages[0]["reason"] and "maximum of 3" in res.stages[1]["reason"]
    assert res.size_estimate["method"] == "given"
    for h in res.history[1:]:
        assert set(h["convergence"]) >= {"moved_median_deg", "settled_fraction", "score_change"}
    text = format_report({"grid": [1], "voxel_size_angstrom": 1.0, "generations": 5, "history": res.history,
                          "stages": res.stages, "size_estimate": res.size_estimate})
    assert "why it ended" in text and "budget" in text and "by given" in text


def test_restart_and_resume_across_it(tiny_data, tmp_path):
    # Every move counts as near-random (unbroken_angle tiny): at its maximum the stage restarts
    # once from fresh random orientations, then ends. The default budget (the maxima: 2) grows
    # by the restarted attempt's generations.
    cfg = _cfg((Stage(30.0, 1, 30, max_generations=2),), unbroken_angle=1e-6, restarts=1)
    full = reconstruct(tiny_data, cfg, checkpoint=tmp_path / "a.h5", progress=False)
    assert [h["decision"]["restart"] for h in full.history] == [False, True, False, False]
    assert [h["kept_current"] is None for h in full.history] == [True, False, True, False]  # fresh: no matching
    summary = stage_summary(full.history)
    assert [(s["generations"], s["restart"]) for s in summary] == [(2, True), (2, False)]

    resumed = resume_after_crash(reconstruct, tiny_data, cfg, tmp_path / "b.h5")
    np.testing.assert_array_equal(resumed.rho, full.rho)
    np.testing.assert_array_equal(resumed.orientations, full.orientations)
    assert [h["decision"] for h in resumed.history] == [h["decision"] for h in full.history]


def test_soft_assignment_scores_on_some_pixels_and_averages_all(tiny_data):
    """soft_assign with `images`: the posteriors come from the pixels given (a band), the means
    cover every pixel of the images. Checked against the same call on the band alone: the same
    best references and masses, and means whose band columns are that call's means."""
    from spkernels.mtip.matching import soft_assign

    rng = np.random.default_rng(7)
    d = tiny_data
    M, dx = 17, 45.0 * 2 / 17
    ac = np.abs(np.fft.fftshift(np.fft.fftn(rng.random((M, M, M))))) ** 2
    band = np.linalg.norm(d.s, axis=1) <= 0.7 * np.linalg.norm(d.s, axis=1).max()
    assert 0 < band.sum() < band.size
    w = d.pixel_weights()
    kw = dict(temperature=1.0, reference_batch=40, photon_floor=1e-3, eps=1e-6, backend="numpy")
    sub = (d.intensities[:, band], d.s[band], w[band])
    b_q, b_s, b_r, b_means, b_mass = soft_assign(ac, *sub, dx, 30, np.random.default_rng(1), **kw)
    q, s, r, means, mass = soft_assign(ac, *sub, dx, 30, np.random.default_rng(1), images=d.intensities, **kw)
    np.testing.assert_array_equal(q, b_q)
    np.testing.assert_array_equal(r, b_r)
    np.testing.assert_allclose(mass, b_mass, rtol=1e-12)
    assert means.shape == (len(r), d.intensities.shape[1])
    np.testing.assert_allclose(means[:, band], b_means, rtol=1e-10)
    assert np.all(means[:, ~band].sum(axis=1) > 0)  # the pixels outside the band are averaged too
    with pytest.raises(ValueError, match="`images` must hold the 60 images"):
        soft_assign(ac, *sub, dx, 30, np.random.default_rng(1), images=d.intensities[:10], **kw)


def test_a_soft_stage_after_a_coarser_one_scores_in_the_old_band(tiny_data, monkeypatch):
    """At a stage change into a soft stage, soft assignment gets the old band's pixels to score
    and every pixel to average (as hard matching reads only the band)."""
    import spkernels.mtip.reconstruct as rec

    seen = []
    real = rec.soft_assign

    def spy(ac, data_sel, s_sel, w, *a, images=None, **kw):
        seen.append((data_sel.shape[1], None if images is None else images.shape[1]))
        return real(ac, data_sel, s_sel, w, *a, images=images, **kw)

    monkeypatch.setattr(rec, "soft_assign", spy)
    cfg = _cfg((Stage(40.0, 2, 30), Stage(20.0, 2, 30)))  # grids 9³ and 11³: a finer grid
    cfg = MTIPConfig(**{**cfg.__dict__, "soft_stages": 2})
    res = reconstruct(tiny_data, cfg, progress=False)
    assert [h["stage"] for h in res.history] == [0, 0, 1, 1]
    r, w = np.linalg.norm(tiny_data.s, axis=1), tiny_data.pixel_weights()
    n40, n20 = int(((r <= 1 / 40.0) & (w > 0)).sum()), int(((r <= 1 / 20.0) & (w > 0)).sum())
    assert n40 < n20
    # generation 0 has no model (nothing is scored); then stage 0, the change, stage 1
    assert seen == [(n40, n40), (n40, n20), (n20, n20)]
    assert np.isfinite(res.rho).all()


def test_starts_keep_the_lowest_final_phasing_error_and_resume_each(tiny_data, tmp_path):
    """`starts` = 3: each start is the single run of its seed (bitwise), the result is the one with
    the lowest final phasing error, every start has its own checkpoint, and a run stopped in the
    second start resumes to the same result."""
    import dataclasses

    from spkernels.mtip.reconstruct import start_plan

    cfg = dataclasses.replace(_cfg((Stage(30.0, 2, 30),)), seed=4, starts=3)
    singles = [reconstruct(tiny_data, dataclasses.replace(cfg, starts=1, seed=4 + k), progress=False)
               for k in range(3)]
    errors = [r.history[-1]["phasing_error"] for r in singles]
    assert len(set(errors)) == 3  # distinct starts: the choice means something
    best = int(np.argmin(errors))
    ck = tmp_path / "ck.h5"
    res = reconstruct(tiny_data, cfg, checkpoint=ck, progress=False)
    np.testing.assert_array_equal(res.rho, singles[best].rho)
    np.testing.assert_array_equal(res.orientations, singles[best].orientations)
    assert [st["seed"] for st in res.starts] == [4, 5, 6]
    assert [st["chosen"] for st in res.starts] == [k == best for k in range(3)]
    assert [st["phasing_error"] for st in res.starts] == errors
    files = [f for _, f in start_plan(cfg, ck)]
    assert files == [str(tmp_path / f"ck.start{k}.h5") for k in range(3)]
    assert all(os.path.exists(f) for f in files) and not ck.exists()

    class Crash(Exception):
        pass

    seen = []

    def crash(entry, rho):
        seen.append(entry["generation"])
        if len(seen) == 4:  # the second generation of the second start
            raise Crash

    ck2 = tmp_path / "again.h5"
    with pytest.raises(Crash):
        reconstruct(tiny_data, cfg, checkpoint=ck2, progress=False, callback=crash)
    assert [os.path.exists(f) for _, f in start_plan(cfg, ck2)] == [True, True, False]
    resumed = reconstruct(tiny_data, cfg, checkpoint=ck2, resume=True, progress=False)
    np.testing.assert_array_equal(resumed.rho, res.rho)
    assert resumed.starts == res.starts
    with pytest.raises(ValueError, match="needs an existing checkpoint of a start"):
        reconstruct(tiny_data, cfg, checkpoint=tmp_path / "none.h5", resume=True, progress=False)
    with pytest.raises(ValueError, match="`starts`"):
        MTIPConfig(starts=0)
