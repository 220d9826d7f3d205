"""Conjugate gradient scalar state machine (the Numba twin of ``cpp/include/spk/cg.h``).

The one Python definition of the CG state layout (slots, status codes, reduction selectors) and
of its scalar updates. The functions carry the names and argument order of the ``SPK_HD``
functions in the C++ header (``cg_running``, ``cg_finish_dot``, ``cg_finish_rr``, ``cg_beta``);
the constants are the header's ``kCg*`` names in Python spelling (``kCgRhoNew`` -> ``RHO_NEW``,
``kCgPrecondBad`` -> ``PRECOND_BAD``, ``kCgDotRr0`` -> ``DOT_RR0``). The same functions run
inside the Numba CPU kernels, inside the one-thread tail of the Numba CUDA reductions (so the
scalars stay on the device), and, through ``.py_func``, in the NumPy reference. See the C++
header for the iteration they implement.
"""

from __future__ import annotations

import math

from numba import njit

RHO, RHO_NEW, PQ, PQ_IM, ALPHA, RR, STATUS, ITER, ATOL, HERM_TOL, PRECOND = range(11)
STATE_SIZE = 16

RUNNING, CONVERGED, INDEFINITE, NONFINITE, NONHERMITIAN, PRECOND_BAD = 0.0, 1.0, 2.0, 3.0, 4.0, 5.0

DOT_PQ, DOT_RHO, DOT_RR0 = 0, 1, 2


@njit(cache=False)
def cg_running(st):
    return st[STATUS] == RUNNING


@njit(cache=False)
def cg_finish_dot(st, hist, which, re, im):
    """Feed a finished dot product into the state (``cg_finish_dot`` in spk/cg.h)."""
    if st[STATUS] != RUNNING:
        return
    if which == DOT_PQ:
        st[PQ] = re
        st[PQ_IM] = im
        if not (math.isfinite(re) and math.isfinite(im)):
            st[STATUS] = NONFINITE
        elif not (re > 0.0):
            st[STATUS] = INDEFINITE
        elif abs(im) > st[HERM_TOL] * re:
            st[STATUS] = NONHERMITIAN
        else:
            st[ALPHA] = st[RHO_NEW] / re
            st[RHO] = st[RHO_NEW]
    elif which == DOT_RHO:
        if not math.isfinite(re):
            st[STATUS] = NONFINITE
        elif not (re > 0.0):
            st[STATUS] = PRECOND_BAD
        else:
            st[RHO_NEW] = re
    else:
        st[RR] = re
        norm = math.sqrt(re) if re >= 0.0 else math.nan
        hist[0] = norm
        if not math.isfinite(re):
            st[STATUS] = NONFINITE
        elif norm < st[ATOL]:
            st[STATUS] = CONVERGED
        elif st[PRECOND] == 0.0:
            st[RHO_NEW] = re


@njit(cache=False)
def cg_finish_rr(st, hist, rr):
    """After x += alpha p, r -= alpha q: history, convergence, rho (``cg_finish_rr`` in spk/cg.h)."""
    if st[STATUS] != RUNNING:
        return
    k = int(st[ITER]) + 1
    st[ITER] = k
    st[RR] = rr
    norm = math.sqrt(rr) if rr >= 0.0 else math.nan
    hist[k] = norm
    if not math.isfinite(rr):
        st[STATUS] = NONFINITE
    elif norm < st[ATOL]:
        st[STATUS] = CONVERGED
    elif st[PRECOND] == 0.0:
        st[RHO_NEW] = rr


@njit(cache=False)
def cg_beta(st):
    return st[RHO_NEW] / st[RHO]
