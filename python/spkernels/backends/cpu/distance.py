"""The distance family on the CPU: the C++ OpenMP kernels of ``spkernels._core``.

It implements the distance contract stated in :mod:`spkernels.backends.numpy.distance`.

The compiled functions take the dtype of their arrays, so ``precision`` (fp32 / fp64, already
checked) only names what the dtype already says.
"""

from __future__ import annotations

import numpy as np

from .._shared import core_function



def topk(X, Y, w, metric_id, k, precision):
    return core_function("distance_topk_cpu")(X, Y, w, metric_id, k)


def score_matrix(X, Y, w, metric_id, precision):
    return core_function("pairwise_score_cpu")(X, Y, w, metric_id)


def segmented_argmin(values, offsets):
    return core_function("segmented_argmin_cpu")(np.ascontiguousarray(values), np.ascontiguousarray(offsets))
