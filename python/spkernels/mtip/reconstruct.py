"""MTIP reconstruction: from diffraction images with unknown orientations to a 3-D density.

One generation is slicing → orientation matching → merging → phasing:

1. **Slicing**: model images are the type-2 NUFFT of the current autocorrelation ``ac`` at the
   pixels' s-vectors rotated into the particle frame (``Rᵀ s``) for a fresh set of reference
   orientations (a near-uniform set turned by a random rotation each generation).
2. **Matching**: each image takes the reference with the best Poisson log-likelihood score
   ``Σ w (m − d log m)`` (:func:`spkernels.kernels.distance_argmin` with ``metric="poisson"``,
   streamed over reference batches by an ``ArgminAccumulator``); the image's current
   orientation competes as a candidate of its own, and so do a few random small rotations of
   it (local refinement), so accuracy goes well below the reference grid spacing.
3. **Merging**: ``ac`` solves ``(AᴴWA + λ) ac = AᴴW d + λ ac_prev`` on its support by conjugate
   gradient, with ``AᴴWA`` applied through a Toeplitz kernel (FFTs only).
4. **Phasing**: ER/HIO/shrink-wrap (:mod:`spkernels.mtip.phasing`) turns ``ac`` into a density;
   its autocorrelation is the model sliced in the next generation. Only the Fourier sphere the
   data reach is enforced. The last generation averages several phasing runs.

A coarse-to-fine schedule of stages (resolution limit, generations, number of references)
makes convergence from random orientations reliable: the grid size M follows the resolution so
that the real-space box L stays fixed, and the density is carried from stage to stage by
Fourier padding. The geometry of the grid: voxel ``dx = L / M``; a pixel with s-vector ``s``
(Å⁻¹) sits at NUFFT point ``2π · dx · s`` (axis order z, y, x).

This module holds the loop; the steps live beside it: settings in :mod:`.config`, the data in
:mod:`.data`, the schedule and size estimate in :mod:`.schedule`, grids in :mod:`.grid`, the
steps in :mod:`.slicing`, :mod:`.matching`, :mod:`.merging` and :mod:`.phasing`, accuracy in
:mod:`.metrics`. Every public name of those is importable from here too.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass

import numpy as np

from .. import parallel
from ..geometry import random_orientations
from .config import MTIPConfig, Stage
from .data import SPIData
from .grid import ball, resample
from .matching import match_orientations, soft_assign
from .merging import merge
from .metrics import orientation_errors
from .phasing import autocorrelation, gaussian_filter, phase
from .schedule import MIN_GRID, default_schedule, estimate_diameter, grid_size, radius_of_gyration
from .slicing import slice_model

__all__ = [
    "MIN_GRID",
    "MTIPConfig",
    "MTIPResult",
    "SPIData",
    "Stage",
    "default_schedule",
    "estimate_diameter",
    "grid_size",
    "match_orientations",
    "merge",
    "orientation_errors",
    "radius_of_gyration",
    "reconstruct",
    "resample",
    "slice_model",
    "soft_assign",
]

log = logging.getLogger("spkernels.mtip.reconstruct")

_SEED_SALT = 0x4D544950  # "MTIP": separates reconstruct's random stream from simulate's


@dataclass
class MTIPResult:
    """Output of :func:`reconstruct`.

    Attributes
    ----------
    rho : array (M, M, M)
        Final density (arbitrary scale), centred, voxel size ``voxel_size`` Å.
    ac : array (M, M, M)
        Final merged autocorrelation.
    orientations : array (N, 4)
        Estimated orientation of each image.
    voxel_size : float
        Å per voxel of ``rho``.
    history : list of dict
        Per generation: stage, resolution limit, M, references, kept-current fraction, CG
        iterations, phasing error, median orientation error (when truth known), seconds per step.
    """

    rho: np.ndarray
    ac: np.ndarray
    orientations: np.ndarray
    voxel_size: float
    history: list


def reconstruct(data: SPIData, config: MTIPConfig | None = None, *, checkpoint=None, resume: bool = False,
                progress: bool = True, comm=None, callback=None, initial_orientations=None) -> MTIPResult:
    """Reconstruct a density from SPI diffraction images by MTIP, starting from random orientations.

    Parameters
    ----------
    data : SPIData
        Images, pixel s-vectors, mask, and (optionally) true orientations for reporting.
    config : MTIPConfig, optional
        Settings; the default builds the coarse-to-fine schedule from the data.
    checkpoint : path, optional
        HDF5 file written atomically after every generation (temporary file, then rename).
    resume : bool
        Continue from ``checkpoint``; with the same config and data the run ends bitwise where
        an uninterrupted run ends.
    progress : bool
        tqdm progress bar over generations (rank 0, TTY only).
    comm : mpi4py communicator, optional
        Images are split over ranks; merges sum over ranks.
    callback : callable, optional
        ``callback(history_entry, rho)`` after each generation.
    initial_orientations : array (N, 4), optional
        Start from these orientations instead of random ones (e.g. a previous run's, or to
        measure the basin of convergence around known ones).

    Returns
    -------
    MTIPResult
    """
    from . import checkpoint as ckpt

    cfg = config or MTIPConfig()
    diameter = cfg.particle_diameter or estimate_diameter(data)
    stages = cfg.stages or default_schedule(data, diameter)
    box = cfg.box_factor * diameter
    w_all = data.pixel_weights()
    r_all = np.linalg.norm(data.s, axis=1)
    mine = parallel.split_range(data.n_images, comm)
    intens = data.intensities[mine]
    # What the steps take from the settings.
    ref_args = dict(reference_batch=cfg.reference_batch, photon_floor=cfg.photon_floor, eps=cfg.eps,
                    backend=cfg.backend)
    match_args = dict(ref_args, keep_current=cfg.keep_current, local_candidates=cfg.local_candidates,
                      local_angle=cfg.local_angle, switch_margin=cfg.switch_margin)
    merge_settings = dict(eps=cfg.eps, backend=cfg.backend, tikhonov=cfg.tikhonov, cg_tol=cfg.cg_tol,
                          cg_maxiter=cfg.cg_maxiter)

    total_gens = sum(st.generations for st in stages)
    state = None
    if resume:
        if checkpoint is None or not os.path.exists(checkpoint):
            raise ValueError("`resume` needs an existing `checkpoint` file")
        state = ckpt.load(checkpoint, cfg)
        if state["n_images"] != data.n_images:
            raise ValueError("checkpoint was written for a different dataset (image count differs)")
    if state is None:
        # A stream of its own: simulate(seed=k) draws its true orientations first from
        # default_rng(k), so default_rng(cfg.seed) would start a run with the same k exactly at
        # the truth (the demo passes one seed to both).
        rng = np.random.default_rng([cfg.seed, _SEED_SALT])
        quats_all = random_orientations(data.n_images, rng)
        if initial_orientations is not None:
            quats_all = np.asarray(initial_orientations, dtype=np.float64).reshape(data.n_images, 4).copy()
        state = {"generation": 0, "orientations": quats_all, "rho": None, "ac": None, "M": None,
                 "history": [], "rng_state": rng.bit_generator.state, "n_images": data.n_images}
    rng = np.random.default_rng()
    rng.bit_generator.state = state["rng_state"]

    bar = None
    if progress and parallel.is_root(comm):
        from tqdm.auto import tqdm

        bar = tqdm(total=total_gens, initial=state["generation"], desc="MTIP", unit="gen",
                   disable=None)
    gen = 0
    try:
        for si, stage in enumerate(stages):
            M = grid_size(stage.resolution, box)
            dx = box / M
            s_lim = min(1.0 / stage.resolution, (M - 1) / (2.0 * box))
            sel = (r_all <= s_lim) & (w_all > 0)
            s_sel, w_sel = data.s[sel], w_all[sel]
            data_sel = np.ascontiguousarray(intens[:, sel])
            for g in range(stage.generations):
                if gen < state["generation"]:
                    gen += 1
                    continue
                t_step = {}
                quats = state["orientations"][mine]
                rho, ac = state["rho"], state["ac"]
                if rho is not None and state["M"] != M:
                    rho = resample(rho, M)
                    ac = autocorrelation(np.maximum(rho, 0))
                kept = None
                mean_score = None
                soft = si < cfg.soft_stages
                merge_args = (data_sel, quats, None)
                if ac is not None:
                    t0 = time.perf_counter()
                    if soft:
                        if comm is not None and comm.Get_size() > 1:
                            raise ValueError("`soft_stages` is not supported under MPI")
                        quats, sc, qr, means, mass = soft_assign(ac, data_sel, s_sel, w_sel, dx, stage.n_references,
                                                                 rng, temperature=cfg.soft_temperature, **ref_args)
                        mean_score = float(sc.mean())
                        merge_args = (means, qr, mass)
                    else:
                        quats, sc, kept = match_orientations(ac, data_sel, s_sel, w_sel, quats, dx,
                                                             stage.n_references, rng, **match_args)
                        mean_score = float(parallel.allreduce_sum(float(sc.sum()), comm)) / data.n_images
                        merge_args = (data_sel, quats, None)
                    t_step["match"] = time.perf_counter() - t0
                t0 = time.perf_counter()
                if ac is None:
                    support = ball(M, M // 2)
                else:
                    blurred = gaussian_filter(ac, 0.5)
                    support = (blurred > 1e-3 * blurred.max()) & ball(M, M // 2)
                ac_new, cg_res = merge(merge_args[0], s_sel, w_sel, merge_args[1], M, dx, support, ac, comm=comm,
                                       row_weights=merge_args[2], **merge_settings)
                t_step["merge"] = time.perf_counter() - t0
                t0 = time.perf_counter()
                last = gen == total_gens - 1
                runs = max(cfg.n_phasing_runs, cfg.final_phasing_runs) if last else cfg.n_phasing_runs
                # The data fill the sphere |s| <= s_lim; the cube's corners beyond it hold no
                # measurements, so phasing leaves their magnitudes free.
                ph = phase(ac_new, schedule=cfg.phasing, n_runs=runs, rho0=rho, max_frequency=s_lim * dx,
                           seed=rng)
                t_step["phase"] = time.perf_counter() - t0
                orient_all = parallel.allgather_rows(quats, comm)
                entry = {"generation": gen, "stage": si, "resolution_limit": float(1.0 / s_lim), "M": M,
                         "n_references": stage.n_references, "kept_current": kept,
                         "mean_score": mean_score,
                         "cg_iterations": int(cg_res.iterations), "phasing_error": float(ph.fourier_error[-1]),
                         "seconds": t_step}
                if data.orientations is not None:
                    entry["median_orientation_error_deg"] = float(np.median(orientation_errors(orient_all, data.orientations)))
                state.update(generation=gen + 1, orientations=orient_all, rho=ph.rho,
                             ac=ph.ac_phased if cfg.slice_phased else ac_new, M=M,
                             rng_state=rng.bit_generator.state)
                state["history"].append(entry)
                log.info("generation %d: %s", gen, entry)
                if checkpoint is not None and parallel.is_root(comm):
                    ckpt.save(checkpoint, state, cfg, voxel_size=dx)
                if callback is not None:
                    callback(entry, ph.rho)
                if bar is not None:
                    bar.set_postfix(res=f"{1 / s_lim:.1f}Å", M=M, err=entry.get("median_orientation_error_deg", float("nan")))
                    bar.update(1)
                gen += 1
    finally:
        if bar is not None:
            bar.close()
    M = state["M"]
    return MTIPResult(rho=state["rho"], ac=state["ac"], orientations=state["orientations"],
                      voxel_size=box / M, history=state["history"])
