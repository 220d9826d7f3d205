"""The distance family on the CPU: the C++ OpenMP kernels of ``spkernels._core``.

The distance family's contract (the same functions in every ``backends/<pkg>/distance.py``);
arrays arrive validated, C-contiguous and in one working dtype (float32 for fp32, float64 for
fp64):

- ``topk(X, Y, w, metric_id, k, precision) -> (index (N, k) int64, score (N, k))``: the k best
  models per data row in ascending (score, index) order (fused score + top-k);
- ``score_matrix(X, Y, w, metric_id, precision) -> (R, N) scores``;
- ``segmented_argmin(values, offsets) -> (index (S,) int64, value (S,))``: per segment the local
  position of the first minimum (-1 when empty) and the minimum (+inf when empty).

The compiled functions take the dtype of their arrays, so ``precision`` (fp32 / fp64, already
checked) only names what the dtype already says.
"""

from __future__ import annotations

import numpy as np

from ..._errors import BackendUnavailableError
from .._shared import core_function


def _core_fn(name: str):
    try:
        return core_function(name)
    except RuntimeError:
        raise BackendUnavailableError(
            f"spkernels._core has no {name}: the extension is out of date, rebuild it") from None


def topk(X, Y, w, metric_id, k, precision):
    return _core_fn("distance_topk_cpu")(X, Y, w, metric_id, k)


def score_matrix(X, Y, w, metric_id, precision):
    return _core_fn("pairwise_score_cpu")(X, Y, w, metric_id)


def segmented_argmin(values, offsets):
    return _core_fn("segmented_argmin_cpu")(np.ascontiguousarray(values), np.ascontiguousarray(offsets))
