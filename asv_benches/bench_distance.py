"""Orientation matching benchmarks: fused distance + argmin per backend, precision and metric,
next to the plain-library peer measured in the same run.

Peers (the unfused pipeline a user would write): on the CPU, NumPy (OpenBLAS) matmul + row
norms + argmin; on the GPU, CuPy (cuBLAS) GEMM + row norms + argmin at the matching precision
(fp32 and 3xtf32 compare against cuBLAS FP32, tf32 / bf16 against cuBLAS with TF32 / BF16
compute on FP32 storage, fp16 against an FP16 GEMM). Every benchmark reports time,
achieved TFLOP/s (2 R N P flops, the GEMM's) and its time relative to the peer.

Sizes follow the issue: CPU R = N = 2048, P = 4096; GPU R = N = 32768, P = 16384. On a loaded
2-core machine the full CPU set takes minutes; ``SPK_BENCH_SMALL=1`` shrinks both to smoke
sizes. Unavailable backends and precisions a backend cannot do are skipped by raising
``NotImplementedError`` in ``setup``.
"""

from __future__ import annotations


import numpy as np

from spkernels import backends
from spkernels.kernels import distance_argmin
from spkernels.kernels.distance import SUPPORTED_PRECISIONS

from .common import SMALL, best_time  # noqa: E402  (SPK_BENCH_SMALL=1 shrinks sizes for smoke runs)
CPU_SIZE = (256, 256, 512) if SMALL else (2048, 2048, 4096)
GPU_SIZE = (2048, 2048, 1024) if SMALL else (32768, 32768, 16384)
METRICS = ["euclidean", "poisson"]
CPU_PRECISIONS = ["fp32", "fp64"]
GPU_PRECISIONS = ["fp32", "3xtf32", "tf32", "bf16", "fp16"]




def _host_inputs(R, N, P, dtype, seed=0):
    rng = np.random.default_rng(seed)
    # Positive models (valid for poisson too); data a mixture of noisy model copies.
    X = (rng.random((R, P), dtype=np.float32) + np.float32(0.1)).astype(dtype)
    Y = (X[rng.integers(0, R, N)] * np.float32(3.0) + rng.random((N, P), dtype=np.float32)).astype(dtype)
    return X, Y


def numpy_peer(X, Y, metric):
    """NumPy/OpenBLAS pipeline: the R x N score matrix via one matmul, then argmin."""
    if metric == "euclidean":
        xn = np.einsum("ij,ij->i", X, X)
        yn = np.einsum("ij,ij->i", Y, Y)
        D = X @ Y.T
        D *= -2
        D += xn[:, None]
        D += yn[None, :]
    else:
        D = np.log(X) @ Y.T
        np.subtract(X.sum(axis=1)[:, None], D, out=D)
    return D.argmin(axis=0)


class CPUDistance:
    """Fused top-1 on the CPU backends; the NumPy peer is timed in the same setup."""

    params = (["cpu", "numba-cpu", "numpy"], CPU_PRECISIONS, METRICS)
    param_names = ["backend", "precision", "metric"]
    timeout = 900
    number = 1
    repeat = (1, 3, 60.0)

    def setup(self, backend, precision, metric):
        if not backends.is_available(backend):
            raise NotImplementedError(f"backend {backend} unavailable")
        if precision not in SUPPORTED_PRECISIONS[backend]:
            raise NotImplementedError(f"{backend} has no {precision}")
        R, N, P = CPU_SIZE
        self.flops = 2.0 * R * N * P
        dtype = np.float32 if precision == "fp32" else np.float64
        self.X, self.Y = _host_inputs(R, N, P, dtype)
        self.run = lambda: distance_argmin(self.X, self.Y, metric=metric, precision=precision, backend=backend)
        self.peer = lambda: numpy_peer(self.X, self.Y, metric)
        self.run()  # warm-up: JIT compilation, thread pools, first touch

    def time_distance_argmin(self, backend, precision, metric):
        self.run()

    def track_tflops(self, backend, precision, metric):
        return self.flops / best_time(self.run, repeat=1) / 1e12

    track_tflops.unit = "TFLOP/s"

    def track_ratio_vs_numpy(self, backend, precision, metric):
        t = best_time(self.run, repeat=1)
        self.peer()
        return t / best_time(self.peer, repeat=1)

    track_ratio_vs_numpy.unit = "time / NumPy peer time"


