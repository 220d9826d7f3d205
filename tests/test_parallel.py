"""MPI helpers: serial semantics here, and the same tests again under ``mpiexec -n 2``."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from spkernels import parallel


def _comm():
    """COMM_WORLD when running under mpiexec, else None (serial)."""
    if "PMI_RANK" in os.environ or "OMPI_COMM_WORLD_RANK" in os.environ:
        return parallel.world("world")
    return None


@pytest.mark.mpi
def test_split_range_covers_everything_once():
    comm = _comm()
    for n in (0, 1, 7, 10):
        mine = np.arange(n)[parallel.split_range(n, comm)]
        allv = parallel.allgather_rows(mine, comm)
        np.testing.assert_array_equal(allv, np.arange(n))


@pytest.mark.mpi
def test_allreduce_sum_matches_serial_total():
    comm = _comm()
    rng = np.random.default_rng(0)
    contributions = rng.standard_normal((parallel.size(comm), 5, 4))
    x = contributions[parallel.rank(comm)].copy()
    total = parallel.allreduce_sum(x, comm)
    np.testing.assert_allclose(total, contributions.sum(axis=0), rtol=1e-12)
    assert parallel.allreduce_sum(parallel.rank(comm) + 1, comm) == sum(range(1, parallel.size(comm) + 1))
    assert parallel.bcast({"seed": parallel.rank(comm)}, comm) == {"seed": 0}


def test_serial_defaults():
    assert parallel.rank() == 0 and parallel.size() == 1 and parallel.is_root()
    x = np.ones(3)
    assert parallel.allreduce_sum(x) is x
    with pytest.raises(ValueError, match="`comm`"):
        parallel.world("everyone")
    with pytest.raises(ValueError, match="`n`"):
        parallel.split_range(-1)


def test_under_mpiexec_two_ranks():
    pytest.importorskip("mpi4py")
    mpiexec = shutil.which("mpiexec")
    if mpiexec is None:
        pytest.skip("mpiexec not found (install spkernels[mpi])")
    if _comm() is not None:
        pytest.skip("already under mpiexec")
    cmd = [mpiexec, "-n", "2", sys.executable, "-m", "mpi4py", "-m", "pytest", str(Path(__file__)),
           "-m", "mpi", "-q", "-p", "no:cacheprovider", "-o", "addopts="]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert proc.stdout.count(" passed") == 2, proc.stdout  # one summary line per rank
    assert "3 passed" in proc.stdout, proc.stdout


@pytest.mark.mpi
def test_toeplitz_kernel_sums_points_over_ranks():
    """Each rank holds half the points; the operator must equal the one built from all of them."""
    from spkernels.kernels import ToeplitzNormalOperator

    comm = _comm()
    rng = np.random.default_rng(1)
    pts = rng.uniform(-np.pi, np.pi, (3, 200))
    w = rng.uniform(0.5, 1.5, 200)
    mine = parallel.split_range(200, comm)
    local = ToeplitzNormalOperator(*(p[mine] for p in pts), (6, 6, 6), weights=w[mine], eps=1e-9,
                                   backend="numpy", comm=comm)
    full = ToeplitzNormalOperator(*pts, (6, 6, 6), weights=w, eps=1e-9, backend="numpy")
    u = rng.standard_normal((6, 6, 6))
    np.testing.assert_allclose(local(u), full(u), rtol=1e-10, atol=1e-10 * np.abs(full(u)).max())
