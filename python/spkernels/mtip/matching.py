"""Orientation matching: each image against this generation's reference models.

The score of an image ``d`` against a model ``m`` (photons per pixel, weights ``w``) is the
Poisson negative log-likelihood up to terms of the data alone, ``Σ w (m − d log m)``; lower is
better. :func:`match_orientations` gives each image its best candidate (hard assignment),
:func:`soft_assign` spreads each image over all references by tempered posteriors (EMC-like).
"""

from __future__ import annotations

import math

import numpy as np

from .. import kernels as K
from ..geometry import quaternion_multiply, random_orientations, super_fibonacci
from .slicing import slice_model


def poisson_scores(model: np.ndarray, data: np.ndarray, w: np.ndarray, *, all_pairs: bool = False) -> np.ndarray:
    """Poisson scores ``Σ_p w (m − d log m)`` of images `data` against models `model`.

    By default row i of `model` is image i's own model and the result has one score per row;
    with ``all_pairs`` every image is scored against every model: ``(n_images, n_models)``.
    """
    if all_pairs:
        return (model * w).sum(axis=1)[None, :] - (np.asarray(data, dtype=np.float64) * w) @ np.log(model).T
    return (w * (model - data * np.log(model))).sum(axis=1)


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
    Model photons are floored at `photon_floor` × the mean count per pixel of `data_sel`.
    """

    def __init__(self, ac, data_sel, s_sel, w, dx, n_references: int, rng, *, batch: int, photon_floor: float,
                 eps: float, backend: str):
        turn = random_orientations(1, rng)[0]
        self.refs = quaternion_multiply(turn, super_fibonacci(n_references))
        self._slice = lambda q: slice_model(ac, q, s_sel, dx, eps=eps, backend=backend)
        self.batch = batch
        self.floor = photon_floor * float(data_sel.mean())
        self._first = self._slice(self.refs[: self.batch])
        self.scale = _fit_scale(np.maximum(self._first, 0), float((data_sel * w).sum(axis=1).mean()), w)

    def models(self, q):
        """Model photons (n, P) of orientations `q`, floored so the Poisson log is finite."""
        return np.maximum(self.scale * self._slice(q), self.floor)

    def batches(self):
        """(first index, model photons) of each batch of references, in order."""
        for start in range(0, len(self.refs), self.batch):
            raw = self._first if start == 0 else self._slice(self.refs[start:start + self.batch])
            yield start, np.maximum(self.scale * raw, self.floor)
        self._first = None  # only the first pass may reuse it


def match_orientations(ac, data_sel, s_sel, w, current, dx, n_references: int, rng: np.random.Generator, *,
                       reference_batch: int, photon_floor: float, eps: float, backend: str, keep_current: bool,
                       local_candidates: int, local_angle: float | None, switch_margin: float):
    """Best orientation per image among fresh references and (optionally) its current one.

    `n_references` fresh references (:class:`ReferenceModels`, `reference_batch` per batch)
    compete; with `keep_current` so does each image's `current` orientation and
    `local_candidates` random rotations of it by `local_angle` degrees (None: half the
    reference grid spacing). `switch_margin` is the hysteresis of
    :attr:`~spkernels.mtip.config.MTIPConfig.switch_margin` (0 disables).

    Returns ``(quaternions (N, 4), scores (N,), fraction_kept_current)``.
    """
    n = data_sel.shape[0]
    ref = ReferenceModels(ac, data_sel, s_sel, w, dx, n_references, rng, batch=reference_batch,
                          photon_floor=photon_floor, eps=eps, backend=backend)
    refs, model_of = ref.refs, ref.models

    acc = K.ArgminAccumulator(n, 1, data=data_sel, metric="poisson", weights=w, backend=backend)
    for start, model in ref.batches():
        acc.update(model.astype(data_sel.dtype), start)
    table = [refs]
    own_scores = None
    if keep_current and current is not None:
        own = model_of(current)
        own_scores = poisson_scores(own, data_sel, w)
        acc.offer(len(refs) + np.arange(n), own_scores)
        table.append(current)
        if local_candidates:
            nl = local_candidates
            angle = math.radians(local_angle) if local_angle else _grid_spacing(n_references) / 2
            loc = quaternion_multiply(_small_rotations(n * nl, angle, rng), np.repeat(current, nl, axis=0))
            loc_scores = np.empty(n * nl)
            step = max(1, reference_batch)
            for a in range(0, n * nl, step):
                rows = np.arange(a, min(a + step, n * nl)) // nl
                loc_scores[a:a + step] = poisson_scores(model_of(loc[a:a + step]), data_sel[rows], w)
            acc.offer(len(refs) + n + np.arange(n * nl).reshape(n, nl), loc_scores.reshape(n, nl))
            table.append(loc)
    table = np.concatenate(table)
    res = acc.result()
    idx = np.asarray(res.index).reshape(n, -1)
    scores = np.asarray(res.score, dtype=np.float64).reshape(n, -1)
    if own_scores is not None and switch_margin > 0:
        # Hysteresis: a challenger must beat the current orientation by more than the Poisson
        # noise of the score difference, Var[Σ w d log(m_new/m_cur)] ≈ Σ w² d log²(m_new/m_cur).
        moved = np.flatnonzero(idx[:, 0] != len(refs) + np.arange(n))
        if moved.size:
            new = model_of(table[idx[moved, 0]])
            sig = np.sqrt((w**2 * data_sel[moved] * np.log(new / own[moved]) ** 2).sum(axis=1))
            back = moved[own_scores[moved] - scores[moved, 0] < switch_margin * sig]
            idx[back, 0] = len(refs) + back
            scores[back, 0] = own_scores[back]
    kept = float((idx[:, 0] == len(refs) + np.arange(n)).mean()) if current is not None else 0.0
    return table[idx[:, 0]], scores[:, 0], kept


def soft_assign(ac, data_sel, s_sel, w, dx, n_references: int, rng: np.random.Generator, *, temperature: float,
                reference_batch: int, photon_floor: float, eps: float, backend: str):
    """EMC-like soft assignment: every image spread over all references by tempered posteriors.

    Each image's weights are ``exp(-(score - best) / (T σ))`` over the references, with σ that
    image's standard deviation of scores over the references and ``T = temperature``: a
    tempered likelihood lets a nearly isotropic early model break its symmetry gradually instead
    of committing every image to one noisy best match. Merging then needs one image per
    reference: the posterior-weighted mean of the data, weighted by the total posterior mass.

    Returns ``(best quaternions (N, 4), best scores (N,), reference quaternions (R, 4),
    mean images (R, P), reference weights (R,))``. Scores are computed with NumPy (this is
    meant for the small coarse stages).
    """
    ref = ReferenceModels(ac, data_sel, s_sel, w, dx, n_references, rng, batch=reference_batch,
                          photon_floor=photon_floor, eps=eps, backend=backend)
    refs = ref.refs
    scores = np.empty((data_sel.shape[0], len(refs)))
    for a, m in ref.batches():
        scores[:, a:a + len(m)] = poisson_scores(m, data_sel, w, all_pairs=True)
    best = scores.argmin(axis=1)
    best_score = scores[np.arange(len(best)), best]
    sig = np.maximum(scores.std(axis=1, keepdims=True), 1e-12)
    p = np.exp(-(scores - best_score[:, None]) / (temperature * sig))
    p /= p.sum(axis=1, keepdims=True)
    mass = p.sum(axis=0)
    use = mass > 1e-6 * mass.max()
    means = (p[:, use].T @ np.asarray(data_sel, dtype=np.float64)) / mass[use, None]
    return refs[best], best_score, refs[use], means, mass[use]
