"""NUFFT in float64 NumPy: the exact direct sums (the ``numpy`` backend, the test oracle) and a
plain reference of the spreading steps.

The nufft family's backend contract (the same in every ``backends/<pkg>/nufft.py``):

- ``BIN_TARGET``, ``BIN_MAX``: bin edge (fine-grid cells) the kernels are tuned for / accept;
- ``EXACT``: True here: :class:`spkernels.kernels.nufft.Plan` evaluates this backend's
  transforms with :func:`direct_type1` / :func:`direct_type2` (O(M N^3), small sizes only)
  instead of spread / FFT / deconvolve;
- ``array_module()``: the module the backend's arrays live in (numpy);
- ``why_unavailable()``: None, or why this family cannot run here although the backend can
  (a ``_core`` built without it, no CuPy for a GPU FFT);
- ``max_points(w)``: points per ``setpts`` / ``spread`` call the backend's scratch allows, or None;
- ``setpts(x, y, z, n_fine, bin_size) -> (perm, bin_offsets)``: stable sort by fine-grid bin;
- ``spread(x, y, z, c, perm, bin_offsets, n_fine, bin_size, w, beta, method, max_bytes=None)``
  -> fine grid (V, n1, n2, n3) (type-1 direction);
- ``interp(x, y, z, fine, perm, w, beta)`` -> values (V, M) (type-2 direction).

``w`` is the kernel width in cells and ``beta`` names the kernel: ``beta > 0`` the exponential of
semicircle with that shape, ``beta < 0`` the PSWF of bandwidth ``-beta``
(:func:`spkernels.backends.numba_math.nufft.kernel_value`, twin of ``kernel_value`` in
``cpp/include/spk/nufft.h``).

Here ``setpts`` / ``spread`` / ``interp`` evaluate the kernel directly in float64, vectorised
over the points (memory M w^3: small sizes only), with the conventions of
``cpp/include/spk/nufft.h``: a folded point ``x`` sits at ``t = x n / (2 pi)``, its support is
the ``w`` cells from ``l0 = ceil(t - w/2)`` (mod n) with weights ``phi((l - t) / (w/2))``. Both
spreading methods give the same (order-independent up to rounding) sum.
"""

from __future__ import annotations

import math

import numpy as np

from ..numba_math.nufft import kernel_values

from .._shared import always_available, host_arrays, no_point_limit

BIN_TARGET, BIN_MAX = 16, 32
EXACT = True

array_module = host_arrays

max_points = no_point_limit
why_unavailable = always_available


