"""Classify hits: by distance to labelled exemplars (twin network) or by the CNN's outputs.

:class:`ExemplarClassifier` needs only NumPy: it takes embeddings of a few labelled exemplars —
of the *new* particle, or of any particles when only the hit count matters — and places one
centroid per hit count. An image's single-vs-multi score is ``d(single centroid) - d(nearest
multi-hit centroid)``. The score is calibrated on the exemplars themselves, left out one at a
time: a logistic fit with both classes weighted equally (Platt scaling) turns the score into a
probability of a multi-hit, the reported confidence, and the calibrated threshold is where that
probability is 1/2. The hit count is the nearest centroid, its confidence a softmax over the
squared distances with a temperature fitted on the same left-out scores.

:class:`HitClassifier` wraps a trained network (PyTorch) with its exemplars, saves and loads
model files, and :func:`drop_multi_hits` removes the images it calls multi-hits from an
:class:`spkernels.mtip.data.SPIData` before a reconstruction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ExemplarClassifier", "HitPrediction", "HitClassifier", "drop_multi_hits", "confusion_matrix",
           "MODEL_FORMAT"]

MODEL_FORMAT = "spkernels.hits.model/1"


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=np.float64)))


def _platt(score, y, *, iters: int = 100):
    """(a, b) of ``p = sigmoid(a * score + b)`` by Newton's method on the class-balanced logistic
    loss with Platt's smoothed targets (finite even when the scores separate the classes)."""
    y = np.asarray(y, dtype=bool)
    n1, n0 = int(y.sum()), int((~y).sum())
    t = np.where(y, (n1 + 1.0) / (n1 + 2.0), 1.0 / (n0 + 2.0))
    w = np.where(y, 0.5 / max(n1, 1), 0.5 / max(n0, 1))
    sc = float(np.std(score)) or 1.0
    x = np.asarray(score, dtype=np.float64) / sc
    a, b = 1.0, 0.0
    for _ in range(iters):
        p = _sigmoid(a * x + b)
        g = np.array([np.sum(w * (p - t) * x), np.sum(w * (p - t))]) + 1e-6 * np.array([a, 0.0])
        h = w * p * (1 - p)
        hess = np.array([[np.sum(h * x * x) + 1e-6, np.sum(h * x)], [np.sum(h * x), np.sum(h) + 1e-12]])
        step = np.linalg.solve(hess, g)
        a, b = a - step[0], b - step[1]
        if np.abs(step).max() < 1e-10:
            break
    return a / sc, b


