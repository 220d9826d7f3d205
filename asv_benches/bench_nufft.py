"""asv benchmarks of the 3-D NUFFT (issue 3): points/s for type 1 (insertion) and type 2 (slicing).

Shapes (eps 1e-6):

- CPU: 81^3 modes, complex128, ``CPU_POINTS`` points (the issue's 1.6e6 by default; set
  ``SPK_BENCH_NUFFT_CPU_POINTS`` to change it), backends ``cpu``, ``numba-cpu`` and finufft
  with the same thread count (``os.cpu_count()``, which is also what our FFT uses).
- GPU (the MTIP shape, 1e4 images x 128^2 pixels): 81^3 modes, complex64, 1.6e8 points,
  backends ``cuda``, ``numba-cuda`` and cufinufft when it imports. Skipped without a GPU.

Type 1 runs with ``method`` gather and scatter (the baseline); type 2 has no method, so its
"scatter" rows are skipped. Plans are built and points set in ``setup`` (reused plans are the
use case); ``time_execute`` times one ``execute``. ``track_points_per_second`` and
``track_ratio_vs_finufft`` / ``track_ratio_vs_cufinufft`` (our time / the peer's time, < 1 is
faster) time the executes themselves in the same process, best of ``REPEAT``.
"""

from __future__ import annotations

import os

import numpy as np

from .common import SMALL, best_time

EPS = 1e-6
MODES = (81, 81, 81)
CPU_POINTS = int(float(os.environ.get("SPK_BENCH_NUFFT_CPU_POINTS", "2e4" if SMALL else "1.6e6")))
GPU_POINTS = int(float(os.environ.get("SPK_BENCH_NUFFT_GPU_POINTS", "1.6e8")))
REPEAT = 2


def _skip(why):
    raise NotImplementedError(why)


def _best(fn, sync, repeat=REPEAT):
    return best_time(fn, sync, repeat)


def _nothing():
    pass


class _Base:
    params = None
    param_names = ["backend", "nufft_type", "method"]
    timeout = 900
    peer = None  # name of the outside library row

    def _ours_available(self, backend):
        from spkernels.kernels import nufft as K

        from spkernels import backends

        if not backends.is_available(backend):
            _skip(f"backend {backend} unavailable")
        why = K._family_unavailable(backend)
        if why:
            _skip(why)

    def setup(self, backend, nufft_type, method):
        if nufft_type == 2 and method == "scatter":
            _skip("type 2 has no spreading method")
        if backend == self.peer and method == "scatter":
            _skip(f"{self.peer} has one method")
        if backend != self.peer:
            self._ours_available(backend)
        self._prepare(backend)
        self.m = self.npoints
        if backend == self.peer:
            self.run = self._peer_plan(nufft_type)
        else:
            from spkernels.kernels import Plan

            plan = Plan(nufft_type, MODES, eps=EPS, dtype=self.dtype, backend=backend, method=method)
            plan.setpts(self.x, self.y, self.z)
            data = self.c if nufft_type == 1 else self.f
            self.run = lambda: plan.execute(data)
        self.run()  # JIT, FFT plans, memory pools
        self.sync()
        self.backend = backend
        self.nufft_type = nufft_type


    def _ratio(self, backend, nufft_type):
        peer = self._peer_plan(nufft_type)
        peer()
        self.sync()
        ours = _best(self.run, self.sync)
        theirs = _best(peer, self.sync)
        return ours / theirs


class _Timings:
    def time_execute(self, backend, nufft_type, method):
        self.run()
        self.sync()

    def track_points_per_second(self, backend, nufft_type, method):
        return self.m / _best(self.run, self.sync)

    track_points_per_second.unit = "points/s"


class _Ratio:
    """Ratio tracks live in their own classes: asv only skips on NotImplementedError raised in
    ``setup``, so a missing peer library (cufinufft has no wheel on the GPU machine) must be
    found there, not inside a track."""

    def setup(self, backend, nufft_type, method):
        if backend == self.peer:
            _skip("ratio of the peer to itself")
        try:
            __import__(self.peer)
        except ImportError:
            _skip(f"{self.peer} is not installed")
        super().setup(backend, nufft_type, method)


