"""Fourier insertion with ``@cuda.jit`` (twin of ``cpp/cuda/insertion.cu``).

It implements the insertion contract stated in :mod:`spkernels.backends.numpy.insertion`.

``gather`` has the C++ kernel's two layouts (``params["layout"]``). ``slab`` (default): one
launch per dominant axis of the projection normals, each thread owning a column of voxels along
it and visiting, per projection of that axis, only the column's voxels near the plane. ``brick``:
a thread block owns a brick of voxels (``params["block"]``, x·y·z threads), each thread one voxel,
walking every projection and skipping block-uniformly those whose slab misses the brick. Both
stage ``params["batch"]`` rotations at a time in shared memory, sum each voxel's pixels in
registers and write each voxel from one thread: no atomics, deterministic. The
blob table is read from global memory (Numba's dynamic shared memory is one array, capped at
48 KB; ``table_in_shared`` is the C++ kernel's option). ``scatter``: one thread per pixel with
``cuda.atomic.add`` into the voxels of its window. Geometry in float64, as in the Numba CPU twin.
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda, float64

from ..numba_math import insertion as _math

# Device versions of the shared math (the simulator cannot hand its arrays to @njit functions).
insertion_gather_voxel = cuda.jit(device=True)(_math.insertion_gather_voxel.py_func)
insertion_dominant_axis = cuda.jit(device=True)(_math.insertion_dominant_axis.py_func)
insertion_row_interval = cuda.jit(device=True)(_math.insertion_row_interval.py_func)
insertion_extract_pixel = cuda.jit(device=True)(
    _math.insertion_pixel_walk_with(cuda.jit(device=True)(_math.insertion_extract_visit.py_func)).py_func)


@cuda.jit(device=True)
def _scatter_visit(vre, wts, iz, iy, ix, w, x, c):
    # vre: the complex volume seen as interleaved reals, for the atomics
    wc = w * c
    cuda.atomic.add(vre, (iz, iy, 2 * ix), wc * x.real)
    cuda.atomic.add(vre, (iz, iy, 2 * ix + 1), wc * x.imag)
    cuda.atomic.add(wts, (iz, iy, ix), wc * c)
    return 0.0, 0.0


_scatter_pixel = cuda.jit(device=True)(_math.insertion_pixel_walk_with(_scatter_visit).py_func)

METHODS = ("gather", "scatter")


def array_module():
    """CuPy on a real GPU; NumPy under Numba's CUDA simulator."""
    from .. import cuda_simulator

    if cuda_simulator():
        return np
    import cupy

    return cupy


