"""``spkernels hits ...``: ``simulate`` labelled hits, ``train`` a network, ``evaluate`` it,
``classify`` images (HDF5 in; HDF5 and JSON out)."""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np

from ..cli import add_detector_arguments, detector_from_args

__all__ = ["add_parser"]


def _recorded(hits, noise: bool, fluence_jitter: float, seed: int):
    """Images as a detector records them: noise drawn for expected-photon sets, counts as they are."""
    from .data import realise

    return realise(hits, noise=noise, fluence_jitter=fluence_jitter, seed=seed)


def _load_sets(paths):
    from .data import HitSet, read_hitset

    return HitSet.concatenate([read_hitset(p) for p in paths])


def _cmd_simulate(args) -> int:
    from .data import HitSet, realise, simulate_hits, write_hitset

    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    det = detector_from_args(args)
    t0 = time.perf_counter()
    sets = [simulate_hits(p, args.n_images, detector=det, photon_energy=args.energy, photons=args.photons,
                          multi_hit_fraction=args.multi_hit, max_particles=args.max_particles, seed=args.seed + i,
                          progress=not args.quiet) for i, p in enumerate(args.particle or ["demo:1"])]
    hits = HitSet.concatenate(sets)
    if args.record:
        hits = HitSet(realise(hits, noise=True, fluence_jitter=args.fluence_jitter, seed=args.seed), hits.n_particles,
                      hits.particle, hits.particle_names, counts=True)
    write_hitset(args.output, hits)
    print(f"wrote {args.output}: {len(hits)} images of {hits.shape[0]}x{hits.shape[1]} px of "
          f"{len(hits.particle_names)} particle(s), hit counts {np.bincount(hits.n_particles).tolist()[1:]}, "
          f"{'recorded counts' if args.record else 'expected photons'}, {time.perf_counter() - t0:.1f} s")
    return 0


def _settings_from_args(args):
    from .training import TrainSettings

    return TrainSettings(kind=args.kind, embedding_dim=args.embedding_dim, margin=args.margin,
                         noise=not args.no_noise, fluence_jitter=args.fluence_jitter,
                         beamstop_radius=args.beamstop, epochs=args.epochs, batch_size=args.batch_size,
                         lr=args.lr, seed=args.seed)


def _exemplar_rows(n_particles, per_class: int, n_classes: int, rng):
    """Up to `per_class` random rows of each hit-count class."""
    from .training import class_labels

    lab = class_labels(n_particles, n_classes)
    rows = [rng.permutation(np.flatnonzero(lab == k))[:per_class] for k in range(n_classes)]
    return np.sort(np.concatenate(rows)).astype(np.int64)


def _cmd_train(args) -> int:
    from ._torch import require_torch
    from .classify import HitClassifier
    from .training import train_network

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    if args.threads:
        require_torch().set_num_threads(args.threads)
    hits = _load_sets(args.data)
    settings = _settings_from_args(args)
    t0 = time.perf_counter()
    trained = train_network(hits, settings, progress=not args.quiet)
    wall = time.perf_counter() - t0
    clf = HitClassifier(trained)
    if settings.kind == "twin" and args.exemplars_per_class > 0:
        # exemplars of the training particles: classification by hit count alone, until the user
        # gives exemplars of a new particle
        rows = _exemplar_rows(hits.n_particles, args.exemplars_per_class, settings.n_classes,
                              np.random.default_rng(settings.seed))
        ex = hits.subset(rows)
        clf.fit_exemplars(_recorded(ex, settings.noise, settings.fluence_jitter, settings.seed), ex.n_particles)
    clf.save(args.output)
    info = {"model": str(args.output), "settings": settings.to_dict(), "n_images": len(hits),
            "particles": hits.particle_names, "train_seconds": wall, "history": trained.history,
            "exemplars": 0 if clf.exemplars is None else int(clf.exemplars.labels.size)}
    Path(str(args.output) + ".json").write_text(json.dumps(info, indent=2))
    print(f"trained {settings.kind} on {len(hits)} images in {wall:.1f} s (final loss "
          f"{trained.history[-1]['loss']:.4f}) -> {args.output}")
    return 0


def _classifier_with_exemplars(args, clf, data, recorded, rng):
    """Apply --exemplars FILE or --exemplars-from-data K; return the rows of `data` to score."""
    rows = np.arange(len(data))
    if clf.kind != "twin":
        if args.exemplars or getattr(args, "exemplars_from_data", 0):
            raise SystemExit("exemplars apply to the twin network only; this model is a CNN")
        return rows
    if args.exemplars:
        ex = _load_sets([args.exemplars])
        s = clf.trained.settings
        clf.fit_exemplars(_recorded(ex, s.noise, s.fluence_jitter, args.seed + 1), ex.n_particles, ex.mask)
    elif getattr(args, "exemplars_from_data", 0):
        ex_rows = _exemplar_rows(data.n_particles, args.exemplars_from_data, clf.trained.settings.n_classes, rng)
        clf.fit_exemplars(recorded[ex_rows], data.n_particles[ex_rows], data.mask)
        rows = np.setdiff1d(rows, ex_rows)
    if clf.exemplars is None:
        raise SystemExit("this twin model has no exemplars: pass --exemplars FILE (labelled images)")
    return rows


