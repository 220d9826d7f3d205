"""What multi-hits do to an MTIP reconstruction, and how much of it the twin network's rejection
recovers: the MTIP demo's data (built-in particle D, 64 x 64 pixels, 3e13 photons per pulse)
with a share of two-particle hits mixed in, reconstructed three ways:

- ``none``: every image, multi-hits included;
- ``twin``: ``reconstruct(..., hits=classifier)``, the twin network trained on particles A, B, C
  (never D), classifying by the training particles' exemplars (hit count alone);
- ``perfect``: only the true single hits.

    python examples/hits_mtip.py prepare -o hits-mtip      # simulate D, train the twin network
    python examples/hits_mtip.py run none -o hits-mtip     # then each of none, twin, perfect
    python examples/hits_mtip.py summary -o hits-mtip      # the resolutions and the share recovered

Each run is an MTIP demo reconstruction (about 5 min on 2 cores for 3000 images).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

TRAIN = ("demo:1", "demo:2:ring", "demo:3:cluster:4")


def prepare(args, out: Path) -> None:
    from spkernels.geometry import Beam, Detector
    from spkernels.hits import HitClassifier, HitSet, realise, simulate_hits
    from spkernels.hits.training import TrainSettings, class_labels, train_network
    from spkernels.io import write_spi_h5
    from spkernels.mtip.particle import demo_particle
    from spkernels.mtip.simulate import simulate

    det = Detector.standard(binning=2)
    t0 = time.perf_counter()
    ds = simulate(args.n_images, demo_particle(0), det, Beam(4600.0, args.photons, 5e-7), seed=args.seed,
                  multi_hit_fraction=args.multi_hit, max_particles=2)
    write_spi_h5(out / "data.h5", ds)
    photons = ds.intensities.sum(axis=(1, 2, 3))
    single_photons = float(photons[ds.n_particles == 1].mean())
    print(f"simulated {args.n_images} images ({(ds.n_particles > 1).mean():.1%} multi-hits, "
          f"{single_photons:.0f} photons per single hit) in {time.perf_counter() - t0:.0f} s", flush=True)
    train = HitSet.concatenate([simulate_hits(p, args.n_train, detector=det, photons=single_photons, seed=100 + i)
                                for i, p in enumerate(TRAIN)])
    s = TrainSettings(kind="twin", epochs=args.epochs, seed=0, beamstop_radius=0.0)
    t1 = time.perf_counter()
    clf = HitClassifier(train_network(train, s, progress=True))
    lab = class_labels(train.n_particles, 4)
    rng = np.random.default_rng(0)
    rows = np.concatenate([rng.permutation(np.flatnonzero(lab == k))[:30] for k in range(4)])
    clf.fit_exemplars(realise(train.subset(rows), seed=1), train.n_particles[rows])
    clf.save(out / "twin.pt")
    print(f"trained the twin network on {len(train)} images of {', '.join(TRAIN)} in "
          f"{time.perf_counter() - t1:.0f} s", flush=True)


def run(args, out: Path) -> None:
    from spkernels.io import read_spi_h5
    from spkernels.mtip.reconstruct import MTIPConfig, SPIData, reconstruct
    from spkernels.mtip.report import write_outputs

    ds = read_spi_h5(out / "data.h5")
    data = SPIData.from_dataset(ds)
    cfg = MTIPConfig(seed=args.seed)
    kw = {}
    if args.mode == "perfect":
        keep = np.asarray(ds.n_particles) == 1
        data = SPIData(data.intensities[keep], data.s, data.mask, data.orientations[keep])
    elif args.mode == "twin":
        kw["hits"] = str(out / "twin.pt")
    t0 = time.perf_counter()
    result = reconstruct(data, cfg, progress=False, **kw)
    wall = time.perf_counter() - t0
    kept = getattr(result, "kept_images", None)
    true_q = data.orientations
    if args.mode == "twin" and kept is not None:
        true_q = data.orientations[np.asarray(kept, dtype=bool)]
    rep = write_outputs(result, out / args.mode, reference=ds.density, reference_voxel_size=ds.voxel_size,
                        true_orientations=true_q)
    n_part = np.asarray(ds.n_particles)
    summary = {"mode": args.mode, "wall_seconds": wall, "fsc_resolution_angstrom": rep.get("fsc_resolution_angstrom"),
               "median_orientation_error_deg": rep.get("median_orientation_error_deg")}
    if args.mode == "twin" and kept is not None:
        kept = np.asarray(kept, dtype=bool)
        summary.update(images_kept=int(kept.sum()), singles_kept=float(kept[n_part == 1].mean()),
                       multi_rejected=float((~kept[n_part > 1]).mean()))
    (out / f"{args.mode}.json").write_text(json.dumps(summary, indent=2, default=float))
    print(json.dumps(summary, default=float), flush=True)


def summary(args, out: Path) -> None:
    r = {m: json.loads((out / f"{m}.json").read_text()) for m in ("none", "twin", "perfect")
         if (out / f"{m}.json").exists()}
    for m, v in r.items():
        print(f"{m:8s} FSC-0.5 {v['fsc_resolution_angstrom']:.2f} A  ({v['wall_seconds']:.0f} s)")
    if len(r) == 3:
        lost = r["none"]["fsc_resolution_angstrom"] - r["perfect"]["fsc_resolution_angstrom"]
        won = r["none"]["fsc_resolution_angstrom"] - r["twin"]["fsc_resolution_angstrom"]
        print(f"resolution lost to multi-hits {lost:.2f} A; recovered by the twin network {won:.2f} A "
              f"({won / lost:.0%})" if lost > 0 else f"no resolution lost to multi-hits ({lost:.2f} A)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("step", choices=("prepare", "run", "summary"))
    ap.add_argument("mode", nargs="?", choices=("none", "twin", "perfect"))
    ap.add_argument("-o", "--output", default="hits-mtip")
    ap.add_argument("-n", "--n-images", type=int, default=3000)
    ap.add_argument("--photons", type=float, default=3e13, help="photons per pulse (the MTIP demo's)")
    ap.add_argument("--multi-hit", type=float, default=0.2, help="share of two-particle hits")
    ap.add_argument("--n-train", type=int, default=400, help="training images per particle A, B, C")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    if args.step == "run" and args.mode is None:
        ap.error("run needs a mode: none, twin or perfect")
    {"prepare": prepare, "run": run, "summary": summary}[args.step](args, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