class _CPUInputs(_Base):
    """cpu and numba-cpu against finufft (same thread count), complex128."""

    params = (["cpu", "numba-cpu", "finufft"], [1, 2], ["gather", "scatter"])
    peer = "finufft"
    dtype = "complex128"
    npoints = CPU_POINTS
    sync = staticmethod(_nothing)

    def _prepare(self, backend):
        rng = np.random.default_rng(0)
        m = self.npoints
        self.x, self.y, self.z = (rng.uniform(-np.pi, np.pi, m) for _ in range(3))
        self.c = rng.standard_normal(m) + 1j * rng.standard_normal(m)
        self.f = rng.standard_normal(MODES) + 1j * rng.standard_normal(MODES)

    def _peer_plan(self, nufft_type):
        try:
            import finufft
        except ImportError:
            _skip("finufft is not installed")
        plan = finufft.Plan(nufft_type, MODES, eps=EPS, nthreads=os.cpu_count() or 1)
        plan.setpts(self.x, self.y, self.z)
        data = self.c if nufft_type == 1 else self.f
        return lambda: plan.execute(data)



class _GPUInputs(_Base):
    """cuda and numba-cuda against cufinufft at the MTIP shape, complex64, data on the GPU."""

    params = (["cuda", "numba-cuda", "cufinufft"], [1, 2], ["gather", "scatter"])
    peer = "cufinufft"
    dtype = "complex64"
    npoints = GPU_POINTS

    @staticmethod
    def sync():
        import cupy

        cupy.cuda.Device().synchronize()

    def _prepare(self, backend):
        try:
            import cupy
        except ImportError:
            _skip("CuPy is not installed")
        try:
            if cupy.cuda.runtime.getDeviceCount() == 0:
                _skip("no CUDA GPU")
        except cupy.cuda.runtime.CUDARuntimeError:
            _skip("no CUDA GPU")
        rng = cupy.random.default_rng(0)
        m = self.npoints
        two_pi = np.float32(2 * np.pi)
        self.x, self.y, self.z = ((rng.random(m, dtype=cupy.float32) - np.float32(0.5)) * two_pi for _ in range(3))
        self.c = (rng.standard_normal(m, dtype=cupy.float32)
                  + 1j * rng.standard_normal(m, dtype=cupy.float32)).astype(cupy.complex64)
        self.f = (rng.standard_normal(MODES, dtype=cupy.float32)
                  + 1j * rng.standard_normal(MODES, dtype=cupy.float32)).astype(cupy.complex64)

    def _peer_plan(self, nufft_type):
        try:
            import cufinufft
        except ImportError:
            _skip("cufinufft is not installed")
        plan = cufinufft.Plan(nufft_type, MODES, eps=EPS, dtype="complex64")
        plan.setpts(self.x, self.y, self.z)
        data = self.c if nufft_type == 1 else self.f
        return lambda: plan.execute(data)


class NufftCPU(_Timings, _CPUInputs):
    """cpu and numba-cpu against finufft (same thread count), complex128: time and points/s."""


class NufftCPURatio(_Ratio, _CPUInputs):
    """Our time over finufft's, both measured in this process."""

    def track_ratio_vs_finufft(self, backend, nufft_type, method):
        return self._ratio(backend, nufft_type)

    track_ratio_vs_finufft.unit = "ratio"


class NufftGPU(_Timings, _GPUInputs):
    """cuda and numba-cuda against cufinufft at the MTIP shape, complex64: time and points/s."""


class NufftGPURatio(_Ratio, _GPUInputs):
    """Our time over cufinufft's, both measured in this process (skipped without cufinufft)."""

    def track_ratio_vs_cufinufft(self, backend, nufft_type, method):
        return self._ratio(backend, nufft_type)

    track_ratio_vs_cufinufft.unit = "ratio"
