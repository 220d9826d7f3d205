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


# ----------------------------------------------------------------------------- user calls

USER_EPS = [1e-3, 1e-6, 1e-9]
USER_DTYPES = ["complex64", "complex128"]


def _finufft_param():
    try:
        import finufft
    except ImportError:
        return ["finufft not installed"]
    return [f"finufft {getattr(finufft, '__version__', '?')}, {os.cpu_count() or 1} threads"]


class UserCallsVsFinufft:
    """The NUFFT the way users call it, against finufft at its defaults with the same thread count,
    both timed in this process (best of ``REPEAT``), 81³ modes, ``CPU_POINTS`` points:

    - ``simple``: ``nufft3d1(x, y, z, c, n_modes, eps=...)`` / ``nufft3d2(x, y, z, f, eps=...)``
      (plan, points and execution inside the timing: what MTIP pays per generation);
    - ``plan``: a plan made once; ``setpts`` on the points and ``execute`` inside the timing.

    ``track_ratio_vs_finufft`` is our time over finufft's (< 1: ours is faster); the ``peer``
    parameter records finufft's version and threads. ``SPK_BENCH_SMALL=1`` keeps the cpu backend
    at eps 1e-6."""

    params = (["cpu", "numba-cpu"], [1, 2], USER_DTYPES, USER_EPS, ["simple", "plan"], _finufft_param())
    param_names = ["backend", "nufft_type", "dtype", "eps", "call", "peer"]
    timeout = 900

    def setup(self, backend, nufft_type, dtype, eps, call, peer):
        from spkernels import backends
        from spkernels.kernels import nufft as K

        try:
            import finufft
        except ImportError:
            _skip("finufft is not installed")
        if SMALL and (backend != "cpu" or eps != 1e-6):
            _skip("SPK_BENCH_SMALL: cpu at eps 1e-6 only")
        if dtype == "complex64" and eps < 1e-7:
            _skip("single precision reaches about 1e-7 (ours refuses a smaller eps; finufft would clamp it)")
        if not backends.is_available(backend):
            _skip(f"backend {backend} unavailable")
        why = K._family_unavailable(backend)
        if why:
            _skip(why)
        rng = np.random.default_rng(1)
        m = CPU_POINTS
        real = np.float32 if dtype == "complex64" else np.float64
        x, y, z = (rng.uniform(-np.pi, np.pi, m).astype(real) for _ in range(3))
        c = (rng.standard_normal(m) + 1j * rng.standard_normal(m)).astype(dtype)
        f = (rng.standard_normal(MODES) + 1j * rng.standard_normal(MODES)).astype(dtype)
        threads = os.cpu_count() or 1
        if call == "simple":
            if nufft_type == 1:
                self.ours = lambda: K.nufft3d1(x, y, z, c, MODES, eps=eps, backend=backend)
                self.peer = lambda: finufft.nufft3d1(x, y, z, c, MODES, eps=eps, nthreads=threads)
            else:
                self.ours = lambda: K.nufft3d2(x, y, z, f, eps=eps, backend=backend)
                self.peer = lambda: finufft.nufft3d2(x, y, z, f, eps=eps, nthreads=threads)
        else:
            ours = K.Plan(nufft_type, MODES, eps=eps, dtype=dtype, backend=backend)
            theirs = finufft.Plan(nufft_type, MODES, eps=eps, dtype=dtype, nthreads=threads)
            data = c if nufft_type == 1 else f

            def run(plan):
                plan.setpts(x, y, z)
                return plan.execute(data)

            self.ours = lambda: run(ours)
            self.peer = lambda: run(theirs)
        self.ours()  # JIT, FFT plans, first touch
        self.peer()

    def time_call(self, backend, nufft_type, dtype, eps, call, peer):
        self.ours()

    def track_ratio_vs_finufft(self, backend, nufft_type, dtype, eps, call, peer):
        ours = _best(self.ours, None, 3)
        theirs = _best(self.peer, None, 3)
        return ours / theirs

    track_ratio_vs_finufft.unit = "time / finufft time"
