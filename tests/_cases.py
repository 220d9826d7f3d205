"""Inputs and procedures that several test files share."""

from __future__ import annotations

import numpy as np


def distance_inputs(rng, metric, R=150, N=70, P=45, weighted=True):
    """float32 models (R, P), data (N, P) and optional pixel weights (P,) for `metric`: positive
    models and Poisson counts for ``poisson``, normal values for ``euclidean``."""
    if metric == "poisson":
        X = rng.uniform(0.3, 3.0, (R, P)).astype(np.float32)
        Y = rng.poisson(1.5, (N, P)).astype(np.float32)
    else:
        X = rng.standard_normal((R, P)).astype(np.float32)
        Y = rng.standard_normal((N, P)).astype(np.float32)
    w = rng.uniform(0.5, 1.5, P).astype(np.float32) if weighted else None
    return X, Y, w


def resume_after_crash(reconstruct, data, cfg, checkpoint, crash_at=1):
    """An MTIP run stopped by an exception after generation `crash_at`, then resumed from its
    checkpoint: returns the resumed result (compare it with an uninterrupted run)."""
    import pytest

    class Crash(Exception):
        pass

    def crash(entry, rho):
        if entry["generation"] == crash_at:
            raise Crash

    with pytest.raises(Crash):
        reconstruct(data, cfg, checkpoint=checkpoint, progress=False, callback=crash)
    return reconstruct(data, cfg, checkpoint=checkpoint, resume=True, progress=False)