def _noise_choice(args, clf) -> bool:
    return clf.trained.settings.noise if args.noise is None else args.noise == "poisson"


def _cmd_evaluate(args) -> int:
    from .classify import HitClassifier, confusion_matrix
    from .training import class_labels

    clf = HitClassifier.load(args.model)
    data = _load_sets([args.data])
    noise = _noise_choice(args, clf)
    recorded = _recorded(data, noise, clf.trained.settings.fluence_jitter, args.seed)
    rows = _classifier_with_exemplars(args, clf, data, recorded, np.random.default_rng(args.seed))
    t0 = time.perf_counter()
    pred = clf.predict(recorded[rows], data.mask, threshold=args.threshold, batch_size=args.batch_size,
                       device=args.device)
    rate = len(rows) / max(time.perf_counter() - t0, 1e-9)
    truth = data.n_particles[rows] > 1
    n_cls = clf.trained.settings.n_classes
    cm = confusion_matrix(class_labels(data.n_particles[rows], n_cls), pred.n_particles - 1, n_cls)
    rep = {"model": str(args.model), "data": str(args.data), "kind": clf.kind, "noise": noise,
           "n_images": int(len(rows)), "single_vs_multi_accuracy": float((pred.is_multi == truth).mean()),
           "balanced_accuracy": 0.5 * (float(pred.is_multi[truth].mean()) if truth.any() else float("nan"))
           + 0.5 * (float((~pred.is_multi[~truth]).mean()) if (~truth).any() else float("nan")),
           "single_hits_kept": float((~pred.is_multi[~truth]).mean()) if (~truth).any() else None,
           "multi_hits_rejected": float(pred.is_multi[truth].mean()) if truth.any() else None,
           "hit_count_accuracy": float(np.trace(cm) / max(cm.sum(), 1)),
           "confusion_matrix": cm.tolist(), "confusion_matrix_labels": [str(k) for k in range(1, n_cls)] + [f"{n_cls}+"],
           "mean_confidence": float(pred.confidence.mean()), "images_per_second": rate, "device": args.device,
           "threshold": pred.threshold}
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rep, indent=2))
    if args.plots:
        from .report import plot_confusion, plot_embedding

        pdir = Path(args.plots)
        pdir.mkdir(parents=True, exist_ok=True)
        plot_confusion(cm, pdir / "confusion.png", labels=rep["confusion_matrix_labels"],
                       title=f"{clf.kind}: hit counts of {Path(args.data).name}")
        if clf.kind == "twin":
            plot_embedding(clf.embed(recorded[rows], data.mask), data.n_particles[rows], pdir / "embedding.png")
    print(f"{clf.kind}: single-vs-multi accuracy {rep['single_vs_multi_accuracy']:.3f} "
          f"(balanced {rep['balanced_accuracy']:.3f}) on {len(rows)} images, {rate:.0f} images/s -> {out}")
    return 0


def _cmd_classify(args) -> int:
    import h5py

    from .classify import HitClassifier

    clf = HitClassifier.load(args.model)
    data = _load_sets([args.data])
    recorded = _recorded(data, _noise_choice(args, clf), clf.trained.settings.fluence_jitter, args.seed)
    if args.exemplars:
        _classifier_with_exemplars(args, clf, data, recorded, np.random.default_rng(args.seed))
    t0 = time.perf_counter()
    pred = clf.predict(recorded, data.mask, threshold=args.threshold, batch_size=args.batch_size, device=args.device)
    wall = time.perf_counter() - t0
    with h5py.File(args.output, "w") as f:
        f["p_multi"] = pred.p_multi
        f["is_multi"] = pred.is_multi.astype(np.uint8)
        f["keep"] = (~pred.is_multi).astype(np.uint8)
        f["n_particles"] = pred.n_particles
        f["confidence"] = pred.confidence
        f["count_confidence"] = pred.count_confidence
        f.attrs["threshold"] = pred.threshold
        f.attrs["model"] = str(args.model)
        f.attrs["data"] = str(args.data)
    summary = {"data": str(args.data), "model": str(args.model), "kind": clf.kind, "n_images": len(pred),
               "multi_hits": int(pred.is_multi.sum()), "kept": int((~pred.is_multi).sum()),
               "threshold": pred.threshold, "images_per_second": len(pred) / max(wall, 1e-9),
               "predicted_hit_counts": np.bincount(pred.n_particles, minlength=clf.trained.settings.n_classes + 1)
               .tolist()[1:], "output": str(args.output)}
    Path(args.json or (str(args.output) + ".json")).write_text(json.dumps(summary, indent=2))
    print(f"{len(pred)} images: {summary['kept']} single hits kept, {summary['multi_hits']} multi-hits "
          f"({summary['images_per_second']:.0f} images/s) -> {args.output}")
    return 0


