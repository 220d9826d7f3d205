"""The fsc family on the CPU: scipy.fft half spectra and the C++ OpenMP ``fsc_accumulate_cpu``.

It implements the fsc contract stated in :mod:`spkernels.backends.numpy.fsc`.

The FSC curve, its shells and the resolution reading stay in :mod:`spkernels.kernels.fsc`.

:func:`spectra` here is also the host FFT of the ``numba-cpu`` backend and the fallback of the
GPU backends when CuPy is missing.
"""

from __future__ import annotations

from ..._errors import BackendUnavailableError
from .._shared import core_function


def spectra(vol1, vol2, on_device=False):
    """Half spectra of both volumes by scipy.fft.rfftn (all cores)."""
    import scipy.fft

    return (scipy.fft.rfftn(vol1, workers=-1), scipy.fft.rfftn(vol2, workers=-1))


def accumulate(f1, f2, nx, az, ay, ax, n_shells):
    """Per-shell sums of two host half spectra by the compiled OpenMP loop."""
    try:
        fn = core_function("fsc_accumulate_cpu")
    except RuntimeError:
        raise BackendUnavailableError(
            "spkernels._core has no fsc_accumulate_cpu: the extension is out of date, rebuild it") from None
    return fn(f1, f2, nx, az, ay, ax, n_shells)
