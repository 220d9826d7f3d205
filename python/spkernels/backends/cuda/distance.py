"""The distance family on the GPU: the CUDA C++ launchers of ``spkernels._core``.

It implements the distance contract stated in :mod:`spkernels.backends.numpy.distance`.

``precision`` (fp32, 3xtf32, tf32, bf16, fp16; already checked) selects the launcher's GEMM
path. Host inputs are copied to the device and the results come back to the host; device inputs
(``__cuda_array_interface__``) are passed by pointer and the results stay on the device.
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
    out_idx = _arrays.device_empty(S, np.int64)
    out_val = _arrays.device_empty(S, np.float32)
    core_function("segmented_argmin_cuda")(_arrays.device_pointer(dv), _arrays.device_pointer(do), S,
                                      _arrays.device_pointer(out_idx), _arrays.device_pointer(out_val), 0)
    if on_device:
        return out_idx, out_val
    return _arrays.to_host(out_idx), _arrays.to_host(out_val)