class CPUNumpyPeer:
    """The NumPy (OpenBLAS) peer on its own, for the record."""

    params = (CPU_PRECISIONS, METRICS)
    param_names = ["precision", "metric"]
    timeout = 600
    number = 1
    repeat = (1, 3, 60.0)

    def setup(self, precision, metric):
        R, N, P = CPU_SIZE
        self.flops = 2.0 * R * N * P
        self.X, self.Y = _host_inputs(R, N, P, np.float32 if precision == "fp32" else np.float64)
        self.peer = lambda: numpy_peer(self.X, self.Y, metric)
        self.peer()

    def time_numpy_peer(self, precision, metric):
        self.peer()

    def track_tflops(self, precision, metric):
        return self.flops / best_time(self.peer, repeat=1) / 1e12

    track_tflops.unit = "TFLOP/s"


# ----------------------------------------------------------------------------- GPU


def _cupy():
    try:
        import cupy
    except ImportError:
        raise NotImplementedError("CuPy is not installed") from None
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            raise NotImplementedError("no GPU")
    except cupy.cuda.runtime.CUDARuntimeError:
        raise NotImplementedError("no GPU") from None
    return cupy


def _device_inputs(cp, R, N, P, seed=0):
    rs = cp.random.RandomState(seed)
    X = rs.random_sample((R, P), dtype=cp.float32) + cp.float32(0.1)
    Y = rs.random_sample((N, P), dtype=cp.float32) * cp.float32(4.0)
    return X, Y


# Which cuBLAS configuration stands in for each of our precisions.
_PEER_OF = {"fp32": "fp32", "3xtf32": "fp32", "tf32": "tf32", "bf16": "bf16", "fp16": "fp16"}


class CupyPeer:
    """CuPy/cuBLAS pipeline at one precision: norms, GEMM into R x N, argmin."""

    def __init__(self, cp, X, Y, metric, precision):
        from cupy._core import _routines_linalg as rl

        self.cp, self.metric = cp, metric
        self.rl = rl
        self.compute = {
            "fp32": rl.COMPUTE_TYPE_FP32,
            "tf32": rl.COMPUTE_TYPE_TF32,
            "bf16": rl.COMPUTE_TYPE_BF16,
            "fp16": rl.COMPUTE_TYPE_DEFAULT,
        }[precision]
        self.dtype = cp.float16 if precision == "fp16" else cp.float32
        if metric == "euclidean":
            self.A = X.astype(self.dtype)
            self.a = (X * X).sum(axis=1)
            self.b = (Y * Y).sum(axis=1)
        else:
            self.A = cp.log(X).astype(self.dtype)
            self.a = X.sum(axis=1)
            self.b = None
        self.B = Y.astype(self.dtype)

    def __call__(self):
        cp, rl = self.cp, self.rl
        old = rl.get_compute_type(cp.float32)
        rl.set_compute_type(cp.float32, self.compute)
        try:
            G = (self.A @ self.B.T).astype(cp.float32, copy=False)
        finally:
            rl.set_compute_type(cp.float32, old)
        if self.metric == "euclidean":
            G *= -2
            G += self.a[:, None]
            G += self.b[None, :]
        else:
            cp.subtract(self.a[:, None], G, out=G)
        return G.argmin(axis=0)