def mode_indices(N: int) -> np.ndarray:
    """finufft modeord=0 modes -N//2 .. (N-1)//2, increasing."""
    return np.arange(-(N // 2), (N - 1) // 2 + 1)


# ----------------------------------------------------------------------------- direct sums


def _direct_chunk(nv, modes):
    # keeps the (V, chunk, N1, N2) temporaries near 64 MiB
    return max(1, (1 << 22) // max(1, nv * modes[0] * modes[1]))


def direct_type1(x, y, z, c, n_modes, isign=1):
    """Exact type-1 sum in float64 (the oracle): ``c`` (V, M) -> (V, N1, N2, N3) complex128."""
    x, y, z = (np.asarray(a, np.float64) for a in (x, y, z))
    c = np.asarray(c, np.complex128)
    nv = c.shape[0]
    n1, n2, n3 = n_modes
    k1, k2, k3 = (mode_indices(n).astype(np.float64) for n in n_modes)
    out = np.zeros((nv, n1 * n2, n3), np.complex128)
    step = _direct_chunk(nv, n_modes)
    for lo in range(0, x.shape[0], step):
        sl = slice(lo, lo + step)
        ex = np.exp(1j * isign * np.outer(x[sl], k1))
        ey = np.exp(1j * isign * np.outer(y[sl], k2))
        ez = np.exp(1j * isign * np.outer(z[sl], k3))
        exy = (ex[:, :, None] * ey[:, None, :]).reshape(-1, n1 * n2)  # (m, N1 N2)
        for v in range(nv):
            out[v] += (c[v, sl, None] * exy).T @ ez
    return out.reshape(nv, n1, n2, n3)


def direct_type2(x, y, z, f, isign=-1):
    """Exact type-2 sum in float64 (the oracle): ``f`` (V, N1, N2, N3) -> (V, M) complex128."""
    x, y, z = (np.asarray(a, np.float64) for a in (x, y, z))
    f = np.asarray(f, np.complex128)
    nv, n1, n2, n3 = f.shape
    k1, k2, k3 = (mode_indices(n).astype(np.float64) for n in (n1, n2, n3))
    out = np.empty((nv, x.shape[0]), np.complex128)
    step = _direct_chunk(nv, (n1, n2))
    for lo in range(0, x.shape[0], step):
        sl = slice(lo, lo + step)
        ex = np.exp(1j * isign * np.outer(x[sl], k1))
        ey = np.exp(1j * isign * np.outer(y[sl], k2))
        ez = np.exp(1j * isign * np.outer(z[sl], k3))
        exy = (ex[:, :, None] * ey[:, None, :]).reshape(-1, n1 * n2)
        for v in range(nv):
            g = f[v].reshape(n1 * n2, n3) @ ez.T  # (N1 N2, m)
            out[v, sl] = np.einsum("pj,jp->j", g, exy)
    return out


# ----------------------------------------------------------------------------- reference spreading


def _grid_coord(x, n):
    return np.asarray(x, np.float64) * (n / (2.0 * math.pi))


def _axis(x, n, w, beta):
    """Wrapped support indices (M, w) and kernel weights (M, w) of one axis, in float64."""
    t = _grid_coord(x, n)
    l0 = np.ceil(t - 0.5 * w).astype(np.int64)
    cells = l0[:, None] + np.arange(w)
    zz = (cells - t[:, None]) * (2.0 / w)
    return cells % n, kernel_values(zz, beta)  # ES for beta > 0, PSWF for beta < 0


def _flat_support(x, y, z, n_fine, w, beta):
    n1, n2, n3 = (int(v) for v in n_fine)
    i1, w1 = _axis(x, n1, w, beta)
    i2, w2 = _axis(y, n2, w, beta)
    i3, w3 = _axis(z, n3, w, beta)
    flat = (i1[:, :, None, None] * n2 + i2[:, None, :, None]) * n3 + i3[:, None, None, :]
    wts = w1[:, :, None, None] * w2[:, None, :, None] * w3[:, None, None, :]
    return flat.reshape(flat.shape[0], -1), wts.reshape(wts.shape[0], -1)


def setpts(x, y, z, n_fine, bin_size):
    """Stable sort of the points by fine-grid bin: ``(perm int64 (M,), bin_offsets int64 (nbins+1,))``."""
    nb = [(int(a) + int(b) - 1) // int(b) for a, b in zip(n_fine, bin_size)]
    ids = []
    for a, n, bs in zip((x, y, z), n_fine, bin_size):
        ids.append(np.floor(_grid_coord(a, int(n))).astype(np.int64) % int(n) // int(bs))
    bins = (ids[0] * nb[1] + ids[1]) * nb[2] + ids[2]
    perm = np.argsort(bins, kind="stable").astype(np.int64)
    offsets = np.zeros(nb[0] * nb[1] * nb[2] + 1, np.int64)
    offsets[1:] = np.cumsum(np.bincount(bins, minlength=nb[0] * nb[1] * nb[2]))
    return perm, offsets


def spread(x, y, z, c, perm, bin_offsets, n_fine, bin_size, w, beta, method, max_bytes=None):
    """Spread ``c`` (V, M) onto a new fine grid (V, n1, n2, n3) of ``c``'s dtype."""
    if method not in ("gather", "scatter"):
        raise ValueError(f"`method` must be 'gather' or 'scatter', got {method!r}")
    flat, wts = _flat_support(x, y, z, n_fine, int(w), float(beta))
    size = int(np.prod([int(v) for v in n_fine]))
    nv = int(c.shape[0])
    fine = np.empty((nv, size), c.dtype)
    for v in range(nv):
        vals = np.asarray(c[v], np.complex128)[:, None] * wts
        fine[v] = (np.bincount(flat.ravel(), vals.real.ravel(), minlength=size)
                   + 1j * np.bincount(flat.ravel(), vals.imag.ravel(), minlength=size))
    return fine.reshape(nv, *(int(v) for v in n_fine))


def interp(x, y, z, fine, perm, w, beta):
    """Values (V, M) at the points, interpolated from ``fine`` (V, n1, n2, n3)."""
    flat, wts = _flat_support(x, y, z, fine.shape[1:], int(w), float(beta))
    nv = int(fine.shape[0])
    grid = np.asarray(fine, np.complex128).reshape(nv, -1)
    out = np.empty((nv, flat.shape[0]), fine.dtype)
    for v in range(nv):
        out[v] = (grid[v][flat] * wts).sum(axis=1)
    return out
