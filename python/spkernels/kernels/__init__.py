"""Backend-neutral kernel entry points: validate inputs, pick a backend, batch, dispatch.

Every function takes ``backend="auto"`` (see :mod:`spkernels.backends`). NumPy in gives NumPy
out; GPU arrays (``__cuda_array_interface__``) in give GPU arrays out with no host copy.
"""

from .distance import (
    ERROR_BOUND,
    ArgminAccumulator,
    ArgminResult,
    distance_argmin,
    error_bound,
    pairwise_sqdist,
    segmented_argmin,
)

__all__ = [
    "ERROR_BOUND",
    "ArgminAccumulator",
    "ArgminResult",
    "distance_argmin",
    "error_bound",
    "pairwise_sqdist",
    "segmented_argmin",
]