class GPUDistance:
    """Fused top-1 on the GPU backends (device-resident inputs); the CuPy peer at the matching
    precision is timed in the same setup."""

    params = (["cuda", "numba-cuda"], GPU_PRECISIONS, METRICS)
    param_names = ["backend", "precision", "metric"]
    timeout = 1200
    number = 1
    repeat = (1, 5, 120.0)

    def setup(self, backend, precision, metric):
        if backends.cuda_simulator():
            raise NotImplementedError("the CUDA simulator is not timed")
        if not backends.is_available(backend):
            raise NotImplementedError(f"backend {backend} unavailable")
        if precision not in SUPPORTED_PRECISIONS[backend]:
            raise NotImplementedError(f"{backend} has no {precision}")
        cp = _cupy()
        R, N, P = GPU_SIZE
        self.flops = 2.0 * R * N * P
        self.X, self.Y = _device_inputs(cp, R, N, P)
        self.sync = cp.cuda.Device().synchronize
        self.run = lambda: distance_argmin(self.X, self.Y, metric=metric, precision=precision, backend=backend)
        self.peer = CupyPeer(cp, self.X, self.Y, metric, _PEER_OF[precision])
        self.run()
        self.sync()

    def time_distance_argmin(self, backend, precision, metric):
        self.run()
        self.sync()

    def track_tflops(self, backend, precision, metric):
        return self.flops / best_time(self.run, self.sync, repeat=2) / 1e12

    track_tflops.unit = "TFLOP/s"

    def track_ratio_vs_cupy(self, backend, precision, metric):
        t = best_time(self.run, self.sync, repeat=2)
        self.peer()
        self.sync()
        return t / best_time(self.peer, self.sync, repeat=2)

    track_ratio_vs_cupy.unit = "time / CuPy peer time"


class GPUCupyPeer:
    """The CuPy (cuBLAS) peer on its own: time and TFLOP/s per precision."""

    params = (["fp32", "tf32", "bf16", "fp16"], METRICS)
    param_names = ["precision", "metric"]
    timeout = 900
    number = 1
    repeat = (1, 5, 120.0)

    def setup(self, precision, metric):
        cp = _cupy()
        R, N, P = GPU_SIZE
        self.flops = 2.0 * R * N * P
        X, Y = _device_inputs(cp, R, N, P)
        self.sync = cp.cuda.Device().synchronize
        self.peer = CupyPeer(cp, X, Y, metric, precision)
        del X, Y
        self.peer()
        self.sync()

    def time_cupy_peer(self, precision, metric):
        self.peer()
        self.sync()

    def track_tflops(self, precision, metric):
        return self.flops / best_time(self.peer, self.sync, repeat=2) / 1e12

    track_tflops.unit = "TFLOP/s"


class GPUAlgorithmVsCublas:
    """The two top-1 algorithms of the ``cuda`` backend at the SPI size of the tuning issue
    (R = N = 10⁴, P = 16384, fp32, euclidean, device-resident): the fused kernel and the vendor
    GEMM + row terms + argmin (``algorithm="gemm"``), each as a fraction of cuBLAS SGEMM's time for
    the same product alone (``track_fraction_of_cublas`` = GEMM time / our time; the target for
    ``gemm`` is >= 0.9). ``SPK_BENCH_SMALL`` shrinks it to R = N = 2048, P = 1024."""

    params = (["fused", "gemm"],)
    param_names = ["algorithm"]
    timeout = 1200
    number = 1
    repeat = (1, 3, 120.0)

    def setup(self, algorithm):
        if not backends.is_available("cuda"):
            raise NotImplementedError("backend cuda unavailable")
        cp = _cupy()
        from spkernels.tuning import active

        R, N, P = (2048, 2048, 1024) if SMALL else (10_000, 10_000, 16384)
        X, Y = _device_inputs(cp, R, N, P)
        self.sync = cp.cuda.Device().synchronize

        def run():
            with active.using("distance", {"algorithm": algorithm}):
                return distance_argmin(X, Y, precision="fp32", backend="cuda")

        self.run = run
        self.peer = lambda: X @ Y.T
        self.run()
        self.peer()
        self.sync()

    def time_distance_argmin(self, algorithm):
        self.run()
        self.sync()

    def track_fraction_of_cublas(self, algorithm):
        ours = best_time(self.run, self.sync, repeat=2)
        return best_time(self.peer, self.sync, repeat=2) / ours

    track_fraction_of_cublas.unit = "cuBLAS GEMM time / our time"


