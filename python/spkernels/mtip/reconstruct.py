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
Fourier padding. The default stages are adaptive: each ends when its orientations have
settled (the share of images that moved by less than the stage's angular resolution
``resolution / diameter``, the mean score's change), between a minimum and a maximum number of
generations and within a total budget; a stage whose assignments stay near-random takes a fresh
random start (:func:`~spkernels.mtip.schedule.stage_decision`, settings in
:class:`~spkernels.mtip.config.Convergence`). Stages given explicitly run their fixed counts
unless they set ``max_generations``. The particle diameter, which sets L, comes from a Guinier
fit or, without a Guinier range, a shape fit of the radial intensity
(:func:`~spkernels.mtip.schedule.size_estimate`). The geometry of the grid: voxel ``dx = L / M``; a pixel with s-vector ``s``
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

from .. import backends, parallel
from .._arrays import to_host
from ..geometry import random_orientations
from .config import MTIPConfig, Stage
from .data import SPIData
from .grid import ball, resample
from .matching import _grid_spacing, match_orientations, soft_assign
from .merging import merge
from .metrics import orientation_errors
from .phasing import gaussian_filter, phase
from .schedule import (MIN_GRID, SizeEstimate, default_schedule, estimate_diameter, generation_metrics, grid_size,
                       radius_of_gyration, size_estimate, stage_decision)
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
    "size_estimate",
    "stage_decision",
    "stage_summary",
    "start_plan",
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
        Per generation: stage, generation within the stage, resolution limit, M, references,
        kept-current fraction, mean score, CG iterations, phasing error, ``convergence``
        (:func:`~spkernels.mtip.schedule.generation_metrics`), ``decision`` (whether and why the
        stage ended, :func:`~spkernels.mtip.schedule.stage_decision`), median orientation error
        (when truth known), seconds per step.
    kept_images : bool array (N,) or None
        With ``reconstruct(hits=...)``: which of the input images were single hits and used.
    size_estimate : dict or None
        The particle size used and how it was found (:class:`~spkernels.mtip.schedule.SizeEstimate`:
        ``diameter``, ``method`` = ``"guinier"``, ``"shape-fit"`` or ``"given"``, ``reason``, ...).
    stages : list of dict or None
        Per stage (attempt): generations run and why it ended (:func:`stage_summary`).
    starts : list of dict or None
        With ``MTIPConfig.starts`` > 1: per start its ``seed``, final ``phasing_error``,
        ``generations`` and whether it was ``chosen`` (the lowest error; this result is its).
    """

    rho: np.ndarray
    ac: np.ndarray
    orientations: np.ndarray
    voxel_size: float
    history: list
    kept_images: np.ndarray | None = None
    size_estimate: dict | None = None
    stages: list | None = None
    starts: list | None = None


def start_plan(config: MTIPConfig, checkpoint=None) -> list:
    """What each start of ``config.starts`` runs: ``[(config of the start, its checkpoint file)]``.

    Start k has seed ``config.seed + k`` and ``starts = 1``; its checkpoint is
    ``<stem>.start<k><suffix>`` beside `checkpoint` (the file itself for a single start), so each
    start resumes on its own.
    """
    import dataclasses
    from pathlib import Path

    if config.starts == 1:
        return [(config, checkpoint)]
    plan = []
    for k in range(config.starts):
        ck = None
        if checkpoint is not None:
            p = Path(os.fspath(checkpoint))
            ck = str(p.with_name(f"{p.stem}.start{k}{p.suffix}"))
        plan.append((dataclasses.replace(config, starts=1, seed=config.seed + k), ck))
    return plan


def _best_start(data, cfg, checkpoint, resume, kwargs) -> MTIPResult:
    """``reconstruct`` once per start of ``cfg.starts``; the lowest final phasing error wins."""
    plan = start_plan(cfg, checkpoint)
    if resume and not any(ck is not None and os.path.exists(ck) for _, ck in plan):
        raise ValueError(f"`resume` needs an existing checkpoint of a start ({plan[0][1]}, ...)")
    runs = []
    for k, (sub, ck) in enumerate(plan):
        log.info("start %d of %d (seed %d)", k + 1, len(plan), sub.seed)
        runs.append(reconstruct(data, sub, checkpoint=ck, resume=bool(resume and os.path.exists(ck)), **kwargs))
    errors = [float(r.history[-1]["phasing_error"]) for r in runs]
    best = int(np.argmin(errors))
    log.info("start %d of %d kept: final phasing errors %s", best + 1, len(plan),
             ", ".join(f"{e:.4g}" for e in errors))
    out = runs[best]
    out.starts = [{"seed": sub.seed, "phasing_error": e, "generations": len(r.history), "chosen": k == best}
                  for k, ((sub, _), r, e) in enumerate(zip(plan, runs, errors))]
    return out


def _pipeline_backend(requested: str) -> str:
    """The backend every MTIP step runs on. ``auto`` takes a GPU backend only when CuPy is there
    to hold the pipeline's arrays (the GPU NUFFT and CG need it); else the fastest CPU one."""
    name = backends.resolve(requested)
    if requested == "auto" and name in backends.GPU_BACKENDS and backends.array_module(name) is np:
        name = backends.resolve("auto", supported=[b for b in backends.BACKENDS if b not in backends.GPU_BACKENDS])
    return name


def _on(xp, dev, state, key):
    """`state[key]` in module `xp`: the device copy kept from the last generation, else an upload
    (first generation after a resume)."""
    if state[key] is None:
        return None
    if key not in dev:
        dev[key] = state[key] if xp is np else xp.asarray(state[key])
    return dev[key]


def reconstruct(data: SPIData, config: MTIPConfig | None = None, *, checkpoint=None, resume: bool = False,
                progress: bool = True, comm=None, callback=None, initial_orientations=None,
                hits=None, hits_threshold: float | None = None, fixed_orientations: bool = False) -> MTIPResult:
    """Reconstruct a density from SPI diffraction images by MTIP, starting from random orientations.

    Parameters
    ----------
    data : SPIData
        Images, pixel s-vectors, mask, and (optionally) true orientations for reporting.
    config : MTIPConfig, optional
        Settings; the default builds the coarse-to-fine schedule from the data.
    checkpoint : path, optional
        HDF5 file written atomically after every generation (temporary file, then rename); with
        ``config.starts`` > 1 one file per start beside it (:func:`start_plan`).
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
    fixed_orientations : bool
        Never match: merge and phase with `initial_orientations` (default: the data's true
        orientations) held fixed every generation. With the truth, this is the ceiling of the
        data, what a perfect orientation search would reach.
    hits : spkernels.hits.HitClassifier or path, optional
        Drop the images this multi-hit classifier (or model file, see ``spkernels hits
        train``) calls multi-hits before the first generation; `hits_threshold` is its
        multi-hit probability cut (default: the classifier's calibrated one). The result's
        ``orientations`` then cover the kept images only, and ``kept_images`` says which.

    Returns
    -------
    MTIPResult
    """
    from . import checkpoint as ckpt

    if not isinstance(data, SPIData):
        raise TypeError(f"`data` must be an SPIData, got {type(data).__name__}")
    if config is not None and not isinstance(config, MTIPConfig):
        raise TypeError(f"`config` must be an MTIPConfig, got {type(config).__name__}")
    cfg = config or MTIPConfig()
    if cfg.starts > 1:
        return _best_start(data, cfg, checkpoint, resume,
                           dict(progress=progress, comm=comm, callback=callback,
                                initial_orientations=initial_orientations, hits=hits,
                                hits_threshold=hits_threshold, fixed_orientations=fixed_orientations))
    kept_images = None
    if hits is not None:
        data, kept_images = _drop_multi_hits(data, hits, hits_threshold, initial_orientations)
        if initial_orientations is not None:
            initial_orientations = np.asarray(initial_orientations, dtype=np.float64).reshape(-1, 4)[kept_images]
    if fixed_orientations and initial_orientations is None:
        if data.orientations is None:
            raise ValueError("`fixed_orientations` needs `initial_orientations` or data with true orientations")
        initial_orientations = data.orientations
    backend = _pipeline_backend(cfg.backend)  # one backend for every step of every generation
    # The array module every step computes in: CuPy on a GPU backend, so images, slices, the
    # model and the merge stay on the device; the host keeps orientations, reports, checkpoints.
    xp = backends.array_module(backend)
    if cfg.particle_diameter:
        size = SizeEstimate(float(cfg.particle_diameter), "given", reason="`particle_diameter` in the settings")
    else:
        size = size_estimate(data)
    diameter = size.diameter
    stages = cfg.stages or default_schedule(data, diameter)
    box = cfg.box_factor * diameter
    w_all = data.pixel_weights()
    r_all = np.linalg.norm(data.s, axis=1)
    mine = parallel.split_range(data.n_images, comm)
    intens = data.intensities[mine]
    # What the steps take from the settings.
    ref_args = dict(reference_batch=cfg.reference_batch, photon_floor=cfg.photon_floor, eps=cfg.eps,
                    backend=backend)
    match_args = dict(ref_args, keep_current=cfg.keep_current, local_candidates=cfg.local_candidates,
                      local_angle=cfg.local_angle, switch_margin=cfg.switch_margin)
    merge_settings = dict(eps=cfg.eps, backend=backend, tikhonov=cfg.tikhonov, cg_tol=cfg.cg_tol,
                          cg_maxiter=cfg.cg_maxiter)

    run_mode = {"fixed_orientations": fixed_orientations, "multi_hit_rejection": hits is not None}
    state = None
    if resume:
        if checkpoint is None or not os.path.exists(checkpoint):
            raise ValueError("`resume` needs an existing `checkpoint` file")
        state = ckpt.load(checkpoint, cfg, data=data, run_mode=run_mode)
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

    criteria = cfg.convergence
    # The default budget is the stages' maxima; a restarted attempt's generations come on top.
    budget = criteria.budget or sum(st.most_generations for st in stages)
    # Where the run stands: replayed from the history's decisions (a resumed run continues the
    # stage, attempt and restart count it was in).
    si, stage_metrics, restarts_used = 0, [], 0
    for e in state["history"]:
        d = e.get("decision") or {}
        restarts_used += bool(d.get("restart"))
        if d.get("end"):
            if d.get("restart") and criteria.budget is None:
                budget += len(stage_metrics) + 1
            si, stage_metrics = (e["stage"] if d.get("restart") else e["stage"] + 1), []
        else:
            si, stage_metrics = e["stage"], stage_metrics + [e.get("convergence") or {}]
    if state["history"] and not any("decision" in e for e in state["history"]):
        raise ValueError("the checkpoint's history holds no stage decisions (written by an older version)")

    bar = None
    if progress and parallel.is_root(comm):
        from tqdm.auto import tqdm

        bar = tqdm(total=budget, initial=state["generation"], desc="MTIP", unit="gen", disable=None)
    gen = state["generation"]
    dev = {}  # device copies of the state's rho and ac (a GPU backend), kept across generations
    staged_for = None
    try:
        while si < len(stages) and gen < budget:
            stage = stages[si]
            if staged_for != si:  # the stage's images and pixels go to the device once
                M = grid_size(stage.resolution, box)
                dx = box / M
                s_lim = min(1.0 / stage.resolution, (M - 1) / (2.0 * box))
                sel = (r_all <= s_lim) & (w_all > 0)
                s_sel, w_sel, data_sel = (xp.asarray(a) for a in (data.s[sel], w_all[sel],
                                                                  np.ascontiguousarray(intens[:, sel])))
                staged_for = si
            t_step = {}
            before = state["orientations"]
            quats = before[mine]
            rho, ac = _on(xp, dev, state, "rho"), _on(xp, dev, state, "ac")
            if state["history"] and state["history"][-1]["decision"]["restart"]:
                rho = ac = None  # a fresh random start: the new orientations make the first model
            match_in = (data_sel, s_sel, w_sel)
            if rho is not None and state["M"] != M:
                # The finer grid's first model is the previous autocorrelation, Fourier-padded
                # (exact inside the old band), and matching reads only the pixels of that band:
                # the model holds nothing beyond it (soft assignment too, for its posteriors; it
                # still averages whole images). From the true orientations (2CEX, 48^2 pixels,
                # 16.5 -> 13.2 A) matching against the old start, the autocorrelation of the
                # padded density clipped at zero, left a 6.0 deg median error where the padded
                # autocorrelation keeps 0.5 deg; on the noiseless blob particle of the tests
                # the old start lost the orientations altogether (124 deg), the padded
                # autocorrelation over all the new pixels left 7.1 deg, over the old band 0.15.
                # The padded density only starts the phasing.
                rho = resample(rho, M)
                ac = resample(ac, M)
                inner = r_all[sel] <= 1.0 / state["history"][-1]["resolution_limit"]
                if not inner.all():
                    inner = xp.asarray(inner)
                    match_in = (data_sel[:, inner], s_sel[inner], w_sel[inner])
            kept = None
            mean_score = None
            soft = si < cfg.soft_stages
            merge_args = (data_sel, quats, None)
            if ac is not None and not fixed_orientations:
                t0 = time.perf_counter()
                if soft:
                    if comm is not None and comm.Get_size() > 1:
                        raise ValueError("`soft_stages` is not supported under MPI")
                    quats, sc, qr, means, mass = soft_assign(ac, *match_in, dx, stage.n_references, rng,
                                                             temperature=cfg.soft_temperature, images=data_sel,
                                                             **ref_args)
                    mean_score = float(sc.mean())
                    merge_args = (means, qr, mass)
                else:
                    quats, sc, kept = match_orientations(ac, *match_in, quats, dx,
                                                         stage.n_references, rng, comm=comm, **match_args)
                    mean_score = float(parallel.allreduce_sum(float(sc.sum()), comm)) / data.n_images
                    merge_args = (data_sel, quats, None)
                t_step["match"] = time.perf_counter() - t0
            orient_all = parallel.allgather_rows(quats, comm)
            # Convergence: how far matching moved the orientations (known before merging, so the
            # decision can make this generation the run's last, with its final phasing runs).
            if ac is not None:
                prev = stage_metrics[-1].get("mean_score") if stage_metrics else None
                step = cfg.local_angle or float(np.degrees(_grid_spacing(stage.n_references) / 2))
                conv = generation_metrics(before, orient_all, resolution=1.0 / s_lim, diameter=diameter,
                                          settled_angle=criteria.settled_angle, score=mean_score,
                                          previous_score=prev, min_angle=1.5 * step)
            else:
                conv = {"moved_median_deg": None, "settled_angle_deg": None, "settled_fraction": None,
                        "score_change": None}
            conv["mean_score"] = mean_score
            stage_metrics = stage_metrics + [conv]
            # The later stages' minima are kept from the budget, and the final stage's maximum.
            reserved = sum(st.generations for st in stages[si + 1:])
            if si < len(stages) - 1:
                reserved += stages[-1].most_generations - stages[-1].generations
            left = budget - gen - 1
            decision = stage_decision(stage_metrics, stage, criteria, generations_left=left, reserved=reserved,
                                      restarts_left=criteria.restarts - restarts_used, final=si == len(stages) - 1,
                                      restart_room=None if criteria.budget else left - reserved + len(stage_metrics))
            last = (decision.end and not decision.restart and si == len(stages) - 1) or gen == budget - 1
            t0 = time.perf_counter()
            if ac is None:
                support = ball(M, M // 2, xp)
            else:
                blurred = gaussian_filter(ac, 0.5)
                support = (blurred > 1e-3 * blurred.max()) & ball(M, M // 2, xp)
            ac_new, cg_res = merge(merge_args[0], s_sel, w_sel, merge_args[1], M, dx, support, ac, comm=comm,
                                   row_weights=merge_args[2], **merge_settings)
            t_step["merge"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            runs = max(cfg.n_phasing_runs, cfg.final_phasing_runs) if last else cfg.n_phasing_runs
            # The data fill the sphere |s| <= s_lim; the cube's corners beyond it hold no
            # measurements, so phasing leaves their magnitudes free.
            ph = phase(ac_new, schedule=cfg.phasing, n_runs=runs, rho0=rho, max_frequency=s_lim * dx,
                       seed=rng)
            t_step["phase"] = time.perf_counter() - t0
            entry = {"generation": gen, "stage": si, "stage_generation": len(stage_metrics) - 1,
                     "resolution_limit": float(1.0 / s_lim), "M": M,
                     "n_references": stage.n_references, "kept_current": kept,
                     "mean_score": mean_score,
                     "cg_iterations": int(cg_res.iterations), "phasing_error": float(ph.fourier_error[-1]),
                     "convergence": conv, "decision": decision.to_dict(), "seconds": t_step}
            if data.orientations is not None:
                entry["median_orientation_error_deg"] = float(np.median(orientation_errors(orient_all, data.orientations)))
            ac_next = ph.ac_phased if cfg.slice_phased else ac_new
            dev = {"rho": ph.rho, "ac": ac_next}
            if decision.restart:
                # A fresh random start of this stage: new orientations, and the next generation
                # merges them into a new model (this one's density is kept only in the result).
                orient_all = random_orientations(data.n_images, rng)
                restarts_used += 1
                if criteria.budget is None:
                    budget += len(stage_metrics)
                    if bar is not None:
                        bar.total = budget
                        bar.refresh()
            # The host copies are the checkpoint's and the result's: one download each.
            state.update(generation=gen + 1, orientations=orient_all, rho=to_host(ph.rho), ac=to_host(ac_next),
                         M=M, rng_state=rng.bit_generator.state)
            state["history"].append(entry)
            if decision.end:
                log.info("stage %d (%.1f Å) ends after %d generation%s: %s", si, 1.0 / s_lim, len(stage_metrics),
                         "" if len(stage_metrics) == 1 else "s", decision.reason)
            log.info("generation %d: %s", gen, entry)
            if checkpoint is not None and parallel.is_root(comm):
                ckpt.save(checkpoint, state, cfg, voxel_size=dx, data=data, run_mode=run_mode)
            if callback is not None:
                callback(entry, state["rho"])
            if bar is not None:
                bar.set_postfix(res=f"{1 / s_lim:.1f}Å", M=M, err=entry.get("median_orientation_error_deg", float("nan")))
                bar.update(1)
            gen += 1
            if decision.end:
                si = si if decision.restart else si + 1
                stage_metrics = []
    finally:
        if bar is not None:
            bar.close()
    M = state["M"]
    summary = stage_summary(state["history"])
    for st in summary:
        log.info("stage %d (%.1f Å): %d generation%s (%s)", st["stage"], st["resolution_limit"], st["generations"],
                 "" if st["generations"] == 1 else "s", st["reason"])
    return MTIPResult(rho=state["rho"], ac=state["ac"], orientations=state["orientations"],
                      voxel_size=box / M, history=state["history"], kept_images=kept_images,
                      size_estimate=size.to_dict(), stages=summary)


def stage_summary(history: list) -> list:
    """Per stage attempt of a run's history: how many generations it ran and why it ended.

    Parameters
    ----------
    history : list of dict
        :attr:`MTIPResult.history`.

    Returns
    -------
    list of dict
        ``stage``, ``resolution_limit``, ``generations``, ``reason`` (the last decision's;
        "budget spent" when the run stopped inside it) and ``restart``.
    """
    out = []
    for e in history:
        d = e.get("decision") or {"end": False, "restart": False, "reason": ""}
        if not out or out[-1]["closed"]:
            out.append({"stage": e["stage"], "resolution_limit": e["resolution_limit"], "generations": 0,
                        "reason": "", "restart": False, "closed": False})
        cur = out[-1]
        cur["generations"] += 1
        cur["reason"], cur["restart"], cur["closed"] = d["reason"], bool(d["restart"]), bool(d["end"])
    for cur in out:
        if not cur.pop("closed"):
            cur["reason"] = f"run ended inside the stage ({cur['reason']})"
    return out


def _drop_multi_hits(data, hits, threshold, initial_orientations):
    """`data` without the images classifier `hits` (or its model file) calls multi-hits."""
    from ..hits import HitClassifier, drop_multi_hits

    clf = hits if isinstance(hits, HitClassifier) else HitClassifier.load(os.fspath(hits))
    if initial_orientations is not None and len(np.asarray(initial_orientations).reshape(-1, 4)) != data.n_images:
        raise ValueError("`initial_orientations` must have one quaternion per image of `data`")
    kept_data, keep = drop_multi_hits(data, clf, threshold=threshold)
    if kept_data.n_images < 2:
        raise ValueError(f"the hit classifier kept {kept_data.n_images} of {data.n_images} images: too few to "
                         "reconstruct (check the classifier or `hits_threshold`)")
    log.info("multi-hit rejection kept %d of %d images", kept_data.n_images, data.n_images)
    return kept_data, keep
