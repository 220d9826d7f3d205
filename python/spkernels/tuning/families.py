"""The tuning space and a runner of every kernel family on every backend.

What each family can tune today (the knobs that exist in the kernels' Python layer or their
launchers; nothing here changes a C++ kernel):

========== ============================ ====================================================
family     backends                     knobs
========== ============================ ====================================================
distance   cpu, numba-cpu, cuda,        ``model_rows``, ``data_rows``: models and data rows per
           numba-cuda                   call for host inputs (the batching of
                                        ``_batched_topk``); any split is bitwise identical
distance   cuda                         also ``algorithm``: the fused kernel or ``gemm``
                                        (cuBLAS SGEMM via CuPy + row terms + k argmin passes,
                                        fp32); checked within the fp32 error bound
nufft      cpu, numba-cpu, cuda,        ``bin_target``: the bin edge the points are sorted into
           numba-cuda                   (the gather's tile; deterministic for any value);
                                        type 1 also ``method`` (``gather``/``scatter``) when
                                        asked with ``deterministic=False``: the scatter's sums
                                        depend on the thread count or on atomics' timing;
                                        checked within ``eps``
insertion  cpu, numba-cpu               ``images_per_launch`` (images per compiled call);
                                        bitwise identical (projections are added in order)
insertion  cuda, numba-cuda             ``block`` (thread block), ``batch`` (rotations staged in
                                        shared memory), ``table_in_shared`` (cuda),
                                        ``layout`` (slab/brick), ``images_per_launch``;
                                        checked to float32 rounding (the layouts
                                        add a voxel's pixels in different orders)
cg         cuda, numba-cuda             ``check_every``: iterations between host reads of the
                                        device scalars; iterates are bitwise identical
cg         cpu, numba-cpu               none: the host reads the scalars every iteration for free
fsc        all                          none: one FFT pair and one fused accumulation pass
                                        whose launch shape is fixed in the launchers
(all)      numpy                        none: the float64 reference
========== ============================ ====================================================

Each ``problems(family, backend, size)`` returns :class:`Problem` objects: the space under this
device's and problem's context, a ``runner(config)`` that calls the public kernel entry point
with that configuration (through :func:`spkernels.tuning.active.using`), the output check, and
the cache key parts (precision, size class) the kernel itself looks up at call time.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Callable

import numpy as np

from .. import backends as _backends
from .._errors import BackendUnavailableError
from . import active, sizes
from .space import Constraint, Param, Space

__all__ = ["FAMILIES", "SIZES", "Problem", "space", "problems", "device_context", "tunable_backends"]

FAMILIES = ("distance", "nufft", "insertion", "cg", "fsc")
SIZES = ("tiny", "small", "medium", "large")

_NOTES = {
    ("cg", "cpu"): "no knob: CPU backends read the solver's scalars every iteration at no cost; the vector "
                   "kernels take no block or chunk parameter from Python",
    ("fsc", None): "no knob: one FFT pair (all workers) and one fused per-shell accumulation whose launch "
                   "shape is fixed in the launchers",
    (None, "numpy"): "no knob: the float64 reference (direct sums, NumPy)",
}

# problem sizes per family and size name (see each family's _problem_* for the meaning)
_DIMS = {
    "distance": {"tiny": dict(R=512, N=128, P=256), "small": dict(R=2048, N=512, P=1024), "medium": dict(R=8192, N=2048, P=2048),
                 "large": dict(R=10000, N=10000, P=16384)},
    "nufft": {"tiny": dict(n=16, M=20_000), "small": dict(n=32, M=100_000), "medium": dict(n=64, M=1_000_000), "large": dict(n=128, M=8_000_000)},
    "insertion": {"tiny": dict(n=64, N=32), "small": dict(n=256, N=64), "medium": dict(n=1024, N=128), "large": dict(n=4096, N=256)},
    "cg": {"tiny": dict(n=1 << 14, maxiter=20), "small": dict(n=1 << 18, maxiter=50), "medium": dict(n=1 << 22, maxiter=50),
           "large": dict(n=1 << 24, maxiter=50)},
    "fsc": {"tiny": dict(n=32), "small": dict(n=64), "medium": dict(n=128), "large": dict(n=256)},
}


@dataclasses.dataclass
class Problem:
    """One tunable problem: run it with :func:`spkernels.tuning.search.tune` and store the result
    under ``(family, backend, precision, size_class)``, the key the kernel looks up."""

    family: str
    backend: str
    precision: str
    size_class: str
    space: Space
    ctx: dict
    runner: Callable[[dict], Any]
    compare: Callable[[Any, Any], tuple]
    label: str


def tunable_backends() -> list:
    """The usable backends of this machine, GPU ones first (``numpy`` has no knobs and is left out)."""
    out = []
    for name in _backends.BACKENDS:
        if name == "numpy":
            continue
        try:
            if _backends.resolve(name) == name:
                out.append(name)
        except BackendUnavailableError:
            continue
    return out


@functools.lru_cache(maxsize=None)
def _gpu_limits() -> tuple:
    """(max threads per block, max dynamic shared memory per block, warp) of the current GPU."""
    threads, shared, warp = 1024, 48 * 1024, 32
    core = _backends.core()
    try:
        if core is not None and core.cuda_device_count() > 0:
            props = core.cuda_device_properties(core.cuda_current_device())
            shared = int(props.get("shared_memory_per_block_optin") or shared)
    except Exception:  # noqa: BLE001 (no GPU: the conservative limits above)
        pass
    return threads, shared, warp


def device_context(backend: str) -> dict:
    """What the constraints read about the device: ``gpu``, ``max_threads``, ``max_shared_bytes``, ``warp``."""
    gpu = backend in _backends.GPU_BACKENDS
    ctx = {"backend": backend, "gpu": gpu}
    if gpu:
        ctx["max_threads"], ctx["max_shared_bytes"], ctx["warp"] = _gpu_limits()
    return ctx


def _note(family, backend):
    return _NOTES.get((None, backend)) or _NOTES.get((family, None)) or _NOTES.get(
        (family, "cpu" if backend in ("cpu", "numba-cpu") else backend), "")


# ----------------------------------------------------------------------------- spaces


_ROWS = ("auto", 128, 256, 512, 1024, 2048, 4096, 8192, 16384)


def _distance_space(backend):
    from ..kernels import distance as _d

    budget = _d._GPU_BATCH_ELEMENTS if backend in _backends.GPU_BACKENDS else _d._BATCH_ELEMENTS
    params = [
        Param("model_rows", _ROWS, "auto", "models per call (auto: the memory bound / P)"),
        Param("data_rows", _ROWS, "auto", "data rows per call (auto: the memory bound / P)"),
    ]
    cons = [
        Constraint("a model split is smaller than R", lambda c, x: c["model_rows"] == "auto" or c["model_rows"] < x["R"]),
        Constraint("a data split is smaller than N", lambda c, x: c["data_rows"] == "auto" or c["data_rows"] < x["N"]),
        Constraint("a batch stays within 4x the memory bound",
                   lambda c, x: all(v == "auto" or v * x["P"] <= 4 * budget for v in (c["model_rows"], c["data_rows"]))),
    ]
    if backend == "cuda":
        params.append(Param("algorithm", ("fused", "gemm"), "fused",
                            "fused kernel, or cuBLAS SGEMM (CuPy) + row terms + k argmin passes (fp32)"))
        cons.append(Constraint("the gemm algorithm needs CuPy and fp32",
                               lambda c, x: c["algorithm"] == "fused" or (x.get("cupy", False)
                                                                          and x.get("precision") == "fp32")))
    return Space(f"distance/{backend}", params, cons,
                 note="host inputs only (device-resident inputs go in one call); cuda: also the algorithm")


_BINS = (4, 6, 8, 12, 16, 24, 32)


def _nufft_space(backend, nufft_type, deterministic=True):
    impl = _backends.load(backend, "nufft")
    values = tuple(sorted({b for b in _BINS if b <= impl.BIN_MAX} | {impl.BIN_TARGET}))
    params = [Param("bin_target", values, impl.BIN_TARGET, "bin edge (fine-grid cells) the points are sorted by")]
    cons = [Constraint("bin_target >= kernel width (smaller bins are widened to it)",
                       lambda c, x: c["bin_target"] >= x["w"] or c["bin_target"] == impl.BIN_TARGET)]
    if backend in _backends.GPU_BACKENDS:
        cons.append(Constraint("the padded bin tile fits in shared memory",
                               lambda c, x: c["bin_target"] == impl.BIN_TARGET
                               or (c["bin_target"] + x["w"]) ** 3 * x["itemsize"] <= x["max_shared_bytes"]))
    if nufft_type == 1 and not deterministic:
        params.append(Param("method", ("gather", "scatter"), "gather", "type-1 spreading: output- or point-driven"))
    return Space(f"nufft{nufft_type}/{backend}", params, cons)


_BLOCKS = tuple((bx, by, bz) for bx in (8, 16, 32) for by in (2, 4, 8) for bz in (1, 2, 4, 8))
_IPL = (8, 16, 32, 64, 128, 256, 512, 1024, 4096)


def _insertion_space(backend):
    from ..kernels.insertion import LaunchParams

    d = LaunchParams()
    ipl = Param("images_per_launch", _IPL, d.images_per_launch, "images per compiled call")
    split = Constraint("a split is smaller than the images of a call",
                       lambda c, x: c["images_per_launch"] < x["n"] or c["images_per_launch"] == d.images_per_launch)
    if backend not in _backends.GPU_BACKENDS:
        return Space(f"insertion/{backend}", [ipl], [split])
    fields = {f.name for f in dataclasses.fields(LaunchParams)}
    params = [Param("block", _BLOCKS if tuple(d.block) in _BLOCKS else _BLOCKS + (tuple(d.block),), tuple(d.block),
                    "thread block (x, y, z)"),
              Param("batch", (16, 32, 64, 128), d.batch, "rotations staged in shared memory at a time"), ipl]
    if backend == "cuda":
        params.append(Param("table_in_shared", (True, False), d.table_in_shared, "blob table in shared memory"))
    if "layout" in fields:
        params.append(Param("layout", ("slab", "brick"), d.layout, "thread layout of the gather"))

    def smem(c, x):
        if backend == "cuda":
            return x["itemsize"] * (9 * c["batch"] + (x["table_size"] if c["table_in_shared"] else 0))
        return 9 * c["batch"] * 8 if 9 * c["batch"] * 8 <= 48 * 1024 else 1 << 62  # Numba's cap: 48 KB

    cons = [
        Constraint("threads a multiple of the warp", lambda c, x: math.prod(c["block"]) % x["warp"] == 0),
        Constraint("threads <= the device's limit per block", lambda c, x: math.prod(c["block"]) <= x["max_threads"]),
        Constraint("shared memory <= what the device offers a block", lambda c, x: smem(c, x) <= x["max_shared_bytes"]),
        Constraint("the block fits in the half volume (the default always may: partial blocks are masked)",
                   lambda c, x: tuple(c["block"]) == tuple(d.block)
                   or (c["block"][0] <= x["N"] // 2 + 1 and c["block"][1] <= x["N"] and c["block"][2] <= x["N"])),
        split,
    ]
    return Space(f"insertion/{backend}", params, cons)


def _cg_space(backend):
    if backend not in _backends.GPU_BACKENDS:
        return Space(f"cg/{backend}", note=_note("cg", backend))
    return Space(f"cg/{backend}", [Param("check_every", (1, 2, 4, 8, 16, 32, 64), 8,
                                         "iterations between host reads of the device scalars")],
                 [Constraint("check_every <= maxiter", lambda c, x: c["check_every"] <= x["maxiter"]
                             or c["check_every"] == 8)])


def space(family: str, backend: str, nufft_type: int = 1, deterministic: bool = True) -> Space:
    """The declared tuning space of `family` on `backend` (an empty Space where it has no knob).

    `nufft_type` picks the NUFFT's space (1: spreading, 2: interpolation). With
    `deterministic` (default) only knobs that keep a kernel deterministic by design are
    declared; False adds the NUFFT's type-1 ``method`` (the scatter's result depends on the
    thread count, or on the timing of atomics on a GPU).

    Raises
    ------
    ValueError
        Unknown family or backend.
    """
    if family not in FAMILIES:
        raise ValueError(f"`family` must be one of {', '.join(FAMILIES)}, got {family!r}")
    if backend not in _backends.BACKENDS:
        raise ValueError(f"`backend` must be one of {', '.join(_backends.BACKENDS)}, got {backend!r}")
    if backend == "numpy" or family == "fsc":
        return Space(f"{family}/{backend}", note=_note(family, backend))
    if family == "distance":
        return _distance_space(backend)
    if family == "nufft":
        return _nufft_space(backend, nufft_type, deterministic)
    if family == "insertion":
        return _insertion_space(backend)
    return _cg_space(backend)


# ----------------------------------------------------------------------------- checks


def _host(a):
    from .._arrays import to_host

    return np.asarray(to_host(a))


def bitwise(out, ref) -> tuple:
    """``(ok, detail)``: every array of `out` equals `ref`'s bit for bit (same shape and dtype)."""
    outs = out if isinstance(out, tuple) else (out,)
    refs = ref if isinstance(ref, tuple) else (ref,)
    if len(outs) != len(refs):
        return False, "different number of outputs"
    for i, (a, b) in enumerate(zip(outs, refs)):
        a, b = _host(a), _host(b)
        if a.shape != b.shape or a.dtype != b.dtype:
            return False, f"output {i}: {a.shape} {a.dtype} against the default's {b.shape} {b.dtype}"
        if not np.array_equal(a, b, equal_nan=True):
            bad = int(np.count_nonzero(a != b))
            return False, f"output {i}: {bad} of {a.size} values differ from the default's (bitwise check)"
    return True, "bitwise"


