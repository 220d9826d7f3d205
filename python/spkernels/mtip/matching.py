"""Orientation matching: each image against this generation's reference models.

The score of an image ``d`` against a model ``m`` (photons per pixel, weights ``w``) is the
Poisson negative log-likelihood up to terms of the data alone, ``Σ w (m − d log m)``; lower is
better. :func:`match_orientations` gives each image its best candidate (hard assignment),
:func:`soft_assign` spreads each image over all references by tempered posteriors (EMC-like).

The images, pixels, slices and scores live in the array module of the images (CuPy on a GPU
backend): a generation moves only its orientations (quaternions, uploaded once as rotation
matrices) to the device and per-image results (best index and score) back.
"""

from __future__ import annotations

import math

import numpy as np

from .. import kernels as K
from .. import parallel
from .._arrays import array_module, to_host
from ..geometry import quaternion_multiply, random_orientations, super_fibonacci
from .slicing import rotations, slice_model


def poisson_scores(model, data, w, *, all_pairs: bool = False):
    """Poisson scores ``Σ_p w (m − d log m)`` of images `data` against models `model`.

    By default row i of `model` is image i's own model and the result has one score per row;
    with ``all_pairs`` every image is scored against every model: ``(n_images, n_models)``.
    NumPy or CuPy (all three arguments of one module).
    """
    xp = array_module(model)
    if all_pairs:
        return (model * w).sum(axis=1)[None, :] - (data.astype(np.float64) * w) @ xp.log(model).T
    return (w * (model - data * xp.log(model))).sum(axis=1)


def _global_mean(x, comm) -> float:
    """Mean of `x` over all ranks' elements (each rank holds some images)."""
    if comm is None or comm.Get_size() == 1:
        return float(x.mean())
    total = parallel.allreduce_sum(float(x.sum(dtype=np.float64)), comm)
    return total / parallel.allreduce_sum(int(x.size), comm)


def _fit_scale(slices: np.ndarray, data_mean_total: float, w: np.ndarray) -> float:
    tot = float((slices * w).sum(axis=1).mean())
    return data_mean_total / tot if tot > 0 else 1.0


def _small_rotations(n: int, angle_rad: float, rng: np.random.Generator) -> np.ndarray:
    """`n` rotations by `angle_rad` about uniformly random axes."""
    ax = rng.standard_normal((n, 3))
    ax /= np.linalg.norm(ax, axis=1, keepdims=True)
    h = 0.5 * angle_rad
    return np.concatenate([np.full((n, 1), math.cos(h)), ax * math.sin(h)], axis=1)


def _grid_spacing(n_references: int) -> float:
    """Typical angle (radians) between neighbours of a near-uniform set of `n_references` rotations."""
    return (8 * np.pi**2 / n_references) ** (1.0 / 3.0) / 2.0


class ReferenceModels:
    """This generation's reference orientations and their model slices in photon units.

    A near-uniform set of `n_references` turned by a fresh random rotation (even coverage, a
    new grid each generation), sliced `batch` at a time. One photon scale serves the whole
    generation, fitted on the first batch (the model's scale does not depend on orientation);
    that batch's slices are kept, so slicing, the dominant cost, is never done twice for it.
    Model photons are floored at `photon_floor` × the mean count per pixel of `data_sel`. Under
    MPI (`comm`) both means are over every rank's images, so every rank scores alike.
    """

    def __init__(self, ac, data_sel, s_sel, w, dx, n_references: int, rng, *, batch: int, photon_floor: float,
                 eps: float, backend: str, comm=None):
        xp = self.xp = array_module(data_sel)
        turn = random_orientations(1, rng)[0]
        self.refs = quaternion_multiply(turn, super_fibonacci(n_references))
        self._rot = rotations(self.refs, xp)  # one upload per generation, sliced per batch
        self._slice = lambda rot: slice_model(ac, rot, s_sel, dx, eps=eps, backend=backend)
        self.batch = batch
        self.floor = photon_floor * _global_mean(data_sel, comm)
        self._first = self._slice(self._rot[: self.batch])
        self.scale = _fit_scale(xp.maximum(self._first, 0), _global_mean((data_sel * w).sum(axis=1), comm), w)

    def models(self, q):
        """Model photons (n, P) of orientations `q` (host quaternions or rotation matrices in
        the images' module), floored so the Poisson log is finite."""
        rot = rotations(q, self.xp) if q.shape[-1] == 4 else q
        return self.xp.maximum(self.scale * self._slice(rot), self.floor)

    def batches(self):
        """(first index, model photons) of each batch of references, in order."""
        for start in range(0, len(self.refs), self.batch):
            raw = self._first if start == 0 else self._slice(self._rot[start:start + self.batch])
            yield start, self.xp.maximum(self.scale * raw, self.floor)
        self._first = None  # only the first pass may reuse it


