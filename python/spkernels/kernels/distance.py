"""Orientation matching: fused distance + top-k, the score matrix, and segmented argmin.

For models X (R, P), data Y (N, P) and optional non-negative pixel weights w (P,), every score
has one general form, one GEMM plus per-row and per-column terms::

    score(r, n) = a_r + b_n + c * sum_p w_p * f(X[r, p]) * Y[n, p]

=============  ==========  ====================  ==============  ====
metric         f(x)        a_r                   b_n             c
=============  ==========  ====================  ==============  ====
``euclidean``  x           sum_p w x^2           sum_p w y^2     -2
``poisson``    log x       sum_p w x             0               -1
=============  ==========  ====================  ==============  ====

``euclidean`` is the weighted squared distance sum w (x - y)^2; ``poisson`` is the negative
log-likelihood of photon counts d under a strictly positive model m, sum w (m - d log m), up to
a per-image constant (the score that converges for SPI data). For each data row the k best
models are returned in ascending (score, index) order: equal scores go to the lower model
index, and results are deterministic. The R x N matrix is never materialised by
:func:`distance_argmin` (extra memory O(N k) plus bounded batches).

Precisions and the documented error bound
-----------------------------------------
With ``||v||_w = sqrt(sum_p w_p v_p^2)``, every backend and precision guarantees::

    |score_prec(r, n) - score_fp64(r, n)|
        <= kappa[prec] * (|a_r| + |b_n| + |c| * ||f(x_r)||_w * ||y_n||_w)

with kappa in :data:`ERROR_BOUND` (fp64 1e-12, fp32 1e-5, 3xtf32 1e-5, tf32 2e-3, fp16 2e-3,
bf16 1.6e-2); :func:`error_bound` evaluates the right-hand side. The bound is relative to the
magnitudes that enter the sum, not to the score itself: near-ties (two models whose scores
differ by less than the sum of their bounds) may be ranked either way at reduced precision.
Keep k > 1 and re-rank in fp64 when such ties matter. ``fp16`` needs every weighted value
below 6e4 in magnitude (checked before launch).

==============  ==================================  ==========
backend         precisions                          ``auto``
==============  ==================================  ==========
``numpy``       fp64 (the float64 reference)        fp64
``cpu``         fp32, fp64                          fp32
``numba-cpu``   fp32, fp64                          fp32
``numba-cuda``  fp32                                fp32
``cuda``        fp32 (SIMT), 3xtf32, tf32, bf16,    3xtf32
                fp16
==============  ==================================  ==========

Scores come back as float64 for fp64 and float32 otherwise. NumPy input gives NumPy output;
GPU input (``__cuda_array_interface__``) stays on the GPU.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

import numpy as np

from .. import _arrays, backends
from ..backends import BACKENDS, GPU_BACKENDS, resolve
from ..backends.numba_math.distance import EUCLIDEAN, POISSON
from ..backends.numpy import distance as _reference
from ..backends.numpy.distance import merge_topk

log = logging.getLogger("spkernels.kernels.distance")

__all__ = [
    "ArgminAccumulator",
    "ArgminResult",
    "ERROR_BOUND",
    "METRICS",
    "PRECISIONS",
    "SUPPORTED_PRECISIONS",
    "distance_argmin",
    "error_bound",
    "pairwise_sqdist",
    "segmented_argmin",
]

METRICS = {"euclidean": EUCLIDEAN, "poisson": POISSON}
PRECISIONS = ("fp64", "fp32", "3xtf32", "tf32", "bf16", "fp16")

#: kappa per precision of the documented bound (see the module docstring).
ERROR_BOUND = {
    "fp64": 1e-12,
    "fp32": 1e-5,
    "3xtf32": 1e-5,
    "tf32": 2e-3,
    "fp16": 2e-3,
    "bf16": 1.6e-2,
}

SUPPORTED_PRECISIONS = {
    "numpy": ("fp64",),
    "cpu": ("fp32", "fp64"),
    "numba-cpu": ("fp32", "fp64"),
    "numba-cuda": ("fp32",),
    "cuda": ("fp32", "3xtf32", "tf32", "bf16", "fp16"),
}
_AUTO_PRECISION = {"numpy": "fp64", "cpu": "fp32", "numba-cpu": "fp32", "numba-cuda": "fp32", "cuda": "3xtf32"}
_FP16_MAX = 6.0e4

# Upper bound on the elements of one model or data batch handed to a backend (and on a numpy
# reference score block). Batching keeps memory bounded; tests shrink it to force batching.
_BATCH_ELEMENTS = 1 << 25
# GPU backends given host arrays copy each batch to the device; larger batches (1 GiB of fp32
# each) keep the number of repeated model/data copies small.
_GPU_BATCH_ELEMENTS = 1 << 28
# Input dtypes a backend's segmented argmin takes, where it does not take both float dtypes.
_SEGMENTED_DTYPES = {"cuda": (np.dtype(np.float32),)}


class ArgminResult(NamedTuple):
    """The k best models per data row: ``index`` (N, k) int64, ``score`` (N, k), ascending."""

    index: object
    score: object


# --------------------------------------------------------------------------- validation


def _check_metric(metric) -> int:
    if not isinstance(metric, str):
        raise TypeError(f"`metric` must be a string, got {type(metric).__name__}")
    if metric not in METRICS:
        raise ValueError(f"`metric` must be one of {', '.join(map(repr, METRICS))}; got {metric!r}")
    return METRICS[metric]


#: largest model index the int64 results can hold (-1 is the empty-slot marker)
_MAX_INDEX = (1 << 63) - 1


def _check_int(name: str, value, *, low: int, high: int | None = None, high_name: str = "") -> int:
    return _arrays.ensure_int(name, value, low=low, high=high, what=high_name)


def _check_backend_name(backend) -> str:
    if not isinstance(backend, str):
        raise TypeError(f"`backend` must be a string, got {type(backend).__name__}")
    return backend


def _xp(x):
    """Array module able to reduce over `x` (NumPy, CuPy), or None for opaque device arrays."""
    return _arrays.array_module(x)


def _reduce_check(name: str, x, test, message: str) -> None:
    xp = _xp(x)
    if xp is None:
        return  # a device array without CuPy: the kernels cannot be handed a reduction cheaply
    if bool(test(xp, x)):
        raise ValueError(f"`{name}` {message}")


def _check_matrix(name: str, x):
    x = _arrays.ensure_array(name, x, dtypes=_arrays.FLOAT_DTYPES, ndim=2)
    _arrays.ensure_nonempty(name, x)
    _arrays.ensure_finite(name, x)
    return x


def _check_inputs(models, data, weights, metric_id: int):
    """Validate the arrays of a distance call; returns (X, Y, w, on_device)."""
    X = _check_matrix("models", models)
    Y = _check_matrix("data", data)
    on_device = _arrays.is_device_array(X)
    if _arrays.is_device_array(Y) != on_device:
        raise ValueError("`models` and `data` must both be host (NumPy) arrays or both GPU arrays")
    if X.shape[1] != Y.shape[1]:
        raise ValueError(
            f"`models` and `data` must have the same number of pixels P; got models {tuple(X.shape)} "
            f"and data {tuple(Y.shape)}"
        )
    w = _check_weights(weights, X.shape[1])
    if metric_id == POISSON:
        _reduce_check("models", X, lambda xp, a: (a <= 0).any(), "must be strictly positive for metric='poisson'")
    return X, Y, w, on_device


def _check_weights(weights, P: int, against: str = "models"):
    if weights is None:
        return None
    w = _arrays.ensure_array("weights", weights, ndim=1)
    kind = np.dtype(w.dtype).kind
    if kind in "biu" and _xp(w) is not None:
        w = w.astype(np.float64)  # a boolean or integer mask is 0/1 weights
    elif np.dtype(w.dtype) not in _arrays.FLOAT_DTYPES:
        raise TypeError(f"`weights` must have dtype float32 or float64 (or be a boolean/integer mask), "
                        f"got {np.dtype(w.dtype).name}")
    if w.shape[0] != P:
        raise ValueError(f"`weights` must have shape ({P},) to match the pixels of `{against}`, got {tuple(w.shape)}")
    _arrays.ensure_finite("weights", w)
    _reduce_check("weights", w, lambda xp, a: (a < 0).any(), "must be non-negative")
    return w


def _check_precision(precision) -> str:
    if not isinstance(precision, str):
        raise TypeError(f"`precision` must be a string, got {type(precision).__name__}")
    if precision != "auto" and precision not in PRECISIONS:
        raise ValueError(f"`precision` must be 'auto' or one of {', '.join(PRECISIONS)}; got {precision!r}")
    return precision


def _resolve(backend, precision: str, on_device: bool) -> tuple[str, str]:
    """Pick the backend (honouring a requested precision under ``auto``) and the precision."""
    precision = _check_precision(precision)
    if backend == "auto" and precision != "auto":
        able = [b for b in BACKENDS if precision in SUPPORTED_PRECISIONS[b]]
        name = resolve("auto", on_device=on_device, supported=able)
    else:
        name = resolve(backend, on_device=on_device)
    if precision == "auto":
        precision = _AUTO_PRECISION[name]
    elif precision not in SUPPORTED_PRECISIONS[name]:
        raise ValueError(
            f"`precision`={precision!r} is not available on backend {name!r}; "
            f"it supports {', '.join(SUPPORTED_PRECISIONS[name])}"
        )
    return name, precision


def _check_fp16_range(X, Y, w, metric_id: int) -> None:
    xp = _xp(X)
    if xp is None:
        return
    wmax = 1.0 if w is None else max(1.0, float(xp.abs(w).max()))
    fx = xp.log(X) if metric_id == POISSON else X
    if float(xp.abs(fx).max()) * wmax >= _FP16_MAX:
        raise ValueError(f"`models` values (after the metric's transform and weighting) must stay below {_FP16_MAX:g} "
                         "in magnitude for precision='fp16'; rescale or use 'bf16'/'3xtf32'")
    if Y is not None and float(xp.abs(Y).max()) * wmax >= _FP16_MAX:
        raise ValueError(f"`data` values (after weighting) must stay below {_FP16_MAX:g} in magnitude for "
                         "precision='fp16'; rescale or use 'bf16'/'3xtf32'")


def _work_dtype(precision: str):
    return np.dtype(np.float64) if precision == "fp64" else np.dtype(np.float32)


def _as_work(x, dtype):
    """C-contiguous copy-if-needed of `x` in `dtype` (host or CuPy)."""
    if x is None:
        return None
    if _arrays.is_device_array(x):
        if np.dtype(x.dtype) != dtype:
            xp = _xp(x)
            if xp is None:
                raise TypeError(f"device arrays must already be {dtype.name} for this backend (CuPy is not installed "
                                "to convert them)")
            x = x.astype(dtype)
        return _arrays.contiguous(x)
    return np.ascontiguousarray(x, dtype=dtype)


# --------------------------------------------------------------------------- dispatch


def _topk(name, precision, X, Y, w, metric_id, k):
    """One unbatched top-k call on arrays already in the backend's working dtype.

    The tuned ``algorithm`` (``spkernels.tuning``, family ``distance``) picks between the fused
    kernel (``"fused"``, the default) and, where a backend offers ``gemm_topk`` (the ``cuda``
    backend, fp32), a vendor GEMM plus row terms and k best (``"gemm"``)."""
    impl = backends.load(name, "distance")
    if hasattr(impl, "gemm_topk") and precision == "fp32":
        from ..tuning import active, sizes

        R, P = X.shape
        cfg = active.current("distance", name, precision, sizes.distance(R, Y.shape[0], P))
        if cfg and active.value(cfg, "algorithm", "fused", lambda v: v in ("fused", "gemm"), "distance") == "gemm":
            return impl.gemm_topk(X, Y, w, metric_id, k, precision)
    return impl.topk(X, Y, w, metric_id, k, precision)


def _batched_topk(name, precision, X, Y, w, metric_id, k, on_device):
    """Top-k over bounded batches of data rows and of models, merged exactly.

    GPU-resident inputs are already in device memory and the kernels need only O(N k) more,
    so they go in one call. Host inputs are cut so that no batch copy exceeds
    ``_BATCH_ELEMENTS`` values; each (r, n) score is computed the same way in any batch and
    the (score, index) merge is exact, so the result equals an unbatched call bit for bit.
    """
    if on_device:
        return _topk(name, precision, X, Y, w, metric_id, k)
    R, P = X.shape
    N = Y.shape[0]
    budget = _GPU_BATCH_ELEMENTS if name in GPU_BACKENDS else _BATCH_ELEMENTS
    rows = max(1, budget // P)
    mrows, drows = _tuned_rows(name, precision, R, N, P, rows)
    if R <= mrows and N <= drows:
        return _topk(name, precision, X, Y, w, metric_id, k)
    out_idx = np.empty((N, k), np.int64)
    out_sc = np.empty((N, k), _work_dtype(precision))
    for n0 in range(0, N, drows):
        n1 = min(N, n0 + drows)
        Yb = Y[n0:n1]
        idx = sc = None
        for r0 in range(0, R, mrows):
            r1 = min(R, r0 + mrows)
            bi, bs = _topk(name, precision, X[r0:r1], Yb, w, metric_id, min(k, r1 - r0))
            bi = np.asarray(bi) + r0
            bs = np.asarray(bs)
            idx, sc = (bi, bs) if idx is None else merge_topk(idx, sc, bi, bs, k)
        out_idx[n0:n1] = idx
        out_sc[n0:n1] = sc
    return out_idx, out_sc


def _tuned_rows(name, precision, R, N, P, rows):
    """Models and data rows per host batch: the tuned ones (``spkernels.tuning``, family
    ``distance``: ``model_rows``, ``data_rows``, each an int or ``"auto"``), else `rows` for both.
    Any split gives the same result bit for bit (see :func:`_batched_topk`)."""
    from ..tuning import active, sizes

    cfg = active.current("distance", name, precision, sizes.distance(R, N, P))
    if not cfg:
        return rows, rows
    ok = lambda v: v == "auto" or active.is_int(v)  # noqa: E731
    m = active.value(cfg, "model_rows", "auto", ok, "distance")
    d = active.value(cfg, "data_rows", "auto", ok, "distance")
    return (rows if m == "auto" else m), (rows if d == "auto" else d)


def _check_scores_finite(sc, precision) -> None:
    xp = _xp(sc)
    if xp is None:
        return
    if not bool(xp.isfinite(sc).all()):
        raise ValueError(
            f"scores overflowed in precision {precision!r}: `models`/`data` values are too large for it; "
            "rescale the inputs or use a wider precision"
        )


# --------------------------------------------------------------------------- public API


def distance_argmin(models, data, *, metric="euclidean", weights=None, k=1, precision="auto", backend="auto"):
    """The k best models for each data image, without forming the R x N score matrix.

    Parameters
    ----------
    models : array (R, P), float32 or float64
        Model images (for ``poisson``: strictly positive expected counts).
    data : array (N, P), float32 or float64
        Data images (for ``poisson``: photon counts).
    metric : {"euclidean", "poisson"}
        Score to minimise; see the module docstring for the general form.
    weights : array (P,), optional
        Non-negative pixel weights, float32/float64, or a boolean/integer mask (0/1 weights).
        None means all ones.
    k : int
        Number of best models per data image, 1 <= k <= R.
    precision : str
        ``"auto"`` or one of ``fp64, fp32, 3xtf32, tf32, bf16, fp16`` (per-backend support and
        error bounds in the module docstring and :data:`ERROR_BOUND`).
    backend : str
        ``"auto"`` or one of ``cuda, numba-cuda, cpu, numba-cpu, numpy``.

    Returns
    -------
    ArgminResult
        ``index`` (N, k) int64 and ``score`` (N, k) (float64 for fp64, else float32), each row
        in ascending (score, index) order. NumPy in, NumPy out; GPU in, GPU out.

    Raises
    ------
    TypeError, ValueError
        For bad arguments (naming the argument), or when scores overflow the precision.
    spkernels.BackendUnavailableError
        When the requested backend cannot run here.
    """
    metric_id = _check_metric(metric)
    X, Y, w, on_device = _check_inputs(models, data, weights, metric_id)
    k = _check_int("k", k, low=1, high=X.shape[0], high_name="the number of models R")
    name, precision = _resolve(backend, precision, on_device)
    if precision == "fp16":
        _check_fp16_range(X, Y, w, metric_id)
    dt = _work_dtype(precision)
    log.debug("distance_argmin: backend=%s precision=%s metric=%s R=%d N=%d P=%d k=%d device=%s",
              name, precision, metric, X.shape[0], Y.shape[0], X.shape[1], k, on_device)
    X, Y, w = _as_work(X, dt), _as_work(Y, dt), _as_work(w, dt)
    idx, sc = _batched_topk(name, precision, X, Y, w, metric_id, k, on_device)
    _check_scores_finite(sc, precision)
    return ArgminResult(idx, sc)


def _pairwise_score(models, data, *, metric="euclidean", weights=None, precision="auto", backend="auto"):
    metric_id = _check_metric(metric)
    X, Y, w, on_device = _check_inputs(models, data, weights, metric_id)
    name, precision = _resolve(backend, precision, on_device)
    if precision == "fp16":
        _check_fp16_range(X, Y, w, metric_id)
    dt = _work_dtype(precision)
    sc = backends.load(name, "distance").score_matrix(_as_work(X, dt), _as_work(Y, dt), _as_work(w, dt),
                                                      metric_id, precision)
    _check_scores_finite(sc, precision)
    return sc


def pairwise_sqdist(models, data, *, weights=None, precision="auto", backend="auto"):
    """The full (R, N) matrix of weighted squared distances sum_p w_p (x_rp - y_np)^2.

    Same arguments, precisions and error bound as :func:`distance_argmin` with
    ``metric="euclidean"``; it allocates R x N scores, so prefer :func:`distance_argmin` when
    only the best models are needed. Values are computed as a_r + b_n - 2 x.y and are not
    clamped: they can be slightly negative (within the error bound) for near-identical rows.
    Scores that overflow the precision (Inf from finite inputs, e.g. values near 1e200 in
    fp64) raise ``ValueError``, as in :func:`distance_argmin`.
    """
    return _pairwise_score(models, data, metric="euclidean", weights=weights, precision=precision, backend=backend)


def error_bound(models, data, *, metric="euclidean", weights=None, precision="fp32"):
    """The documented bound kappa * (|a_r| + |b_n| + |c| ||f(x_r)||_w ||y_n||_w), as (R, N) float64.

    Host-side and O(R N): meant for tests and diagnostics on modest sizes. Raises
    ``ValueError`` when the bound overflows float64 (inputs near 1e154 or larger), where it
    would say nothing.
    """
    metric_id = _check_metric(metric)
    X, Y, w, _ = _check_inputs(models, data, weights, metric_id)
    precision = _check_precision(precision)
    if precision == "auto":
        raise ValueError("`precision` must name a precision for error_bound, not 'auto'")
    # C-contiguous float64 copies: BLAS sums a strided matrix in another order, and the bound
    # must not depend on the inputs' memory layout.
    X = np.ascontiguousarray(_arrays.to_host(X), np.float64)
    Y = np.ascontiguousarray(_arrays.to_host(Y), np.float64)
    wv = np.ones(X.shape[1]) if w is None else np.ascontiguousarray(_arrays.to_host(w), np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        a, b, c = _reference.row_terms(X, Y, None if w is None else wv, metric_id)
        fx = np.log(X) if metric_id == POISSON else X
        nx = np.sqrt((fx * fx) @ wv)
        ny = np.sqrt((Y * Y) @ wv)
        bound = ERROR_BOUND[precision] * (np.abs(a)[:, None] + np.abs(b)[None, :] + abs(c) * nx[:, None] * ny[None, :])
    if not np.isfinite(bound).all():
        raise ValueError("`models`/`data` are too large: the error bound overflows float64; rescale the inputs")
    return bound


def segmented_argmin(values, offsets, *, backend="auto"):
    """Argmin and min of each segment of a flat array with CSR-style offsets.

    Parameters
    ----------
    values : array (M,), float32 or float64
        No NaN (+-inf allowed). The ``cuda`` backend takes float32 only (``auto`` skips it
        for float64).
    offsets : array (S+1,), integer
        ``offsets[0] == 0``, non-decreasing, ``offsets[-1] == M``; segment s is
        ``values[offsets[s]:offsets[s+1]]`` and may be empty.
    backend : str
        ``"auto"`` or one of ``cuda, numba-cuda, cpu, numba-cpu, numpy``.

    Returns
    -------
    index : array (S,) int64
        Position of the minimum inside its segment (ties to the lowest), -1 for an empty one.
    value : array (S,), dtype of `values`
        The minimum, +inf for an empty segment.
    """
    v = _arrays.ensure_array("values", values, dtypes=_arrays.FLOAT_DTYPES, ndim=1)
    on_device = _arrays.is_device_array(v)
    o = _arrays.ensure_array("offsets", offsets, dtypes=(np.int32, np.int64, np.uint32, np.uint64), ndim=1)
    if _arrays.is_device_array(o) != on_device:
        raise ValueError("`values` and `offsets` must both be host (NumPy) arrays or both GPU arrays")
    if o.shape[0] < 2:
        raise ValueError(f"`offsets` must hold at least 2 entries (one segment), got shape {tuple(o.shape)}")
    M = v.shape[0]
    xp = _xp(o)
    if xp is not None:
        o = o.astype(xp.int64) if o.dtype != np.int64 else o
        if int(o[0]) != 0 or int(o[-1]) != M:
            raise ValueError(f"`offsets` must start at 0 and end at len(`values`)={M}, got {int(o[0])} .. {int(o[-1])}")
        if bool((xp.diff(o) < 0).any()):
            raise ValueError("`offsets` must be non-decreasing")
    _reduce_check("values", v, lambda xp_, a: xp_.isnan(a).any(), "contains NaN")
    dtype = np.dtype(v.dtype)
    if backend == "auto":
        name = resolve("auto", on_device=on_device,
                       supported=[b for b in BACKENDS if dtype in _SEGMENTED_DTYPES.get(b, _arrays.FLOAT_DTYPES)])
    else:
        name = resolve(backend, on_device=on_device)
    if dtype not in _SEGMENTED_DTYPES.get(name, _arrays.FLOAT_DTYPES):
        raise TypeError(f"`values` must be float32 for backend {name!r} (use numba-cuda or a CPU backend for "
                        f"float64)")
    S = o.shape[0] - 1
    if M == 0:  # every segment is empty; no kernel needs to run
        xp = _xp(v) or np
        return xp.full(S, -1, np.int64), xp.full(S, np.inf, v.dtype)
    return backends.load(name, "distance").segmented_argmin(v, o)


def _merge_topk_sorted(xp, index_a, score_a, index_b, score_b, k):
    """The k best of two candidate lists per row in ascending (score, index) order, with array
    module `xp` (on the device with CuPy): a stable sort by index, then a stable sort by score.
    Empty slots (index -1, score +inf) sort after every finite candidate."""
    idx = xp.concatenate([index_a, index_b.astype(np.int64)], axis=1)
    sc = xp.concatenate([score_a, score_b], axis=1)
    order = xp.argsort(idx, axis=1, kind="stable")
    idx, sc = xp.take_along_axis(idx, order, axis=1), xp.take_along_axis(sc, order, axis=1)
    order = xp.argsort(sc, axis=1, kind="stable")[:, :k]
    return (xp.ascontiguousarray(xp.take_along_axis(idx, order, axis=1)),
            xp.ascontiguousarray(xp.take_along_axis(sc, order, axis=1)))


class ArgminAccumulator:
    """Running k best models per data image over model batches (e.g. MTIP slices).

    ``update(batch, first_index)`` scores a batch of models numbered ``first_index`` onwards and
    merges it into the running lists; after all batches the result is identical to one
    :func:`distance_argmin` call over the concatenated models (same backend and precision).
    ``offer(indices, scores)`` lets each data image enter candidates of its own, such as its
    current orientation scored elsewhere. Candidates are not de-duplicated: offering an index
    that a batch also produces can list it twice.

    Parameters
    ----------
    n_data : int
        Number of data images N.
    k : int
        List length per image (each batch needs no k models: a batch of fewer than k models
        contributes all it has).
    data : array (N, P), optional
        The data, validated once; may instead be passed to each ``update``.
    metric, weights, precision, backend
        As for :func:`distance_argmin`.
    """

    def __init__(self, n_data, k=1, *, data=None, metric="euclidean", weights=None, precision="auto",
                 backend="auto"):
        self.n_data = _check_int("n_data", n_data, low=1)
        self.k = _check_int("k", k, low=1)
        # the running lists: (n_data, k) int64 indices and scores, checked before they exist
        need, avail = 16 * self.n_data * self.k, _arrays.host_available_bytes()
        if need > avail // 2:
            raise ValueError(f"`n_data` x `k` = {_arrays.fmt_int(self.n_data)} x {_arrays.fmt_int(self.k)} running candidates need "
                             f"{_arrays.format_bytes(need)}, more than half the {_arrays.format_bytes(avail)} available")
        self._metric = metric
        self._metric_id = _check_metric(metric)
        self._precision = _check_precision(precision)
        self._backend = _check_backend_name(backend)
        self._data = None
        self._weights = weights
        if data is not None:
            self._data = self._check_data(data)
        if weights is not None:
            P = None if self._data is None else self._data.shape[1]
            wv = _arrays.ensure_array("weights", weights, ndim=1)
            self._weights = _check_weights(wv, wv.shape[0] if P is None else P, against="data")
        self._index = None
        self._score = None

    def _check_data(self, data):
        Y = _check_matrix("data", data)
        if Y.shape[0] != self.n_data:
            raise ValueError(f"`data` must have n_data={self.n_data} rows, got shape {tuple(Y.shape)}")
        return Y

    def _merge(self, idx, sc, offset=0):
        """Merge candidate lists (N, j), indices shifted by `offset`, into the running (N, k)
        lists, on the side they live (device merges need no CuPy)."""
        device = _arrays.is_device_array(idx)
        if self._index is None:
            # Start from k empty slots (index -1, score +inf: every finite candidate beats them).
            ei = np.full((self.n_data, self.k), -1, np.int64)
            es = np.full((self.n_data, self.k), np.inf, np.dtype(sc.dtype))
            self._index, self._score = (_arrays.to_device(ei), _arrays.to_device(es)) if device else (ei, es)
        if device or _arrays.is_device_array(self._index):
            if not _arrays.is_device_array(self._index):
                self._index, self._score = _arrays.to_device(self._index), _arrays.to_device(self._score)
            if not device:
                idx, sc = _arrays.to_device(np.ascontiguousarray(idx)), _arrays.to_device(np.ascontiguousarray(sc))
            xp = _xp(sc)
            if np.dtype(sc.dtype) != np.dtype(self._score.dtype):
                if xp is None:
                    raise TypeError("`scores` must match the accumulator's score dtype for device arrays "
                                    "without CuPy")
                sc = sc.astype(self._score.dtype)
            if xp is not None and _xp(self._index) is xp:
                # CuPy (whichever GPU backend scored): two stable sorts give (score, index) order.
                self._index, self._score = _merge_topk_sorted(xp, self._index, self._score, idx + offset, sc, self.k)
                return
            from ..backends.numba_cuda.distance import merge_topk_device  # raw device arrays, no CuPy

            merge_topk_device(self._index, self._score, _arrays.contiguous(idx), _arrays.contiguous(sc), offset)
            return
        sc = np.asarray(sc, self._score.dtype)
        self._index, self._score = merge_topk(self._index, self._score, np.asarray(idx) + offset, sc, self.k)

    def update(self, model_batch, first_index, data=None):
        """Score `model_batch` (B, P) against the data and merge; its rows are models
        ``first_index .. first_index + B - 1``."""
        first = _check_int("first_index", first_index, low=0)
        Y = self._data if data is None else self._check_data(data)
        if Y is None:
            raise ValueError("`data` must be given to update() when the accumulator was built without it")
        X = _check_matrix("model_batch", model_batch)
        if first + X.shape[0] - 1 > _MAX_INDEX:
            raise ValueError(f"`first_index`={_arrays.fmt_int(first)} plus the {X.shape[0]} models of `model_batch` exceeds the "
                             f"largest int64 model index {_MAX_INDEX}")
        if X.shape[1] != Y.shape[1]:
            raise ValueError(f"`model_batch` has P={X.shape[1]} pixels but `data` has P={Y.shape[1]}")
        if self._weights is not None and self._weights.shape[0] != X.shape[1]:
            raise ValueError(f"`weights` has {self._weights.shape[0]} entries but `model_batch` has P={X.shape[1]}")
        if _arrays.is_device_array(X) != _arrays.is_device_array(Y):
            raise ValueError("`model_batch` and `data` must both be host (NumPy) arrays or both GPU arrays")
        if self._metric_id == POISSON:
            _reduce_check("model_batch", X, lambda xp, a: (a <= 0).any(),
                          "must be strictly positive for metric='poisson'")
        on_device = _arrays.is_device_array(X)
        name, precision = _resolve(self._backend, self._precision, on_device)
        if precision == "fp16":
            _check_fp16_range(X, Y, self._weights, self._metric_id)
        kk = min(self.k, X.shape[0])
        dt = _work_dtype(precision)
        Xw, Yw, ww = _as_work(X, dt), _as_work(Y, dt), _as_work(self._weights, dt)
        idx, sc = _batched_topk(name, precision, Xw, Yw, ww, self._metric_id, kk, on_device)
        _check_scores_finite(sc, precision)
        self._merge(idx, sc, first)
        return self

    def offer(self, indices, scores):
        """Let each data image enter its own candidates: `indices` (N,) or (N, j) integers and
        `scores` of the same shape (computed by the caller with the same metric)."""
        idx = _arrays.ensure_array("indices", indices, ndim=(1, 2))
        if not np.issubdtype(np.dtype(idx.dtype), np.integer):
            raise TypeError(f"`indices` must be an integer array, got {np.dtype(idx.dtype).name}")
        sc = _arrays.ensure_array("scores", scores, dtypes=_arrays.FLOAT_DTYPES, ndim=(1, 2))
        if tuple(idx.shape) != tuple(sc.shape):
            raise ValueError(f"`indices` and `scores` must have the same shape, got {tuple(idx.shape)} and "
                             f"{tuple(sc.shape)}")
        if idx.shape[0] != self.n_data:
            raise ValueError(f"`indices` must have n_data={self.n_data} rows, got shape {tuple(idx.shape)}")
        _arrays.ensure_nonempty("indices", idx)
        _arrays.ensure_finite("scores", sc)
        _reduce_check("indices", idx, lambda xp, a: (a < 0).any(), "must be non-negative")
        if np.dtype(idx.dtype) == np.uint64:  # values above 2**63 - 1 would wrap to negatives (-1: empty)
            _reduce_check("indices", idx, lambda xp, a: (a > np.uint64(_MAX_INDEX)).any(),
                          f"must be <= {_MAX_INDEX} (the largest int64 model index)")
        if idx.ndim == 1:
            idx, sc = idx[:, None], sc[:, None]
        if _xp(idx) is not None:
            idx = idx.astype(np.int64)
        self._merge(idx, sc)
        return self

    def result(self) -> ArgminResult:
        """The current k best per data image (copies; -1 / +inf where fewer than k candidates
        have been seen)."""
        if self._index is None:
            raise ValueError("no candidates yet: call update() or offer() first")
        return ArgminResult(self._index.copy(), self._score.copy())
