"""A stand-in for the CUDA part of ``spkernels._core`` backed by the host-execution library.

:class:`HostCore` has the ``*_cuda`` launchers with the argument lists of ``cpp/bindings``
(dtype tags, method names, defaults), ``DeviceBuffer``, ``cuda_synchronize``, ``CG_WORK_SIZE``
and the device queries, and hands every other attribute (the CPU kernels) to the real
``_core``. :func:`install` makes ``spkernels.backends`` see it, so ``backend="cuda"`` runs the
Python adapters of ``spkernels/backends/cuda`` end to end with the CUDA C++ kernels executing
on the CPU. Families whose adapters need CuPy (nufft, cg) need a CuPy stand-in as well:
:func:`use_cupy_standin` adapts one that wraps NumPy arrays (``tests/_fakecupy.py``).
"""

from __future__ import annotations

import ctypes
import types

import numpy as np

from . import build as hb

_PREC = {"f32": 4, "f64": 8}
_SINGLE = {"f32": 1, "f64": 0, "c64": 1, "c128": 0}


def _tag(tag, allowed):
    if tag not in allowed:
        raise ValueError(f"`dtype` must be one of {', '.join(repr(a) for a in allowed)}, got {tag!r}")
    return tag


def _method(method):
    if method not in ("gather", "scatter"):
        raise ValueError(f"`method` must be 'gather' or 'scatter', got '{method}'")
    return method == "gather"


