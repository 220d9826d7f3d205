"""Case ``distance_argmin``: euclidean fused distance GEMM + top-1 (orientation matching).

Data rows are noisy copies of a random permutation of the models, so every data row has one
clear best model: the check before timing demands that exact index on every row, and that the
returned score matches the float64 recomputation of that pair (plus, at the small size, the
whole NumPy reference result). The arithmetic is one R x N x P GEMM, so the ceiling is GEMM
at the same precision; ``float64`` exists on the CPU backends only (GPU rows report it as not
implemented). ``cuda`` runs its SIMT ``fp32`` path here, the like-for-like peer of Numba CUDA's
fp32 kernel (the tensor-core precisions are a different algorithm).

``SANITIZE_CASES`` calls each CUDA launcher of the family once at a tiny size, every
precision and both metrics, for ``ci/sanitize_kernels.py`` under compute-sanitizer.
"""

from __future__ import annotations

import numpy as np

from ...backends.numpy import distance as _reference
from ...kernels import distance as _dist
from ..registry import Prepared, register
from . import _common

# (R models, N data rows, P pixels)
_SIZES = {"small": (512, 512, 1024), "full": (32768, 32768, 16384)}
_PRECISION = {"float32": "fp32", "float64": "fp64"}
_NOISE = 0.5


def _inputs(size: str, precision: str):
    R, N, P = _SIZES[size]
    rng = np.random.default_rng(11)
    dtype = np.dtype(precision)
    models = rng.standard_normal((R, P), dtype=np.float32).astype(dtype, copy=False)
    truth = rng.permutation(R)[:N] if N <= R else rng.integers(0, R, N)
    data = models[truth] + np.float32(_NOISE) * rng.standard_normal((N, P), dtype=np.float32).astype(dtype)
    return models, data, truth


def _check(models, data, truth, index, score, size, precision, backend) -> None:
    index = np.asarray(index).reshape(-1)
    score = np.asarray(score, dtype=np.float64).reshape(-1)
    wrong = np.flatnonzero(index != truth)
    if wrong.size:
        raise RuntimeError(f"distance_argmin case: backend {backend!r} picked the wrong model for {wrong.size} of "
                           f"{truth.size} rows (first: row {wrong[0]}, got {index[wrong[0]]}, want {truth[wrong[0]]})")
    # float64 score of each winning pair and its documented bound, kappa * (a_r + b_n + 2 |x| |y|)
    # with a_r, b_n the squared norms; in row blocks, never forming R x N or a float64 copy
    ref = np.empty(truth.size)
    bound = np.empty(truth.size)
    for n0 in range(0, truth.size, 1024):
        xm = models[truth[n0:n0 + 1024]].astype(np.float64)
        yd = data[n0:n0 + 1024].astype(np.float64)
        d = xm - yd
        ref[n0:n0 + 1024] = np.einsum("ij,ij->i", d, d)
        xx, yy = np.einsum("ij,ij->i", xm, xm), np.einsum("ij,ij->i", yd, yd)
        bound[n0:n0 + 1024] = xx + yy + 2.0 * np.sqrt(xx * yy)
    bound *= _dist.ERROR_BOUND[_PRECISION[precision]]
    excess = np.abs(score - ref) - bound
    if not np.all(np.isfinite(score)) or excess.max() > 0:
        raise RuntimeError(f"distance_argmin case: backend {backend!r} scores exceed the documented bound "
                           f"(worst by {excess.max():.3e})")
    if size == "small":  # the whole float64 NumPy reference as well
        ref_res = _dist.distance_argmin(models, data, k=1, backend="numpy")
        if not np.array_equal(np.asarray(ref_res.index).reshape(-1), index):
            raise RuntimeError(f"distance_argmin case: backend {backend!r} disagrees with the NumPy reference")


def prepare(backend: str, size: str, precision: str) -> Prepared:
    """Inputs and a one-call closure for `backend` (see :mod:`spkernels.bench.registry`)."""
    if size not in _SIZES:
        raise ValueError(f"`size` must be one of {', '.join(_SIZES)}; got {size!r}")
    if precision not in _PRECISION:
        raise ValueError(f"`precision` must be float32 or float64; got {precision!r}")
    _common.require(backend)
    prec = _PRECISION[precision]
    if prec not in _dist.SUPPORTED_PRECISIONS[backend]:
        raise NotImplementedError(f"distance on {backend!r} has no {precision} path")
    models, data, truth = _inputs(size, precision)
    X, Y = _common.on_device(backend, models), _common.on_device(backend, data)
    out = {}

    def run():
        out["res"] = _dist.distance_argmin(X, Y, metric="euclidean", k=1, precision=prec, backend=backend)

    run()  # warm-up: JIT, first touch; and the result checked below
    _common.finish(backend)
    _check(models, data, truth, _common.to_host(out["res"].index), _common.to_host(out["res"].score),
           size, precision, backend)
    R, N, P = _SIZES[size]
    item = np.dtype(precision).itemsize
    return Prepared(run=run, flops=2.0 * R * N * P, bytes=float((R + N) * P * item + N * (8 + item)),
                    items=float(R) * N, item_unit="pairs",
                    note=f"euclidean, k=1, precision={prec}; cuda runs its SIMT fp32 path")


