"""NUFFT spreading / interpolation on the GPU: the CUDA kernels of ``spkernels._core``.

It implements the nufft contract stated in :mod:`spkernels.backends.numpy.nufft`.

Arrays are C-contiguous CuPy arrays; the launchers get raw device pointers
(:func:`spkernels._arrays.device_pointer`), the element type as ``_shared.core_tag`` of the real
dtype, and CuPy's current stream.
"""

from __future__ import annotations

import numpy as np

from ..._arrays import device_pointer
from .._shared import core_function, core_missing, core_tag, cupy_missing, no_point_limit, real_dtype

BIN_TARGET, BIN_MAX = 8, 16
EXACT = False


def array_module():
    import cupy

    return cupy

max_points = no_point_limit


def why_unavailable():
    return core_missing("nufft_spread_cuda", "the nufft CUDA kernels") or cupy_missing()


def _stream():
    import cupy

    return cupy.cuda.get_current_stream().ptr


def _tag(a):
    return core_tag(real_dtype(a.dtype))


def setpts(x, y, z, n_fine, bin_size):
    import cupy

    m = int(x.shape[0])
    nbins = int(np.prod([(a + b - 1) // b for a, b in zip(n_fine, bin_size)]))
    perm = cupy.empty(m, np.int64)
    offs = cupy.empty(nbins + 1, np.int64)
    core_function("nufft_setpts_cuda")(device_pointer(x), device_pointer(y), device_pointer(z), m, *n_fine,
                                       *bin_size, _tag(x), device_pointer(perm), device_pointer(offs), _stream())
    return perm, offs


def spread(x, y, z, c, perm, bin_offsets, n_fine, bin_size, w, beta, method, max_bytes=None):
    import cupy

    nv, m = (int(s) for s in c.shape)
    fine = cupy.empty((nv, *n_fine), c.dtype)  # zero-initialised by the core
    core_function("nufft_spread_cuda")(device_pointer(x), device_pointer(y), device_pointer(z), device_pointer(c),
                                       nv, m, device_pointer(perm), device_pointer(bin_offsets), *n_fine, *bin_size,
                                       int(w), float(beta), _tag(c), method, device_pointer(fine), _stream())
    return fine


def interp(x, y, z, fine, perm, w, beta):
    import cupy

    nv = int(fine.shape[0])
    m = int(perm.shape[0])
    out = cupy.empty((nv, m), fine.dtype)
    core_function("nufft_interp_cuda")(device_pointer(x), device_pointer(y), device_pointer(z), device_pointer(fine),
                                       nv, m, device_pointer(perm), *fine.shape[1:], int(w), float(beta), _tag(fine),
                                       device_pointer(out), _stream())
    return out