def within(tol: float) -> Callable:
    """A check ``||out - ref|| <= tol ||ref||`` (relative l2; each array of a tuple on its own),
    e.g. a NUFFT's ``eps``."""
    def check(out, ref):
        outs = out if isinstance(out, tuple) else (out,)
        refs = ref if isinstance(ref, tuple) else (ref,)
        if len(outs) != len(refs):
            return False, "different number of outputs"
        worst = 0.0
        for o, r in zip(outs, refs):
            a, b = _host(o).astype(np.complex128), _host(r).astype(np.complex128)
            if a.shape != b.shape:
                return False, f"shape {a.shape} against the default's {b.shape}"
            den = float(np.linalg.norm(b.ravel())) or 1.0
            rel = float(np.linalg.norm((a - b).ravel())) / den
            if not np.isfinite(rel):
                return False, "non-finite output"
            worst = max(worst, rel)
        return worst <= tol, f"relative l2 difference {worst:.2e} (tolerance {tol:.0e})"
    return check


#: insertion on a GPU: the two thread layouts sum a voxel's pixels in different orders (each
#: deterministic), so a candidate is checked to float32 rounding; the CPU knob is bitwise
INSERTION_GPU_TOL = 1e-4


# ----------------------------------------------------------------------------- problems


def _dims(family, size):
    if size not in SIZES:
        raise ValueError(f"`size` must be one of {', '.join(SIZES)}, got {size!r}")
    return _DIMS[family][size]


