"""The networks (PyTorch): :class:`TwinNetwork` (embedding, triplet loss) and :class:`HitCNN`.

Both read the same input — a diffraction image as log-scaled photon counts, zero on masked
pixels and standardised over the usable ones (:func:`preprocess`) — through the same small
convolutional trunk: four 3x3/5x5 convolution blocks (batch norm, ReLU, 2x2 max-pool after the
first three), then the global mean and maximum of each channel, so that any image size works.

- :class:`TwinNetwork` maps the trunk's features to an L2-normalised embedding (32 numbers by
  default). It is trained with the triplet loss ``max(d_p - d_n + margin, 0)`` on the
  hit-count labels, negatives mined online and semi-hard (:func:`semi_hard_triplet_loss`), and
  classifies by distance to labelled exemplars (:mod:`spkernels.hits.classify`), so a new
  particle needs a few exemplars, not retraining.
- :class:`HitCNN` is the multi-output CNN baseline: the same trunk with one output per hit count
  (1, 2, 3, 4 or more), trained with cross-entropy.
"""

from __future__ import annotations

from ._torch import require_torch

torch = require_torch()
nn = torch.nn
F = torch.nn.functional

__all__ = ["TwinNetwork", "HitCNN", "preprocess", "semi_hard_triplet_loss", "pairwise_distances", "build_network"]


def preprocess(counts, mask):
    """Network input (B, 1, nx, ny) from photon counts (B, nx, ny) and usable pixels (nx, ny) or
    (B, nx, ny): ``log(1 + counts)`` on usable pixels, standardised per image over them, 0 elsewhere."""
    x = torch.log1p(torch.clamp(counts, min=0.0))
    m = mask if mask.dim() == 3 else mask.expand_as(x)
    x = x * m
    n = m.sum(dim=(1, 2)).clamp(min=1.0)
    mean = x.sum(dim=(1, 2)) / n
    var = ((x - mean[:, None, None]) ** 2 * m).sum(dim=(1, 2)) / n
    x = (x - mean[:, None, None]) / torch.sqrt(var + 1e-6)[:, None, None] * m
    return x[:, None]


class _Trunk(nn.Module):
    """Convolution blocks, then per-channel global mean and max (2 x channels[-1] features)."""

    def __init__(self, channels=(16, 32, 64, 64)):
        super().__init__()
        layers, c_in = [], 1
        for i, c in enumerate(channels):
            k = 5 if i == 0 else 3
            layers += [nn.Conv2d(c_in, c, k, padding=k // 2, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
            if i < len(channels) - 1:
                layers.append(nn.MaxPool2d(2))
            c_in = c
        self.body = nn.Sequential(*layers)
        self.n_features = 2 * c_in

    def forward(self, x):
        h = self.body(x)
        return torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1)


class TwinNetwork(nn.Module):
    """Embedding network of the twin (triplet) classifier: image -> unit vector of `embedding_dim`."""

    def __init__(self, embedding_dim: int = 32, channels=(16, 32, 64, 64)):
        super().__init__()
        if embedding_dim < 2:
            raise ValueError(f"`embedding_dim` must be >= 2, got {embedding_dim}")
        self.trunk = _Trunk(channels)
        self.head = nn.Sequential(nn.Linear(self.trunk.n_features, 64), nn.ReLU(inplace=True),
                                  nn.Linear(64, embedding_dim))

    def forward(self, x):
        """Embeddings (B, embedding_dim), unit length."""
        return F.normalize(self.head(self.trunk(x)), dim=1)


class HitCNN(nn.Module):
    """Multi-output CNN baseline: image -> one logit per hit count 1..`n_classes` (the last one
    standing for `n_classes` or more)."""

    def __init__(self, n_classes: int = 4, channels=(16, 32, 64, 64)):
        super().__init__()
        if n_classes < 2:
            raise ValueError(f"`n_classes` must be >= 2, got {n_classes}")
        self.trunk = _Trunk(channels)
        self.head = nn.Sequential(nn.Linear(self.trunk.n_features, 64), nn.ReLU(inplace=True),
                                  nn.Linear(64, n_classes))

    def forward(self, x):
        """Logits (B, n_classes)."""
        return self.head(self.trunk(x))


def build_network(kind: str, *, embedding_dim: int = 32, n_classes: int = 4, channels=(16, 32, 64, 64)):
    """A fresh :class:`TwinNetwork` (``kind="twin"``) or :class:`HitCNN` (``kind="cnn"``)."""
    if kind == "twin":
        return TwinNetwork(embedding_dim, tuple(channels))
    if kind == "cnn":
        return HitCNN(n_classes, tuple(channels))
    raise ValueError(f"`kind` must be 'twin' or 'cnn', got {kind!r}")


def pairwise_distances(e):
    """Euclidean distances (B, B) between the rows of `e` (exactly 0 on the diagonal)."""
    sq = (e * e).sum(dim=1)
    d2 = (sq[:, None] + sq[None, :] - 2.0 * e @ e.T).clamp(min=0.0)
    eye = torch.eye(e.shape[0], dtype=torch.bool, device=e.device)
    d2 = d2.masked_fill(eye, 0.0)
    # sqrt has an infinite derivative at 0: take it of a floor, the diagonal is never used
    return torch.sqrt(d2.clamp(min=1e-12))


def semi_hard_triplet_loss(embeddings, labels, margin: float = 0.2):
    """Triplet loss ``max(d(a, p) - d(a, n) + margin, 0)`` over every anchor-positive pair of the
    batch, each with its semi-hard negative mined online.

    For anchor a and positive p (same label, a != p) the negative is the closest n of another
    label that is still farther than p (``d_p < d_n``); the semi-hard ones (``d_n < d_p +
    margin``) give the loss its gradient. When no negative is farther than p, the farthest
    negative is used, so a batch never mines the hardest negatives that collapse training.

    Returns
    -------
    (loss, fraction_active) : scalar tensor, float
        Mean loss over the pairs and the share of pairs with a positive loss.
    """
    d = pairwise_distances(embeddings)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    pos = same & ~eye  # (a, p)
    neg = ~same  # (a, n)
    if not pos.any() or not neg.any():
        return embeddings.sum() * 0.0, 0.0
    d_ap = d[:, :, None]  # (a, p, 1)
    d_an = d[:, None, :]  # (a, 1, n)
    farther = neg[:, None, :] & (d_an > d_ap)  # (a, p, n)
    big = torch.finfo(d.dtype).max
    closest_farther = torch.where(farther, d_an.expand_as(farther), torch.full_like(farther, big, dtype=d.dtype)).amin(2)
    farthest = torch.where(neg, d, torch.full_like(d, -1.0)).amax(1)  # (a,)
    has = farther.any(2)
    d_neg = torch.where(has, closest_farther, farthest[:, None].expand_as(has))
    loss = F.relu(d - d_neg + margin)[pos]
    return loss.mean(), float((loss > 0).float().mean())
