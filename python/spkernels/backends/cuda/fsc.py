"""The fsc family on the GPU: cupy.fft half spectra and the CUDA C++ ``fsc_accumulate_cuda``.

It implements the fsc contract stated in :mod:`spkernels.backends.numpy.fsc`.

The FSC curve, its shells and the resolution reading stay in :mod:`spkernels.kernels.fsc`.

:func:`spectra` here is also the one of the ``numba-cuda`` backend: cupy.fft when CuPy is
installed, else (host volumes only) scipy.fft on the host, the spectra then staying NumPy
arrays that :func:`accumulate` copies to the device.
"""

from __future__ import annotations

import numpy as np

from ..._arrays import DeviceArray, device_pointer, is_device_array
from ..._errors import BackendUnavailableError
from .._shared import core_function, core_tag
from ..cpu.fsc import spectra as _host_spectra


def spectra(vol1, vol2, on_device=False):
    """Half spectra on the device by cupy.fft, or on the host when CuPy is missing."""
    try:
        import cupy
    except ImportError:
        if on_device:
            raise BackendUnavailableError(
                "fsc on GPU arrays needs CuPy for the FFT; install spkernels[cuda12|cuda13]") from None
        return _host_spectra(vol1, vol2)
    return (cupy.fft.rfftn(cupy.asarray(vol1)), cupy.fft.rfftn(cupy.asarray(vol2)))



def accumulate(f1, f2, nx, az, ay, ax, n_shells):
    """Per-shell sums of two half spectra (CuPy or host arrays) by the CUDA kernel; a host array."""
    launch = core_function("fsc_accumulate_cuda")
    tag = core_tag(f1.dtype)
    nz, ny = int(f1.shape[0]), int(f1.shape[1])
    if is_device_array(f1):
        import cupy

        f1 = cupy.ascontiguousarray(f1)
        f2 = cupy.ascontiguousarray(f2)
        out = cupy.full(n_shells * 4, np.nan)
        stream = cupy.cuda.get_current_stream().ptr
        launch(device_pointer(f1), device_pointer(f2), tag, nz, ny, nx, az, ay, ax, n_shells,
               device_pointer(out), stream)
        return out.get()
    d1 = DeviceArray.from_host(np.ascontiguousarray(f1))
    d2 = DeviceArray.from_host(np.ascontiguousarray(f2))
    out = DeviceArray.from_host(np.full(n_shells * 4, np.nan))
    launch(d1.ptr, d2.ptr, tag, nz, ny, nx, az, ay, ax, n_shells, out.ptr, 0)
    core_function("cuda_synchronize")()
    return out.get()