def _problem_distance(backend, size, seed):
    from ..kernels.distance import distance_argmin

    d = _dims("distance", size)
    R, N, P = d["R"], d["N"], d["P"]
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((R, P), dtype=np.float32)
    Y = rng.standard_normal((N, P), dtype=np.float32)
    precision = "fp32"
    ctx = dict(device_context(backend), R=R, N=N, P=P, precision=precision, cupy=_has_cupy())

    def run(cfg):
        with active.using("distance", cfg):
            r = distance_argmin(X, Y, k=4, precision=precision, backend=backend)
        return (r.index, r.score)

    # the batching is bitwise; the gemm algorithm's fp32 scores only agree within the error bound
    check = _topk_within(X, Y, precision) if backend == "cuda" else bitwise
    return [Problem("distance", backend, precision, sizes.distance(R, N, P), space("distance", backend), ctx, run,
                    check, f"distance R={R} N={N} P={P} fp32 k=4")]


def _has_cupy() -> bool:
    try:
        import cupy  # noqa: F401
    except ImportError:
        return False
    return True


def _topk_within(X, Y, precision) -> Callable:
    """A check of (index, score) top-k lists against the default's: every score within the
    error bound of its data row, and the same models wherever the default's scores are
    separated by more than twice it (near-ties may rank either way)."""
    from ..kernels.distance import error_bound

    tol = error_bound(X, Y, precision=precision).max(axis=0)[:, None]  # (N, 1)

    def check(out, ref):
        (i, s), (ri, rs) = (tuple(_host(a) for a in out), tuple(_host(a) for a in ref))
        if i.shape != ri.shape:
            return False, f"shape {i.shape} against the default's {ri.shape}"
        err = np.abs(s.astype(np.float64) - rs.astype(np.float64))
        if not np.all(err <= 2 * tol):
            return False, f"scores off the default's by up to {float((err / tol).max()):.2g} error bounds"
        gaps = np.diff(rs.astype(np.float64), axis=1)
        clear = np.all(gaps > 2 * tol, axis=1)
        if not np.array_equal(i[clear], ri[clear]):
            return False, "different models where the default's scores are clearly separated"
        return True, f"scores within {float((err / tol).max()):.2g} error bounds"
    return check


