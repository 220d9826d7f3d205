"""Multi-hit rejection (spkernels.hits): data, triplet loss, exemplar classifier, training, CLI.

The network tests train a tiny twin network (and the CNN baseline) on a few hundred simulated
32 x 32 images of three particles and classify a fourth, never seen in training. The full-size
figures are made by examples/hits_accuracy.py, not here.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from spkernels.hits import (ExemplarClassifier, HitSet, confusion_matrix, detector_mask, parse_particle,
                            read_hitset, realise, write_hitset)
from spkernels.hits.classify import _platt, _sigmoid

from spkernels.geometry import Detector
from spkernels.hits import HitClassifier, drop_multi_hits, simulate_hits

try:
    import torch

    from spkernels.hits.networks import pairwise_distances, semi_hard_triplet_loss
    from spkernels.hits.training import TrainSettings, class_labels, train_network
except ImportError:  # the ml extra is not installed: the network tests skip, the rest run
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason='the hit networks need the ml extra: pip install "spkernels[ml]"')

DET = Detector.standard(binning=4)  # 32 x 32 pixels
TRAIN_PARTICLES = ("demo:1", "demo:2:ring", "demo:3:cluster:4")
UNSEEN = "demo:0"  # the MTIP demo particle, never in the training set


def _balanced_accuracy(is_multi, truth_multi) -> float:
    return 0.5 * (float(is_multi[truth_multi].mean()) + float((~is_multi[~truth_multi]).mean()))


@pytest.fixture(scope="module")
def train_set():
    return HitSet.concatenate([simulate_hits(p, 160, detector=DET, seed=10 + i) for i, p in enumerate(TRAIN_PARTICLES)])


@pytest.fixture(scope="module")
def unseen_set():
    return simulate_hits(UNSEEN, 240, detector=DET, seed=99)


@pytest.fixture(scope="module")
def twin(train_set):
    return train_network(train_set, TrainSettings(kind="twin", epochs=8, beamstop_radius=1.0, seed=0), progress=False)


def _exemplar_rows(n_particles, per_class=8):
    return np.concatenate([np.flatnonzero(np.minimum(n_particles, 4) == k)[:per_class] for k in (1, 2, 3, 4)])


# -- data ------------------------------------------------------------------------------------
def test_simulated_hits_are_labelled_and_scaled(train_set):
    assert train_set.shape == (32, 32)
    assert train_set.particle_names == [parse_particle(p).name for p in TRAIN_PARTICLES]
    assert set(np.unique(train_set.n_particles)) == {1, 2, 3, 4}
    for k in range(3):
        one = train_set.of_particle(k)
        singles = one.images[one.n_particles == 1].sum(axis=(1, 2))
        assert singles.mean() == pytest.approx(1e4, rel=1e-4)  # the scale is set on single hits
        # k-particle hits carry more photons: their mean grows with k
        means = [one.images[one.n_particles == n].sum(axis=(1, 2)).mean() for n in (1, 2, 3, 4)]
        assert means[0] < means[1] < means[3]


def test_realise_draws_jittered_poisson_counts():
    rng = np.random.default_rng(3)
    lam = rng.uniform(0.5, 4.0, (4000, 4, 4)).astype(np.float32)
    hits = HitSet(lam, np.ones(4000, dtype=int), np.zeros(4000, dtype=int), ["x"])
    exact = realise(hits, noise=False, fluence_jitter=0.0)
    np.testing.assert_array_equal(exact, lam)
    counts = realise(hits, noise=True, fluence_jitter=0.5, seed=1)
    assert np.all(counts == np.round(counts))
    # E[counts] = lam (the log-normal factor has mean 1); Var[counts] = lam + lam^2 Var[f]
    ratio = counts.sum(axis=(1, 2)) / lam.sum(axis=(1, 2))
    assert ratio.mean() == pytest.approx(1.0, abs=0.03)
    assert np.var(np.log(realise(hits, noise=False, fluence_jitter=0.5, seed=1).sum(axis=(1, 2))
                         / lam.sum(axis=(1, 2)))) == pytest.approx(0.25, rel=0.1)
    np.testing.assert_array_equal(counts, realise(hits, noise=True, fluence_jitter=0.5, seed=1))


def test_hitset_file_round_trip_and_spi_files(tmp_path):
    rng = np.random.default_rng(4)
    mask = rng.random((8, 8)) > 0.1
    hits = HitSet(rng.uniform(0, 3, (12, 8, 8)), rng.integers(1, 5, 12), rng.integers(0, 2, 12), ["a", "b"],
                  mask=mask)
    write_hitset(tmp_path / "h.h5", hits)
    back = read_hitset(tmp_path / "h.h5")
    np.testing.assert_array_equal(back.images, hits.images)
    np.testing.assert_array_equal(back.n_particles, hits.n_particles)
    np.testing.assert_array_equal(back.mask, mask.astype(np.float32))
    assert back.particle_names == ["a", "b"] and not back.counts

    from spkernels.io import write_spi_h5
    from spkernels.mtip.simulate import simulate

    ds = simulate(6, None, Detector(16, 0.2, width=0.08), seed=2, multi_hit_fraction=0.5, beamstop_radius=1.5,
                  density_grid=None)
    write_spi_h5(tmp_path / "spi.h5", ds)
    spi = read_hitset(tmp_path / "spi.h5")
    assert spi.counts and spi.shape == (16, 16)
    np.testing.assert_array_equal(spi.n_particles, ds.n_particles)
    np.testing.assert_array_equal(spi.mask, ds.mask[0].astype(np.float32))


def test_data_validation():
    with pytest.raises(ValueError, match="`images`"):
        HitSet(np.ones((3, 4)), [1, 1, 1], [0, 0, 0])
    with pytest.raises(ValueError, match="`n_particles`"):
        HitSet(np.ones((3, 4, 4)), [1, 1], [0, 0, 0])
    with pytest.raises(ValueError, match="`n_particles`"):
        HitSet(np.ones((2, 4, 4)), [0, 1], [0, 0])
    with pytest.raises(ValueError, match="`images`"):
        HitSet(-np.ones((2, 4, 4)), [1, 1], [0, 0])
    with pytest.raises(TypeError, match="`particle`"):
        parse_particle(3)
    assert parse_particle("demo:4:ring:5").n_subunits == 5
    assert parse_particle("x/y.pdb").path == "x/y.pdb"
    m = detector_mask((5, 5), 1.0)
    assert m[2, 2] == 0 and m.sum() == 25 - 5


# -- triplet loss ----------------------------------------------------------------------------
def _triplet_reference(e, labels, margin):
    """Semi-hard triplet loss by explicit loops in float64 (the oracle)."""
    n = len(labels)
    d = np.sqrt(((e[:, None] - e[None]) ** 2).sum(-1))
    losses = []
    for a in range(n):
        negs = [j for j in range(n) if labels[j] != labels[a]]
        for p in range(n):
            if p == a or labels[p] != labels[a]:
                continue
            farther = [d[a, j] for j in negs if d[a, j] > d[a, p]]
            dn = min(farther) if farther else max(d[a, j] for j in negs)
            losses.append(max(d[a, p] - dn + margin, 0.0))
    return float(np.mean(losses))


@needs_torch
@pytest.mark.parametrize("margin", [0.2, 0.7])
def test_semi_hard_triplet_loss_matches_loops(margin):
    rng = np.random.default_rng(5)
    e = rng.standard_normal((24, 6))
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    labels = rng.integers(0, 4, 24)
    loss, active = semi_hard_triplet_loss(torch.from_numpy(e), torch.from_numpy(labels), margin)
    assert float(loss) == pytest.approx(_triplet_reference(e, labels, margin), rel=1e-12, abs=1e-14)
    assert 0.0 < active <= 1.0
    d = pairwise_distances(torch.from_numpy(e)).numpy()
    ref = np.sqrt(((e[:, None] - e[None]) ** 2).sum(-1))
    off = ~np.eye(24, dtype=bool)
    np.testing.assert_allclose(d[off], ref[off], rtol=1e-10)


# -- exemplar classifier ---------------------------------------------------------------------
def _clusters(rng, n_per, spread, dim=32):
    centres = rng.standard_normal((4, dim))
    labels = np.repeat([1, 2, 3, 4], n_per)
    e = centres[labels - 1] + spread * rng.standard_normal((labels.size, dim))
    return e, labels, centres


def test_platt_scaling_matches_a_direct_minimisation():
    from scipy.optimize import minimize

    rng = np.random.default_rng(6)
    score = np.concatenate([rng.normal(-1, 1, 30), rng.normal(1.5, 1, 50)])
    y = np.r_[np.zeros(30, bool), np.ones(50, bool)]
    a, b = _platt(score, y)
    n1, n0 = 50, 30
    t = np.where(y, (n1 + 1) / (n1 + 2), 1 / (n0 + 2))
    w = np.where(y, 0.5 / n1, 0.5 / n0)

    def loss(ab):
        p = np.clip(_sigmoid(ab[0] * score + ab[1]), 1e-300, 1 - 1e-16)
        return -np.sum(w * (t * np.log(p) + (1 - t) * np.log(1 - p)))

    ref = minimize(loss, [1.0, 0.0], method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-14,
                                                                     "maxiter": 20000}).x
    np.testing.assert_allclose([a, b], ref, rtol=1e-4, atol=1e-6)


def test_exemplar_classifier_on_separable_clusters():
    rng = np.random.default_rng(7)
    e, labels, centres = _clusters(rng, 6, 0.3)
    clf = ExemplarClassifier(e, labels)
    assert clf.loo_balanced_accuracy == 1.0
    # left-out centroids equal the centroids recomputed without the exemplar
    d = clf._loo_distances()
    i = 3
    same = np.flatnonzero(clf.labels == clf.labels[i])
    c = e[np.setdiff1d(same, [i])].mean(axis=0)
    assert d[i, clf.labels[i]] == pytest.approx(np.linalg.norm(e[i] - c), rel=1e-12)
    new_labels = rng.integers(1, 5, 400)
    new = centres[new_labels - 1] + 0.3 * rng.standard_normal((400, 32))
    pred = clf.predict(new)
    np.testing.assert_array_equal(pred.n_particles, new_labels)
    np.testing.assert_array_equal(pred.is_multi, new_labels > 1)
    assert np.all((pred.confidence >= 0.5) & (pred.confidence <= 1.0))
    assert pred.confidence.mean() > 0.9
    # the threshold moves the decision: everything is single at 1, multi at 0
    assert not clf.predict(new, threshold=1.0).is_multi.any()
    assert clf.predict(new, threshold=0.0).is_multi.all()
    back = ExemplarClassifier.from_dict(json.loads(json.dumps(clf.to_dict())))
    np.testing.assert_allclose(back.predict(new).p_multi, pred.p_multi, rtol=1e-12)


def test_exemplar_confidence_is_calibrated_on_overlapping_clusters():
    rng = np.random.default_rng(8)
    e, labels, centres = _clusters(rng, 60, 2.5, dim=4)
    clf = ExemplarClassifier(e, labels)
    new_labels = rng.integers(1, 5, 20000)
    new = centres[new_labels - 1] + 2.5 * rng.standard_normal((20000, 4))
    pred = clf.predict(new)
    right = pred.is_multi == (new_labels > 1)
    assert 0.6 < right.mean() < 0.99  # a hard case, not a trivial one
    # the stated confidence matches the frequency of being right, bin by bin
    for lo, hi in ((0.5, 0.7), (0.7, 0.9), (0.9, 1.0)):
        sel = (pred.confidence >= lo) & (pred.confidence < hi)
        if sel.sum() > 500:
            assert right[sel].mean() == pytest.approx(pred.confidence[sel].mean(), abs=0.08)


def test_exemplar_classifier_validation():
    rng = np.random.default_rng(9)
    with pytest.raises(ValueError, match="at least 2 single hits"):
        ExemplarClassifier(rng.standard_normal((4, 3)), [1, 2, 2, 2])
    with pytest.raises(ValueError, match="`n_particles`"):
        ExemplarClassifier(rng.standard_normal((4, 3)), [1, 1, 2])
    with pytest.raises(ValueError, match="`embeddings`"):
        ExemplarClassifier(rng.standard_normal(4), [1, 1, 2, 2])
    clf = ExemplarClassifier(rng.standard_normal((4, 3)), [1, 1, 2, 2])
    with pytest.raises(ValueError, match="`embeddings`"):
        clf.predict(rng.standard_normal((2, 5)))
    with pytest.raises(ValueError, match="`threshold`"):
        clf.predict(rng.standard_normal((2, 3)), threshold=1.5)
    assert confusion_matrix([0, 1, 1], [0, 1, 0], 2).tolist() == [[1, 0], [1, 1]]


# -- the networks ----------------------------------------------------------------------------
@needs_torch
def test_twin_network_generalises_to_an_unseen_particle(twin, train_set, unseen_set):
    recorded = realise(unseen_set, noise=True, seed=5)
    ex = _exemplar_rows(unseen_set.n_particles)
    rest = np.setdiff1d(np.arange(len(unseen_set)), ex)
    truth = unseen_set.n_particles[rest] > 1
    clf = HitClassifier(twin).fit_exemplars(recorded[ex], unseen_set.n_particles[ex])
    pred = clf.predict(recorded[rest])
    assert clf.embed(recorded[:3]).shape == (3, 32)
    # chance is 0.5: a tiny network on 480 images must do far better on a particle it never saw
    assert _balanced_accuracy(pred.is_multi, truth) > 0.75
    # exemplars of the training particles only (classification by hit count alone)
    tr_rec = realise(train_set, noise=True, seed=6)
    rows = _exemplar_rows(train_set.n_particles, 20)
    clf2 = HitClassifier(twin).fit_exemplars(tr_rec[rows], train_set.n_particles[rows])
    assert _balanced_accuracy(clf2.predict(recorded[rest]).is_multi, truth) > 0.7


@needs_torch
def test_cnn_baseline_trains_and_predicts(train_set, unseen_set):
    cnn = train_network(train_set, TrainSettings(kind="cnn", epochs=6, beamstop_radius=1.0, seed=0), progress=False)
    recorded = realise(unseen_set, noise=True, seed=5)
    clf = HitClassifier(cnn)
    pred = clf.predict(recorded)
    truth = unseen_set.n_particles > 1
    assert _balanced_accuracy(pred.is_multi, truth) > 0.6
    np.testing.assert_allclose(pred.confidence, np.maximum(pred.p_multi, 1 - pred.p_multi))
    with pytest.raises(ValueError, match="twin network"):
        clf.fit_exemplars(recorded[:8], unseen_set.n_particles[:8])


@needs_torch
def test_training_is_seeded_and_model_files_round_trip(train_set, twin, tmp_path):
    small = train_set.subset(np.arange(0, len(train_set), 4))
    s = TrainSettings(kind="twin", epochs=1, seed=3, channels=(8, 8, 8, 8))
    a, b = train_network(small, s, progress=False), train_network(small, s, progress=False)
    for (k, va), vb in zip(a.network.state_dict().items(), b.network.state_dict().values()):
        assert torch.equal(va, vb), k
    c = train_network(small, TrainSettings(kind="twin", epochs=1, seed=4, channels=(8, 8, 8, 8)), progress=False)
    assert not torch.equal(a.network.trunk.body[0].weight, c.network.trunk.body[0].weight)

    rec = realise(train_set.subset(np.arange(64)), seed=1)
    clf = HitClassifier(twin).fit_exemplars(rec[:48], train_set.n_particles[:48])
    clf.save(tmp_path / "m.pt")
    back = HitClassifier.load(tmp_path / "m.pt")
    assert back.trained.settings == twin.settings and back.image_shape == (32, 32)
    np.testing.assert_array_equal(back.embed(rec), clf.embed(rec))
    np.testing.assert_array_equal(back.predict(rec).p_multi, clf.predict(rec).p_multi)
    (tmp_path / "bad.pt").write_bytes(b"")
    torch.save({"format": "something else"}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="not a spkernels.hits model file"):
        HitClassifier.load(tmp_path / "bad.pt")


@needs_torch
def test_drop_multi_hits_on_mtip_data(twin, unseen_set):
    from spkernels.mtip.data import SPIData

    recorded = realise(unseen_set, noise=True, seed=8)
    ex = _exemplar_rows(unseen_set.n_particles)
    clf = HitClassifier(twin).fit_exemplars(recorded[ex], unseen_set.n_particles[ex])
    n = len(unseen_set)
    rng = np.random.default_rng(10)
    q = rng.standard_normal((n, 4))
    s_vec = DET.s_vectors(4600.0).reshape(-1, 3)
    mask = detector_mask((32, 32), 1.0).reshape(-1)
    data = SPIData(recorded.reshape(n, -1), s_vec, mask=mask, orientations=q)
    kept, keep = drop_multi_hits(data, clf)
    expect = ~clf.predict(recorded, mask.reshape(32, 32)).is_multi
    np.testing.assert_array_equal(keep, expect)
    assert kept.n_images == int(keep.sum()) > 0
    np.testing.assert_array_equal(kept.intensities, data.intensities[keep])
    np.testing.assert_array_equal(kept.orientations, data.orientations[keep])
    # Most of what is kept is single hits, most of what is dropped multi-hits. The set is 52%
    # single hits (124 of 240); over training seeds 0-5 the kept share was 0.82-0.95 single, the
    # dropped share 0.73-0.91 multi, so the bounds sit well above chance and below that spread.
    assert (unseen_set.n_particles[keep] == 1).mean() > 0.7
    assert (unseen_set.n_particles[~keep] > 1).mean() > 0.62
    with pytest.raises(TypeError, match="`data`"):
        drop_multi_hits(recorded, clf)
    with pytest.raises(TypeError, match="`classifier`"):
        drop_multi_hits(data, object())
    with pytest.raises(ValueError, match="pixels per image"):
        drop_multi_hits(SPIData(recorded.reshape(n, -1)[:, :100], s_vec[:100]), clf)
    with pytest.raises(ValueError, match="every one"):
        drop_multi_hits(data, clf, threshold=0.0)


@needs_torch
def test_train_settings_validation(train_set):
    with pytest.raises(ValueError, match="`kind`"):
        TrainSettings(kind="svm")
    with pytest.raises(TypeError, match="`epochs`"):
        TrainSettings(epochs=2.5)
    with pytest.raises(ValueError, match="unknown training settings: colour"):
        TrainSettings.from_dict({"colour": 1})
    with pytest.raises(TypeError, match="`hits`"):
        train_network(np.zeros((10, 4, 4)))
    with pytest.raises(ValueError, match="two hit counts"):
        train_network(train_set.subset(train_set.n_particles == 1), TrainSettings(epochs=1))
    np.testing.assert_array_equal(class_labels([1, 2, 5, 4], 4), [0, 1, 3, 3])


# -- command line ----------------------------------------------------------------------------
@needs_torch
def test_cli_round_trip(tmp_path, capsys):
    import h5py

    from spkernels.cli import main

    tr, te, model = tmp_path / "train.h5", tmp_path / "test.h5", tmp_path / "m.pt"
    common = ["--pixels", "32", "--binning", "2", "-n", "48", "--quiet"]
    assert main(["hits", "simulate", str(tr), "--particle", "demo:1", "--particle", "demo:2:ring", *common]) == 0
    assert main(["hits", "simulate", str(te), "--particle", UNSEEN, "--seed", "7", "--record", *common]) == 0
    assert read_hitset(te).counts and read_hitset(tr).particle_names == ["demo:1:cluster", "demo:2:ring"]
    assert main(["hits", "train", str(tr), "-o", str(model), "--epochs", "2", "--exemplars-per-class", "4",
                 "--quiet", "--seed", "1"]) == 0
    info = json.loads((tmp_path / "m.pt.json").read_text())
    assert info["settings"]["epochs"] == 2 and info["exemplars"] > 0 and len(info["history"]) == 2
    assert main(["hits", "evaluate", str(model), str(te), "--exemplars-from-data", "3", "-o",
                 str(tmp_path / "ev.json"), "--plots", str(tmp_path / "plots")]) == 0
    rep = json.loads((tmp_path / "ev.json").read_text())
    cm = np.array(rep["confusion_matrix"])
    assert cm.shape == (4, 4) and cm.sum() == rep["n_images"] and 0 <= rep["single_vs_multi_accuracy"] <= 1
    assert (tmp_path / "plots" / "confusion.png").stat().st_size > 0
    assert (tmp_path / "plots" / "embedding.png").stat().st_size > 0
    out = tmp_path / "cl.h5"
    assert main(["hits", "classify", str(model), str(te), "-o", str(out)]) == 0
    with h5py.File(out) as f:
        keep, p = f["keep"][...], f["p_multi"][...]
        assert keep.shape == (read_hitset(te).images.shape[0],)
        np.testing.assert_array_equal(keep, (p <= f.attrs["threshold"]).astype(np.uint8))
    summary = json.loads((tmp_path / "cl.h5.json").read_text())
    assert summary["kept"] == int(keep.sum()) and summary["kind"] == "twin"
    # the same model classifies the same file the same way
    assert main(["hits", "classify", str(model), str(te), "-o", str(tmp_path / "cl2.h5")]) == 0
    with h5py.File(tmp_path / "cl2.h5") as f:
        np.testing.assert_array_equal(f["p_multi"][...], p)
    capsys.readouterr()


# -- without PyTorch -------------------------------------------------------------------------
def test_missing_torch_error_names_the_extra(monkeypatch):
    import importlib

    from spkernels.hits import _torch

    real = importlib.import_module

    def no_torch(name, *a, **k):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("No module named 'torch'")
        return real(name, *a, **k)

    monkeypatch.setattr(importlib, "import_module", no_torch)
    with pytest.raises(ImportError, match=r'pip install "spkernels\[ml\]"'):
        _torch.require_torch()


def test_package_and_cli_import_without_torch():
    code = textwrap.dedent("""
        import sys
        sys.modules["torch"] = None  # any `import torch` now raises ImportError
        import numpy as np
        import spkernels.hits as h
        from spkernels.cli import build_parser
        build_parser().parse_args(["hits", "train", "x.h5"])
        rng = np.random.default_rng(0)
        clf = h.ExemplarClassifier(rng.standard_normal((6, 4)), [1, 1, 1, 2, 2, 3])
        assert len(clf.predict(rng.standard_normal((3, 4)))) == 3
        for name in ("TwinNetwork", "train_network"):
            try:
                getattr(h, name)
            except ImportError as exc:
                assert 'pip install "spkernels[ml]"' in str(exc), exc
            else:
                raise AssertionError(name + " imported without torch")
        print("ok")
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"


