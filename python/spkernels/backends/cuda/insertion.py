"""The insertion family on the GPU: thin adapters over the CUDA C++ ``insertion_insert_cuda``
(slab or brick gather without atomics, or the atomic scatter) and ``insertion_extract_cuda``.

It implements the insertion contract stated in :mod:`spkernels.backends.numpy.insertion`.
Device arrays (CuPy or anything with ``__cuda_array_interface__``) are used in place on the
current CuPy stream; NumPy arrays are copied to ``_arrays.DeviceArray`` buffers and the
accumulators copied back, so the backend runs without CuPy.
"""

from __future__ import annotations

import numpy as np

from ..._arrays import DeviceArray, device_pointer, is_device_array
from .._shared import core_function, core_tag

METHODS = ("gather", "scatter")


def array_module():
    """CuPy (the module of this backend's own arrays)."""
    import cupy

    return cupy


def _stream():
    try:
        import cupy
    except ImportError:
        return 0
    return cupy.cuda.get_current_stream().ptr


def _dev(a, keep):
    if a is None:
        return 0
    if is_device_array(a):
        return device_pointer(a)
    d = DeviceArray.from_host(np.ascontiguousarray(a))
    keep.append(d)
    return d.ptr


def _defaults(params):
    p = dict(block=(8, 8, 4), batch=64, table_in_shared=True, max_device_bytes=None, layout="slab")
    p.update(params or {})
    return p


def slab_depth(n, N, itemsize, budget):
    """z-planes of the half volume that fit in `budget` bytes of device memory next to the
    images, CTFs and rotations of `n` particles (at least 1; N when all fit)."""
    plane = N * (N // 2 + 1) * 3 * itemsize  # complex volume + real weights per z-plane
    fixed = n * N * N * 3 * itemsize + n * 9 * itemsize + (1 << 20)
    return int(max(1, min(N, (budget - fixed) // plane)))


def _budget(params):
    if params.get("max_device_bytes") is not None:
        return int(params["max_device_bytes"])
    try:
        return int(0.8 * core_function("cuda_free_memory")())
    except Exception:  # noqa: BLE001 (an unknown budget: assume the whole volume fits)
        return 1 << 62


def insert(images, ctf, rotations, table, scale, radius, max_freq2, volume, weights, method="gather",
           params=None):
    """Insert on the device; host accumulators come back as NumPy arrays, device ones in place.

    Host accumulators larger than the device budget (``params["max_device_bytes"]``, default
    80% of the free device memory) are filled by the gather one z-slab at a time.
    """
    launch = core_function("insertion_insert_cuda")
    p = _defaults(params)
    keep = []
    n, N = int(images.shape[0]), int(images.shape[1])
    bx, by, bz = p["block"]
    args = (_dev(images, keep), _dev(ctf, keep), _dev(rotations, keep), _dev(table, keep), int(table.shape[0]),
            core_tag(images.dtype), n, N, float(scale), float(radius), float(max_freq2))
    tail = (method, int(bx), int(by), int(bz), int(p["batch"]), bool(p["table_in_shared"]))
    if is_device_array(volume):
        launch(*args, device_pointer(volume), device_pointer(weights), *tail, 0, N, _stream(), p["layout"])
        return volume, weights
    volume = np.ascontiguousarray(volume)
    weights = np.ascontiguousarray(weights)
    depth = N if method != "gather" else slab_depth(n, N, np.dtype(weights.dtype).itemsize, _budget(p))
    for z0 in range(0, N, depth):
        nz = min(depth, N - z0)
        dv = DeviceArray.from_host(np.ascontiguousarray(volume[z0:z0 + nz]))
        dw = DeviceArray.from_host(np.ascontiguousarray(weights[z0:z0 + nz]))
        launch(*args, dv.ptr, dw.ptr, *tail, z0, nz, 0, p["layout"])
        core_function("cuda_synchronize")()
        volume[z0:z0 + nz] = dv.get()
        weights[z0:z0 + nz] = dw.get()
    return volume, weights


def extract(volume, ctf, rotations, table, scale, radius, max_freq2, params=None):
    """Extract on the device: a device array for device input, else a NumPy array."""
    launch = core_function("insertion_extract_cuda")
    keep = []
    n, N = int(rotations.shape[0]), int(volume.shape[0])
    on_device = is_device_array(volume)
    if on_device:
        xp = array_module()
        out = xp.empty((n, N, N), dtype=volume.dtype)
        op, stream = device_pointer(out), _stream()
    else:
        out = DeviceArray((n, N, N), np.dtype(volume.dtype))
        op, stream = out.ptr, 0
    launch(_dev(volume, keep), _dev(ctf, keep), _dev(rotations, keep), _dev(table, keep), int(table.shape[0]),
           core_tag(volume.dtype), n, N, float(scale), float(radius), float(max_freq2), op, stream)
    if on_device:
        return out
    core_function("cuda_synchronize")()
    return out.get()
