"""MPI helpers for runs that outgrow one machine; ``comm=None`` always means serial.

Every function takes an mpi4py communicator or None, so science code is written once: with
None (or a one-rank communicator) nothing is imported from mpi4py and nothing is sent.
GPU arrays are staged through the host unless the MPI library is CUDA-aware
(``SPK_MPI_CUDA_AWARE=1``).

The MTIP merge is the reason this exists: each rank holds some images, so both the normal
operator's kernel (type-1 NUFFT of the weights at the rank's points) and the right-hand side
``Aᴴb`` must be summed over all ranks before CG (a known defect elsewhere is to solve with each
rank's own sums). :func:`allreduce_sum` does that.
"""

from __future__ import annotations

import os

import numpy as np

from .._arrays import array_module, is_device_array, to_host


def world(comm=None):
    """``comm`` itself, or ``mpi4py.MPI.COMM_WORLD`` when ``comm == "world"``; None stays None."""
    if isinstance(comm, str):
        if comm != "world":
            raise ValueError(f"`comm` must be None, 'world' or an mpi4py communicator, got {comm!r}")
        from mpi4py import MPI

        return MPI.COMM_WORLD
    return comm


def rank(comm=None) -> int:
    """This process's rank (0 when serial)."""
    return 0 if comm is None else comm.Get_rank()


def size(comm=None) -> int:
    """Number of ranks (1 when serial)."""
    return 1 if comm is None else comm.Get_size()


def is_root(comm=None) -> bool:
    """True on rank 0 (and always when serial): the rank that writes files and logs progress."""
    return rank(comm) == 0


def split_range(n: int, comm=None) -> slice:
    """The contiguous share of ``range(n)`` owned by this rank (sizes differ by at most one)."""
    if n < 0:
        raise ValueError(f"`n` must be >= 0, got {n}")
    r, s = rank(comm), size(comm)
    base, extra = divmod(n, s)
    start = r * base + min(r, extra)
    return slice(start, start + base + (1 if r < extra else 0))


def allreduce_sum(x, comm=None):
    """Sum `x` over all ranks; every rank gets the total.

    NumPy arrays are reduced in place and returned; device arrays are reduced in place through
    the host (or directly when ``SPK_MPI_CUDA_AWARE=1``). Python scalars return a scalar.
    """
    if comm is None or comm.Get_size() == 1:
        return x
    from mpi4py import MPI

    if np.isscalar(x):
        return comm.allreduce(x, op=MPI.SUM)
    if is_device_array(x):
        if os.environ.get("SPK_MPI_CUDA_AWARE", "0") == "1":
            comm.Allreduce(MPI.IN_PLACE, x, op=MPI.SUM)
            return x
        host = np.ascontiguousarray(to_host(x))
        comm.Allreduce(MPI.IN_PLACE, host, op=MPI.SUM)
        xp = array_module(x)
        x[...] = xp.asarray(host) if xp is not None else host
        return x
    if not x.flags.c_contiguous:
        raise ValueError("`x` must be C-contiguous for an in-place allreduce")
    comm.Allreduce(MPI.IN_PLACE, x, op=MPI.SUM)
    return x


def allgather_rows(x, comm=None):
    """Concatenate each rank's rows (axis 0) in rank order; every rank gets the whole array."""
    if comm is None or comm.Get_size() == 1:
        return x
    host = np.ascontiguousarray(to_host(x))
    parts = comm.allgather(host)
    out = np.concatenate(parts, axis=0)
    if is_device_array(x):
        xp = array_module(x)
        return xp.asarray(out) if xp is not None else out
    return out


def bcast(obj, comm=None, root: int = 0):
    """Broadcast a picklable object (or array) from `root`."""
    if comm is None or comm.Get_size() == 1:
        return obj
    return comm.bcast(obj, root=root)
