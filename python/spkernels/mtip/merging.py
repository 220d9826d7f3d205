"""Merging: the least-squares autocorrelation of oriented images, by CG on the normal equations."""

from __future__ import annotations

import numpy as np

from .. import kernels as K
from .. import parallel
from .slicing import nufft_points


def merge(data_sel, s_sel, w, quats, M: int, dx: float, support, ac_prev, *, eps: float, backend: str,
          tikhonov: float, cg_tol: float, cg_maxiter: int, comm=None, row_weights=None):
    """Least-squares autocorrelation on an M³ grid from oriented images (CG on the normal equations).

    Solves ``(AᴴWA + λ) ac = AᴴW d + λ ac_prev`` on `support` (λ = `tikhonov` × the total pixel
    weight) with at most `cg_maxiter` CG iterations at tolerance `cg_tol`; `eps` is the
    NUFFT accuracy. Under MPI each rank holds some images: the Toeplitz kernel and ``AᴴWd`` are
    summed over ranks before the solve, so every rank solves the same global problem.
    ``row_weights`` (one per row of ``data_sel``) weight whole images, e.g. posterior weights
    of soft assignment. Returns ``(ac, CG result)``.
    """
    x, y, z = nufft_points(quats, s_sel, dx)
    wrow = w[None, :] if row_weights is None else w[None, :] * np.asarray(row_weights, dtype=np.float64)[:, None]
    wts = np.broadcast_to(wrow, data_sel.shape).reshape(-1)
    # One type-1 NUFFT pass makes both the Toeplitz kernel (of the weights) and the right-hand
    # side AᴴW d; `comm` sums both over ranks, so every rank solves the global problem.
    op = K.ToeplitzNormalOperator(x, y, z, (M, M, M), weights=wts, eps=eps, backend=backend, comm=comm,
                                  values=np.asarray(data_sel, dtype=np.float64).reshape(-1))
    rhs = op.adjoint
    total_weight = parallel.allreduce_sum(float(wts.sum()), comm)
    lam = tikhonov * total_weight
    sup = support.astype(np.float64)
    x0 = np.zeros((M, M, M)) if ac_prev is None else ac_prev * sup

    def normal(u):
        return sup * (op(sup * u) + lam * u)

    # ac is real: the normal equations of the real least-squares problem are
    # Re(AᴴWA) ac = Re(AᴴWd), and the operator's real path runs on half spectra.
    d = sup * (np.asarray(rhs).real + lam * x0)
    res = K.cg(normal, np.ascontiguousarray(d), x0=np.ascontiguousarray(x0, dtype=np.float64), tol=cg_tol,
               maxiter=cg_maxiter, backend=backend)
    ac = np.asarray(res.x)
    ac = 0.5 * (ac + _invert(ac))  # intensities are centrosymmetric (Friedel), so is ac
    return ac, res


def _invert(v):
    """v(−x) about the centre index M//2 of an odd grid."""
    return v[::-1, ::-1, ::-1]