class HostCore:
    """The CUDA functions of ``_core`` over a :class:`~cuda_host.build.HostCuda`; the rest from `real`."""

    def __init__(self, host: hb.HostCuda, real=None):
        self._h = host
        self._real = real
        self.CG_WORK_SIZE = int(host.lib.spkh_cg_work_doubles())
        h = host

        class DeviceBuffer:
            """An emulated cudaMalloc allocation (freed with the object), as _core.DeviceBuffer."""

            def __init__(self, nbytes):
                self.nbytes = int(nbytes)
                self.ptr = h.alloc(self.nbytes)

            def __del__(self):
                if getattr(self, "ptr", 0):
                    h.lib.spkh_free_device(self.ptr)
                    self.ptr = 0

            def copy_from_host(self, src, stream=0):
                src = np.ascontiguousarray(src)
                if src.nbytes > self.nbytes:
                    raise ValueError("`src` is larger than the buffer")
                h.call("memcpy_h2d", self.ptr, src.ctypes.data, src.nbytes, int(stream))

            def copy_to_host(self, dst, stream=0):
                if not (dst.flags.c_contiguous and dst.flags.writeable) or dst.nbytes > self.nbytes:
                    raise ValueError("`dst` must be a writeable C-contiguous array no larger than the buffer")
                h.call("memcpy_d2h", dst.ctypes.data, self.ptr, dst.nbytes, int(stream))

        self.DeviceBuffer = DeviceBuffer

    def __getattr__(self, name):
        if self._real is None:
            raise AttributeError(name)
        return getattr(self._real, name)

    # ---- runtime ----
    def build_info(self):
        info = dict(self._real.build_info()) if self._real is not None else {}
        info["cuda"] = True
        return info

    def cuda_device_count(self):
        return self._h.lib.spkh_device_count()

    def cuda_current_device(self):
        d = ctypes.c_int()
        self._h.call("current_device", ctypes.byref(d))
        return d.value

    def cuda_set_device(self, device):
        self._h.call("set_device", int(device))

    def cuda_free_memory(self):
        v = ctypes.c_ulonglong()
        self._h.call("free_memory", ctypes.byref(v))
        return v.value

    def cuda_synchronize(self):
        self._h.call("device_synchronize")

    def cuda_stream_synchronize(self, stream):
        self._h.call("stream_synchronize", int(stream))

    def cuda_memcpy_d2d(self, dst, src, nbytes, stream=0):
        self._h.call("memcpy_d2d", int(dst), int(src), int(nbytes), int(stream))

    # ---- distance ----
    def distance_topk_cuda(self, models, data, weights, R, N, P, metric, k, precision, out_index, out_score, stream=0):
        self._h.call("distance_topk", models, data, weights, R, N, P, metric, k, precision.encode(), out_index,
                     out_score, stream)

    def pairwise_score_cuda(self, models, data, weights, R, N, P, metric, precision, out, stream=0):
        self._h.call("pairwise_score", models, data, weights, R, N, P, metric, precision.encode(), out, stream)

    def segmented_argmin_cuda(self, values, offsets, S, out_index, out_value, stream=0):
        self._h.call("segmented_argmin", values, offsets, S, out_index, out_value, stream)

    # ---- nufft ----
    def nufft_setpts_cuda(self, x, y, z, M, n1, n2, n3, bs1, bs2, bs3, dtype, perm, bin_offsets, stream=0):
        self._h.call("nufft_setpts", x, y, z, M, n1, n2, n3, bs1, bs2, bs3, _PREC[_tag(dtype, _PREC)], perm,
                     bin_offsets, stream)

    def nufft_spread_cuda(self, x, y, z, c, V, M, perm, bin_offsets, n1, n2, n3, bs1, bs2, bs3, w, beta, dtype,
                          method, fine, stream=0):
        self._h.call("nufft_spread", x, y, z, c, V, M, perm, bin_offsets, n1, n2, n3, bs1, bs2, bs3, w, beta,
                     _PREC[_tag(dtype, _PREC)], int(_method(method)), fine, stream)

    def nufft_interp_cuda(self, x, y, z, fine, V, M, perm, n1, n2, n3, w, beta, dtype, c, stream=0):
        self._h.call("nufft_interp", x, y, z, fine, V, M, perm, n1, n2, n3, w, beta, _PREC[_tag(dtype, _PREC)], c,
                     stream)

    # ---- cg ----
    def cg_dot_cuda(self, a, b, n, cplx, dtype, state, hist, which, work, stream=0):
        self._h.call("cg_dot", a, b, n, int(bool(cplx)), _SINGLE[_tag(dtype, ("f32", "f64"))], state, hist, which,
                     work, stream)

    def cg_update_xr_cuda(self, x, r, p, q, n, dtype, state, hist, work, stream=0):
        self._h.call("cg_update_xr", x, r, p, q, n, _SINGLE[_tag(dtype, ("f32", "f64"))], state, hist, work, stream)

    def cg_update_p_cuda(self, p, z, n, dtype, state, stream=0):
        self._h.call("cg_update_p", p, z, n, _SINGLE[_tag(dtype, ("f32", "f64"))], state, stream)

    def cg_residual_cuda(self, r, b, q, n, dtype, stream=0):
        self._h.call("cg_residual", r, b, q, n, _SINGLE[_tag(dtype, ("f32", "f64"))], stream)

    # ---- fsc ----
    def fsc_accumulate_cuda(self, f1, f2, dtype, nz, ny, nx, az, ay, ax, n_shells, sums, stream=0):
        self._h.call("fsc_accumulate", f1, f2, _SINGLE[_tag(dtype, ("c64", "c128"))], nz, ny, nx, az, ay, ax,
                     n_shells, sums, stream)

    # ---- insertion ----
    def insertion_insert_cuda(self, images, ctf, rotations, table, table_size, dtype, n, N, scale, radius, max_freq2,
                              volume, weights, method="gather", block_x=8, block_y=8, block_z=4, batch=64,
                              table_in_shared=True, z0=0, nz=-1, stream=0, layout="slab"):
        if layout not in ("slab", "brick"):
            raise ValueError("`layout` must be 'slab' or 'brick'")
        code = 0 if not _method(method) else (1 if layout == "slab" else 2)
        self._h.call("insertion_insert", images, ctf, rotations, table, table_size,
                     _SINGLE[_tag(dtype, ("c64", "c128"))], n, N, scale, radius, max_freq2, volume, weights,
                     code, block_x, block_y, block_z, batch, int(bool(table_in_shared)), z0,
                     N if nz < 0 else nz, stream)

    def insertion_extract_cuda(self, volume, ctf, rotations, table, table_size, dtype, n, N, scale, radius,
                               max_freq2, out, stream=0):
        self._h.call("insertion_extract", volume, ctf, rotations, table, table_size,
                     _SINGLE[_tag(dtype, ("c64", "c128"))], n, N, scale, radius, max_freq2, out, stream)


def install(monkeypatch, host: hb.HostCuda) -> HostCore:
    """Make ``spkernels.backends`` (and so ``backend="cuda"``) use a :class:`HostCore` over `host`."""
    from spkernels import backends

    fake = HostCore(host, backends._core_module())
    backends._why_unavailable.cache_clear()
    monkeypatch.setattr(backends, "_core_module", lambda: fake)
    return fake


def uninstall(host: hb.HostCuda | None = None) -> None:
    """Forget what was resolved while a :class:`HostCore` was installed (call before the
    monkeypatch undo), and make `host` strict about device pointers again."""
    from spkernels import backends

    backends._why_unavailable.cache_clear()
    if host is not None:
        host.allow_untracked(False)


def use_cupy_standin(cupy_module, host: hb.HostCuda):
    """Fit a CuPy stand-in whose arrays are NumPy memory for the cuda adapters: a current stream
    (pointer 0) when it has none, and `host` accepting untracked memory in memcpy / memset."""
    cuda = getattr(cupy_module, "cuda", None)
    if cuda is None or not hasattr(cuda, "get_current_stream"):
        ns = types.SimpleNamespace(**(vars(cuda) if cuda is not None else {}))
        ns.get_current_stream = lambda: types.SimpleNamespace(ptr=0)
        cupy_module.cuda = ns
    host.allow_untracked(True)
    return cupy_module
