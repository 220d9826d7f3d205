"""asv benchmarks of FFT-size advice (:mod:`spkernels.fft`) where it matters most: the Toeplitz
normal operator of the MTIP merge at the final stage of the demo, M = 69.

The operator embeds its kernel in a circulant grid ``L >= 2M - 1`` per axis: the first design
used exactly 2M = 138 = 2·3·23, the advice measures smooth sizes on this machine (see
``track_advised_size``). Both operators are built from the same points in the same process and
timed interleaved:

- ``ToeplitzApply.track_speedup_advised``: one application (``Re(AᴴWA u)`` on a real 69³ ``u``),
  plain 2M grid over advised grid, both with the current (pruned) transforms;
  ``track_speedup_vs_padded``: the first design's apply (full zero-padded ``rfftn``/``irfftn``
  on the 2M grid, the same kernel) over the advised one.
- ``Merge.track_speedup_advised``: one whole merge (:func:`spkernels.mtip.merging.merge`: type-1
  NUFFT of kernel and right-hand side, then CG for a fixed number of iterations) with the plain
  2M grid over the advised one. The CPU case keeps M = 69 with fewer images than the demo's
  3000 (the NUFFT's spreading, which no FFT size changes, would otherwise dominate a 2-core
  run); the GPU case uses the demo's size.

Under ``SPK_BENCH_SMALL`` (the test suite's smoke run, which saves nothing) both use M = 23
(2M = 46 = 2·23, the same kind of size) with one short round of advice and a 10-iteration merge of
few points, so the quick run stays cheap.
"""

from __future__ import annotations

import time

import numpy as np

from . import common

M = 23 if common.SMALL else 69
DEVICES = ["host", "gpu"]


def _xp(device):
    if device == "gpu":
        common.require_backend("cuda")
        try:
            import cupy
        except ImportError:
            common.skip("the GPU case needs CuPy")
        return cupy
    return np


def _sync(device):
    if device == "gpu":
        common.sync("cuda")


def _advise(device):
    """The advised circulant grid for M (measured into this run's tuning cache once)."""
    from spkernels import fft

    quick = dict(repeats=1, budget=0.5) if common.SMALL else {}
    return fft.advise((2 * M - 1,) * 3, real=True, backend="cuda" if device == "gpu" else "cpu", **quick)


def _interleaved(fns, device, rounds):
    """Shortest time of each function over `rounds` interleaved calls, in alternating order (other
    work on a shared machine only ever adds time; the first and second place of a pair differ)."""
    times = [[] for _ in fns]
    for r in range(rounds):
        order = list(enumerate(fns))
        for i, fn in (order if r % 2 == 0 else order[::-1]):  # alternate: no place is favoured
            _sync(device)
            t0 = time.perf_counter()
            fn()
            _sync(device)
            times[i].append(time.perf_counter() - t0)
    return [min(t) for t in times]


class ToeplitzApply:
    params = (DEVICES,)
    param_names = ["device"]
    timeout = 600
    number = 1
    repeat = 3

    def setup(self, device):
        from spkernels._arrays import fft_module
        from spkernels.kernels import ToeplitzNormalOperator

        xp = _xp(device)
        self.shape = _advise(device)
        rng = np.random.default_rng(0)
        n_pts = 2_000 if common.SMALL else 20_000
        pts = [xp.asarray(rng.uniform(-np.pi, np.pi, n_pts)) for _ in range(3)]
        w = xp.asarray(rng.uniform(0.5, 1.5, n_pts))
        backend = "cuda" if device == "gpu" else "auto"
        self.plain = ToeplitzNormalOperator(*pts, M, weights=w, eps=1e-6, backend=backend, fft_shape=(2 * M,) * 3)
        self.advised = ToeplitzNormalOperator(*pts, M, weights=w, eps=1e-6, backend=backend, fft_shape=self.shape)
        self.u = xp.asarray(rng.standard_normal((M, M, M)))
        fft, kh, big = fft_module(xp), self.plain.real_kernel_hat, (2 * M,) * 3

        def padded():
            return fft.irfftn(fft.rfftn(self.u, s=big) * kh, s=big)[:M, :M, :M]

        self.padded = padded
        ref = self.plain(self.u)
        for out in (self.advised(self.u), padded()):  # same operator, any grid, to rounding
            err = float(xp.linalg.norm(out - ref) / xp.linalg.norm(ref))
            if err > 1e-10:
                raise AssertionError(f"advised/padded apply differs from the plain one by {err:.2e}")
        self.rounds = 3 if common.SMALL else 9

    def time_apply_advised(self, device):
        self.advised(self.u)
        _sync(device)

    def track_speedup_advised(self, device):
        """t(plain 2M grid) / t(advised grid), interleaved in this process."""
        tp, ta = _interleaved([lambda: self.plain(self.u), lambda: self.advised(self.u)], device, self.rounds)
        return tp / ta

    track_speedup_advised.unit = "t(2M grid)/t(advised)"

    def track_speedup_vs_padded(self, device):
        """t(first design: full zero-padded rfftn/irfftn on the 2M grid) / t(advised apply)."""
        tp, ta = _interleaved([self.padded, lambda: self.advised(self.u)], device, self.rounds)
        return tp / ta

    track_speedup_vs_padded.unit = "t(padded 2M)/t(advised)"

    def track_advised_size(self, device):
        """The advised circulant size per axis for M = 69 (2M - 1 = 137 at least; 2M = 138)."""
        return float(self.shape[0])

    track_advised_size.unit = "voxels per axis"


