"""Figures of a hit classifier: confusion matrix and a 2-D view of the embedding (matplotlib)."""

from __future__ import annotations

import numpy as np

__all__ = ["plot_confusion", "plot_embedding"]


def plot_confusion(cm, path, *, labels=None, title: str = "") -> None:
    """Write a confusion-matrix PNG (rows: true hit count, columns: predicted)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(cm)
    n = cm.shape[0]
    labels = labels or [str(k + 1) for k in range(n)]
    frac = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(4.2, 3.8))
    ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(int(cm[i, j])), ha="center", va="center", color="white" if frac[i, j] > 0.5 else "black")
    ax.set_xticks(range(n), labels)
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("predicted particles")
    ax.set_ylabel("true particles")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_embedding(embeddings, n_particles, path, *, title: str = "twin embedding (first two principal axes)") -> None:
    """Write a PNG of the embeddings projected on their first two principal axes, coloured by hit count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    e = np.asarray(embeddings, dtype=np.float64)
    e = e - e.mean(axis=0)
    _, _, vt = np.linalg.svd(e, full_matrices=False)
    xy = e @ vt[:2].T
    n = np.asarray(n_particles)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    for k in np.unique(n):
        sel = n == k
        ax.scatter(xy[sel, 0], xy[sel, 1], s=6, label=f"{k} particle{'s' if k > 1 else ''}")
    ax.legend(fontsize=8, markerscale=2)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
