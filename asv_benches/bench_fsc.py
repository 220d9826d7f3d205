"""asv benchmarks for Fourier shell correlation.

``time_fsc``: the whole call (two real-to-complex FFTs plus the shell accumulation).
``track_accumulate_gbps``: the accumulation kernel alone on precomputed half spectra, as GB/s of
the two spectra it reads. ``track_fraction_of_copy_bandwidth`` divides that by the harness's
copy ceiling for the backend's device, measured in the same run (device-to-device on a GPU,
where the issue's target is ">= 50% of memory bandwidth"; host memcpy on the CPU). GPU sizes 256³ and 512³; the CPU sizes stay at 128³ so a run is quick.
"""

from __future__ import annotations


import numpy as np

from spkernels import backends

from .common import SMALL, best_time
from spkernels.kernels import fsc
from spkernels.kernels.fsc import _shells

GPU = ("cuda", "numba-cuda")


def _sync():
    try:
        import cupy

        cupy.cuda.get_current_stream().synchronize()
    except ImportError:
        pass


def _best(fn, repeat=5):
    return best_time(fn, None, repeat)


CPU_N = 48 if SMALL else 128  # SPK_BENCH_SMALL=1: smoke runs


class FSC:
    params = (["cuda", "numba-cuda", "cpu", "numba-cpu"], [CPU_N, 256, 512], ["float32", "float64"])
    param_names = ["backend", "n", "dtype"]
    timeout = 300

    def setup(self, backend, n, dtype):
        if not backends.is_available(backend):
            raise NotImplementedError(f"{backend} unavailable")
        if (backend in GPU) != (n >= 256):
            raise NotImplementedError(f"GPU backends at 256³/512³, CPU backends at {CPU_N}³")
        rng = np.random.default_rng(0)
        v1 = rng.standard_normal((n, n, n), dtype=np.float32).astype(dtype)
        v2 = (v1 + rng.standard_normal((n, n, n), dtype=np.float32)).astype(dtype)
        self.backend = backend
        _, self.n_shells, self.scale = _shells((n, n, n), 1.0, None)
        self.nx = n
        if backend in GPU:
            try:
                import cupy
            except ImportError:
                raise NotImplementedError("GPU FSC benchmarks need CuPy") from None
            self.v1, self.v2 = cupy.asarray(v1), cupy.asarray(v2)
            self.f1 = cupy.fft.rfftn(self.v1)
            self.f2 = cupy.fft.rfftn(self.v2)
        else:
            import scipy.fft

            self.v1, self.v2 = v1, v2
            self.f1 = scipy.fft.rfftn(v1, workers=-1)
            self.f2 = scipy.fft.rfftn(v2, workers=-1)
        self.spectrum_bytes = 2 * self.f1.nbytes
        self._accumulate()  # JIT and plan warm-up
        fsc(self.v1, self.v2, backend=backend)
        _sync()

    def _accumulate(self):
        b = self.backend
        if b == "cpu":
            backends.core().fsc_accumulate_cpu(self.f1, self.f2, self.nx, *self.scale, self.n_shells)
        elif b == "numba-cpu":
            from spkernels.backends.numba_cpu.fsc import accumulate

            accumulate(self.f1, self.f2, self.nx, *self.scale, self.n_shells)
        elif b == "numba-cuda":
            from spkernels.backends.numba_cuda.fsc import accumulate

            accumulate(self.f1, self.f2, self.nx, *self.scale, self.n_shells)
        else:
            import cupy

            from spkernels._arrays import device_pointer

            out = cupy.empty(self.n_shells * 4)
            from spkernels.backends._shared import core_tag

            dt = core_tag(self.f1.dtype)
            backends.core().fsc_accumulate_cuda(device_pointer(self.f1), device_pointer(self.f2), dt, self.nx,
                                                self.nx, self.nx, *self.scale, self.n_shells, device_pointer(out),
                                                cupy.cuda.get_current_stream().ptr)
        _sync()

    def time_fsc(self, backend, n, dtype):
        fsc(self.v1, self.v2, backend=backend)
        _sync()

    def time_accumulate(self, backend, n, dtype):
        self._accumulate()

    def track_accumulate_gbps(self, backend, n, dtype):
        return self.spectrum_bytes / _best(self._accumulate) / 1e9

    track_accumulate_gbps.unit = "GB/s"

    def track_fraction_of_copy_bandwidth(self, backend, n, dtype):
        # Against this run's measured copy ceiling of the backend's device (host memcpy for CPU
        # backends, device-to-device copy on a GPU): the target is >= 0.5 on GPUs.
        from .common import fraction_of_ceiling

        return fraction_of_ceiling(self.spectrum_bytes / _best(self._accumulate), "copy", backend)

    track_fraction_of_copy_bandwidth.unit = "fraction"