def match_orientations(ac, data_sel, s_sel, w, current, dx, n_references: int, rng: np.random.Generator, *,
                       reference_batch: int, photon_floor: float, eps: float, backend: str, keep_current: bool,
                       local_candidates: int, local_angle: float | None, switch_margin: float, comm=None):
    """Best orientation per image among fresh references and (optionally) its current one.

    `n_references` fresh references (:class:`ReferenceModels`, `reference_batch` per batch)
    compete; with `keep_current` so does each image's `current` orientation and
    `local_candidates` random rotations of it by `local_angle` degrees (None: half the
    reference grid spacing), plus (with any local candidates) its Friedel twin, the current
    orientation turned 180° about the beam axis. `switch_margin` is the hysteresis of
    :attr:`~spkernels.mtip.config.MTIPConfig.switch_margin` (0 disables). Under MPI (`comm`) each
    rank holds some images: the photon scale and floor are global, and the local candidates are
    drawn for all images on every rank (each keeps its own rows), so a run does not depend on the
    number of ranks.

    Returns ``(quaternions (N, 4), scores (N,), fraction_kept_current)``.
    """
    n = data_sel.shape[0]
    ref = ReferenceModels(ac, data_sel, s_sel, w, dx, n_references, rng, batch=reference_batch,
                          photon_floor=photon_floor, eps=eps, backend=backend, comm=comm)
    refs, model_of, xp = ref.refs, ref.models, ref.xp

    acc = K.ArgminAccumulator(n, 1, data=data_sel, metric="poisson", weights=w, backend=backend)
    for start, model in ref.batches():
        acc.update(model.astype(data_sel.dtype), start)
    table = [refs]
    own_scores = None
    if keep_current and current is not None:
        own = model_of(current)
        own_scores = poisson_scores(own, data_sel, w)
        acc.offer(len(refs) + xp.arange(n), own_scores)
        table.append(current)
        if local_candidates:
            nl = local_candidates
            angle = math.radians(local_angle) if local_angle else _grid_spacing(n_references) / 2
            counts = parallel.allgather_rows(np.array([n]), comm) if comm is not None else np.array([n])
            first = int(counts[:parallel.rank(comm)].sum()) if comm is not None else 0
            turns = _small_rotations(int(counts.sum()) * nl, angle, rng)[first * nl:(first + n) * nl]
            loc = quaternion_multiply(turns, np.repeat(current, nl, axis=0)).reshape(n, nl, 4)
            # ... and the current orientation's Friedel twin, turned 180° about the beam axis (the
            # other hand's orientation): I(s) = I(-s) makes its pattern differ only through the
            # Ewald sphere's curvature, so an image settled there stays, out of reach of small
            # turns. On 2CEX (48^2 pixels, corner 13.2 A) 11% of the images ended 176-180 deg
            # from the truth at a 4.9 deg median, a merge of both hands; with the twin, 3%.
            twin = quaternion_multiply(np.tile([0.0, 0.0, 0.0, 1.0], (n, 1)), current)
            nl += 1
            loc = np.concatenate([loc, twin[:, None, :]], axis=1).reshape(n * nl, 4)
            loc_rot = rotations(loc, xp)  # one upload, sliced per batch
            loc_scores = xp.empty(n * nl)
            step = max(1, reference_batch)
            for a in range(0, n * nl, step):
                rows = xp.arange(a, min(a + step, n * nl)) // nl
                loc_scores[a:a + step] = poisson_scores(model_of(loc_rot[a:a + step]), data_sel[rows], w)
            acc.offer(len(refs) + n + xp.arange(n * nl).reshape(n, nl), loc_scores.reshape(n, nl))
            table.append(loc)
    table = np.concatenate(table)
    res = acc.result()
    # The per-image results are all the host needs: best index and score (n each).
    idx = to_host(res.index).reshape(n, -1)
    scores = to_host(res.score).astype(np.float64).reshape(n, -1)
    if own_scores is not None and switch_margin > 0:
        # Hysteresis: a challenger must beat the current orientation by more than the Poisson
        # noise of the score difference, Var[Σ w d log(m_new/m_cur)] ≈ Σ w² d log²(m_new/m_cur).
        moved = np.flatnonzero(idx[:, 0] != len(refs) + np.arange(n))
        if moved.size:
            own_host = to_host(own_scores)
            moved_dev = moved if xp is np else xp.asarray(moved)
            new = model_of(table[idx[moved, 0]])
            sig = to_host(xp.sqrt((w**2 * data_sel[moved_dev] * xp.log(new / own[moved_dev]) ** 2).sum(axis=1)))
            back = moved[own_host[moved] - scores[moved, 0] < switch_margin * sig]
            idx[back, 0] = len(refs) + back
            scores[back, 0] = own_host[back]
    kept = float((idx[:, 0] == len(refs) + np.arange(n)).mean()) if current is not None else 0.0
    return table[idx[:, 0]], scores[:, 0], kept