class Merge:
    params = (DEVICES,)
    param_names = ["device"]
    timeout = 900
    number = 1
    repeat = 1

    def setup(self, device):
        from spkernels.mtip.grid import ball

        xp = _xp(device)
        if device == "gpu":
            self.backend = "cuda"
        else:
            from spkernels import backends

            self.backend = "cpu" if backends.is_available("cpu") else "numba-cpu"
            common.require_backend(self.backend)
        self.shape = _advise(device)
        if device == "gpu":
            n_img, n_pix, iters = 3000, 3200, 60
        elif common.SMALL:
            n_img, n_pix, iters = 40, 400, 10
        else:
            n_img, n_pix, iters = 300, 1000, 40
        rng = np.random.default_rng(0)
        r = 0.49 * (M - 1) / M * np.sqrt(rng.uniform(0, 1, n_pix))
        ph = rng.uniform(0, 2 * np.pi, n_pix)
        s = np.stack([r * np.cos(ph), r * np.sin(ph), 0.05 * r * r], axis=1)
        q = rng.standard_normal((n_img, 4))
        self.q = q / np.linalg.norm(q, axis=1, keepdims=True)
        self.s = xp.asarray(s)
        self.w = xp.asarray(rng.uniform(0.5, 1.5, n_pix))
        self.data = xp.asarray(rng.poisson(5.0, (n_img, n_pix)).astype(np.float64))
        self.support = ball(M, M // 2, xp)
        # cg_tol = 0 never stops early: both grids run exactly `iters` iterations
        self.kw = dict(eps=1e-4, backend=self.backend, tikhonov=1e-4, cg_tol=0.0, cg_maxiter=iters)
        self.rounds = 1 if common.SMALL else 4
        a = self._merge((2 * M,) * 3)
        b = self._merge(self.shape)
        err = float(xp.linalg.norm(a - b) / xp.linalg.norm(a))
        if err > 1e-6:
            raise AssertionError(f"the advised grid's merge differs from the 2M grid's by {err:.2e}")

    def _merge(self, shape):
        from spkernels.mtip.merging import merge

        ac, _ = merge(self.data, self.s, self.w, self.q, M, 1.0, self.support, None, fft_shape=shape, **self.kw)
        return ac

    def _merge_padded(self):
        """The merge with the first design's operator: full zero-padded transforms on the 2M grid."""
        import spkernels.kernels as K

        base = K.ToeplitzNormalOperator
        K.ToeplitzNormalOperator = _PaddedOperator
        try:
            return self._merge((2 * M,) * 3)
        finally:
            K.ToeplitzNormalOperator = base

    def track_speedup_advised(self, device):
        """t(merge with the 2M grid) / t(merge with the advised grid), interleaved."""
        tp, ta = _interleaved([lambda: self._merge((2 * M,) * 3), lambda: self._merge(self.shape)], device,
                              self.rounds)
        return tp / ta

    track_speedup_advised.unit = "t(2M grid)/t(advised)"

    def track_speedup_vs_padded(self, device):
        """t(merge, first design's operator: padded transforms, 2M grid) / t(merge, advised grid)."""
        tp, ta = _interleaved([self._merge_padded, lambda: self._merge(self.shape)], device, self.rounds)
        return tp / ta

    track_speedup_vs_padded.unit = "t(padded 2M)/t(advised)"


def _padded_operator_class():
    from spkernels._arrays import fft_module
    from spkernels.kernels import ToeplitzNormalOperator

    class PaddedOperator(ToeplitzNormalOperator):
        """The first design's real apply: zero pad to the full grid, rfftn, multiply, irfftn, crop."""

        def matvec(self, u):
            fft, big = fft_module(self._xp), self.fft_shape
            n0, n1, n2 = self.n_modes
            return fft.irfftn(fft.rfftn(u, s=big) * self.real_kernel_hat, s=big)[:n0, :n1, :n2]

        __call__ = matvec

    return PaddedOperator


_PaddedOperator = _padded_operator_class()