def _add_eval_options(p) -> None:
    p.add_argument("model", help="model file written by `spkernels hits train`")
    p.add_argument("data", help="HDF5 images: a `hits simulate` file or an SPI file (skopi/SpiniFEL layout)")
    p.add_argument("--exemplars", help="HDF5 of labelled exemplars of the particle (twin network)")
    p.add_argument("--threshold", type=float, help="multi-hit probability above which an image is rejected "
                   "(default: the calibrated 0.5)")
    p.add_argument("--noise", choices=("poisson", "none"), help="for expected-photon inputs: draw Poisson counts "
                   "or not (default: as the model was trained)")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise drawn for expected-photon inputs")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--device", default="cpu", help="torch device of the network (cpu, cuda)")


def add_parser(subparsers) -> None:
    """Register ``hits`` and its subcommands on the top-level ``spkernels`` parser."""
    p = subparsers.add_parser("hits", help="multi-hit rejection: simulate labelled hits, train, evaluate, classify")
    sub = p.add_subparsers(dest="hits_command", required=True)
    fmt = argparse.ArgumentDefaultsHelpFormatter

    s = sub.add_parser("simulate", help="labelled single and multi-particle hits into an HDF5 file", formatter_class=fmt)
    s.add_argument("output", help="HDF5 file to write")
    s.add_argument("--particle", action="append", default=None,
                   help="demo:SEED[:LAYOUT[:CHAINS]] or a PDB/mmCIF path; repeat for several (default demo:1)")
    s.add_argument("-n", "--n-images", type=int, default=500, help="images per particle")
    s.add_argument("--multi-hit", type=float, default=0.5, help="share of images with 2 or more particles")
    s.add_argument("--max-particles", type=int, default=4)
    s.add_argument("--photons", type=float, default=1e4, help="mean photons of a single hit")
    s.add_argument("--energy", type=float, default=4600.0, help="photon energy in eV")
    add_detector_arguments(s, binning=2)
    s.add_argument("--record", action="store_true", help="store recorded counts (fluence jitter, Poisson) "
                   "instead of expected photons")
    s.add_argument("--fluence-jitter", type=float, default=0.5, help="log-normal sigma of the fluence (--record)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=_cmd_simulate)

    t = sub.add_parser("train", help="train the twin network or the CNN baseline", formatter_class=fmt)
    t.add_argument("data", nargs="+", help="HDF5 training sets (`hits simulate` or SPI files with n_particles)")
    t.add_argument("-o", "--output", default="hits-model.pt", help="model file (settings, weights, exemplars); "
                   "a .json summary is written beside it")
    t.add_argument("--kind", choices=("twin", "cnn"), default="twin")
    t.add_argument("--epochs", type=int, default=20)
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--margin", type=float, default=0.2, help="triplet margin")
    t.add_argument("--embedding-dim", type=int, default=32)
    t.add_argument("--no-noise", action="store_true", help="train on noise-free expected photons")
    t.add_argument("--fluence-jitter", type=float, default=0.5)
    t.add_argument("--beamstop", type=float, default=2.0, help="beam-stop radius in pixels")
    t.add_argument("--exemplars-per-class", type=int, default=20,
                   help="training images kept per hit count as the model's default exemplars (twin)")
    t.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=_cmd_train)

    e = sub.add_parser("evaluate", help="accuracy, confusion matrix and speed on labelled images", formatter_class=fmt)
    _add_eval_options(e)
    e.add_argument("--exemplars-from-data", type=int, default=0,
                   help="take this many images per hit count of DATA as exemplars (not scored)")
    e.add_argument("-o", "--output", default="hits-eval.json", help="JSON report")
    e.add_argument("--plots", help="folder for confusion.png and embedding.png")
    e.set_defaults(func=_cmd_evaluate)

    c = sub.add_parser("classify", help="classify images; write p_multi, keep, hit counts", formatter_class=fmt)
    _add_eval_options(c)
    c.add_argument("-o", "--output", default="hits-classified.h5", help="HDF5 output")
    c.add_argument("--json", help="JSON summary (default: OUTPUT.json)")
    c.set_defaults(func=_cmd_classify)