def confusion_matrix(true, predicted, n_classes: int) -> np.ndarray:
    """Counts (n_classes, n_classes): row = true class, column = predicted class (0-based)."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(true, dtype=np.int64), np.asarray(predicted, dtype=np.int64)), 1)
    return cm


class ExemplarClassifier:
    """Hit classification by distance to the centroids of labelled exemplar embeddings.

    Parameters
    ----------
    embeddings : float array (M, D)
        Embeddings of the exemplars (from :class:`~spkernels.hits.networks.TwinNetwork`).
    n_particles : int array (M,)
        Their hit counts (1 = single hit); counts above `n_classes` join the last class.
    n_classes : int
        Hit-count classes 1..n_classes.

    Both single hits and at least one multi-hit class need two exemplars or more (one is left out
    at a time for the calibration).
    """

    def __init__(self, embeddings, n_particles, n_classes: int = 4):
        e = np.asarray(embeddings, dtype=np.float64)
        if e.ndim != 2 or e.shape[0] < 1:
            raise ValueError(f"`embeddings` must have shape (M, D), got {e.shape}")
        if not np.isfinite(e).all():
            raise ValueError("`embeddings` must be finite")
        n = np.asarray(n_particles).reshape(-1)
        if n.shape != (e.shape[0],):
            raise ValueError(f"`n_particles` must have {e.shape[0]} entries, got {n.size}")
        if not np.issubdtype(n.dtype, np.integer) or (n < 1).any():
            raise ValueError("`n_particles` must be integers >= 1")
        if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 2:
            raise ValueError(f"`n_classes` must be an integer >= 2, got {n_classes!r}")
        self.n_classes = int(n_classes)
        self.embeddings = e
        self.labels = np.minimum(n.astype(np.int64), self.n_classes) - 1
        counts = np.bincount(self.labels, minlength=self.n_classes)
        if counts[0] < 2 or counts[1:].max() < 2:
            raise ValueError("the exemplars need at least 2 single hits and 2 multi-hits of one count, "
                             f"got {counts.tolist()} per hit count 1..{self.n_classes}")
        self.present = np.flatnonzero(counts >= 1)
        self.counts = counts
        self.centroids = np.zeros((self.n_classes, e.shape[1]))
        for k in self.present:
            self.centroids[k] = e[self.labels == k].mean(axis=0)
        self._calibrate()

    # -- scores ------------------------------------------------------------------------------
    def _distances(self, e, centroids):
        d = np.sqrt(np.maximum(((e[:, None, :] - centroids[None]) ** 2).sum(-1), 0.0))
        absent = np.setdiff1d(np.arange(self.n_classes), self.present)
        d[:, absent] = np.inf
        return d

    @staticmethod
    def _score_from(d):
        return d[:, 0] - d[:, 1:].min(axis=1)

    def _loo_distances(self):
        """Each exemplar's distances to the centroids with itself left out of its own."""
        e, lab = self.embeddings, self.labels
        d = self._distances(e, self.centroids)
        for k in self.present:
            rows = np.flatnonzero(lab == k)
            nk = rows.size
            if nk < 2:
                continue
            c_wo = (nk * self.centroids[k][None] - e[rows]) / (nk - 1)
            d[rows, k] = np.linalg.norm(e[rows] - c_wo, axis=1)
        return d

    def _calibrate(self):
        d = self._loo_distances()
        score = self._score_from(d)
        multi = self.labels > 0
        self.a, self.b = _platt(score, multi)
        if not self.a > 0:  # the scores carry no (or inverted) information: fall back to the midpoint
            mid = 0.5 * (score[multi].mean() + score[~multi].mean())
            self.a, self.b = 1.0 / (np.std(score) or 1.0), -mid / (np.std(score) or 1.0)
        self.threshold_score = -self.b / self.a
        p = _sigmoid(self.a * score + self.b)
        self.loo_balanced_accuracy = 0.5 * (float((p[multi] > 0.5).mean()) + float((p[~multi] <= 0.5).mean()))
        # temperature of the hit-count softmax: maximise the left-out log-likelihood
        d2 = d[:, self.present] ** 2
        col = np.searchsorted(self.present, self.labels)
        best = (-np.inf, 1.0)
        for t in np.geomspace(1e-3, 10.0, 61):
            z = -d2 / t
            z -= z.max(axis=1, keepdims=True)
            ll = float(np.mean(z[np.arange(len(z)), col] - np.log(np.exp(z).sum(axis=1))))
            if ll > best[0]:
                best = (ll, float(t))
        self.temperature = best[1]

    def score(self, embeddings) -> np.ndarray:
        """Single-vs-multi score of each embedding (positive leans multi-hit)."""
        e = np.asarray(embeddings, dtype=np.float64)
        if e.ndim != 2 or e.shape[1] != self.embeddings.shape[1]:
            raise ValueError(f"`embeddings` must have shape (N, {self.embeddings.shape[1]}), got {e.shape}")
        return self._score_from(self._distances(e, self.centroids))

    def predict(self, embeddings, *, threshold: float | None = None) -> "HitPrediction":
        """Classify embeddings (N, D); `threshold` is the multi-hit probability above which an image
        counts as a multi-hit (default 0.5, the calibrated threshold)."""
        e = np.asarray(embeddings, dtype=np.float64)
        d = self._distances(e, self.centroids) if e.ndim == 2 and e.shape[1] == self.embeddings.shape[1] else None
        if d is None:
            raise ValueError(f"`embeddings` must have shape (N, {self.embeddings.shape[1]}), got {e.shape}")
        p = _sigmoid(self.a * self._score_from(d) + self.b)
        d2 = d[:, self.present] ** 2
        z = -d2 / self.temperature
        z -= z.max(axis=1, keepdims=True)
        q = np.exp(z)
        q /= q.sum(axis=1, keepdims=True)
        k = self.present[np.argmax(q, axis=1)]
        return HitPrediction.from_probabilities(p, k + 1, q.max(axis=1), threshold)

    # -- persistence ---------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """The exemplars (what rebuilds this classifier exactly)."""
        return {"embeddings": self.embeddings.tolist(), "n_particles": (self.labels + 1).tolist(),
                "n_classes": self.n_classes}

    @classmethod
    def from_dict(cls, d) -> "ExemplarClassifier":
        """Inverse of :meth:`to_dict`."""
        return cls(np.asarray(d["embeddings"]), np.asarray(d["n_particles"], dtype=np.int64), int(d["n_classes"]))