@needs_torch
def test_reconstruct_drops_multi_hits_first(twin, unseen_set, tmp_path, capsys):
    from spkernels.mtip.data import SPIData
    from spkernels.mtip.phasing import PhasingSchedule
    from spkernels.mtip.reconstruct import MTIPConfig, Stage, reconstruct

    recorded = realise(unseen_set, noise=True, seed=8)
    ex = _exemplar_rows(unseen_set.n_particles)
    clf = HitClassifier(twin).fit_exemplars(recorded[ex], unseen_set.n_particles[ex])
    n = len(unseen_set)
    s_vec = DET.s_vectors(4600.0).reshape(-1, 3)
    data = SPIData(recorded.reshape(n, -1), s_vec)
    _, keep = drop_multi_hits(data, clf)
    cfg = MTIPConfig(seed=2, particle_diameter=160.0, stages=(Stage(60.0, 1, 20),), cg_maxiter=3,
                     phasing=PhasingSchedule(n_loops=1, er_before=2, hio=2, er_after=2, final_er=2))
    clf.save(tmp_path / "hits.pt")
    for hits in (clf, tmp_path / "hits.pt"):  # a classifier or its model file
        res = reconstruct(data, cfg, progress=False, hits=hits)
        np.testing.assert_array_equal(res.kept_images, keep)
        assert res.orientations.shape == (int(keep.sum()), 4)
    with pytest.raises(ValueError, match="multi-hit"):  # nothing left to reconstruct: said, not run
        reconstruct(data, cfg, progress=False, hits=clf, hits_threshold=1e-9)
    # the same from the command line: [run] hits names the model file
    from spkernels import cli
    from spkernels.io import SPIDataset, write_spi_h5

    write_spi_h5(tmp_path / "d.h5", SPIDataset(intensities=recorded.reshape(n, 1, 32, 32).astype(np.float64),
                                               pixel_position_reciprocal=s_vec.reshape(1, 32, 32, 3) * 1e10))
    (tmp_path / "c.toml").write_text('''[run]
input = "d.h5"
output = "out"
hits = "hits.pt"
[mtip]
seed = 2
particle_diameter = 160.0
cg_maxiter = 3
[mtip.phasing]
n_loops = 1
er_before = 2
hio = 2
er_after = 2
final_er = 2
[[mtip.stages]]
resolution = 60.0
generations = 1
n_references = 20
''')
    assert cli.main(["mtip", "run", str(tmp_path / "c.toml"), "--quiet"]) == 0
    assert f"({n - int(keep.sum())} multi-hits dropped)" in capsys.readouterr().out
    # its checkpoint holds the kept images only: a resume drops them again and reports
    assert cli.main(["mtip", "run", str(tmp_path / "c.toml"), "--quiet", "--resume"]) == 0
    assert f"({n - int(keep.sum())} multi-hits dropped)" in capsys.readouterr().out
    text = (tmp_path / "c.toml").read_text()
    (tmp_path / "c.toml").write_text(text.replace('hits = "hits.pt"\n', ""))
    assert cli.main(["mtip", "run", str(tmp_path / "c.toml"), "--quiet", "--resume"]) == 2
    assert "was written with multi-hit rejection" in capsys.readouterr().err
    (tmp_path / "c.toml").write_text(text)
    (tmp_path / "c.toml").write_text((tmp_path / "c.toml").read_text().replace("hits.pt", "none.pt"))
    assert cli.main(["mtip", "run", str(tmp_path / "c.toml"), "--quiet"]) == 2