def _problem_nufft(backend, size, seed, deterministic=True):
    from ..kernels import nufft as _n

    d = _dims("nufft", size)
    n, M = d["n"], d["M"]
    eps, cdt = 1e-6, np.dtype(np.complex64)
    rng = np.random.default_rng(seed)
    pts = [rng.uniform(-np.pi, np.pi, M).astype(np.float32) for _ in range(3)]
    c = (rng.standard_normal(M) + 1j * rng.standard_normal(M)).astype(cdt)
    f = (rng.standard_normal((n, n, n)) + 1j * rng.standard_normal((n, n, n))).astype(cdt)
    out = []
    for t in (1, 2):
        plan = _n.Plan(t, (n, n, n), eps=eps, dtype=cdt, backend=backend)
        ctx = dict(device_context(backend), w=plan.w, itemsize=cdt.itemsize, type=t)

        def run(cfg, t=t):
            with active.using("nufft", cfg):
                p = _n.Plan(t, (n, n, n), eps=eps, dtype=cdt, backend=backend)
                p.setpts(*pts)
                return p.execute(c if t == 1 else f)

        out.append(Problem("nufft", backend, cdt.name, sizes.nufft(t, plan.w, plan.n_fine, M), space("nufft", backend, t, deterministic),
                           ctx, run, within(eps), f"nufft type {t} N={n}^3 M={M} eps={eps:g} complex64"))
    return out


