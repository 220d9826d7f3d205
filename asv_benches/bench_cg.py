"""asv benchmarks for conjugate gradient on the MTIP merge operator.

Operator (REFERENCE §1, merge step): ``W(u) = Re(AᴴA u) + rλ·u`` on a real M³ autocorrelation,
with ``AᴴA`` the :class:`~spkernels.kernels.ToeplitzNormalOperator` of 20 000 random points
(type-2 NUFFT points; its setup, one type-1 NUFFT onto the 2M grid, is not timed). Each CG
iteration therefore costs one rfftn/irfftn pair on the operator's circulant grid (L >= 2M - 1 per
axis, the size :func:`spkernels.fft.advise` gives; pruned on the host) plus the solver's vector work.

Peers measured in the same run on the same operator: ``scipy.sparse.linalg.cg`` (CPU backends)
and ``cupyx.scipy.sparse.linalg.cg`` (GPU backends), both with rtol = atol = 0 so they run
exactly ``ITERS`` iterations like ours. ``track_ratio_vs_scipy`` is our time per iteration over
theirs (issue target for ``cpu``: <= 0.8). ``track_ratio_vs_operator`` is our time per iteration
over one operator application alone (issue target for ``cuda``: <= 1.3).

CPU backends run M = 81 only: building the M = 128 kernel needs a 512³ complex fine grid, too
slow for a quick run on a small CPU; GPU backends run M = 81 and 128.
"""

from __future__ import annotations


import numpy as np

from spkernels import backends

from .common import SMALL, best_time
from spkernels.kernels import ToeplitzNormalOperator, cg

GPU = ("cuda", "numba-cuda")
ITERS = 5
N_POINTS = 20_000
_CACHE: dict = {}


def _sync():
    try:
        import cupy

        cupy.cuda.get_current_stream().synchronize()
    except ImportError:
        pass


def _operator(m, gpu):
    key = (m, gpu)
    if key not in _CACHE:
        rng = np.random.default_rng(0)
        pts = [rng.uniform(-np.pi, np.pi, N_POINTS) for _ in range(3)]
        if gpu:
            import cupy

            pts = [cupy.asarray(p) for p in pts]
        top = ToeplitzNormalOperator(*pts, m, eps=1e-6)
        lam = N_POINTS / m**3 / 1000.0  # cmtip's r-lambda scale: Mtot / N / 1000
        _CACHE[key] = (top, lam)
    return _CACHE[key]


def _best(fn, repeat=3):
    return best_time(fn, _sync, repeat)


CPU_M = 33 if SMALL else 81  # SPK_BENCH_SMALL=1: smoke runs


class CGMerge:
    params = (["cuda", "numba-cuda", "cpu", "numba-cpu"], [CPU_M, 128])
    param_names = ["backend", "M"]
    timeout = 600

    def setup(self, backend, m):
        if not backends.is_available(backend):
            raise NotImplementedError(f"{backend} unavailable")
        gpu = backend in GPU
        if not gpu and m != CPU_M:
            raise NotImplementedError(f"CPU backends run M = {CPU_M} only (see module docstring)")
        if gpu:
            try:
                import cupy  # noqa: F401
            except ImportError:
                raise NotImplementedError("GPU CG benchmarks need CuPy") from None
        top, lam = _operator(m, gpu)
        self.backend = backend
        rng = np.random.default_rng(1)
        b = rng.standard_normal((m, m, m))
        if gpu:
            import cupy

            b = cupy.asarray(b)
            xp = cupy
            from cupyx.scipy.sparse.linalg import LinearOperator as LinOp, cg as peer_cg
        else:
            xp = np
            from scipy.sparse.linalg import LinearOperator as LinOp, cg as peer_cg
        self.b = b
        self.op = lambda v: top(v) + lam * v
        n = m**3
        self.lin = LinOp((n, n), matvec=lambda v: self.op(v.reshape(m, m, m)).reshape(-1), dtype=np.float64)
        self.peer_cg = peer_cg
        self.b_flat = b.reshape(-1)
        self.xp = xp
        # Warm up JIT compilation and FFT plans.
        self._ours(2)
        self._peer(2)
        self.op(b)
        _sync()

    def _ours(self, iters=ITERS):
        res = cg(self.op, self.b, tol=0.0, maxiter=iters, backend=self.backend, check_every=iters)
        assert res.iterations == iters, res.status
        _sync()

    def _peer(self, iters=ITERS):
        try:
            self.peer_cg(self.lin, self.b_flat, rtol=0.0, atol=0.0, maxiter=iters)
        except TypeError:  # older cupyx/scipy spell the relative tolerance `tol`
            self.peer_cg(self.lin, self.b_flat, tol=0.0, atol=0.0, maxiter=iters)
        _sync()

    def time_cg_iterations(self, backend, m):
        self._ours()

    def time_peer_cg_iterations(self, backend, m):
        self._peer()

    def time_operator(self, backend, m):
        self.op(self.b)
        _sync()

    def track_ratio_vs_scipy(self, backend, m):
        return _best(self._ours) / _best(self._peer)

    track_ratio_vs_scipy.unit = "ratio"

    def track_ratio_vs_operator(self, backend, m):
        per_iter = _best(self._ours) / ITERS
        return per_iter / _best(lambda: self.op(self.b))

    track_ratio_vs_operator.unit = "ratio"

    def track_seconds_per_iteration(self, backend, m):
        return _best(self._ours) / ITERS

    track_seconds_per_iteration.unit = "seconds"
