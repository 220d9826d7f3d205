"""Backend-neutral kernel entry points: validate inputs, pick a backend, batch, dispatch.

Every function takes ``backend="auto"`` (see :mod:`spkernels.backends`). NumPy in gives NumPy
out; GPU arrays (``__cuda_array_interface__``) in give GPU arrays out with no host copy.

Families: orientation matching (:mod:`.distance`), NUFFT slicing and insertion (:mod:`.nufft`),
conjugate gradient and the Toeplitz normal operator (:mod:`.cg`, :mod:`.toeplitz`), Fourier
shell correlation (:mod:`.fsc`), Fourier insertion with a blob and its adjoint (:mod:`.insertion`).
"""

from .cg import CGResult, cg
from .distance import (
    ERROR_BOUND,
    ArgminAccumulator,
    ArgminResult,
    distance_argmin,
    error_bound,
    pairwise_sqdist,
    segmented_argmin,
)
from .fsc import FSCResult, Resolution, fsc
from .insertion import Blob, LaunchParams, blob_fourier
from .insertion import extract as fourier_extract
from .insertion import insert as fourier_insert
from .nufft import Plan, nufft3d1, nufft3d2
from .toeplitz import ToeplitzNormalOperator

__all__ = [
    "CGResult",
    "ERROR_BOUND",
    "ArgminAccumulator",
    "ArgminResult",
    "Blob",
    "LaunchParams",
    "FSCResult",
    "Plan",
    "Resolution",
    "ToeplitzNormalOperator",
    "cg",
    "distance_argmin",
    "blob_fourier",
    "error_bound",
    "fourier_extract",
    "fourier_insert",
    "fsc",
    "nufft3d1",
    "nufft3d2",
    "pairwise_sqdist",
    "segmented_argmin",
]
