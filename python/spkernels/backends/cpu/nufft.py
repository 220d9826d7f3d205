"""NUFFT spreading / interpolation on the CPU: the C++ OpenMP kernels of ``spkernels._core``.

It implements the nufft contract stated in :mod:`spkernels.backends.numpy.nufft`.

Points arrive folded into [-pi, pi) and contiguous; the FFT and deconvolution are shared in
:mod:`spkernels.kernels.nufft`.
"""

from __future__ import annotations

import numpy as np

from .._shared import core_function, core_missing, host_arrays, no_point_limit

BIN_TARGET, BIN_MAX = 16, 32
EXACT = False

array_module = host_arrays

max_points = no_point_limit


def why_unavailable():
    return core_missing("nufft_spread_cpu", "the nufft kernels")


def _canonical(a):
    # a view with NumPy's builtin dtype instance: scipy.fft returns arrays whose (equal) dtype is
    # a distinct object, which pybind11 identity checks (`dtype().is(...)`) would reject
    return a.view(np.dtype(a.dtype.char))


def setpts(x, y, z, n_fine, bin_size):
    x, y, z = (_canonical(a) for a in (x, y, z))
    return core_function("nufft_setpts_cpu")(x, y, z, tuple(n_fine), tuple(bin_size))


def spread(x, y, z, c, perm, bin_offsets, n_fine, bin_size, w, beta, method, max_bytes=None):
    x, y, z, c = (_canonical(a) for a in (x, y, z, c))
    return core_function("nufft_spread_cpu")(x, y, z, c, perm, bin_offsets, tuple(n_fine), tuple(bin_size),
                                             int(w), float(beta), method)


def interp(x, y, z, fine, perm, w, beta):
    x, y, z, fine = (_canonical(a) for a in (x, y, z, fine))
    return core_function("nufft_interp_cpu")(x, y, z, fine, perm, int(w), float(beta))
