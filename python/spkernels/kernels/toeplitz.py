"""Toeplitz normal operator: ``AᴴWA`` for the type-2 NUFFT ``A`` without any NUFFT per use.

``(A u)_j = Σ_k u_k exp(-i k·x_j)`` (type 2, finufft's isign -1, modes ``k`` in
``[-N/2, (N-1)/2]`` per axis), so ``(AᴴWAu)_k = Σ_k' T(k - k') u_k'`` with
``T(m) = Σ_j w_j exp(+i m·x_j)``: a 3-D Toeplitz (convolution) matrix. ``T`` on
``m ∈ [-N, N-1]`` is one type-1 NUFFT of the weights onto the 2N grid
(:func:`spkernels.kernels.nufft3d1`), made once. Embedded in a circulant of any size
``L >= 2N - 1`` per axis, each application is zero pad → FFT → multiply by the kernel's FFT →
inverse FFT → crop. The products only ever read the lags ``|d| <= N - 1``: lag ``d`` sits at
index ``d mod L`` and every other entry of the embedding is zero (never a wrapped copy of a
NUFFT mode: the 2N grid's extra mode ``-N`` is simply not used), so the result does not depend
on ``L`` beyond rounding. ``L`` defaults to :func:`spkernels.fft.advise`'s measured fastest size
``>= 2N - 1`` (the plain 2N of the first design is 138 = 2·3·23 at N = 69; the advice picks a
7- or 11-smooth size such as 140 or 144). On the host the transforms are pruned: the zero
padding is never transformed (the last axis's real FFT runs over the N² input rows only, the
middle axis over N planes) and the inverse stops computing rows the crop drops, about 0.6 of
the work of a full L³ transform pair.

Real inputs use real-to-complex transforms and apply ``Re(AᴴWA u)``: for a real unknown
(MTIP's autocorrelation) that is the normal operator of the real least-squares problem
``min_u ||W^½(A u - b)||²``, and its circulant kernel ``Re T(m) = (T(m) + T(-m))/2`` is real
and even, so its spectrum is real. Complex inputs get the full complex ``AᴴWA u``.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from .._arrays import ensure_array, ensure_finite, ensure_fits, ensure_sizes, fft_module, fmt_sizes, is_device_array

__all__ = ["ToeplitzNormalOperator"]

log = logging.getLogger("spkernels.kernels.toeplitz")


def _per_point(name, a, m, kinds, what):
    """`a` validated as one finite number per point (dtype kind in `kinds`, described as `what`)."""
    a = ensure_array(name, a, ndim=1)
    if np.dtype(a.dtype).kind not in kinds:
        raise TypeError(f"`{name}` must be {what}, got {np.dtype(a.dtype).name}")
    if int(a.shape[0]) != m:
        raise ValueError(f"`{name}` has {a.shape[0]} entries but there are {m} points")
    ensure_finite(name, a)
    return a


def _embed(t, n_modes, shape, xp):
    """The circulant embedding (`shape`) of a kernel `t` on the 2N grid (mode d at index d + N):
    lag d with |d| <= N - 1 at index d mod L, zeros elsewhere."""
    out = xp.zeros(tuple(shape), dtype=t.dtype)
    src, dst = [], []
    for n, L in zip(n_modes, shape):
        lags = np.arange(-(n - 1), n)
        src.append(xp.asarray(lags + n))
        dst.append(xp.asarray(lags % L))
    out[xp.ix_(*dst)] = t[xp.ix_(*src)]
    return out


class ToeplitzNormalOperator:
    """``AᴴWA`` for the type-2 NUFFT ``A`` at points (x, y, z), applied by FFTs.

    Parameters
    ----------
    x, y, z : 1-D arrays (M,), float32 or float64, in [-3π, 3π)
        NUFFT points (finufft conventions); NumPy or GPU arrays. The kernel is built in float64.
    n_modes : int or tuple of 3 ints
        Grid size (N1, N2, N3) of the unknown; axis 0 pairs with `x`.
    weights : array (M,), optional
        Real, finite per-point weights (W = diag(weights)); default ones.
    eps : float
        Tolerance of the type-1 NUFFT that builds the kernel.
    backend : str
        Backend for the NUFFT (see :func:`spkernels.kernels.nufft3d1`). The per-application
        FFTs use scipy.fft on the host and cupy.fft when the points are on the GPU.
    comm : mpi4py communicator, optional
        Points are split over ranks: the kernel is summed over all ranks before use, so every
        rank applies the operator of all the points (not just its own).
    values : array (M,), optional
        Data ``b`` at the points: the right-hand side ``AᴴW b`` of the normal equations is then
        made in the same NUFFT pass as the kernel (the modes of the 2N grid include the N grid's,
        so one type-1 transform of two vectors serves both) and kept as :attr:`adjoint`,
        complex (N1, N2, N3), summed over ranks under `comm`.
    fft_shape : int or tuple of 3 ints, optional
        Size ``L`` of the circulant embedding per axis, each ``>= 2 N_i - 1``; default the
        measured advice of :func:`spkernels.fft.advise` for real transforms of
        ``(2N1-1, 2N2-1, 2N3-1)`` (the rule's sizes under ``SPK_TUNING=off``; under `comm`,
        rank 0's choice for every rank). Kept as :attr:`fft_shape`.

    Notes
    -----
    The object is LinearOperator-like: ``shape``, ``dtype``, ``matvec``, ``__call__``,
    ``@``. ``matvec`` accepts (N1, N2, N3) or flat (N1·N2·N3,) vectors and returns the same
    shape; real input gives the real part (see the module docstring), complex input the full
    product. Memory: the NUFFT's 2N grid and the kernel embedded in the L grid, complex128
    (plus a real half spectrum).
    """

    def __init__(self, x, y, z, n_modes, weights=None, *, eps: float = 1e-9, backend: str = "auto", comm=None,
                 values=None, fft_shape=None):
        from .. import fft as _fftsize
        from .nufft import _check_points, nufft3d1  # the NUFFT family owns validation of points and eps

        n_modes = ensure_sizes("n_modes", n_modes, 3, low=1)
        least = tuple(2 * n - 1 for n in n_modes)
        if fft_shape is not None:
            fft_shape = ensure_sizes("fft_shape", fft_shape, 3, low=1)
            for L, lo in zip(fft_shape, least):
                if L < lo:
                    raise ValueError(f"`fft_shape` must be at least 2N-1 = {fmt_sizes(least)} per axis, "
                                     f"got {fmt_sizes(fft_shape)}")
        # Before anything is built: the kernel's 2N grid and its L-grid embedding (complex128,
        # its FFT and a real half spectrum) must fit, computed in Python integers so huge sizes
        # answer at once (with the rule's L when none is given: advice measures only what fits).
        # The smallest grid first: a size that cannot fit is refused before a smooth size is
        # searched for (10**5000 modes must answer at once).
        def check_fits(shape):
            big_voxels = math.prod(2 * n for n in n_modes) + math.prod(shape)
            ensure_fits("n_modes", 2 * 16 * big_voxels,
                        f"the Toeplitz kernel on the 2N grid {fmt_sizes(2 * n for n in n_modes)} and its "
                        f"circulant grid {fmt_sizes(shape)}")

        check_fits(fft_shape or least)
        plan_shape = fft_shape or tuple(_fftsize.good_size(lo, backend="cpu") for lo in least)
        check_fits(plan_shape)
        x, y, z = _check_points(x, y, z)  # float32/float64 1-D, same length, finite, in range
        self.n_modes = n_modes
        on_device = is_device_array(x)
        if fft_shape is None:
            from .. import parallel

            # Under MPI rank 0 chooses for all, so every rank applies the same operator bitwise.
            if parallel.is_root(comm):
                fft_shape = _fftsize.advise(least, real=True, backend="cuda" if on_device else "cpu")
            fft_shape = parallel.bcast(fft_shape, comm)
        self.fft_shape = tuple(int(L) for L in fft_shape)
        self.on_device = on_device
        if on_device:
            import cupy as xp
        else:
            xp = np
        fft = fft_module(xp)
        self._xp, self._fft = xp, fft
        x, y, z = (xp.asarray(a, dtype=np.float64) for a in (x, y, z))
        m = int(x.shape[0])
        if weights is None:
            c = xp.ones(m, dtype=np.complex128)
        else:
            weights = _per_point("weights", weights, m, "fiu", "real (float or integer)")
            c = xp.asarray(weights, dtype=np.float64).astype(np.complex128)
        if values is not None:
            values = _per_point("values", values, m, "fiuc", "real or complex")
            c = xp.stack([c, c * xp.asarray(values, dtype=np.complex128)])
        big = tuple(2 * n for n in n_modes)
        t = nufft3d1(x, y, z, c, big, eps=eps, isign=+1, backend=backend)
        t = xp.ascontiguousarray(xp.asarray(t))
        if comm is not None:
            from .. import parallel

            t = parallel.allreduce_sum(t, comm)
        self.adjoint = None
        if values is not None:
            # Mode k sits at index k + n//2 of an n grid, at k + n of the 2n grid.
            crop = tuple(slice(n - n // 2, 2 * n - n // 2) for n in n_modes)
            self.adjoint = xp.ascontiguousarray(t[1][crop])
            t = t[0]
        # Index b of the 2N grid holds mode b - N; the circulant wants lag d (|d| <= N-1, the
        # only lags a product reads) at index d mod L, and zeros everywhere else.
        self._circ = _embed(t, n_modes, self.fft_shape, xp)
        self._kernel_hat = None  # complex spectrum: made on the first complex application
        # Real inputs: kernel Re T(m) = (T(m) + T(-m))/2 is real and even; keep its rfft half.
        circ_re = xp.ascontiguousarray(self._circ.real)
        self.real_kernel_hat = fft.rfftn(circ_re).real.copy()
        self.size = int(np.prod(n_modes))
        self.shape = (self.size, self.size)
        self.dtype = np.dtype(np.complex128)
        self.n_points = m
        log.debug("Toeplitz kernel for %d points on %s (2N grid %s, circulant %s)", m, n_modes, big,
                  self.fft_shape)

    @property
    def kernel_hat(self):
        """Spectrum of the complex circulant kernel (made once, on first use: MTIP's real
        unknowns only ever need :attr:`real_kernel_hat`)."""
        if self._kernel_hat is None:
            self._kernel_hat = self._fft.fftn(self._circ)
        return self._kernel_hat

    def matvec(self, u):
        """``AᴴWA u`` (complex `u`) or ``Re(AᴴWA u)`` (real `u`); the output has `u`'s shape."""
        xp, fft = self._xp, self._fft
        if not is_device_array(u):
            u = ensure_array("u", u)
        if is_device_array(u) != self.on_device:
            raise ValueError("`u` must live on the same device as the operator's points")
        shape_in = tuple(u.shape)
        if shape_in == (self.size,):
            u3 = u.reshape(self.n_modes)
        elif shape_in == self.n_modes:
            u3 = u
        else:
            raise ValueError(f"`u` must have shape {self.n_modes} or ({self.size},), got {shape_in}")
        kind = np.dtype(u3.dtype).kind
        big = self.fft_shape
        n0, n1, n2 = self.n_modes
        if kind in "fiu":
            real_dt = np.float32 if np.dtype(u3.dtype) == np.float32 else np.float64
            u3 = u3.astype(np.float64, copy=False)
            if self.on_device:  # one cuFFT 3-D plan each way (pruning is unmeasured on a GPU)
                spec = fft.rfftn(u3, s=big)
                spec *= self.real_kernel_hat
                out = fft.irfftn(spec, s=big)[:n0, :n1, :n2]
            else:
                spec = fft.fft(fft.fft(fft.rfft(u3, n=big[2], axis=2), n=big[1], axis=1), n=big[0], axis=0)
                spec *= self.real_kernel_hat
                out = fft.irfft(fft.ifft(fft.ifft(spec, axis=0)[:n0], axis=1)[:, :n1], n=big[2], axis=2)[..., :n2]
            out = out.astype(real_dt, copy=False)
        elif kind == "c":
            u3 = u3.astype(np.complex128, copy=False)
            if self.on_device:
                spec = fft.fftn(u3, s=big)
                spec *= self.kernel_hat
                out = fft.ifftn(spec)[:n0, :n1, :n2]
            else:
                spec = fft.fft(fft.fft(fft.fft(u3, n=big[2], axis=2), n=big[1], axis=1), n=big[0], axis=0)
                spec *= self.kernel_hat
                out = fft.ifft(fft.ifft(fft.ifft(spec, axis=0)[:n0], axis=1)[:, :n1], axis=2)[..., :n2]
            out = out.astype(u3.dtype, copy=False)
        else:
            raise TypeError(f"`u` must be a real or complex array, got {np.dtype(u3.dtype).name}")
        out = xp.ascontiguousarray(out)
        return out.reshape(shape_in)

    __call__ = matvec

    def __matmul__(self, u):
        return self.matvec(u)

    def __repr__(self) -> str:
        return f"ToeplitzNormalOperator(n_modes={self.n_modes}, points={self.n_points})"
