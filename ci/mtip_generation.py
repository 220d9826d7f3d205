#!/usr/bin/env python3
"""Time one full MTIP generation (slice, match, merge, phase) at a given size and backend.

    python3 ci/mtip_generation.py --backend cuda                      # 1e4 images of 128², 1e4 refs, M = 81
    python3 ci/mtip_generation.py --images 300 --references 300 --grid 21 --backend cpu   # smoke size

Simulates the images (default detector: 128 x 128), then runs a single stage of two generations
on a grid of exactly `--grid` voxels per axis: the first generation only merges and phases
(no density exists yet to match against), the second does everything, and that one is the
timing reported. Prints one JSON object (sizes, backend, seconds per step of the timed
generation and its total, the simulation's time) and writes it to `--out` when given.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=10_000)
    p.add_argument("--references", type=int, default=10_000)
    p.add_argument("--grid", type=int, default=81, help="grid size M (odd)")
    p.add_argument("--backend", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="also write the JSON here")
    args = p.parse_args(argv)
    if args.grid < 9 or args.grid % 2 == 0:
        p.error("`--grid` must be odd and at least 9")

    from spkernels.mtip.config import MTIPConfig, Stage
    from spkernels.mtip.data import SPIData
    from spkernels.mtip.phasing import PhasingSchedule
    from spkernels.mtip.reconstruct import reconstruct
    from spkernels.mtip.schedule import estimate_diameter, grid_size
    from spkernels.mtip.simulate import simulate

    t0 = time.perf_counter()
    data = SPIData.from_dataset(simulate(args.images, seed=args.seed))
    t_sim = time.perf_counter() - t0
    diameter = float(estimate_diameter(data))
    box_factor = MTIPConfig().box_factor
    box = box_factor * diameter
    # grid_size(res, box) = ceil(2 box / res) + 1 (made odd): res = 2 box / (M - 1.5) gives M
    resolution = 2.0 * box / (args.grid - 1.5)
    if grid_size(resolution, box) != args.grid:
        raise SystemExit(f"could not size the stage for M = {args.grid} (got {grid_size(resolution, box)})")
    cfg = MTIPConfig(seed=args.seed, stages=(Stage(resolution, 2, args.references),), particle_diameter=diameter,
                     backend=args.backend, final_phasing_runs=1, n_phasing_runs=1,
                     reference_batch=min(args.references, 2000), phasing=PhasingSchedule())
    t0 = time.perf_counter()
    result = reconstruct(data, cfg, progress=False)
    t_total = time.perf_counter() - t0
    timed = result.history[-1]
    steps = {k: float(v) for k, v in timed["seconds"].items()}
    out = {
        "images": args.images, "pixels": int(data.intensities.shape[1]), "references": args.references,
        "M": int(timed["M"]), "backend": args.backend, "resolution_limit": timed["resolution_limit"],
        "seconds": steps, "generation_seconds": float(sum(steps.values())),
        "both_generations_seconds": t_total, "simulate_seconds": t_sim,
        "cg_iterations": timed["cg_iterations"],
        "median_orientation_error_deg": timed.get("median_orientation_error_deg", math.nan),
    }
    text = json.dumps(out, indent=1)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
