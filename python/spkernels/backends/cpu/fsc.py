"""The fsc family on the CPU: scipy.fft half spectra and the C++ OpenMP ``fsc_accumulate_cpu``.

The fsc family's contract (the same two functions in every ``backends/<pkg>/fsc.py``; volumes
arrive validated, masked, of one real dtype float32 or float64, and shaped (nz, ny, nx)):

- ``spectra(vol1, vol2, on_device) -> (f1, f2)``: the two spectra this backend's
  ``accumulate`` reads (half spectra of a real-to-complex FFT in the volumes' precision on the
  compiled backends; the full float64 spectra on ``numpy``). `on_device` says the volumes are
  GPU arrays.
- ``accumulate(f1, f2, nx, az, ay, ax, n_shells) -> sums (n_shells, 4) float64``: per shell
  ``Re Σ F1·F2*``, ``Σ|F1|²``, ``Σ|F2|²`` and the voxel count of the full spectrum, the same sums
  on every backend; ``a_d = 1 / (n_d · voxel_size · shell_width)``. GPU backends may return a
  device array (callers take ``to_host``).

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