@cuda.jit(device=True)
def _stage_rotations(srot, rot, j0, nb, tid, nthreads):
    # rotations [j0, j0 + nb) into shared memory, after the block is done with the previous batch
    cuda.syncthreads()
    for i in range(tid, 9 * nb, nthreads):
        srot[i] = rot[j0 + i // 9, i % 9]
    cuda.syncthreads()


@cuda.jit(cache=False)
def _gather_kernel(images, ctf, has_ctf, rot, table, scale, radius, max_freq2, vol, wts, batch, z0):
    # vol, wts: the z-slab [z0, z0 + vol.shape[0]) of the half volume
    srot = cuda.shared.array(0, dtype=float64)
    n, N, _ = images.shape
    h = N // 2
    nxh = h + 1
    tid = cuda.threadIdx.x + cuda.blockDim.x * (cuda.threadIdx.y + cuda.blockDim.y * cuda.threadIdx.z)
    nthreads = cuda.blockDim.x * cuda.blockDim.y * cuda.blockDim.z
    ix = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    iy = cuda.blockIdx.y * cuda.blockDim.y + cuda.threadIdx.y
    lz = cuda.blockIdx.z * cuda.blockDim.z + cuda.threadIdx.z
    iz = z0 + lz
    kx = ix
    ky = iy - h
    kz = iz - h
    mine = ix < nxh and iy < N and lz < vol.shape[0] and iz < N and float(kx * kx + ky * ky + kz * kz) <= max_freq2
    cx = float(cuda.blockIdx.x * cuda.blockDim.x) + 0.5 * (cuda.blockDim.x - 1)
    cy = float(cuda.blockIdx.y * cuda.blockDim.y) + 0.5 * (cuda.blockDim.y - 1) - h
    cz = float(z0 + cuda.blockIdx.z * cuda.blockDim.z) + 0.5 * (cuda.blockDim.z - 1) - h
    half_diag = 0.5 * math.sqrt(float(cuda.blockDim.x * cuda.blockDim.x + cuda.blockDim.y * cuda.blockDim.y
                                      + cuda.blockDim.z * cuda.blockDim.z))
    are = 0.0
    aim = 0.0
    aw = 0.0
    j0 = 0
    while j0 < n:
        nb = min(batch, n - j0)
        _stage_rotations(srot, rot, j0, nb, tid, nthreads)
        for b in range(nb):
            r = srot[9 * b:9 * b + 9]
            dist = r[6] * cx + r[7] * cy + r[8] * cz
            if abs(dist) >= radius + half_diag or not mine:
                continue
            j = j0 + b
            c = ctf[j] if has_ctf else ctf[0]
            sre, sim, sw = insertion_gather_voxel(images[j], c, has_ctf, r, float(kx), float(ky), float(kz), table,
                                                  scale, radius, h)
            are += sre
            aim += sim
            aw += sw
        j0 += batch
    if mine:
        vol[lz, iy, ix] += complex(are, aim)
        wts[lz, iy, ix] += aw


@cuda.jit(cache=False)
def _slab_kernel(images, ctf, has_ctf, rot, table, scale, radius, max_freq2, vol, wts, batch, z0, axis):
    # one launch per dominant axis; vol, wts: the z-slab [z0, z0 + vol.shape[0]) of the half volume
    srot = cuda.shared.array(0, dtype=float64)
    n, N, _ = images.shape
    h = N // 2
    nz = vol.shape[0]
    tid = cuda.threadIdx.x + cuda.blockDim.x * cuda.threadIdx.y
    nthreads = cuda.blockDim.x * cuda.blockDim.y
    ext = (h + 1, N, nz)
    off = (0, -h, z0 - h)
    a0 = 1 if axis == 0 else 0  # the tile's two axes, ascending
    a1 = 1 if axis == 2 else 2
    pa = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    pb = cuda.blockIdx.y * cuda.blockDim.y + cuda.threadIdx.y
    mine = pa < ext[a0] and pb < ext[a1]
    k = cuda.local.array(3, dtype=np.int64)
    k[a0] = pa + off[a0]
    k[a1] = pb + off[a1]
    j0 = 0
    while j0 < n:
        nb = min(batch, n - j0)
        _stage_rotations(srot, rot, j0, nb, tid, nthreads)
        for b in range(nb):
            r = srot[9 * b:9 * b + 9]
            if insertion_dominant_axis(r[6], r[7], r[8]) != axis or not mine:
                continue
            j = j0 + b
            c = ctf[j] if has_ctf else ctf[0]
            s, e = insertion_row_interval(r[6 + axis], r[6 + a0] * float(k[a0]) + r[6 + a1] * float(k[a1]), radius,
                                          off[axis], off[axis] + ext[axis] - 1)
            for kd in range(s, e + 1):
                k[axis] = kd
                if float(k[0] * k[0] + k[1] * k[1] + k[2] * k[2]) > max_freq2:
                    continue
                sre, sim, sw = insertion_gather_voxel(images[j], c, has_ctf, r, float(k[0]), float(k[1]),
                                                      float(k[2]), table, scale, radius, h)
                lz, iy, ix = k[2] - off[2], k[1] + h, k[0]
                vol[lz, iy, ix] += complex(sre, sim)
                wts[lz, iy, ix] += sw
        j0 += batch


def _gather(layout, dimg, dctf, has, drot, dtab, scale, radius, max_freq2, dvol, dw, block, batch, z0):
    """Launch the gather of `layout` into the z-slab buffers dvol, dw (first plane z0)."""
    bx, by, bz = block
    n, N = dimg.shape[0], dimg.shape[1]
    h, nz = N // 2, dvol.shape[0]
    args = (dimg, dctf, has, drot, dtab, float(scale), float(radius), float(max_freq2), dvol, dw, batch, z0)
    if layout == "brick":
        grid = (-(-(h + 1) // bx), -(-N // by), -(-nz // bz))
        _gather_kernel[grid, (bx, by, bz), 0, 9 * batch * 8](*args)
        return
    ext = (h + 1, N, nz)
    for axis in (2, 1, 0):  # the C++ launcher's order, so the sums have its order too
        e0, e1 = ext[1 if axis == 0 else 0], ext[1 if axis == 2 else 2]
        grid = (-(-e0 // bx), -(-e1 // (by * bz)))
        _slab_kernel[grid, (bx, by * bz), 0, 9 * batch * 8](*args, axis)


@cuda.jit(device=True)
def _thread_pixel(n, N):
    # this thread's pixel (j, row, col) in a launch of one thread per pixel of n N x N images
    t = cuda.grid(1)
    return t < n * N * N, t // (N * N), (t % (N * N)) // N, t % N


@cuda.jit(cache=False)
def _scatter_kernel(images, ctf, has_ctf, rot, table, scale, radius, max_freq2, vre, wts):
    # vre: the complex volume seen as interleaved reals (N, N, 2 (h + 1)), for the atomics
    n, N, _ = images.shape
    ok, j, row, col = _thread_pixel(n, N)
    if not ok:
        return
    h = N // 2
    c = ctf[j, row, col] if has_ctf else 1.0
    _scatter_pixel(rot[j], float(col - h), float(row - h), table, scale, radius, max_freq2, h, vre, wts,
                   images[j, row, col], c)


@cuda.jit(cache=False)
def _extract_kernel(vol, ctf, has_ctf, rot, table, scale, radius, max_freq2, out):
    n, N, _ = out.shape
    ok, j, row, col = _thread_pixel(n, N)
    if not ok:
        return
    h = N // 2
    sre, sim = insertion_extract_pixel(rot[j], float(col - h), float(row - h), table, scale, radius, max_freq2, h,
                                       vol, vol, 0.0, 0.0)
    c = ctf[j, row, col] if has_ctf else 1.0
    out[j, row, col] = complex(c * sre, c * sim)


def _on_device(a):
    if a is None:
        return None
    if isinstance(a, np.ndarray):
        return cuda.to_device(np.ascontiguousarray(a))
    return cuda.as_cuda_array(a)


def _ctf(ctf, dtype):
    if ctf is None:
        return cuda.to_device(np.ones((1, 1, 1), dtype=dtype)), False
    return _on_device(ctf), True


def _blob_inputs(ctf, rotations, table, real):
    """The CTF (or its placeholder) and flag, the rotations as (n, 9) and the blob table, on the device."""
    dctf, has = _ctf(ctf, real)
    drot = _on_device(np.asarray(rotations).reshape(-1, 9) if isinstance(rotations, np.ndarray)
                      else rotations.reshape(-1, 9))
    return dctf, has, drot, _on_device(table)


def _pixel_grid(n, N):
    """Launch shape (blocks, threads) of the one-thread-per-pixel kernels over n N x N images."""
    return max(1, -(-(n * N * N) // 256)), 256


def _defaults(params):
    p = dict(block=(8, 8, 4), batch=64, table_in_shared=True, max_device_bytes=None, layout="slab")
    p.update(params or {})
    return p


def insert(images, ctf, rotations, table, scale, radius, max_freq2, volume, weights, method="gather",
           params=None):
    """Insert on the device; host accumulators come back as NumPy arrays, device ones in place."""
    p = _defaults(params)
    host_out = isinstance(volume, np.ndarray)
    dimg = _on_device(images)
    real = np.empty(0, dtype=images.dtype).real.dtype
    dctf, has, drot, dtab = _blob_inputs(ctf, rotations, table, real)
    dvol = _on_device(volume)
    dw = _on_device(weights)
    n, N = int(images.shape[0]), int(images.shape[1])
    if method == "gather":
        bx, by, bz = (int(b) for b in p["block"])
        batch = int(p["batch"])
        depth = N
        if host_out and p.get("max_device_bytes") is not None:
            from ..cuda.insertion import slab_depth

            depth = slab_depth(n, N, np.dtype(real).itemsize, int(p["max_device_bytes"]))
        layout = p["layout"]
        if depth >= N:
            _gather(layout, dimg, dctf, has, drot, dtab, scale, radius, max_freq2, dvol, dw, (bx, by, bz), batch, 0)
        else:  # slab by slab: only one slab of the volume on the device at a time
            vol_h, w_h = np.ascontiguousarray(volume), np.ascontiguousarray(weights)
            for z0 in range(0, N, depth):
                nz = min(depth, N - z0)
                sv = cuda.to_device(np.ascontiguousarray(vol_h[z0:z0 + nz]))
                sw = cuda.to_device(np.ascontiguousarray(w_h[z0:z0 + nz]))
                _gather(layout, dimg, dctf, has, drot, dtab, scale, radius, max_freq2, sv, sw, (bx, by, bz), batch,
                        z0)
                vol_h[z0:z0 + nz] = sv.copy_to_host()
                w_h[z0:z0 + nz] = sw.copy_to_host()
            return vol_h, w_h
    else:
        vre = dvol.view(real) if hasattr(dvol, "view") else dvol
        vre = vre.reshape(N, N, 2 * (N // 2 + 1))
        _scatter_kernel[_pixel_grid(n, N)](dimg, dctf, has, drot, dtab, float(scale), float(radius), float(max_freq2),
                                           vre, dw)
    if host_out:
        return dvol.copy_to_host(), dw.copy_to_host()
    return volume, weights


def extract(volume, ctf, rotations, table, scale, radius, max_freq2, params=None):
    """Extract on the device: NumPy out for NumPy in, a Numba device array otherwise."""
    host = isinstance(volume, np.ndarray)
    dvol = _on_device(volume)
    real = np.empty(0, dtype=volume.dtype).real.dtype
    dctf, has, drot, dtab = _blob_inputs(ctf, rotations, table, real)
    n, N = int(rotations.shape[0]), int(volume.shape[0])
    out = cuda.device_array((n, N, N), dtype=volume.dtype)
    _extract_kernel[_pixel_grid(n, N)](dvol, dctf, has, drot, dtab, float(scale), float(radius), float(max_freq2), out)
    return out.copy_to_host() if host else out
