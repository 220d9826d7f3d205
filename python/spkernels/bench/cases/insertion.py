"""Cases ``insertion_gather``, ``insertion_scatter`` and (GPU backends only)
``insertion_gather_brick``: Fourier insertion of padded particle spectra into the half volume
with the Kaiser–Bessel blob (complex64, CTF weights included). ``insertion_gather`` runs the GPU
gather's default ``slab`` layout, ``insertion_gather_brick`` its ``brick`` layout.

Work per call: ``n`` centred spectra of side ``N = 2 · box`` (pad 2) with their CTFs go into
one resident ``(N, N, N/2+1)`` volume and weights. ``items`` are particles (asv and ``bench
compare`` report particles/s). The ceiling is copy bandwidth over the fewest bytes a call must
move (each image and CTF read once, the volume and weights read and written once). Checked
before timing against the float64 NumPy reference on the first two particles (float32 pairs may
pick a neighbouring table entry: relative tolerance 2e-3 of the largest voxel).

``SANITIZE_CASES`` runs ``insertion_insert_cuda`` (gather in both layouts and scatter, both
precisions, table in shared memory or not) and ``insertion_extract_cuda`` at a tiny size.
"""

from __future__ import annotations

import numpy as np

from ...kernels import insertion as _ins
from ..registry import Prepared, register
from . import _common

#: (box, particles on a CPU, particles on a GPU)
_SIZES = {"small": (32, 32, 512), "full": (128, 8, 512), "box256": (256, 2, 256)}


def inputs(box: int, n: int, seed: int = 5, dtype=np.complex64):
    """Random spectra (n, N, N), CTFs in [-1, 1], random rotations, for N = 2 · box."""
    from ...geometry.orientations import random_orientations
    from ...geometry.quaternion import quaternion_to_matrix

    N = 2 * box
    rng = np.random.default_rng(seed)
    real = np.empty(0, dtype=dtype).real.dtype
    img = (rng.standard_normal((n, N, N), dtype=np.float32)
           + 1j * rng.standard_normal((n, N, N), dtype=np.float32)).astype(dtype)
    ctf = rng.uniform(-1.0, 1.0, (n, N, N)).astype(real)
    rot = quaternion_to_matrix(random_orientations(n, rng)).astype(real)
    return img, ctf, rot


def _check(backend, method, img, ctf, rot):
    v, w = _ins.insert(img[:2], rot[:2], ctf=ctf[:2], method=method, backend=backend)
    rv, rw = _ins.insert(img[:2].astype(np.complex128), rot[:2].astype(np.float64), ctf=ctf[:2].astype(np.float64),
                         backend="numpy")
    v, w = _common.to_host(v), _common.to_host(w)
    for got, ref, what in ((v, rv, "volume"), (w, rw, "weights")):
        err = float(np.abs(got - ref).max() / np.abs(ref).max())
        if not err <= 2e-3:
            raise RuntimeError(f"insertion_{method} case, backend {backend!r}: {what} differs from the numpy "
                               f"reference by {err:.2e} of its largest value")


