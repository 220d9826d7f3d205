"""spkernels: fast kernels for single-particle imaging.

Orientation matching (fused distance GEMM + argmin), NUFFT slicing and gather insertion,
double-precision conjugate gradient and Fourier shell correlation, each on five backends
(``cuda``, ``numba-cuda``, ``cpu``, ``numba-cpu``, ``numpy``), under a thin science API for
MTIP (X-ray SPI) and cryo-EM reconstruction.

>>> import spkernels
>>> spkernels.info()["backends"]          # doctest: +SKIP
['cpu', 'numba-cpu', 'numpy']
"""

from importlib.metadata import PackageNotFoundError, version as _pkg_version

from ._errors import BackendUnavailableError
from .backends import available_backends
from ._info import info

try:
    __version__ = _pkg_version("spkernels")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0+unknown"

__all__ = ["BackendUnavailableError", "available_backends", "info", "__version__"]
