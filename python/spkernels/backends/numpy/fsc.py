"""The float64 NumPy reference of the fsc family (backend ``numpy``): full complex FFT, a shell
index per voxel, ``bincount``.

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
"""

from __future__ import annotations

import numpy as np

from ..._arrays import to_host


def _freq_indices(n):
    k = np.arange(n, dtype=np.int64)
    k[k > (n - 1) // 2] -= n
    return k


def spectra(vol1, vol2, on_device=False):
    """Full float64 spectra of both volumes."""
    return (np.fft.fftn(np.asarray(to_host(vol1), dtype=np.float64)),
            np.fft.fftn(np.asarray(to_host(vol2), dtype=np.float64)))


def accumulate(f1, f2, nx, az, ay, ax, n_shells):
    """Per-shell sums (n_shells, 4) over two full spectra of shape (nz, ny, nx)."""
    nz, ny, nx = f1.shape
    tz = _freq_indices(nz).astype(np.float64)[:, None, None] * az
    ty = _freq_indices(ny).astype(np.float64)[None, :, None] * ay
    tx = _freq_indices(nx).astype(np.float64)[None, None, :] * ax
    r2 = (tz * tz + ty * ty) + tx * tx  # same order of operations as the kernels
    shell = np.floor(np.sqrt(r2) + 0.5).astype(np.int64).ravel()
    keep = shell < n_shells
    s = shell[keep]
    a = f1.ravel()[keep]
    b = f2.ravel()[keep]
    sums = np.empty((n_shells, 4))
    sums[:, 0] = np.bincount(s, weights=(a.real * b.real + a.imag * b.imag), minlength=n_shells)
    sums[:, 1] = np.bincount(s, weights=(a.real * a.real + a.imag * a.imag), minlength=n_shells)
    sums[:, 2] = np.bincount(s, weights=(b.real * b.real + b.imag * b.imag), minlength=n_shells)
    sums[:, 3] = np.bincount(s, minlength=n_shells)
    return sums


def reference_sums(v1, v2, n_shells, scale):
    """The reference sums of two real volumes: :func:`spectra` then :func:`accumulate`."""
    f1, f2 = spectra(v1, v2)
    return accumulate(f1, f2, f1.shape[2], *scale, n_shells)
