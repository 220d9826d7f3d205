"""The float64 NumPy reference of the insertion family (backend ``numpy``): vectorised over the
voxels of the Nyquist sphere, one projection at a time.

Geometry (every backend):

- ``images`` (n, N, N) complex, N even: centred 2-D spectra (``fftshift(fft2(ifftshift(img)))``
  of padded images); pixel ``[r, c]`` has frequency ``(u, v) = (c - h, r - h)``, ``h = N // 2``.
- ``volume`` (N, N, h + 1) complex and ``weights`` (N, N, h + 1) real: the half (kx >= 0)
  Fourier volume, voxel ``[iz, iy, ix]`` at ``k = (kx, ky, kz) = (ix, iy - h, iz - h)``. Every
  image is a full plane, so the half volume gathers all it needs: no Hermitian fold is left.
- ``rotations`` (n, 3, 3) real: pixel (u, v) of image j lies at 3-D frequency
  ``R_jᵀ (u, v, 0)``; a voxel maps into image j at ``p = R_j k``.
- A (voxel, pixel) pair has weight ``w = table[round(d2 · scale)]`` when
  ``d2 = du² + (dv² + pz²) < radius²`` (``du = u - px``, ``dv = v - py``), the voxel is in the
  sphere ``kx² + ky² + kz² <= max_freq2`` and the pixel is on the image. ``table`` samples the
  blob at ``r² = i / scale``.
- insertion: ``volume[k] += Σ w · c · X``, ``weights[k] += Σ w · c²`` over the pairs of every
  image (c the CTF pixel, 1 when ``ctf`` is None); extraction, its adjoint:
  ``out[j, pixel] = c · Σ w · volume[k]``.

The insertion family's contract (the same in every ``backends/<pkg>/insertion.py``; inputs
arrive validated and of one precision: complex images/volume, real ctf/weights/rotations/table
of the matching real type, except ``numpy``, which computes in float64):

- ``METHODS``: the insertion methods this backend has (``"gather"``; ``"scatter"``, the
  atomic baseline, where it exists).
- ``insert(images, ctf, rotations, table, scale, radius, max_freq2, volume, weights, method,
  params) -> (volume, weights)``: adds the images into `volume` and `weights` (in place where
  the arrays are this backend's own; the returned pair is the result). `ctf` is None or
  (n, N, N). `params` holds the launch parameters of GPU backends (``block``, ``batch``,
  ``table_in_shared``); host backends ignore it.
- ``extract(volume, ctf, rotations, table, scale, radius, max_freq2) -> images (n, N, N)``.
- ``array_module()``: the module of this backend's arrays (NumPy on the host).

The blob, its table, validation and batching live in :mod:`spkernels.kernels.insertion`; this
reference has one algorithm, so ``"scatter"`` here computes what ``"gather"`` does.
"""

from __future__ import annotations

import math

import numpy as np

from ..._arrays import to_host
from .._shared import host_arrays as array_module  # noqa: F401

METHODS = ("gather", "scatter")


def sphere_voxels(N, max_freq2):
    """Flat indices into the half volume and the (kx, ky, kz) float64 coordinates of the voxels
    inside the sphere."""
    h = N // 2
    kz, ky, kx = np.meshgrid(np.arange(N) - h, np.arange(N) - h, np.arange(h + 1), indexing="ij")
    inside = (kx * kx + ky * ky + kz * kz) <= max_freq2
    flat = np.flatnonzero(inside.ravel())
    k = np.stack([kx.ravel()[flat], ky.ravel()[flat], kz.ravel()[flat]], axis=1).astype(np.float64)
    return flat, k


