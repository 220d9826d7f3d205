"""Training of the hit networks on a :class:`~spkernels.hits.data.HitSet` (PyTorch, CPU or GPU).

Every batch is drawn afresh from the noise-free expected photons: in-plane rotation, a mirror
flip and a radial rescaling (a different detector distance or wavelength scales the pattern
about the beam centre), a log-normal fluence factor per image, Poisson counts (when training
with noise), the beam stop and a sprinkle of dead pixels. Training is seeded: the same settings
and data give the same weights on the same machine and thread count.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from ._torch import require_torch
from .data import HitSet, detector_mask

torch = require_torch()
F = torch.nn.functional

from .networks import build_network, preprocess, semi_hard_triplet_loss  # noqa: E402

__all__ = ["TrainSettings", "TrainedNetwork", "train_network", "augment_batch", "class_labels"]

log = logging.getLogger("spkernels.hits")


@dataclass
class TrainSettings:
    """Everything that defines a trained hit network; stored in the model file.

    Attributes
    ----------
    kind : {"twin", "cnn"}
        Triplet-loss embedding network or multi-output CNN baseline.
    embedding_dim : int
        Twin embedding size (32 as in the source study).
    n_classes : int
        Hit-count classes 1..n_classes (the last: n_classes or more).
    channels : tuple of int
        Convolution channels of the trunk.
    margin : float
        Triplet margin alpha (on unit-length embeddings).
    noise : bool
        Train on Poisson counts (True) or on the noise-free expected photons.
    fluence_jitter : float
        Log-normal sigma of the per-image fluence factor.
    beamstop_radius : float
        Central pixels masked out (radius in pixels), in training and when classifying.
    dead_pixel_fraction : float
        Share of pixels dropped at random in each training image.
    rotate, flip : bool
        In-plane rotation / mirror augmentation.
    scale_range : float
        Radial rescaling by a factor drawn log-uniformly in [1/(1+r), 1+r].
    epochs, batch_size, lr, weight_decay, seed : training loop settings.
    """

    kind: str = "twin"
    embedding_dim: int = 32
    n_classes: int = 4
    channels: tuple = (16, 32, 64, 64)
    margin: float = 0.2
    noise: bool = True
    fluence_jitter: float = 0.5
    beamstop_radius: float = 2.0
    dead_pixel_fraction: float = 0.005
    rotate: bool = True
    flip: bool = True
    scale_range: float = 0.1
    epochs: int = 20
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0

    def __post_init__(self):
        if self.kind not in ("twin", "cnn"):
            raise ValueError(f"`kind` must be 'twin' or 'cnn', got {self.kind!r}")
        self.channels = tuple(int(c) for c in self.channels)
        for name in ("embedding_dim", "n_classes", "epochs", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise TypeError(f"`{name}` must be an integer, got {type(v).__name__}")
        if self.n_classes < 2:
            raise ValueError(f"`n_classes` must be >= 2, got {self.n_classes}")
        if self.epochs < 1 or self.batch_size < 4:
            raise ValueError(f"`epochs` must be >= 1 and `batch_size` >= 4, got {self.epochs}, {self.batch_size}")
        if not 0 <= self.dead_pixel_fraction < 1:
            raise ValueError(f"`dead_pixel_fraction` must be in [0, 1), got {self.dead_pixel_fraction}")
        for name in ("margin", "lr", "scale_range", "fluence_jitter", "beamstop_radius", "weight_decay"):
            if getattr(self, name) < 0:
                raise ValueError(f"`{name}` must be >= 0, got {getattr(self, name)}")

    def to_dict(self) -> dict:
        """Plain values (JSON/model-file friendly)."""
        d = asdict(self)
        d["channels"] = list(self.channels)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainSettings":
        """From :meth:`to_dict`'s output; unknown keys are an error naming them."""
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown training settings: {', '.join(sorted(unknown))}")
        return cls(**d)


def class_labels(n_particles, n_classes: int) -> np.ndarray:
    """Class index 0..n_classes-1 of each image: hit count - 1, counts above `n_classes` in the last."""
    return np.minimum(np.asarray(n_particles, dtype=np.int64), n_classes) - 1


