"""Toeplitz normal operator: ``AᴴWA`` for the type-2 NUFFT ``A`` without any NUFFT per use.

``(A u)_j = Σ_k u_k exp(-i k·x_j)`` (type 2, finufft's isign -1, modes ``k`` in
``[-N/2, (N-1)/2]`` per axis), so ``(AᴴWAu)_k = Σ_k' T(k - k') u_k'`` with
``T(m) = Σ_j w_j exp(+i m·x_j)``: a 3-D Toeplitz (convolution) matrix. ``T`` on
``m ∈ [-N, N-1]`` is one type-1 NUFFT of the weights onto the 2N grid
(:func:`spkernels.kernels.nufft3d1`), made once. Embedded in a (2N)³ circulant, each
application is zero pad → FFT → multiply by the kernel's FFT → inverse FFT → crop.

Real inputs use real-to-complex transforms and apply ``Re(AᴴWA u)``: for a real unknown
(MTIP's autocorrelation) that is the normal operator of the real least-squares problem
``min_u ||W^½(A u - b)||²``, and its circulant kernel ``Re T(m) = (T(m) + T(-m))/2`` is real
and even, so its spectrum is real. Complex inputs get the full complex ``AᴴWA u``.
"""

from __future__ import annotations

import logging
import numbers

import numpy as np

from .._arrays import ensure_array, ensure_finite, fft_module, is_device_array

__all__ = ["ToeplitzNormalOperator"]

log = logging.getLogger("spkernels.kernels.toeplitz")


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

    Notes
    -----
    The object is LinearOperator-like: ``shape``, ``dtype``, ``matvec``, ``__call__``,
    ``@``. ``matvec`` accepts (N1, N2, N3) or flat (N1·N2·N3,) vectors and returns the same
    shape; real input gives the real part (see the module docstring), complex input the full
    product. Memory: the kernel spectrum, (2N)³ complex128 (plus a real half spectrum).
    """

    def __init__(self, x, y, z, n_modes, weights=None, *, eps: float = 1e-9, backend: str = "auto", comm=None,
                 values=None):
        from .nufft import nufft3d1  # the NUFFT family owns validation of points and eps

        if isinstance(n_modes, numbers.Integral):
            n_modes = (int(n_modes),) * 3
        try:
            n_modes = tuple(int(n) for n in n_modes)
        except TypeError:
            raise TypeError(f"`n_modes` must be an int or 3 ints, got {n_modes!r}") from None
        if len(n_modes) != 3 or min(n_modes) < 1:
            raise ValueError(f"`n_modes` must be 3 positive ints, got {n_modes}")
        self.n_modes = n_modes
        on_device = is_device_array(x)
        self.on_device = on_device
        if on_device:
            import cupy as xp
        else:
            xp = np
        fft = fft_module(xp)
        self._xp, self._fft = xp, fft
        x, y, z = (xp.asarray(a, dtype=np.float64) for a in (x, y, z))
        m = int(x.shape[0]) if getattr(x, "ndim", 0) == 1 else -1
        if weights is None:
            c = xp.ones(max(m, 0), dtype=np.complex128)
        else:
            weights = ensure_array("weights", weights, ndim=1)
            if np.dtype(weights.dtype).kind not in "fiu":
                raise TypeError(f"`weights` must be real, got {np.dtype(weights.dtype).name}")
            if int(weights.shape[0]) != m:
                raise ValueError(f"`weights` has {weights.shape[0]} entries but there are {m} points")
            ensure_finite("weights", weights)
            c = xp.asarray(weights, dtype=np.float64).astype(np.complex128)
        if values is not None:
            values = ensure_array("values", values, ndim=1)
            if int(values.shape[0]) != m:
                raise ValueError(f"`values` has {values.shape[0]} entries but there are {m} points")
            ensure_finite("values", values)
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
        # Index b of the 2N grid holds mode b - N; the circulant wants lag d at index d mod 2N.
        self._circ = fft.ifftshift(t)
        self._kernel_hat = None  # complex spectrum: made on the first complex application
        # Real inputs: kernel Re T(m) = (T(m) + T(-m))/2 is real and even; keep its rfft half.
        circ_re = xp.ascontiguousarray(self._circ.real)
        self.real_kernel_hat = fft.rfftn(circ_re).real.copy()
        self.size = int(np.prod(n_modes))
        self.shape = (self.size, self.size)
        self.dtype = np.dtype(np.complex128)
        self.n_points = m
        log.debug("Toeplitz kernel for %d points on %s (2N grid %s)", m, n_modes, big)

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
        big = tuple(2 * n for n in self.n_modes)
        crop = tuple(slice(0, n) for n in self.n_modes)
        if kind in "fiu":
            real_dt = np.float32 if np.dtype(u3.dtype) == np.float32 else np.float64
            spec = fft.rfftn(u3.astype(np.float64, copy=False), s=big)
            spec *= self.real_kernel_hat
            out = fft.irfftn(spec, s=big)[crop].astype(real_dt, copy=False)
        elif kind == "c":
            spec = fft.fftn(u3.astype(np.complex128, copy=False), s=big)
            spec *= self.kernel_hat
            out = fft.ifftn(spec)[crop].astype(u3.dtype, copy=False)
        else:
            raise TypeError(f"`u` must be a real or complex array, got {np.dtype(u3.dtype).name}")
        out = xp.ascontiguousarray(out)
        return out.reshape(shape_in)

    __call__ = matvec

    def __matmul__(self, u):
        return self.matvec(u)

    def __repr__(self) -> str:
        return f"ToeplitzNormalOperator(n_modes={self.n_modes}, points={self.n_points})"