# ----------------------------------------------------------------------------- user calls


_PEER_TOPK = r"""
import json, sys, time
import numpy as np
X = np.load(sys.argv[1]); Y = np.load(sys.argv[2]); k = int(sys.argv[3]); repeat = int(sys.argv[4])

def peer():
    D = X @ Y.T                      # (R, N): models x data, as a user writes it
    D *= -2
    D += np.einsum("ij,ij->i", X, X)[:, None]
    D += np.einsum("ij,ij->i", Y, Y)[None, :]
    if k == 1:
        return D.argmin(axis=0)
    part = np.argpartition(D, k - 1, axis=0)[:k]
    order = np.take_along_axis(D, part, axis=0).argsort(axis=0)
    return np.take_along_axis(part, order, axis=0)

peer()
best = float("inf")
for _ in range(repeat):
    t0 = time.perf_counter(); peer(); best = min(best, time.perf_counter() - t0)
print(json.dumps({"seconds": best}))
"""


def _threads():
    from spkernels.bench.machine import cpu_count

    return cpu_count()


def _blas_param():
    from ._peer_env import blas_config

    return [blas_config(_threads())]


class UserCallsVsNumpy:
    """``distance_argmin(models, data, k=k)`` as a user calls it (host arrays in, indices out),
    against the NumPy pipeline a user would write (``X @ Y.T`` + row norms + argmin, or
    argpartition + sort for k > 1) run in a fresh process without ``OPENBLAS_CORETYPE`` /
    ``OPENBLAS_L2_SIZE`` and with the same thread count; the ``peer`` parameter records the NumPy
    and BLAS that process loaded (threadpoolctl). Euclidean metric, R = N = 2048, P = 4096."""

    params = (["cpu", "numba-cpu"], CPU_PRECISIONS, [1, 10], _blas_param())
    param_names = ["backend", "precision", "k", "peer"]
    timeout = 900
    number = 1
    repeat = (1, 3, 60.0)

    def setup(self, backend, precision, k, peer):
        import tempfile

        if not backends.is_available(backend):
            raise NotImplementedError(f"backend {backend} unavailable")
        if SMALL and backend != "cpu":
            raise NotImplementedError("SPK_BENCH_SMALL: the cpu backend only")
        R, N, P = CPU_SIZE
        dtype = np.float32 if precision == "fp32" else np.float64
        self.X, self.Y = _host_inputs(R, N, P, dtype)
        self.run = lambda: distance_argmin(self.X, self.Y, k=k, precision=precision, backend=backend)
        self.run()  # JIT, thread pools, first touch
        self.dir = tempfile.TemporaryDirectory(prefix="spk-peer-")
        self.files = [f"{self.dir.name}/X.npy", f"{self.dir.name}/Y.npy"]
        np.save(self.files[0], self.X)
        np.save(self.files[1], self.Y)

    def teardown(self, backend, precision, k, peer):
        if getattr(self, "dir", None) is not None:  # asv tears down after a skipped setup too
            self.dir.cleanup()

    def _peer_seconds(self, k):
        from ._peer_env import run_peer

        code = _PEER_TOPK.replace("sys.argv[1]", repr(self.files[0])).replace("sys.argv[2]", repr(self.files[1]))
        code = code.replace("sys.argv[3]", str(int(k))).replace("sys.argv[4]", "3")
        return run_peer(code, _threads())["seconds"]

    def time_distance_argmin(self, backend, precision, k, peer):
        self.run()

    def track_ratio_vs_numpy(self, backend, precision, k, peer):
        ours = best_time(self.run, repeat=3)
        return ours / self._peer_seconds(k)

    track_ratio_vs_numpy.unit = "time / NumPy peer time"