@dataclass
class HitPrediction:
    """What a classifier says about each image.

    Attributes
    ----------
    p_multi : (N,) probability of a multi-hit (calibrated for the twin network's exemplars; the
        CNN's softmax otherwise).
    is_multi : (N,) bool, ``p_multi > threshold``.
    n_particles : (N,) predicted hit count.
    confidence : (N,) probability of the single/multi decision taken (``max(p, 1 - p)``).
    count_confidence : (N,) probability of the predicted hit count.
    threshold : float
    """

    p_multi: np.ndarray
    is_multi: np.ndarray
    n_particles: np.ndarray
    confidence: np.ndarray
    count_confidence: np.ndarray
    threshold: float

    @classmethod
    def from_probabilities(cls, p_multi, n_particles, count_confidence, threshold=None) -> "HitPrediction":
        """Decisions from the multi-hit probabilities at `threshold` (default 0.5)."""
        t = 0.5 if threshold is None else float(threshold)
        if not 0.0 <= t <= 1.0:
            raise ValueError(f"`threshold` must be a probability in [0, 1], got {threshold}")
        p = np.asarray(p_multi, dtype=np.float64)
        multi = p > t
        return cls(p, multi, np.asarray(n_particles, dtype=np.int64), np.where(multi, p, 1.0 - p),
                   np.asarray(count_confidence, dtype=np.float64), t)

    def __len__(self) -> int:
        return self.p_multi.size