def _problem_insertion(backend, size, seed):
    from ..geometry.orientations import random_orientations
    from ..geometry.quaternion import quaternion_to_matrix
    from ..kernels import insertion as _ins

    d = _dims("insertion", size)
    n, N = d["n"], d["N"]
    cdt = np.dtype(np.complex64)
    rng = np.random.default_rng(seed)
    img = (rng.standard_normal((n, N, N)) + 1j * rng.standard_normal((n, N, N))).astype(cdt)
    ctf = rng.uniform(-1, 1, (n, N, N)).astype(np.float32)
    rot = np.asarray(quaternion_to_matrix(random_orientations(n, rng)), dtype=np.float32)
    ctx = dict(device_context(backend), n=n, N=N, itemsize=4, table_size=_ins.Blob().table_size)

    def run(cfg):
        with active.using("insertion", cfg):
            return _ins.insert(img, rot, ctf=ctf, backend=backend)

    check = within(INSERTION_GPU_TOL) if backend in _backends.GPU_BACKENDS else bitwise
    return [Problem("insertion", backend, cdt.name, sizes.insertion(N, n), space("insertion", backend), ctx, run,
                    check, f"insertion n={n} N={N} complex64 with CTF")]


def _problem_cg(backend, size, seed):
    from ..bench.timing import synchronize
    from ..kernels.cg import cg

    d = _dims("cg", size)
    n, maxiter = d["n"], d["maxiter"]
    rng = np.random.default_rng(seed)
    diag = rng.uniform(1.0, 100.0, n)
    b = rng.standard_normal(n)
    if backend in _backends.GPU_BACKENDS:
        try:
            import cupy
        except ImportError:
            raise BackendUnavailableError("tuning cg on a GPU backend needs CuPy for its operator") from None
        diag, b = cupy.asarray(diag), cupy.asarray(b)
    ctx = dict(device_context(backend), maxiter=maxiter, n=n)

    def run(cfg):
        with active.using("cg", cfg):
            r = cg(lambda v: diag * v, b, tol=1e-12, maxiter=maxiter, backend=backend)
        synchronize(backend)
        return (r.x, np.asarray(r.residuals))

    return [Problem("cg", backend, "float64", sizes.cg(n), space("cg", backend), ctx, run, bitwise,
                    f"cg n={n} float64 diagonal operator, {maxiter} iterations")]