def pairs(rot, k, table, scale, radius, h):
    """Every (voxel, pixel, weight) pair of one projection: voxel rows into `k`, flat pixel
    indices into the (N, N) image, blob weights (float64)."""
    p = k @ np.asarray(rot, dtype=np.float64).T  # p = R k per voxel
    near = np.abs(p[:, 2]) < radius
    idx = np.flatnonzero(near)
    px, py, pz = p[idx, 0], p[idx, 1], p[idx, 2]
    r2 = radius * radius
    reach = int(math.ceil(radius)) + 1
    vox, pix, wts = [], [], []
    fx = np.floor(px).astype(np.int64)
    fy = np.floor(py).astype(np.int64)
    for dv in range(-reach, reach + 1):
        v = fy + dv
        dvv = (v - py) ** 2 + pz * pz
        for du in range(-reach, reach + 1):
            u = fx + du
            d2 = (u - px) ** 2 + dvv
            ok = (d2 < r2) & (u >= -h) & (u < h) & (v >= -h) & (v < h)
            if not ok.any():
                continue
            vox.append(idx[ok])
            pix.append((v[ok] + h) * (2 * h) + (u[ok] + h))
            wts.append(table[np.floor(d2[ok] * scale + 0.5).astype(np.int64)])
    if not vox:
        e = np.empty(0, dtype=np.int64)
        return e, e, np.empty(0)
    return np.concatenate(vox), np.concatenate(pix), np.concatenate(wts)


def insert(images, ctf, rotations, table, scale, radius, max_freq2, volume, weights, method="gather",
           params=None):
    """Float64 reference insertion (see the module docstring); returns new float64 arrays."""
    images = np.asarray(to_host(images), dtype=np.complex128)
    n, N, _ = images.shape
    h = N // 2
    table = np.asarray(to_host(table), dtype=np.float64)
    flat, k = sphere_voxels(N, max_freq2)
    m = len(flat)
    acc_re = np.zeros(m)
    acc_im = np.zeros(m)
    acc_w = np.zeros(m)
    for j in range(n):
        vox, pix, w = pairs(to_host(rotations)[j], k, table, scale, radius, h)
        x = images[j].ravel()[pix]
        if ctf is not None:
            c = np.asarray(to_host(ctf)[j], dtype=np.float64).ravel()[pix]
            wc = w * c
            acc_re += np.bincount(vox, weights=wc * x.real, minlength=m)
            acc_im += np.bincount(vox, weights=wc * x.imag, minlength=m)
            acc_w += np.bincount(vox, weights=wc * c, minlength=m)
        else:
            acc_re += np.bincount(vox, weights=w * x.real, minlength=m)
            acc_im += np.bincount(vox, weights=w * x.imag, minlength=m)
            acc_w += np.bincount(vox, weights=w, minlength=m)
    vol = np.array(to_host(volume), dtype=np.complex128)
    wt = np.array(to_host(weights), dtype=np.float64)
    vol.ravel()[flat] += acc_re + 1j * acc_im
    wt.ravel()[flat] += acc_w
    return vol, wt


def extract(volume, ctf, rotations, table, scale, radius, max_freq2, params=None):
    """Float64 reference extraction, the adjoint of :func:`insert`'s volume part."""
    vol = np.asarray(to_host(volume), dtype=np.complex128)
    N = vol.shape[0]
    h = N // 2
    rot = np.asarray(to_host(rotations), dtype=np.float64)
    table = np.asarray(to_host(table), dtype=np.float64)
    flat, k = sphere_voxels(N, max_freq2)
    values = vol.ravel()[flat]
    out = np.zeros((rot.shape[0], N, N), dtype=np.complex128)
    for j in range(rot.shape[0]):
        vox, pix, w = pairs(rot[j], k, table, scale, radius, h)
        y = w * values[vox]
        img = (np.bincount(pix, weights=y.real, minlength=N * N)
               + 1j * np.bincount(pix, weights=y.imag, minlength=N * N))
        if ctf is not None:
            img = img * np.asarray(to_host(ctf)[j], dtype=np.float64).ravel()
        out[j] = img.reshape(N, N)
    return out