def augment_batch(lam, mask, settings: TrainSettings, gen, *, train: bool = True, counts: bool = False):
    """Recorded-looking images and their usable-pixel masks from expected photons.

    Parameters
    ----------
    lam : tensor (B, nx, ny)
        Expected photons (or recorded counts when `counts`).
    mask : tensor (nx, ny)
        The detector's usable pixels (beam stop included).
    settings : TrainSettings
    gen : torch.Generator
    train : bool
        Apply the geometric augmentations and dead pixels (else only fluence jitter and noise).
    counts : bool
        `lam` already holds counts: no jitter, no Poisson draw.

    Returns
    -------
    (images, masks) : tensors (B, nx, ny)
    """
    b = lam.shape[0]
    x = lam
    if train and (settings.rotate or settings.flip or settings.scale_range > 0):
        theta = (torch.rand(b, generator=gen) * 2 * math.pi) if settings.rotate else torch.zeros(b)
        r = math.log1p(settings.scale_range)
        scale = torch.exp((torch.rand(b, generator=gen) * 2 - 1) * r)
        flip = (torch.rand(b, generator=gen) < 0.5).float() * 2 - 1 if settings.flip else torch.ones(b)
        c, s = torch.cos(theta) / scale, torch.sin(theta) / scale
        mat = torch.stack([torch.stack([c * flip, -s, torch.zeros(b)], 1),
                           torch.stack([s * flip, c, torch.zeros(b)], 1)], 1)  # (B, 2, 3)
        grid = F.affine_grid(mat, (b, 1) + tuple(x.shape[1:]), align_corners=False)
        x = F.grid_sample(x[:, None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)[:, 0]
    if not counts:
        if settings.fluence_jitter > 0:
            sig = settings.fluence_jitter
            f = torch.exp(torch.randn(b, generator=gen) * sig - 0.5 * sig * sig)
            x = x * f[:, None, None]
        if settings.noise:
            x = torch.poisson(x.clamp(min=0.0), generator=gen)
    m = mask.expand(b, -1, -1)
    if train and settings.dead_pixel_fraction > 0:
        m = m * (torch.rand(x.shape, generator=gen) >= settings.dead_pixel_fraction).float()
    return x * m, m


@dataclass
class TrainedNetwork:
    """A trained network with its settings, image shape, detector mask and training history."""

    network: object
    settings: TrainSettings
    image_shape: tuple
    mask: np.ndarray
    history: list = field(default_factory=list)

    def forward_batches(self, images, mask=None, *, batch_size: int = 256, device: str = "cpu"):
        """Network outputs (N, D) as a NumPy array for recorded images (N, nx, ny): embeddings of
        the twin network, logits of the CNN. `mask` (nx, ny) is combined with the stored one;
        `device` is a torch device name (the network moves there)."""
        images = np.asarray(images, dtype=np.float32)
        if images.ndim != 3 or tuple(images.shape[1:]) != tuple(self.image_shape):
            raise ValueError(f"`images` must have shape (N, {self.image_shape[0]}, {self.image_shape[1]}), "
                             f"got {images.shape}")
        m = self.mask if mask is None else self.mask * (np.asarray(mask).reshape(self.image_shape) > 0)
        dev = torch.device(device)
        mt = torch.from_numpy(np.ascontiguousarray(m, dtype=np.float32)).to(dev)
        net = self.network.to(dev).eval()
        out = []
        with torch.inference_mode():
            for b0 in range(0, len(images), batch_size):
                x = torch.from_numpy(images[b0:b0 + batch_size]).to(dev)
                out.append(net(preprocess(x * mt, mt)).cpu().numpy())
        if not out:
            return np.zeros((0, self.settings.embedding_dim if self.settings.kind == "twin" else self.settings.n_classes),
                            dtype=np.float32)
        return np.concatenate(out).astype(np.float64)


def _balanced_batches(labels, batch_size, rng):
    """Index batches with about batch_size / n_classes images of each class present (P x K sampling)."""
    classes = np.unique(labels)
    per = max(2, batch_size // len(classes))
    pools = {c: rng.permutation(np.flatnonzero(labels == c)) for c in classes}
    n_batches = max(1, len(labels) // (per * len(classes)))
    pos = {c: 0 for c in classes}
    for _ in range(n_batches):
        idx = []
        for c in classes:
            pool = pools[c]
            if pos[c] + per > len(pool):
                pools[c] = pool = rng.permutation(pool)
                pos[c] = 0
            take = pool[pos[c]:pos[c] + per]
            pos[c] += per
            idx.append(take if len(take) == per else rng.choice(pool, per))
        yield np.concatenate(idx)


def train_network(hits: HitSet, settings: TrainSettings | None = None, *, progress: bool = True) -> TrainedNetwork:
    """Train a :class:`~spkernels.hits.networks.TwinNetwork` or :class:`~spkernels.hits.networks.HitCNN`.

    Parameters
    ----------
    hits : HitSet
        Training images (expected photons, or recorded counts) with their hit counts.
    settings : TrainSettings
    progress : bool
        tqdm bar over the epochs.

    Returns
    -------
    TrainedNetwork
    """
    if not isinstance(hits, HitSet):
        raise TypeError(f"`hits` must be a HitSet, got {type(hits).__name__}")
    settings = TrainSettings() if settings is None else settings
    if not isinstance(settings, TrainSettings):
        raise TypeError(f"`settings` must be a TrainSettings, got {type(settings).__name__}")
    if len(hits) < 8:
        raise ValueError(f"`hits` must hold at least 8 images, got {len(hits)}")
    labels = class_labels(hits.n_particles, settings.n_classes)
    if len(np.unique(labels)) < 2:
        raise ValueError("`hits` must hold at least two hit counts (single and multiple hits)")

    torch.manual_seed(settings.seed)
    gen = torch.Generator().manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    net = build_network(settings.kind, embedding_dim=settings.embedding_dim, n_classes=settings.n_classes,
                        channels=settings.channels)
    mask = detector_mask(hits.shape, settings.beamstop_radius, hits.mask)
    mt = torch.from_numpy(mask)
    images = torch.from_numpy(np.ascontiguousarray(hits.images))
    lab_t = torch.from_numpy(labels)
    opt = torch.optim.AdamW(net.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    n_batches = max(1, len(hits) // settings.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=settings.lr, total_steps=settings.epochs * n_batches,
                                                pct_start=0.2)
    epochs = range(settings.epochs)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        epochs = bar = tqdm(epochs, desc=f"train {settings.kind}", unit="epoch")
    history = []
    t0 = time.perf_counter()
    for epoch in epochs:
        net.train()
        tot, active, seen = 0.0, 0.0, 0
        if settings.kind == "twin":
            batches = list(_balanced_batches(labels, settings.batch_size, rng))[:n_batches]
        else:
            perm = rng.permutation(len(hits))
            batches = [perm[i * settings.batch_size:(i + 1) * settings.batch_size] for i in range(n_batches)]
        while len(batches) < n_batches:  # keep the scheduler's step count
            batches.append(batches[-1])
        for idx in batches:
            it = torch.from_numpy(idx)
            x, m = augment_batch(images[it], mt, settings, gen, counts=hits.counts)
            out = net(preprocess(x, m))
            if settings.kind == "twin":
                loss, act = semi_hard_triplet_loss(out, lab_t[it], settings.margin)
            else:
                loss, act = F.cross_entropy(out, lab_t[it]), float((out.argmax(1) != lab_t[it]).float().mean())
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tot += loss.item() * len(idx)
            active += act * len(idx)
            seen += len(idx)
        rec = {"epoch": epoch + 1, "loss": tot / seen,
               ("active_triplets" if settings.kind == "twin" else "train_error"): active / seen,
               "seconds": time.perf_counter() - t0}
        history.append(rec)
        if bar is not None:
            bar.set_postfix(loss=f"{rec['loss']:.3f}")
        log.info("epoch %d: loss %.4f", epoch + 1, rec["loss"])
    net.eval()
    return TrainedNetwork(net, settings, hits.shape, mask, history)