def _problem_fsc(backend, size, seed):
    d = _dims("fsc", size)
    n = d["n"]
    ctx = dict(device_context(backend), shape=(n, n, n))
    return [Problem("fsc", backend, "float32", sizes.fsc((n, n, n)), space("fsc", backend), ctx, lambda cfg: None,
                    bitwise, f"fsc {n}^3 float32")]


_BUILDERS = {"distance": _problem_distance, "nufft": _problem_nufft, "insertion": _problem_insertion,
             "cg": _problem_cg, "fsc": _problem_fsc}


def problems(family: str, backend: str, size: str = "small", seed: int = 0, deterministic: bool = True) -> list:
    """The tunable problems of `family` on `backend` at `size` (``"tiny"``, ``"small"``, ``"medium"``, ``"large"``).

    Inputs are random (seeded). A space without knobs yields a problem whose space is empty (the
    CLI lists it and runs nothing). `deterministic`: as in :func:`space`.

    Raises
    ------
    ValueError
        Unknown family, backend or size.
    spkernels.BackendUnavailableError
        When `backend` cannot run here.
    """
    if family not in FAMILIES:
        raise ValueError(f"`family` must be one of {', '.join(FAMILIES)}, got {family!r}")
    if size not in SIZES:
        raise ValueError(f"`size` must be one of {', '.join(SIZES)}, got {size!r}")
    if backend not in _backends.BACKENDS:
        raise ValueError(f"`backend` must be one of {', '.join(_backends.BACKENDS)}, got {backend!r}")
    _backends.resolve(backend)  # BackendUnavailableError with the reason
    if backend == "numpy" or family == "fsc" or (family != "nufft" and space(family, backend).empty):
        return [Problem(family, backend, "-", "-", space(family, backend), device_context(backend), lambda cfg: None,
                        bitwise, f"{family} on {backend}")]
    if family == "nufft":
        return _problem_nufft(backend, size, seed, deterministic)
    return _BUILDERS[family](backend, size, seed)