def soft_assign(ac, data_sel, s_sel, w, dx, n_references: int, rng: np.random.Generator, *, temperature: float,
                reference_batch: int, photon_floor: float, eps: float, backend: str, images=None):
    """EMC-like soft assignment: every image spread over all references by tempered posteriors.

    Each image's weights are ``exp(-(score - best) / (T σ))`` over the references, with σ that
    image's standard deviation of scores over the references and ``T = temperature``: a
    tempered likelihood lets a nearly isotropic early model break its symmetry gradually instead
    of committing every image to one noisy best match. Merging then needs one image per
    reference: the posterior-weighted mean of the data, weighted by the total posterior mass.

    `images` (N, P'), default `data_sel`: the images to average, when the posteriors come from
    only some of their pixels (`data_sel`, `s_sel` and `w` those pixels: a finer stage's first
    generation, whose model holds nothing beyond the previous stage's band, scores in that band
    and still merges every pixel).

    Returns ``(best quaternions (N, 4), best scores (N,), reference quaternions (R, 4),
    mean images (R, P'), reference weights (R,))``, the last two in the images' array module.
    The (N, R) score matrix is held whole (this is meant for the small coarse stages).
    """
    images = data_sel if images is None else images
    if images.shape[0] != data_sel.shape[0]:
        raise ValueError(f"`images` must hold the {data_sel.shape[0]} images scored, got {images.shape[0]}")
    ref = ReferenceModels(ac, data_sel, s_sel, w, dx, n_references, rng, batch=reference_batch,
                          photon_floor=photon_floor, eps=eps, backend=backend)
    refs, xp = ref.refs, ref.xp
    scores = xp.empty((data_sel.shape[0], len(refs)))
    for a, m in ref.batches():
        scores[:, a:a + len(m)] = poisson_scores(m, data_sel, w, all_pairs=True)
    best = scores.argmin(axis=1)
    best_score = scores[xp.arange(len(best)), best]
    sig = xp.maximum(scores.std(axis=1, keepdims=True), 1e-12)
    p = xp.exp(-(scores - best_score[:, None]) / (temperature * sig))
    p /= p.sum(axis=1, keepdims=True)
    mass = p.sum(axis=0)
    use = mass > 1e-6 * mass.max()
    means = (p[:, use].T @ images.astype(np.float64)) / mass[use, None]
    # Host: per-image results and which references carry mass; the means stay where the data are.
    return refs[to_host(best)], to_host(best_score), refs[to_host(use)], means, mass[use]