class HitClassifier:
    """A trained hit network ready to classify images (needs PyTorch).

    Parameters
    ----------
    trained : spkernels.hits.training.TrainedNetwork
    exemplars : ExemplarClassifier, optional
        For the twin network: the labelled exemplars it compares with (see
        :meth:`fit_exemplars`). The CNN classifies from its own outputs.
    """

    def __init__(self, trained, exemplars: ExemplarClassifier | None = None):
        self.trained = trained
        if exemplars is not None and not isinstance(exemplars, ExemplarClassifier):
            raise TypeError(f"`exemplars` must be an ExemplarClassifier, got {type(exemplars).__name__}")
        if exemplars is not None and trained.settings.kind != "twin":
            raise ValueError("only the twin network classifies by exemplars; the CNN uses its own outputs")
        self.exemplars = exemplars

    @property
    def kind(self) -> str:
        """``"twin"`` or ``"cnn"``."""
        return self.trained.settings.kind

    @property
    def image_shape(self) -> tuple:
        """(nx, ny) of the images it takes."""
        return tuple(self.trained.image_shape)

    def embed(self, images, mask=None, *, batch_size: int = 256, device: str = "cpu") -> np.ndarray:
        """Network outputs of recorded images (N, nx, ny): embeddings (twin) or logits (CNN)."""
        return self.trained.forward_batches(images, mask, batch_size=batch_size, device=device)

    def fit_exemplars(self, images, n_particles, mask=None) -> "HitClassifier":
        """Use these labelled recorded images (a few per hit count, of the particle to classify or
        of any) as the exemplars; returns self."""
        if self.kind != "twin":
            raise ValueError("only the twin network classifies by exemplars; the CNN uses its own outputs")
        self.exemplars = ExemplarClassifier(self.embed(images, mask), n_particles, self.trained.settings.n_classes)
        return self

    def predict(self, images, mask=None, *, threshold: float | None = None, batch_size: int = 256,
                device: str = "cpu") -> HitPrediction:
        """Classify recorded images (N, nx, ny) (photon counts); `mask` (nx, ny) marks usable pixels;
        `threshold` is the multi-hit probability above which an image is a multi-hit (0.5);
        `device` is where the network runs (a torch device name)."""
        out = self.embed(images, mask, batch_size=batch_size, device=device)
        if self.kind == "twin":
            if self.exemplars is None:
                raise ValueError("the twin network needs exemplars to classify: call fit_exemplars(images, "
                                 "n_particles) or load a model file saved with them")
            return self.exemplars.predict(out, threshold=threshold)
        z = out - out.max(axis=1, keepdims=True)
        q = np.exp(z)
        q /= q.sum(axis=1, keepdims=True)
        return HitPrediction.from_probabilities(1.0 - q[:, 0], np.argmax(q, axis=1) + 1, q.max(axis=1), threshold)

    # -- model files ---------------------------------------------------------------------------
    def save(self, path) -> None:
        """Write the model file: format tag, settings, image shape, mask, weights, history, exemplars."""
        from ._torch import require_torch

        torch = require_torch()
        t = self.trained
        torch.save({"format": MODEL_FORMAT, "settings": t.settings.to_dict(), "image_shape": list(t.image_shape),
                    "mask": torch.from_numpy(np.asarray(t.mask, dtype=np.float32)),
                    "state_dict": t.network.state_dict(), "history": t.history,
                    "exemplars": None if self.exemplars is None else self.exemplars.to_dict()}, path)

    @classmethod
    def load(cls, path) -> "HitClassifier":
        """Read a model file written by :meth:`save` (weights only: no code is unpickled)."""
        from ._torch import require_torch

        torch = require_torch()
        from .networks import build_network
        from .training import TrainedNetwork, TrainSettings

        d = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(d, dict) or d.get("format") != MODEL_FORMAT:
            raise ValueError(f"{path} is not a spkernels.hits model file ({MODEL_FORMAT})")
        s = TrainSettings.from_dict(d["settings"])
        net = build_network(s.kind, embedding_dim=s.embedding_dim, n_classes=s.n_classes, channels=s.channels)
        net.load_state_dict(d["state_dict"])
        net.eval()
        trained = TrainedNetwork(net, s, tuple(d["image_shape"]), d["mask"].numpy(), list(d["history"]))
        ex = None if d["exemplars"] is None else ExemplarClassifier.from_dict(d["exemplars"])
        return cls(trained, ex)


def drop_multi_hits(data, classifier, *, threshold: float | None = None):
    """Remove the images `classifier` calls multi-hits from MTIP data.

    Parameters
    ----------
    data : spkernels.mtip.data.SPIData
        Images (N, P) with P = nx * ny of the classifier's image shape; its mask is used.
    classifier : HitClassifier
        Trained (with exemplars, for a twin network).
    threshold : float, optional
        Multi-hit probability above which an image is dropped (default: the calibrated 0.5).

    Returns
    -------
    (SPIData, keep_mask)
        The single hits (with their orientations, when known) and the boolean (N,) mask of kept
        images.
    """
    from ..mtip.data import SPIData

    if not isinstance(data, SPIData):
        raise TypeError(f"`data` must be an SPIData, got {type(data).__name__}")
    if not isinstance(classifier, HitClassifier):
        raise TypeError(f"`classifier` must be a HitClassifier, got {type(classifier).__name__}")
    nx, ny = classifier.image_shape
    n, p = data.intensities.shape
    if p != nx * ny:
        raise ValueError(f"`data` has {p} pixels per image; the classifier takes {nx} x {ny} = {nx * ny}")
    mask = None if data.mask is None else data.mask.reshape(nx, ny)
    pred = classifier.predict(data.intensities.reshape(n, nx, ny), mask, threshold=threshold)
    keep = ~pred.is_multi
    if not keep.any():
        raise ValueError(f"every one of the {n} images was classified as a multi-hit (threshold "
                         f"{pred.threshold}); nothing would be left to reconstruct")
    kept = SPIData(intensities=data.intensities[keep], s=data.s, mask=data.mask,
                   orientations=None if data.orientations is None else data.orientations[keep])
    return kept, keep
