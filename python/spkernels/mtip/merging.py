"""Merging: the least-squares autocorrelation of oriented images, by CG on the normal equations.

The solve happens where the images live: with CuPy images (a GPU backend) the Toeplitz kernel,
the right-hand side, the CG vectors and the operator's FFTs all stay on the device.
"""

from __future__ import annotations

import numpy as np

from .. import kernels as K
from .. import parallel
from .._arrays import array_module
from .slicing import nufft_points, rotations


def merge(data_sel, s_sel, w, quats, M: int, dx: float, support, ac_prev, *, eps: float, backend: str,
          tikhonov: float, cg_tol: float, cg_maxiter: int, comm=None, row_weights=None, fft_shape=None):
    """Least-squares autocorrelation on an M³ grid from oriented images (CG on the normal equations).

    Solves ``(AᴴWA + λ) ac = AᴴW d + λ ac_prev`` on `support` (λ = `tikhonov` × the total pixel
    weight) with at most `cg_maxiter` CG iterations at tolerance `cg_tol`; `eps` is the
    NUFFT accuracy. Under MPI each rank holds some images: the Toeplitz kernel and ``AᴴWd`` are
    summed over ranks before the solve, so every rank solves the same global problem.
    ``row_weights`` (one per row of ``data_sel``) weight whole images, e.g. posterior weights
    of soft assignment. Arrays are NumPy, or CuPy for a GPU backend, except `quats` (host
    quaternions). ``fft_shape`` is the Toeplitz operator's circulant grid (default: the measured
    FFT-size advice, see :class:`spkernels.kernels.ToeplitzNormalOperator`); the result does not
    depend on it beyond rounding. Returns ``(ac, CG result)``.
    """
    xp = array_module(data_sel)
    x, y, z = nufft_points(rotations(quats, xp), s_sel, dx)
    wrow = w[None, :] if row_weights is None else w[None, :] * row_weights.astype(np.float64)[:, None]
    wts = xp.broadcast_to(wrow, data_sel.shape).reshape(-1)
    # One type-1 NUFFT pass makes both the Toeplitz kernel (of the weights) and the right-hand
    # side AᴴW d; `comm` sums both over ranks, so every rank solves the global problem.
    op = K.ToeplitzNormalOperator(x, y, z, (M, M, M), weights=wts, eps=eps, backend=backend, comm=comm,
                                  values=data_sel.astype(np.float64).reshape(-1), fft_shape=fft_shape)
    rhs = op.adjoint
    total_weight = parallel.allreduce_sum(float(wts.sum()), comm)
    lam = tikhonov * total_weight
    sup = support.astype(np.float64)
    x0 = xp.zeros((M, M, M)) if ac_prev is None else ac_prev * sup

    def normal(u):
        return sup * (op(sup * u) + lam * u)

    # ac is real: the normal equations of the real least-squares problem are
    # Re(AᴴWA) ac = Re(AᴴWd), and the operator's real path runs on half spectra.
    d = sup * (rhs.real + lam * x0)
    res = K.cg(normal, xp.ascontiguousarray(d), x0=xp.ascontiguousarray(x0, dtype=np.float64), tol=cg_tol,
               maxiter=cg_maxiter, backend=backend)
    ac = res.x
    ac = 0.5 * (ac + _invert(ac))  # intensities are centrosymmetric (Friedel), so is ac
    return ac, res


def _invert(v):
    """v(−x) about the centre index M//2 of an odd grid."""
    return v[::-1, ::-1, ::-1]