def _prepare(method, layout="slab"):
    def prepare(backend: str, size: str, precision: str) -> Prepared:
        if size not in _SIZES:
            raise ValueError(f"`size` must be one of {', '.join(_SIZES)}; got {size!r}")
        if precision != "float32":
            raise NotImplementedError("the insertion cases time complex64")
        _common.require(backend)
        box, n_cpu, n_gpu = _SIZES[size]
        gpu = backend in _common.GPU
        if not gpu and layout != "slab":
            raise NotImplementedError("the gather's thread layouts are a GPU choice")
        if not gpu and size == "box256":
            raise NotImplementedError("box 256 runs on GPUs only")
        if backend == "numba-cpu" and method == "scatter" and size != "small":
            raise NotImplementedError("the serial Numba scatter is timed at the small size only")
        n = n_gpu if gpu else n_cpu
        img, ctf, rot = inputs(box, n)
        _check(backend, method, img, ctf, rot)
        N = 2 * box
        d_img, d_ctf, d_rot = (_common.on_device(backend, a) for a in (img, ctf, rot))
        shape = (N, N, N // 2 + 1)
        if gpu:
            from ... import _arrays

            vol = _arrays.to_device(np.zeros(shape, np.complex64))
            wts = _arrays.to_device(np.zeros(shape, np.float32))
        else:
            vol = np.zeros(shape, np.complex64)
            wts = np.zeros(shape, np.float32)
        state = {"v": vol, "w": wts}
        params = _ins.LaunchParams(layout=layout)

        def run():
            state["v"], state["w"] = _ins.insert(d_img, d_rot, ctf=d_ctf, volume=state["v"], weights=state["w"],
                                                 method=method, backend=backend, params=params)

        run()  # warm-up: JIT, first touch
        _common.finish(backend)
        half = N * N * (N // 2 + 1)
        return Prepared(run=run, bytes=float(n * N * N * 12 + 2 * half * 12), items=float(n), item_unit="particles",
                        note=f"box {box}, pad 2 (N={N}), {n} particles per call, CTF weights"
                             + (f", {layout} layout" if gpu and method == "gather" else ""))
    return prepare


for _m in ("gather", "scatter"):
    register(f"insertion_{_m}", _prepare(_m), sizes=tuple(_SIZES), precisions=("float32",), ceiling="copy",
             description=f"Fourier insertion of padded particle spectra with the KB blob ({_m})",
             size_help={s: f"box {b} (N={2 * b}); {c} particles on CPUs, {g} on GPUs" for s, (b, c, g) in _SIZES.items()})
register("insertion_gather_brick", _prepare("gather", "brick"), sizes=tuple(_SIZES), precisions=("float32",),
         ceiling="copy", description="Fourier insertion, GPU gather in the brick layout (the slab layout's rival)",
         size_help={s: f"box {b} (N={2 * b}); {g} particles (GPU backends only)" for s, (b, c, g) in _SIZES.items()})


# --------------------------------------------------------------------------- sanitizer cases
def _precisions(blob):
    """(complex dtype, the bindings' dtype tag, the blob table in its real type) for both precisions."""
    for dtype in (np.complex64, np.complex128):
        yield dtype, ("c64" if dtype == np.complex64 else "c128"), blob.table().astype(np.empty(0, dtype).real.dtype)


def _insert_cuda(core, img, ctf, rot, table, tag, blob, method="gather", in_shared=True, z0=0, nz=None,
                 layout="slab"):
    """The volume of insertion_insert_cuda into zeroed z-slab [z0, z0 + nz) buffers (default: all)."""
    N = img.shape[1]
    nz = N if nz is None else nz
    real = np.empty(0, dtype=img.dtype).real.dtype
    (_a, _b, _c, _d, dv, _dw), ptrs = _common.sanitize_buffers(
        img, ctf, rot, table, np.zeros((nz, N, N // 2 + 1), img.dtype), np.zeros((nz, N, N // 2 + 1), real))
    core.insertion_insert_cuda(ptrs[0], ptrs[1], ptrs[2], ptrs[3], len(table), tag, img.shape[0], N, blob.scale,
                               blob.radius, float((N // 2) ** 2), ptrs[4], ptrs[5], method, 4, 4, 2, 2, in_shared,
                               z0, nz, 0, layout)
    core.cuda_synchronize()
    return dv.get()


def _sanitize_insert(core, rng):
    blob = _ins.Blob()
    for dtype, tag, table in _precisions(blob):
        img, ctf, rot = inputs(5, 3, seed=int(rng.integers(1 << 30)), dtype=dtype)
        N = img.shape[1]
        ref_v, ref_w = _ins.insert(img.astype(np.complex128), rot.astype(np.float64), ctf=ctf.astype(np.float64),
                                   backend="numpy")
        for method, in_shared, layout in (("gather", True, "slab"), ("gather", False, "slab"),
                                          ("gather", True, "brick"), ("gather", False, "brick"),
                                          ("scatter", False, "slab")):
            v = _insert_cuda(core, img, ctf, rot, table, tag, blob, method, in_shared, layout=layout)
            err = float(np.abs(v - ref_v).max() / np.abs(ref_v).max())
            if not err <= 2e-3:
                raise RuntimeError(f"insertion_insert_cuda ({tag}, {method}, {layout}): off the reference by {err:.2e}")
        # the gather into two z-slabs of the volume equals the whole-volume gather
        for layout in ("slab", "brick"):
            parts = [_insert_cuda(core, img, ctf, rot, table, tag, blob, z0=z0, nz=nz, layout=layout)
                     for z0, nz in ((0, 3), (3, N - 3))]
            if not np.array_equal(np.concatenate(parts), _insert_cuda(core, img, ctf, rot, table, tag, blob,
                                                                      layout=layout)):
                raise RuntimeError(f"insertion_insert_cuda ({tag}, {layout}): the z-slab gather differs from the "
                                   "whole volume's")


def _sanitize_extract(core, rng):
    blob = _ins.Blob()
    for dtype, tag, table in _precisions(blob):
        _, ctf, rot = inputs(5, 3, seed=int(rng.integers(1 << 30)), dtype=dtype)
        N = ctf.shape[1]
        vol = (rng.standard_normal((N, N, N // 2 + 1)) + 1j * rng.standard_normal((N, N, N // 2 + 1))).astype(dtype)
        ref = _ins.extract(vol.astype(np.complex128), rot.astype(np.float64), ctf=ctf.astype(np.float64),
                           backend="numpy")
        (_a, _b, _c, _d, dout), ptrs = _common.sanitize_buffers(vol, ctf, rot, table, np.zeros((3, N, N), dtype))
        core.insertion_extract_cuda(ptrs[0], ptrs[1], ptrs[2], ptrs[3], len(table), tag, 3, N, blob.scale,
                                    blob.radius, float((N // 2) ** 2), ptrs[4], 0)
        core.cuda_synchronize()
        err = float(np.abs(dout.get() - ref).max() / np.abs(ref).max())
        if not err <= 2e-3:
            raise RuntimeError(f"insertion_extract_cuda ({tag}): off the reference by {err:.2e}")


SANITIZE_CASES = {"insertion_insert_cuda": _sanitize_insert, "insertion_extract_cuda": _sanitize_extract}
