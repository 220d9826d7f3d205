"""The distance family on the GPU: the CUDA C++ launchers of ``spkernels._core``.

It implements the distance contract stated in :mod:`spkernels.backends.numpy.distance`.

``precision`` (fp32, 3xtf32, tf32, bf16, fp16; already checked) selects the launcher's GEMM
path. Host inputs are copied to the device and the results come back to the host; device inputs
(``__cuda_array_interface__``) are passed by pointer and the results stay on the device.

Besides the contract, :func:`gemm_topk` is the second algorithm of the top-k (``algorithm =
"gemm"`` in the distance family's tuning space; fp32 only): the vendor GEMM (cuBLAS SGEMM
through CuPy) on chunks of models into an (N, chunk) block, the row terms added in place, then
the k best per data row by k passes of ``argmin`` (each a read of the block: at SPI sizes,
P >= 4096, the block costs a few per cent of the GEMM that made it), merged across chunks in
(score, index) order.
"""

from __future__ import annotations

import numpy as np

from ... import _arrays
from .._shared import core_function



def _on_device(a):
    """`a` itself when it is a device array, else a device copy of it."""
    return a if _arrays.is_device_array(a) else _arrays.to_device(a)


def _pointers(X, Y, w):
    """Device copies (only where needed) and raw pointers of float32 inputs."""
    dX, dY = _on_device(X), _on_device(Y)
    dw = None if w is None else _on_device(w)
    return (dX, dY, dw), (_arrays.device_pointer(dX), _arrays.device_pointer(dY),
                          0 if dw is None else _arrays.device_pointer(dw))


def topk(X, Y, w, metric_id, k, precision):
    on_device = _arrays.is_device_array(X)
    keep, (px, py, pw) = _pointers(X, Y, w)
    R, P = X.shape
    N = Y.shape[0]
    out_idx = _arrays.device_empty((N, k), np.int64)
    out_sc = _arrays.device_empty((N, k), np.float32)
    core_function("distance_topk_cuda")(px, py, pw, R, N, P, metric_id, k, precision,
                                   _arrays.device_pointer(out_idx), _arrays.device_pointer(out_sc), 0)
    del keep
    if on_device:
        return out_idx, out_sc
    return _arrays.to_host(out_idx), _arrays.to_host(out_sc)


def score_matrix(X, Y, w, metric_id, precision):
    on_device = _arrays.is_device_array(X)
    keep, (px, py, pw) = _pointers(X, Y, w)
    R, P = X.shape
    N = Y.shape[0]
    out = _arrays.device_empty((R, N), np.float32)
    core_function("pairwise_score_cuda")(px, py, pw, R, N, P, metric_id, precision, _arrays.device_pointer(out), 0)
    del keep
    return out if on_device else _arrays.to_host(out)


def segmented_argmin(values, offsets):
    on_device = _arrays.is_device_array(values)
    dv = values if on_device else _arrays.to_device(np.ascontiguousarray(values))
    do = offsets if on_device else _arrays.to_device(np.ascontiguousarray(offsets))
    S = offsets.shape[0] - 1
    out_idx = _arrays.device_empty((S,), np.int64)
    out_val = _arrays.device_empty((S,), np.float32)
    core_function("segmented_argmin_cuda")(_arrays.device_pointer(dv), _arrays.device_pointer(do), S,
                                      _arrays.device_pointer(out_idx), _arrays.device_pointer(out_val), 0)
    if on_device:
        return out_idx, out_val
    return _arrays.to_host(out_idx), _arrays.to_host(out_val)


#: models per chunk of :func:`gemm_topk` (an (N, chunk) float32 block lives on the device)
GEMM_CHUNK = 4096


def gemm_topk(X, Y, w, metric_id, k, precision, chunk=None):
    """Top-k by cuBLAS SGEMM (CuPy) on model chunks + row terms + k argmin passes; fp32 only.

    Same contract as :func:`topk` (ascending (score, index) order per data row; device arrays
    for device input, host arrays otherwise). Scores are fp32 GEMM results, so they agree with
    the fused kernel's within the fp32 error bound of
    :func:`~spkernels.kernels.distance.error_bound`, not bitwise.
    """
    if precision != "fp32":
        raise ValueError(f"the gemm top-k computes in fp32 only, got precision {precision!r}")
    import cupy as cp

    from ..numba_math.distance import POISSON

    on_device = _arrays.is_device_array(X)
    dX = X if on_device else cp.asarray(np.ascontiguousarray(X, np.float32))
    dY = Y if _arrays.is_device_array(Y) else cp.asarray(np.ascontiguousarray(Y, np.float32))
    dw = None if w is None else (w if _arrays.is_device_array(w) else cp.asarray(np.asarray(w, np.float32)))
    R, N = int(dX.shape[0]), int(dY.shape[0])
    if metric_id == POISSON:  # score = sum w x - sum w y log x
        fx = cp.log(dX)
        a = dX.sum(axis=1) if dw is None else dX @ dw
        b = None
        c = np.float32(-1.0)
    else:  # score = sum w x^2 - 2 sum w x y + sum w y^2
        fx = dX
        a = (dX * dX).sum(axis=1) if dw is None else (dX * dX) @ dw
        b = (dY * dY).sum(axis=1) if dw is None else (dY * dY) @ dw
        c = np.float32(-2.0)
    if dw is not None:
        fx = fx * dw[None, :]
    rows = cp.arange(N)
    chunk = GEMM_CHUNK if chunk is None else int(chunk)
    best_i = best_s = None
    for r0 in range(0, R, chunk):
        r1 = min(R, r0 + chunk)
        S = dY @ fx[r0:r1].T  # (N, r1 - r0): the GEMM
        S *= c
        S += a[None, r0:r1]
        if b is not None:
            S += b[:, None]
        kk = min(k, r1 - r0)
        ci = cp.empty((N, kk), np.int64)
        cs = cp.empty((N, kk), np.float32)
        for j in range(kk):  # first minimum: the lowest index among equal scores
            i = S.argmin(axis=1)
            ci[:, j] = i + r0
            cs[:, j] = S[rows, i]
            S[rows, i] = np.float32(np.inf)
        if best_i is None:
            best_i, best_s = ci, cs
        else:  # earlier chunks hold lower indices: a stable sort by score keeps (score, index) order
            idx = cp.concatenate([best_i, ci], axis=1)
            sc = cp.concatenate([best_s, cs], axis=1)
            o = cp.argsort(sc, axis=1, kind="stable")[:, :k]
            best_i, best_s = cp.take_along_axis(idx, o, 1), cp.take_along_axis(sc, o, 1)
    if on_device:
        return best_i, best_s
    return cp.asnumpy(best_i), cp.asnumpy(best_s)