register(
    "distance_argmin", prepare, sizes=tuple(_SIZES), precisions=tuple(_PRECISION), ceiling="gemm",
    description="fused euclidean distance GEMM + top-1 over R models x N images x P pixels",
    size_help={s: f"R={r}, N={n}, P={p}" for s, (r, n, p) in _SIZES.items()},
)


# --------------------------------------------------------------------------- sanitizer cases
# Tiny, odd sizes so every tail path runs; R spans several model tiles so the split + merge of
# the fused top-k runs as well. Inputs are positive (poisson needs them), outputs NaN-poisoned.
_SAN = (300, 70, 45)
_CUDA_PRECISIONS = ("fp32", "3xtf32", "tf32", "bf16", "fp16")


def _san_inputs(rng):
    R, N, P = _SAN
    models = rng.uniform(0.5, 2.0, (R, P)).astype(np.float32)
    data = rng.uniform(0.5, 2.0, (N, P)).astype(np.float32)
    weights = rng.uniform(0.1, 1.0, P).astype(np.float32)
    return models, data, weights


def _sanitize_topk(core, rng):
    R, N, P = _SAN
    models, data, weights = _san_inputs(rng)
    _keep, (pm, pd, pw) = _common.sanitize_buffers(models, data, weights)  # `keep` owns the buffers
    for metric in (0, 1):
        for prec in _CUDA_PRECISIONS:
            for k, wptr in ((1, 0), (5, pw)):
                oi, os_ = _common.sanitize_buffers(np.full((N, k), -7, np.int64), np.full((N, k), np.nan, np.float32))[0]
                core.distance_topk_cuda(pm, pd, wptr, R, N, P, metric, k, prec, oi.ptr, os_.ptr, 0)
                core.cuda_synchronize()
                idx, sc = oi.get(), os_.get()
                if not (np.all((idx >= 0) & (idx < R)) and np.all(np.isfinite(sc))):
                    raise RuntimeError(f"distance_topk_cuda metric={metric} {prec} k={k}: unwritten outputs")
                if prec == "fp32":
                    w = None if wptr == 0 else weights
                    ref = _dist.distance_argmin(models, data, metric=("euclidean", "poisson")[metric], weights=w,
                                                k=k, backend="numpy")
                    if _common.rel_err(sc, ref.score) > 1e-4:
                        raise RuntimeError(f"distance_topk_cuda metric={metric} fp32 k={k}: scores differ from numpy")


def _sanitize_pairwise(core, rng):
    R, N, P = _SAN
    models, data, weights = _san_inputs(rng)
    _keep, (pm, pd, pw) = _common.sanitize_buffers(models, data, weights)  # `keep` owns the buffers
    for metric in (0, 1):
        for prec in _CUDA_PRECISIONS:
            (out,), (po,) = _common.sanitize_buffers(np.full((R, N), np.nan, np.float32))
            core.pairwise_score_cuda(pm, pd, pw, R, N, P, metric, prec, po, 0)
            core.cuda_synchronize()
            got = out.get()
            if not np.all(np.isfinite(got)):
                raise RuntimeError(f"pairwise_score_cuda metric={metric} {prec}: unwritten outputs")
            if prec == "fp32":
                ref = _reference.score_matrix(models.astype(np.float64), data.astype(np.float64),
                                              weights.astype(np.float64), metric, "fp64")
                if _common.rel_err(got, ref) > 1e-4:
                    raise RuntimeError(f"pairwise_score_cuda metric={metric} fp32 differs from numpy")


def _sanitize_segmented(core, rng):
    lengths = np.array([5, 0, 1, 300, 0, 33, 2], np.int64)  # empty segments and one longer than a warp
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    values = rng.standard_normal(int(offsets[-1])).astype(np.float32)
    S = lengths.size
    (_dv, _do, oi, ov), (pv, po, pi, pval) = _common.sanitize_buffers(
        values, offsets, np.full(S, -7, np.int64), np.full(S, np.nan, np.float32))
    core.segmented_argmin_cuda(pv, po, S, pi, pval, 0)
    core.cuda_synchronize()
    ref_i, ref_v = _reference.segmented_argmin(values, offsets)
    if not (np.array_equal(oi.get(), ref_i) and np.array_equal(ov.get(), ref_v)):
        raise RuntimeError("segmented_argmin_cuda differs from the numpy reference")


SANITIZE_CASES = {
    "distance_topk_cuda": _sanitize_topk,
    "pairwise_score_cuda": _sanitize_pairwise,
    "segmented_argmin_cuda": _sanitize_segmented,
}
